#include "engines/embed.h"
#include "engines/qemu/qemu_engine.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "engines/native/runner_host.h"

namespace cpudiff {
namespace {

constexpr const char* kQemuName = "qemu-x86_64";



// Runs argv with environment env and returns its standard output (at most
// 1 MiB); its standard error goes to /dev/null. Empty on failure.
std::string Capture(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::vector<char*> argv, envp;
  std::vector<std::string> a = args, e = env;
  for (std::string& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (std::string& s : e) envp.push_back(s.data());
  envp.push_back(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return {};
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return {};
  }
  if (pid == 0) {
    dup2(fds[1], 1);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 2);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() < (1u << 20)) out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return out;
}

// Whether the ELF file at `path` names a program interpreter (is
// dynamically linked).
bool HasInterpreter(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Elf64_Ehdr eh{};
  if (!in.read(reinterpret_cast<char*>(&eh), sizeof(eh))) return false;
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64) {
    return false;
  }
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    in.seekg(static_cast<std::streamoff>(eh.e_phoff + static_cast<uint64_t>(i) * eh.e_phentsize));
    if (!in.read(reinterpret_cast<char*>(&ph), sizeof(ph))) return false;
    if (ph.p_type == PT_INTERP) return true;
  }
  return false;
}

// The host files qemu needs inside the box: itself, and for a dynamic
// build its loader and libraries as the loader resolves them
// (LD_TRACE_LOADED_OBJECTS makes the loader list them and stop; this is
// what ldd does, without depending on ldd being installed).
std::vector<std::string> QemuFiles(const std::string& qemu) {
  std::vector<std::string> files = {qemu};
  if (!HasInterpreter(qemu)) return files;
  std::string out = Capture({qemu}, {"LD_TRACE_LOADED_OBJECTS=1"});
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    // "\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or
    // "\t/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO has no path.
    std::istringstream words(line);
    std::string w;
    while (words >> w) {
      if (!w.empty() && w[0] == '/') {
        if (std::find(files.begin(), files.end(), w) == files.end()) files.push_back(w);
        break;
      }
    }
  }
  if (access("/etc/ld.so.cache", R_OK) == 0) files.push_back("/etc/ld.so.cache");
  return files;
}

struct QemuInfo {
  std::string path;     // empty when not found
  std::string version;  // first line of --version
  std::string error;
};

const QemuInfo& Qemu() {
  static std::once_flag once;
  static QemuInfo info;
  std::call_once(once, [] {
    info.path = FindInPath(kQemuName);
    if (!info.path.empty()) {
      // The real file: the jail bind-mounts it into its empty root.
      char real[4096];
      if (realpath(info.path.c_str(), real)) info.path = real;
    }
    if (info.path.empty()) {
      info.error = std::string(kQemuName) + " not found in PATH (Debian package qemu-user)";
      return;
    }
    std::string out = Capture({info.path, "--version"}, {});
    info.version = out.substr(0, out.find('\n'));
    if (info.version.empty()) {
      info.error = info.path + " --version printed nothing";
    }
  });
  return info;
}

// The jail executable in a sealed memfd of this process, executed as
// /proc/<pid>/fd/<n>: RunnerHost closes every other descriptor in its child
// before exec, and this path still reaches the parent's.
}  // namespace

int QemuJailFd() {
  static std::once_flag once;
  static int fd = -1;
  static std::string error;
  std::call_once(once, [] { fd = SealedMemfd("cpudiff-qemu-jail", QemuJailImage(), &error); });
  if (fd < 0) throw std::runtime_error("qemu: " + error);
  return fd;
}

namespace {

// Address-space limit of the box. qemu-x86_64 7.2 with the runner needs
// ~3.5 GiB of mappings (the runner's 2 GiB arena and ~0.6 GiB shared memory,
// qemu's 1 GiB translation buffer); the limit only stops a runaway.
constexpr uint64_t kAddressSpaceLimit = 16ull << 30;
// No RLIMIT_CPU: the process lives for a whole campaign, so a CPU-time
// limit would eventually kill it in the middle of an innocent case; the
// per-case wall-time limit (EngineOptions::timeout_ms) stops a case that
// runs away.

RunnerOptions MakeOptions(const EngineOptions& options) {
  const QemuInfo& q = Qemu();
  if (q.path.empty() || !q.error.empty()) throw std::runtime_error("qemu: " + q.error);
  RunnerOptions r;
  r.process_name = "qemu";
  r.command_prefix.push_back("/proc/" + std::to_string(getpid()) + "/fd/" +
                             std::to_string(QemuJailFd()));
  for (const std::string& f : QemuFiles(q.path)) {
    r.command_prefix.push_back("--ro");
    r.command_prefix.push_back(f);
  }
  r.command_prefix.push_back("--");
  r.command_prefix.push_back(q.path);
  // Every instruction-set extension TCG implements, as a reference should;
  // the default qemu64 model lacks even popcnt and SSE4.
  r.command_prefix.push_back("-cpu");
  r.command_prefix.push_back("max");
  // Deterministic start (AT_RANDOM), and no entropy source needed in the box.
  r.command_prefix.push_back("-seed");
  r.command_prefix.push_back("1");
  r.seccomp = false;  // qemu refuses it; the jail contains qemu instead
  r.timeout_ms = options.timeout_ms;
  r.address_space_limit = kAddressSpaceLimit;
  return r;
}

// Bytes that must not execute under QEMU user mode, which would pass the
// system call to the host kernel.
struct Pattern {
  uint8_t a, b;
  const char* name;
};
constexpr Pattern kSyscallPatterns[] = {
    {0x0f, 0x05, "syscall (0f 05)"},
    {0x0f, 0x34, "sysenter (0f 34)"},
    {0xcd, 0x80, "int 0x80 (cd 80)"},
};

// Offset of the first system-call pattern in `bytes` (followed by zeros up
// to the end of the region), or -1.
int64_t FindSyscall(const std::vector<uint8_t>& bytes, const char** name) {
  for (size_t i = 0; i + 1 < bytes.size(); ++i) {
    for (const Pattern& p : kSyscallPatterns) {
      if (bytes[i] == p.a && bytes[i + 1] == p.b) {
        *name = p.name;
        return static_cast<int64_t>(i);
      }
    }
  }
  return -1;
}

}  // namespace

std::string SyscallBytesReason(const TestCase& tc, std::string_view engine, std::string_view why) {
  const std::string e(engine), w(why);
  const char* name = nullptr;
  int64_t at = FindSyscall(tc.code, &name);
  if (at >= 0) {
    return e + ": the code holds " + name + " at " +
           Hex64(tc.code_addr + static_cast<uint64_t>(at)) + "; " + w;
  }
  for (const MemRegion& m : tc.mem) {
    if ((m.perm & kPermW) && (m.perm & kPermX)) {
      return e + ": region " + Hex64(m.addr) +
             " is writable and executable; code written at run time cannot be checked for "
             "system calls";
    }
    if (!(m.perm & kPermX)) continue;
    at = FindSyscall(m.data, &name);
    if (at >= 0) {
      return e + ": executable region " + Hex64(m.addr) + " holds " + name + " at " +
             Hex64(m.addr + static_cast<uint64_t>(at)) + "; " + w;
    }
  }
  return {};
}

std::string QemuUnsupportedReason(const TestCase& tc) {
  return SyscallBytesReason(tc, "qemu", "QEMU user mode would pass it to the host kernel");
}

Availability ProbeQemu() {
  const QemuInfo& q = Qemu();
  if (q.path.empty() || !q.error.empty()) return {false, q.error, q.version};
  std::ifstream userns("/proc/sys/user/max_user_namespaces");
  long max_userns = -1;
  if (userns >> max_userns && max_userns == 0) {
    return {false,
            "user namespaces are disabled (user.max_user_namespaces = 0); the qemu box needs them",
            q.version};
  }
  return {true, "", q.version};
}

std::unique_ptr<Engine> CreateQemuEngine(const EngineOptions& options) {
  return std::make_unique<QemuEngine>(options);
}

QemuEngine::QemuEngine(const EngineOptions& options)
    : host_(std::make_unique<RunnerHost>(MakeOptions(options))) {}

QemuEngine::~QemuEngine() = default;

pid_t QemuEngine::pid() const { return host_->pid(); }

pid_t QemuEngine::qemu_pid() const {
  // jail (RunnerHost's child) -> pid 1 of the box -> qemu-x86_64.
  pid_t p = host_->pid();
  for (int level = 0; level < 2 && p > 0; ++level) {
    std::ifstream in("/proc/" + std::to_string(p) + "/task/" + std::to_string(p) + "/children");
    pid_t child = -1;
    p = (in >> child) ? child : -1;
  }
  return p;
}

uint64_t QemuEngine::restarts() const { return host_->restarts(); }

void QemuEngine::Run(std::span<const TestCase* const> cases, std::span<RunResult> results) {
  // Cases QEMU may not run are answered here; the rest go to the runner in
  // one batch. New code at an address QEMU has translated before is safe:
  // the runner (kRunnerFlagRemapExec, set for every command prefix) toggles
  // the protection of an executable region whose bytes it rewrote, which
  // makes QEMU drop the translated blocks of those pages.
  std::vector<const TestCase*> send;
  std::vector<size_t> origin;
  send.reserve(cases.size());
  origin.reserve(cases.size());
  const bool fsgsbase = host_->fsgsbase();
  for (size_t i = 0; i < cases.size(); ++i) {
    const TestCase& tc = *cases[i];
    std::string why = QemuUnsupportedReason(tc);
    if (why.empty()) why = RunnerHost::CheckCase(tc, fsgsbase);
    if (!why.empty()) {
      results[i] = RunResult{};
      results[i].state = tc.init;
      results[i].outcome = Outcome::Unsupported(std::move(why));
      continue;
    }
    send.push_back(&tc);
    origin.push_back(i);
  }
  if (send.empty()) return;
  std::vector<RunResult> out(send.size());
  host_->Run(send, out);
  for (size_t j = 0; j < send.size(); ++j) results[origin[j]] = std::move(out[j]);
}

}  // namespace cpudiff

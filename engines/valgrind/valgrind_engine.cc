#include "engines/valgrind/valgrind_engine.h"

#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <stdexcept>

#include "engines/native/runner_host.h"
#include "engines/qemu/qemu_engine.h"

namespace cpudiff {
namespace {

constexpr const char* kLauncher = "/usr/bin/valgrind.bin";
constexpr const char* kTool = "/usr/libexec/valgrind/none-amd64-linux";

struct ValgrindInfo {
  std::string version;
  std::string error;
};

const ValgrindInfo& Valgrind() {
  static std::once_flag once;
  static ValgrindInfo info;
  std::call_once(once, [] {
    if (access(kTool, X_OK) != 0 || access(kLauncher, X_OK) != 0) {
      info.error = std::string(kTool) + " not found (Debian package valgrind)";
      return;
    }
    // `valgrind --version` prints "valgrind-3.19.0".
    FILE* p = popen((std::string(kLauncher) + " --version 2>/dev/null").c_str(), "r");
    char line[128] = {};
    if (p != nullptr) {
      if (fgets(line, sizeof(line), p) == nullptr) line[0] = 0;
      pclose(p);
    }
    info.version = line;
    while (!info.version.empty() && (info.version.back() == '\n' || info.version.back() == ' ')) {
      info.version.pop_back();
    }
    if (info.version.empty()) info.error = std::string(kLauncher) + " --version printed nothing";
  });
  return info;
}

RunnerOptions MakeOptions(const EngineOptions& options) {
  const ValgrindInfo& v = Valgrind();
  if (!v.error.empty()) throw std::runtime_error("valgrind: " + v.error);
  RunnerOptions r;
  r.process_name = "valgrind";
  r.command_prefix = {"/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(QemuJailFd()),
                      "--ro", kTool, "--tmp", "--", kTool,
                      // No messages of its own, no gdb server (it would want a
                      // writable /tmp), no core dumps of the guest.
                      "-q", "--vgdb=no", "--error-limit=no", "--smc-check=all"};
  r.env = {std::string("VALGRIND_LAUNCHER=") + kLauncher};
  r.seccomp = false;  // it would trap Valgrind's own system calls
  r.exit_stub = true;
  r.derive_vector = true;  // the frame's trap number is 0
  r.unobserved_at_signal = kObserveRflags | kObserveXmm | kObserveMxcsr | kObserveErrorCode;
  r.timeout_ms = options.timeout_ms;
  r.start_timeout_ms = 30000;
  // Valgrind reserves large parts of the address space for itself.
  r.address_space_limit = 0;
  return r;
}

class ValgrindEngine : public Engine {
 public:
  explicit ValgrindEngine(const EngineOptions& options)
      : options_(MakeOptions(options)), host_(std::make_unique<RunnerHost>(options_)) {
    fsgsbase_ = host_->fsgsbase();
  }

  void Run(std::span<const TestCase* const> cases, std::span<RunResult> results) override {
    std::vector<const TestCase*> send;
    std::vector<size_t> origin;
    send.reserve(cases.size());
    origin.reserve(cases.size());
    // The same host CPU for every Valgrind process: the first one's answer.
    const bool fsgsbase = fsgsbase_;
    for (size_t i = 0; i < cases.size(); ++i) {
      const TestCase& tc = *cases[i];
      std::string why = SyscallBytesReason(
          tc, "valgrind", "Valgrind would make it a host system call (no seccomp under it)");
      if (why.empty()) why = RunnerHost::CheckCase(tc, fsgsbase);
      if (why.empty()) {
        why = RunnerHost::CheckExitStubRoom(tc);
        if (!why.empty()) why = "valgrind: " + why;
      }
      if (!why.empty()) {
        results[i] = RunResult{};
        results[i].state = tc.init;
        results[i].outcome = Outcome::Unsupported(std::move(why));
        continue;
      }
      send.push_back(&tc);
      origin.push_back(i);
    }
    // After an instruction VEX cannot decode, Valgrind 3.19 raises SIGILL
    // at that address for every later case whatever the bytes there
    // (measured; neither --smc-check=all, nor munmap/mmap, nor the
    // DISCARD_TRANSLATIONS client request help), so a #UD ends the process:
    // the results after it are dropped, Valgrind is started again, and the
    // rest runs on the fresh one.
    size_t done = 0;
    std::vector<RunResult> out;
    while (done < send.size()) {
      if (host_ == nullptr) {
        try {
          host_ = std::make_unique<RunnerHost>(options_);
        } catch (const std::exception& e) {
          for (; done < send.size(); ++done) {
            RunResult& r = results[origin[done]];
            r = RunResult{};
            r.state = send[done]->init;
            r.outcome = Outcome::Crash(std::string("valgrind could not be restarted: ") + e.what());
          }
          return;
        }
      }
      std::span<const TestCase* const> rest(send.data() + done, send.size() - done);
      out.assign(rest.size(), RunResult{});
      host_->Run(rest, out);
      size_t keep = rest.size();
      bool ud = false;
      for (size_t j = 0; j < rest.size(); ++j) {
        if (out[j].outcome.kind == OutcomeKind::kFault && out[j].outcome.vector == kVecUD) {
          keep = j + 1;
          ud = true;
          break;
        }
      }
      for (size_t j = 0; j < keep; ++j) results[origin[done + j]] = std::move(out[j]);
      done += keep;
      if (ud) host_.reset();  // started again for the next case
    }
  }

  uint32_t Observes() const override { return kObserveAll; }

 private:
  RunnerOptions options_;
  std::unique_ptr<RunnerHost> host_;  // null after a #UD until the next case
  bool fsgsbase_ = false;
};

}  // namespace

Availability ProbeValgrind() {
  const ValgrindInfo& v = Valgrind();
  if (!v.error.empty()) return {false, v.error, ""};
  Availability q = ProbeQemu();  // the same box: user namespaces
  if (!q.available && q.reason.find("namespaces") != std::string::npos) {
    return {false, q.reason, v.version};
  }
  // The version recorded with every run says what is not compared.
  Availability a{true, "",
                 v.version +
                     " (--tool=none; after a fault: rflags, xmm, mxcsr, error code not "
                     "observed)"};
  a.observes = kObserveAll;
  return a;
}

std::unique_ptr<Engine> CreateValgrindEngine(const EngineOptions& options) {
  return std::make_unique<ValgrindEngine>(options);
}

}  // namespace cpudiff

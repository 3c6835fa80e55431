#include "engines/native/runner_host.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>

#include "engines/embed.h"
#include "engines/native/runner_protocol.h"
#include "engines/native/stub_end.h"

namespace cpudiff {
namespace {

using Clock = std::chrono::steady_clock;

static_assert(sizeof(RunnerCpuState) == sizeof(CpuState));
static_assert(offsetof(RunnerCpuState, rip) == offsetof(CpuState, rip));
static_assert(offsetof(RunnerCpuState, rflags) == offsetof(CpuState, rflags));
static_assert(offsetof(RunnerCpuState, xmm) == offsetof(CpuState, xmm));
static_assert(offsetof(RunnerCpuState, mxcsr) == offsetof(CpuState, mxcsr));
static_assert(offsetof(RunnerCpuState, fs_base) == offsetof(CpuState, fs_base));
static_assert(offsetof(RunnerCpuState, gs_base) == offsetof(CpuState, gs_base));
static_assert(sizeof(RunnerPageOut::bytes) == kPageSize);
static_assert(kRunnerArenaAddr >= kUserAddrLimit && kRunnerTextAddr >= kUserAddrLimit);

constexpr int kExeFdInChild = 6;
// Where each case's data starts in the slot's heap (the runner compares in
// 8-byte words).
constexpr uint64_t kDataAlign = 64;

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// A sealed memfd holding the runner executable, shared by every RunnerHost
// of the process.
int RunnerExeFd() {
  static std::once_flag once;
  static int fd = -1;
  static std::string error;
  std::call_once(once,
                 [] { fd = SealedMemfd("cpudiff-native-runner", NativeRunnerImage(), &error); });
  if (fd < 0) throw std::runtime_error("native runner: " + error);
  return fd;
}

std::string ResolveInPath(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  std::string full = FindInPath(name);
  if (full.empty()) throw std::runtime_error("native runner: " + name + " not found in PATH");
  return full;
}

bool Canonical(uint64_t a) {
  uint64_t top = a >> 47;
  return top == 0 || top == 0x1ffff;
}

// Bytes of `data` up to its last non-zero byte: the rest is zero anyway.
size_t TrimmedSize(const std::vector<uint8_t>& data) {
  size_t n = data.size();
  while (n > 0 && data[n - 1] == 0) --n;
  return n;
}

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

constexpr uint32_t kMinFlight = 64;

// Heap bytes and worst-case changed pages a case needs in a slot.
struct CaseCost {
  uint64_t data = 0;
  uint64_t pages = 0;
};
CaseCost CostOf(const TestCase& tc) {
  CaseCost c;
  c.data = AlignUp(tc.code.size() + kStubMaxBytes, kDataAlign);
  for (const MemRegion& m : tc.mem) {
    c.data += AlignUp(TrimmedSize(m.data), kDataAlign);
    if (m.perm & kPermW) c.pages += m.size / kPageSize;
  }
  return c;
}

std::string SignalName(int sig) {
  const char* d = sigdescr_np(sig);
  return std::to_string(sig) + (d ? std::string(" (") + d + ")" : "");
}

}  // namespace

struct RunnerHost::Impl {
  RunnerOptions opt;
  RunnerShm* shm = nullptr;
  int shm_fd = -1;
  int sock = -1;
  pid_t pid = -1;
  int wait_status = 0;
  bool reaped = false;
  bool fsgsbase = false;
  uint64_t exit_addr = 0;  // the runner's case_exit
  uint64_t restarts = 0;
  uint64_t stub_ends = 0;
  uint64_t next_seq = 1;
  // Progress watch for the wall-time limit.
  uint64_t seen_progress = 0;
  Clock::time_point seen_at;
  Clock::time_point last_reply;

  struct Flight {
    uint32_t slot = 0;
    std::vector<size_t> idx;  // case indices of this batch, in order
    uint64_t first_seq = 0;
    Clock::time_point sent;
  };

  ~Impl() {
    Stop();
    if (shm) munmap(shm, sizeof(RunnerShm));
    if (shm_fd >= 0) close(shm_fd);
  }

  void CreateShm() {
    shm_fd = memfd_create("cpudiff-runner-shm", MFD_CLOEXEC);
    if (shm_fd < 0) throw std::runtime_error("native runner: " + Errno("memfd_create"));
    if (ftruncate(shm_fd, sizeof(RunnerShm)) != 0) {
      throw std::runtime_error("native runner: " + Errno("ftruncate(shm)"));
    }
    void* p = mmap(nullptr, sizeof(RunnerShm), PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
    if (p == MAP_FAILED) throw std::runtime_error("native runner: " + Errno("mmap(shm)"));
    shm = static_cast<RunnerShm*>(p);
  }

  void Start() {
    RunnerHeader& h = shm->header;
    h.magic = CPUDIFF_RUNNER_MAGIC;
    h.version = CPUDIFF_RUNNER_VERSION;
    h.flags = (opt.seccomp ? 0 : kRunnerFlagNoSeccomp) |
              (opt.command_prefix.empty() ? 0 : kRunnerFlagRemapExec) |
              (opt.derive_vector ? kRunnerFlagDeriveVector : 0);
    h.exit_addr = 0;
    __atomic_store_n(&h.progress, 0, __ATOMIC_RELEASE);
    std::memset(h.fail_reason, 0, sizeof(h.fail_reason));
    seen_progress = 0;
    seen_at = Clock::now();

    int exe_fd = RunnerExeFd();
    // Everything the child needs is prepared before fork: after it, only
    // async-signal-safe calls.
    std::vector<std::string> args;
    std::string exe_path;
    if (opt.command_prefix.empty()) {
      args.push_back("cpudiff-native-runner");
    } else {
      exe_path = ResolveInPath(opt.command_prefix[0]);
      args = opt.command_prefix;
      args.push_back("/proc/self/fd/" + std::to_string(kExeFdInChild));
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env = opt.env;
    std::vector<char*> envp;
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const bool direct = opt.command_prefix.empty();
    const rlim_t nofile = direct ? 16 : 256;
    const rlim_t as_limit = opt.address_space_limit;

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      throw std::runtime_error("native runner: " + Errno("socketpair"));
    }
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
      close(sv[0]);
      close(sv[1]);
      throw std::runtime_error("native runner: " + Errno("fork"));
    }
    if (child == 0) {
      // Move the channel, the shared memory and the executable to fixed
      // numbers (via high numbers, so no dup2 clobbers a source), then close
      // every other descriptor.
      int src[4] = {sv[1], sv[1], shm_fd, exe_fd};
      int high[4];
      for (int i = 0; i < 4; ++i) {
        high[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 100);
        if (high[i] < 0) _exit(120);
      }
      for (int i = 0; i < 4; ++i) {
        if (dup2(high[i], 3 + i) < 0) _exit(121);
      }
      if (direct) fcntl(kExeFdInChild, F_SETFD, FD_CLOEXEC);
      syscall(SYS_close_range, kExeFdInChild + 1, ~0u, 0);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(122);
      struct rlimit zero = {0, 0};
      setrlimit(RLIMIT_CORE, &zero);
      setrlimit(RLIMIT_MEMLOCK, &zero);
      struct rlimit fds = {nofile, nofile};
      setrlimit(RLIMIT_NOFILE, &fds);
      if (as_limit != 0) {
        struct rlimit as = {as_limit, as_limit};
        setrlimit(RLIMIT_AS, &as);
      }
      if (direct) {
        syscall(SYS_execveat, kExeFdInChild, "", argv.data(), envp.data(), AT_EMPTY_PATH);
      } else {
        execve(exe_path.c_str(), argv.data(), envp.data());
      }
      _exit(127);
    }
    close(sv[1]);
    sock = sv[0];
    pid = child;
    reaped = false;
    RunnerReply ready{};
    if (!Receive(&ready, opt.start_timeout_ms) || ready.slot != kRunnerReadySlot) {
      std::string why = DeathReason();
      Stop();
      throw std::runtime_error("native runner did not start: " + why);
    }
    fsgsbase = ready.count != 0;
    exit_addr = __atomic_load_n(&shm->header.exit_addr, __ATOMIC_ACQUIRE);
    if (exit_addr == 0) {
      Stop();
      throw std::runtime_error("native runner did not publish its exit routine");
    }
    last_reply = Clock::now();
  }

  // Reads one reply; false on EOF, error or timeout (timeout_ms < 0: none).
  bool Receive(RunnerReply* r, int timeout_ms) {
    struct pollfd p = {sock, POLLIN, 0};
    int pr;
    do {
      pr = poll(&p, 1, timeout_ms);
    } while (pr < 0 && errno == EINTR);
    if (pr <= 0) return false;
    ssize_t n;
    do {
      n = recv(sock, r, sizeof(*r), MSG_WAITALL);
    } while (n < 0 && errno == EINTR);
    return n == static_cast<ssize_t>(sizeof(*r));
  }

  bool Send(const RunnerCmd& cmd) {
    ssize_t n;
    do {
      n = send(sock, &cmd, sizeof(cmd), MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == static_cast<ssize_t>(sizeof(cmd));
  }

  void Reap() {
    if (pid <= 0 || reaped) return;
    while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
    }
    reaped = true;
  }

  void Stop() {
    if (pid > 0) {
      if (!reaped) kill(pid, SIGKILL);
      Reap();
      pid = -1;
    }
    if (sock >= 0) {
      close(sock);
      sock = -1;
    }
  }

  // Why the runner is gone (reaps it; kills it first if it is still there).
  std::string DeathReason() {
    if (pid <= 0) return opt.process_name + " not running";
    if (!reaped) {
      // The channel failed: give the process a moment to finish dying.
      for (int i = 0; i < 100 && !reaped; ++i) {
        pid_t r = waitpid(pid, &wait_status, WNOHANG);
        if (r == pid) {
          reaped = true;
          break;
        }
        usleep(1000);
      }
      if (!reaped) {
        kill(pid, SIGKILL);
        Reap();
        return opt.process_name + " stopped answering";
      }
    }
    std::string why;
    if (WIFSIGNALED(wait_status)) {
      why = opt.process_name + " killed by signal " + SignalName(WTERMSIG(wait_status));
      if (WTERMSIG(wait_status) == SIGSYS) why += " (seccomp)";
    } else if (WIFEXITED(wait_status)) {
      why = opt.process_name + " exited with status " + std::to_string(WEXITSTATUS(wait_status));
    } else {
      why = opt.process_name + " ended";
    }
    char reason[sizeof(RunnerHeader::fail_reason)];
    std::memcpy(reason, shm->header.fail_reason, sizeof(reason));
    reason[sizeof(reason) - 1] = 0;
    if (reason[0]) why += std::string(": ") + reason;
    return why;
  }

  // Fills `slot` with cases from the front of `queue`.
  Flight Fill(uint32_t slot, std::deque<size_t>* queue, std::span<const TestCase* const> cases,
              uint32_t max_batch) {
    Flight f;
    f.slot = slot;
    f.first_seq = next_seq;
    RunnerSlot& s = shm->slots[slot];
    uint64_t data_used = 0, pages_used = 0;
    while (!queue->empty() && f.idx.size() < max_batch) {
      const TestCase& tc = *cases[queue->front()];
      CaseCost cost = CostOf(tc);
      if (!f.idx.empty() && (data_used + cost.data > kRunnerInDataSize ||
                             pages_used + cost.pages > kRunnerOutPages)) {
        break;
      }
      uint32_t j = static_cast<uint32_t>(f.idx.size());
      RunnerCaseIn& in = s.in[j];
      in.seq = next_seq++;
      CpuState init = tc.init;
      init.rflags = (init.rflags & kSettableFlags) | kFlagFixed1 | kFlagIF;
      init.mxcsr &= kMxcsrValidBits;
      init.reserved = 0;
      std::memcpy(&in.init, &init, sizeof(init));
      in.num_regions = static_cast<uint32_t>(tc.mem.size() + 1);
      // Region 0: the code, one HLT (or the end stub), zeros.
      RunnerRegionIn& code = in.regions[0];
      const uint64_t end_len = opt.exit_stub ? kStubMaxBytes : 1;
      code.addr = tc.code_addr;
      code.size = PageCeil(tc.code.size() + end_len);
      code.perm = kPermR | kPermX;
      code.data_off = data_used;
      in.end_addr = tc.code_addr + tc.code.size();
      if (!tc.code.empty()) std::memcpy(s.data + data_used, tc.code.data(), tc.code.size());
      uint8_t* end = s.data + data_used + tc.code.size();
      EndPlan plan;
      if (!opt.exit_stub && opt.stub_end) plan = PlanEnd(tc, code.size);
      in.write_mask = opt.skip_unwritten_regions ? plan.write_regions : ~0u;
      if (opt.exit_stub || plan.stub) {
        code.data_len =
            tc.code.size() + WriteStub(in.end_addr, exit_addr, std::span(end, kStubMaxBytes));
        ++stub_ends;
      } else {
        *end = kHltByte;
        code.data_len = tc.code.size() + 1;
      }
      data_used += AlignUp(code.data_len, kDataAlign);
      for (size_t r = 0; r < tc.mem.size(); ++r) {
        const MemRegion& m = tc.mem[r];
        RunnerRegionIn& ri = in.regions[r + 1];
        ri.addr = m.addr;
        ri.size = m.size;
        ri.perm = m.perm;
        ri.data_off = data_used;
        ri.data_len = TrimmedSize(m.data);
        if (ri.data_len) std::memcpy(s.data + data_used, m.data.data(), ri.data_len);
        data_used += AlignUp(ri.data_len, kDataAlign);
      }
      pages_used += cost.pages;
      __atomic_store_n(&s.out[j].done, 0, __ATOMIC_RELAXED);
      f.idx.push_back(queue->front());
      queue->pop_front();
    }
    return f;
  }

  void Harvest(const Flight& f, size_t j, RunResult* r, uint64_t ns) {
    const RunnerSlot& s = shm->slots[f.slot];
    const RunnerCaseOut& o = s.out[j];
    std::memcpy(static_cast<void*>(&r->state), &o.state, sizeof(r->state));
    // RF is an artifact of the exception frame (silicon sets it in the saved
    // RFLAGS of a fault, including the #GP that ends a case at its HLT); the
    // program never sees it, and it is not part of the compared state.
    r->state.rflags &= ~kFlagRF;
    r->ns = ns;
    r->unobserved = o.detail == kRunnerEndedByStub ? 0 : opt.unobserved_at_signal;
    switch (o.status) {
      case kRunnerHalt:
        r->outcome = Outcome::Halt();
        break;
      case kRunnerSyscall:
        r->outcome = Outcome::Syscall();
        break;
      case kRunnerFault: {
        uint8_t v = static_cast<uint8_t>(o.vector);
        if (v == kVecPF) {
          r->outcome = Outcome::PageFault(o.error_code, o.addr);
        } else if (VectorHasErrorCode(v)) {
          r->outcome = Outcome::FaultWithCode(v, o.error_code);
        } else {
          r->outcome = Outcome::Fault(v);
        }
        break;
      }
      case kRunnerSetupFailed:
        r->unobserved = 0;
        r->outcome = Outcome::Unsupported("native runner cannot map the case's regions: " +
                                          std::string(std::strerror(static_cast<int>(-o.detail))));
        r->state = (*cases_)[f.idx[j]]->init;
        r->pages.clear();
        return;
      default:
        r->outcome = Outcome::Crash("native runner: changed pages did not fit the batch");
        r->pages.clear();
        return;
    }
    // Overwrites the pages a reused result already holds: growing a vector
    // of PageImage zeroes each new 4 KiB page before the copy.
    r->pages.resize(o.num_pages);
    for (uint32_t k = 0; k < o.num_pages; ++k) {
      const RunnerPageOut& p = s.pages[o.first_page + k];
      r->pages[k].addr = p.addr;
      std::memcpy(r->pages[k].bytes.data(), p.bytes, kPageSize);
    }
    // The runner reports in region order, usually ascending already; sorting
    // 4 KiB elements is not free, so check first.
    auto by_addr = [](const PageImage& a, const PageImage& b) { return a.addr < b.addr; };
    if (!std::is_sorted(r->pages.begin(), r->pages.end(), by_addr)) {
      std::sort(r->pages.begin(), r->pages.end(), by_addr);
    }
  }

  enum class Wait { kReplied, kDied, kTimedOut };

  // Waits for the reply to `f` (the oldest batch in flight), watching the
  // progress counter for a case that runs past the wall-time limit.
  Wait WaitFor(const Flight& f, const std::deque<Flight>& flights, uint64_t* stuck_seq) {
    const int slice = std::max<int>(1, static_cast<int>(opt.timeout_ms / 8));
    const auto limit = std::chrono::milliseconds(opt.timeout_ms);
    for (;;) {
      struct pollfd p = {sock, POLLIN, 0};
      int pr = poll(&p, 1, slice);
      if (pr < 0 && errno == EINTR) continue;
      if (pr > 0) {
        RunnerReply reply{};
        ssize_t n;
        do {
          n = recv(sock, &reply, sizeof(reply), MSG_WAITALL);
        } while (n < 0 && errno == EINTR);
        if (n != static_cast<ssize_t>(sizeof(reply))) return Wait::kDied;
        if (reply.slot != f.slot || reply.count != f.idx.size()) {
          kill(pid, SIGKILL);
          return Wait::kDied;
        }
        return Wait::kReplied;
      }
      uint64_t prog = __atomic_load_n(&shm->header.progress, __ATOMIC_ACQUIRE);
      Clock::time_point now = Clock::now();
      if (prog != seen_progress) {
        seen_progress = prog;
        seen_at = now;
        continue;
      }
      if (now - seen_at < limit) continue;
      // Stuck: only a case of ours that has not finished counts.
      for (const Flight& g : flights) {
        if (prog >= g.first_seq && prog < g.first_seq + g.idx.size()) {
          const RunnerCaseOut& o = shm->slots[g.slot].out[prog - g.first_seq];
          if (!__atomic_load_n(&o.done, __ATOMIC_ACQUIRE)) {
            kill(pid, SIGKILL);
            *stuck_seq = prog;
            return Wait::kTimedOut;
          }
        }
      }
    }
  }

  std::span<const TestCase* const>* cases_ = nullptr;

  void Run(std::span<const TestCase* const> cases, std::span<RunResult> results) {
    cases_ = &cases;
    std::deque<size_t> queue;
    for (size_t i = 0; i < cases.size(); ++i) {
      std::string why = CheckCase(*cases[i], fsgsbase);
      if (!why.empty()) {
        results[i] = RunResult{};
        results[i].state = cases[i]->init;
        results[i].outcome = Outcome::Unsupported(why);
      } else {
        queue.push_back(i);
      }
    }
    // At least two flights per call, so that the runner runs one while this
    // side fills or harvests the other: a single call is the common unit
    // (a campaign batch), and one flight per call would leave both sides
    // waiting for each other in turn. Not below kMinFlight cases, as every
    // flight costs a wake-up each way.
    uint32_t max_batch = std::clamp<uint32_t>(opt.batch_size, 1, kRunnerMaxBatch);
    max_batch = std::clamp<uint32_t>(static_cast<uint32_t>((queue.size() + 1) / 2),
                                     std::min<uint32_t>(max_batch, kMinFlight), max_batch);
    std::deque<Flight> flights;
    int fruitless_deaths = 0;
    while (!queue.empty() || !flights.empty()) {
      while (flights.size() < 2 && !queue.empty() && pid > 0) {
        uint32_t slot = flights.empty() ? 0 : flights.back().slot ^ 1;
        Flight f = Fill(slot, &queue, cases, max_batch);
        f.sent = Clock::now();
        RunnerCmd cmd = {f.slot, static_cast<uint32_t>(f.idx.size())};
        bool sent = Send(cmd);
        flights.push_back(std::move(f));
        if (!sent) break;  // the wait below sees the death
      }
      if (pid <= 0) {
        // Could not restart: nothing more can run.
        for (size_t i : queue) {
          results[i] = RunResult{};
          results[i].state = cases[i]->init;
          results[i].outcome = Outcome::Crash("native runner could not be restarted");
        }
        queue.clear();
        continue;
      }
      uint64_t stuck = 0;
      Wait w = WaitFor(flights.front(), flights, &stuck);
      if (w == Wait::kReplied) {
        Flight& f = flights.front();
        Clock::time_point now = Clock::now();
        Clock::time_point from = std::max(f.sent, last_reply);
        last_reply = now;
        uint64_t ns =
            static_cast<uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(now - from).count()) /
            std::max<size_t>(1, f.idx.size());
        for (size_t j = 0; j < f.idx.size(); ++j) Harvest(f, j, &results[f.idx[j]], ns);
        flights.pop_front();
        fruitless_deaths = 0;
        continue;
      }
      // The runner is gone (or killed for a timeout): keep every finished
      // result, blame the case that was running, run the rest again.
      std::string why = w == Wait::kTimedOut
                            ? "wall-time limit of " + std::to_string(opt.timeout_ms) + " ms"
                            : DeathReason();
      if (w == Wait::kDied) stuck = __atomic_load_n(&shm->header.progress, __ATOMIC_ACQUIRE);
      bool blamed = false;
      std::vector<size_t> again;
      for (const Flight& f : flights) {
        for (size_t j = 0; j < f.idx.size(); ++j) {
          size_t i = f.idx[j];
          if (__atomic_load_n(&shm->slots[f.slot].out[j].done, __ATOMIC_ACQUIRE)) {
            Harvest(f, j, &results[i], 0);
          } else if (!blamed && f.first_seq + j == stuck) {
            blamed = true;
            results[i] = RunResult{};
            results[i].state = cases[i]->init;
            results[i].outcome = w == Wait::kTimedOut ? Outcome::Timeout(why) : Outcome::Crash(why);
          } else {
            again.push_back(i);
          }
        }
      }
      flights.clear();
      if (!blamed && !again.empty() && ++fruitless_deaths >= 3) {
        // The runner keeps dying outside any case: give up on the next one
        // rather than loop forever.
        size_t i = again.front();
        again.erase(again.begin());
        results[i] = RunResult{};
        results[i].state = cases[i]->init;
        results[i].outcome = Outcome::Crash(why);
        fruitless_deaths = 0;
      }
      queue.insert(queue.begin(), again.begin(), again.end());
      Stop();
      ++restarts;
      try {
        Start();
      } catch (const std::exception&) {
        pid = -1;
      }
    }
    cases_ = nullptr;
  }
};

RunnerHost::RunnerHost(RunnerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  // For checking an engine's own HLT path, or the stub analysis itself.
  const char* hlt_end = getenv("CPUDIFF_HLT_END");
  if (hlt_end && *hlt_end && std::string_view(hlt_end) != "0") impl_->opt.stub_end = false;
  impl_->CreateShm();
  impl_->Start();
}

RunnerHost::~RunnerHost() = default;

void RunnerHost::Run(std::span<const TestCase* const> cases, std::span<RunResult> results) {
  if (impl_->pid <= 0) {
    impl_->Stop();
    impl_->Start();  // throws when it cannot
  }
  impl_->Run(cases, results);
}

pid_t RunnerHost::pid() const { return impl_->pid; }
uint64_t RunnerHost::restarts() const { return impl_->restarts; }
bool RunnerHost::fsgsbase() const { return impl_->fsgsbase; }
uint64_t RunnerHost::stub_ends() const { return impl_->stub_ends; }

std::string RunnerHost::CheckExitStubRoom(const TestCase& tc) {
  const uint64_t end = tc.code_addr + PageCeil(tc.code.size() + kStubMaxBytes);
  for (const MemRegion& m : tc.mem) {
    if (m.addr < end && m.addr + m.size > tc.code_addr) {
      return "no room for the exit jump after the code: region " + Hex64(m.addr) +
             " starts right after it";
    }
  }
  if (end > kUserAddrLimit) return "no room for the exit jump after the code";
  return {};
}

std::string RunnerHost::CheckCase(const TestCase& tc, bool fsgsbase) {
  if (tc.mem.size() + 1 > kRunnerMaxRegions) {
    return "native runner: more than " + std::to_string(kRunnerMaxRegions - 1) + " regions";
  }
  if (tc.code.size() > kMaxCodeBytes) return "native runner: code too large";
  // A fixed array: this runs for every case, and the region count is bounded
  // above.
  std::array<std::pair<uint64_t, uint64_t>, kRunnerMaxRegions> spans;
  size_t n = 0;
  spans[n++] = {tc.code_addr, PageCeil(tc.code.size() + 1)};
  for (const MemRegion& m : tc.mem) {
    if (m.data.size() > m.size) return "native runner: region data larger than the region";
    spans[n++] = {m.addr, m.size};
  }
  uint64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    auto [addr, size] = spans[i];
    if (addr % kPageSize != 0 || size == 0 || size % kPageSize != 0) {
      return "native runner: region not page aligned";
    }
    if (addr >= kUserAddrLimit || size > kUserAddrLimit - addr) {
      return "native runner: region at or above " + Hex64(kUserAddrLimit);
    }
    total += size;
  }
  if (total > kRunnerArenaSize) return "native runner: regions too large";
  std::sort(spans.begin(), spans.begin() + n);
  for (size_t i = 1; i < n; ++i) {
    if (spans[i - 1].first + spans[i - 1].second > spans[i].first) {
      return "native runner: overlapping regions";
    }
  }
  CaseCost cost = CostOf(tc);
  if (cost.data > kRunnerInDataSize || cost.pages > kRunnerOutPages) {
    return "native runner: case too large for one batch";
  }
  for (uint64_t base : {tc.init.fs_base, tc.init.gs_base}) {
    if (!Canonical(base)) return "native runner: non-canonical fs_base/gs_base";
    // arch_prctl refuses kernel-half bases; wrfsbase takes any canonical one.
    if (!fsgsbase && base >= 0x7ffffffff000ull) {
      return "native runner: fs_base/gs_base in the kernel half needs FSGSBASE";
    }
  }
  return {};
}

}  // namespace cpudiff

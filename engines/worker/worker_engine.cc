#include "engines/worker/worker_engine.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "engines/worker/wire.h"

namespace cpudiff {
namespace {

// A growable buffer in a memfd, mapped MAP_SHARED by parent and child. Each
// buffer has one writer at a time (requests: the parent, results: the
// child); the writer grows the file, the reader remaps when a message says
// there is more than it has mapped. The file is sparse, so the large initial
// size costs nothing until it is touched.
class SharedBuffer : public WireSink {
 public:
  ~SharedBuffer() override {
    if (base_ != nullptr) munmap(base_, size_);
    if (fd_ >= 0) close(fd_);
  }

  bool Init(const char* name, size_t size) {
    fd_ = memfd_create(name, MFD_CLOEXEC);
    if (fd_ < 0 || ftruncate(fd_, static_cast<off_t>(size)) != 0) return false;
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) return false;
    base_ = static_cast<uint8_t*>(p);
    size_ = size;
    return true;
  }

  uint8_t* Grow(size_t used, size_t min_capacity, size_t* capacity) override {
    (void)used;
    size_t want = std::max(min_capacity, size_ * 2);
    struct stat st;
    if (fstat(fd_, &st) != 0) throw std::runtime_error("worker: fstat of shared buffer failed");
    if (static_cast<size_t>(st.st_size) < want && ftruncate(fd_, static_cast<off_t>(want)) != 0) {
      throw std::runtime_error("worker: cannot grow shared buffer");
    }
    if (!Remap(want)) throw std::runtime_error("worker: cannot remap shared buffer");
    *capacity = size_;
    return base_;
  }

  // Makes the first `n` bytes visible (the other side may have grown the file).
  bool EnsureMapped(size_t n) {
    if (n <= size_) return true;
    struct stat st;
    if (fstat(fd_, &st) != 0 || static_cast<size_t>(st.st_size) < n) return false;
    return Remap(static_cast<size_t>(st.st_size));
  }

  uint8_t* data() const { return base_; }
  size_t size() const { return size_; }

 private:
  bool Remap(size_t n) {
    void* p = mremap(base_, size_, n, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) return false;
    base_ = static_cast<uint8_t*>(p);
    size_ = n;
    return true;
  }

  int fd_ = -1;
  uint8_t* base_ = nullptr;
  size_t size_ = 0;
};

// Progress of the child, in a shared anonymous page. The child stores the
// start time before the index (release), so a parent that reads the same
// index twice around the time never sees a start time older than that case.
struct Control {
  std::atomic<uint32_t> started;     // cases of the current message begun
  std::atomic<uint32_t> done;        // results committed to the result buffer
  std::atomic<uint64_t> resp_bytes;  // bytes of committed results
  std::atomic<int64_t> case_start_ns;
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

constexpr uint32_t kReadyMagic = 0x57524b31;  // "WRK1"
struct ReadyMsg {
  uint32_t magic = kReadyMagic;
  uint32_t ok = 0;
  uint32_t observes = 0;
  char error[500] = {};
  char version[256] = {};  // Engine::Version() of the child's engine
};
struct RunMsg {
  uint64_t req_offset;
  uint64_t req_end;
  uint32_t count;
};
struct DoneMsg {
  uint32_t count;
  uint64_t resp_bytes;
};

std::string DescribeStatus(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* abbrev = sigabbrev_np(sig);
    return "killed by signal " + std::to_string(sig) + " (SIG" + (abbrev ? abbrev : "?") + ")";
  }
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "stopped";
}

class WorkerEngine : public Engine {
 public:
  WorkerEngine(EngineFactory factory, WorkerOptions options)
      : factory_(std::move(factory)), options_(std::move(options)) {}

  ~WorkerEngine() override {
    StopChild();
    if (zygote_sock_ >= 0) close(zygote_sock_);  // the zygote exits on EOF
    if (zygote_pid_ > 0) {
      kill(zygote_pid_, SIGKILL);
      while (waitpid(zygote_pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    if (ctl_ != nullptr) munmap(ctl_, sizeof(Control));
    if (err_fd_ >= 0) close(err_fd_);
  }

  // Sets up shared memory once and forks the first child.
  void Init() {
    void* p =
        mmap(nullptr, sizeof(Control), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error(options_.name + ": mmap of control page failed");
    ctl_ = new (p) Control{};
    size_t initial = std::max<size_t>(options_.initial_buffer_bytes, 4096);
    if (!req_.Init("cpudiff-worker-req", initial) || !resp_.Init("cpudiff-worker-resp", initial)) {
      throw std::runtime_error(options_.name + ": cannot create shared buffers");
    }
    // A worker's stderr goes to a file of ours rather than the terminal: a
    // library that dies with a message (Unicorn's "tcg fatal error") then
    // explains its crash in the case's outcome instead of interleaving with
    // the progress line. Append mode: every process holding it writes at
    // its end, and truncating it starts it afresh for the next worker.
    // CPUDIFF_ENGINE_STDERR=1 leaves it on the terminal (an engine's own
    // debugging output).
    const char* keep = getenv("CPUDIFF_ENGINE_STDERR");
    if (keep == nullptr || *keep == 0 || std::string_view(keep) == "0") {
      err_fd_ = memfd_create("cpudiff-worker-stderr", MFD_CLOEXEC);
    }
    if (err_fd_ >= 0 && fcntl(err_fd_, F_SETFL, O_APPEND) != 0) {
      close(err_fd_);
      err_fd_ = -1;
    }
    StartZygote();
    std::string error;
    if (!StartChild(&error)) throw std::runtime_error(options_.name + ": " + error);
  }

  uint32_t Observes() const override { return observes_; }
  std::string Version() const override { return version_; }

  void Run(std::span<const TestCase* const> cases, std::span<RunResult> results) override {
    const size_t n = cases.size();
    if (n == 0) return;
    // Only the end of the log is ever read: keep it from growing without
    // bound under an engine that writes as it goes.
    struct stat st;
    if (err_fd_ >= 0 && fstat(err_fd_, &st) == 0 && st.st_size > (1 << 20)) {
      if (ftruncate(err_fd_, 0) != 0) {
        close(err_fd_);
        err_fd_ = -1;
      }
    }
    WireWriter w(&req_, req_.data(), req_.size());
    offsets_.resize(n + 1);
    for (size_t i = 0; i < n; ++i) {
      offsets_[i] = w.size();
      WriteTestCase(w, *cases[i]);
    }
    offsets_[n] = w.size();

    size_t i = 0;
    int failed_sends = 0;
    while (i < n) {
      std::string error;
      if (pid_ < 0 && !StartChild(&error)) {
        for (; i < n; ++i)
          Fail(*cases[i], Outcome::Crash(options_.name + ": " + error), 0, &results[i]);
        return;
      }
      const uint32_t count = static_cast<uint32_t>(n - i);
      ctl_->done.store(0, std::memory_order_relaxed);
      ctl_->resp_bytes.store(0, std::memory_order_relaxed);
      ctl_->case_start_ns.store(NowNs(), std::memory_order_relaxed);
      ctl_->started.store(0, std::memory_order_release);
      RunMsg msg{offsets_[i], offsets_[n], count};
      if (send(sock_, &msg, sizeof(msg), MSG_NOSIGNAL) != sizeof(msg)) {
        // The child died between batches; it was running nothing of ours.
        // Start a new one, but do not loop forever on a child that dies at once.
        ReapChild(true);
        if (++failed_sends < 3) continue;
        Fail(*cases[i], Outcome::Crash(options_.name + ": cannot send to worker"), 0, &results[i]);
        ++i;
        continue;
      }
      failed_sends = 0;
      Wait wait = WaitForChild();
      uint32_t committed = std::min(ctl_->done.load(std::memory_order_acquire), count);
      size_t bytes = ctl_->resp_bytes.load(std::memory_order_relaxed);
      size_t parsed = ParseResults(bytes, committed, &results[i]);
      for (size_t k = parsed; k < committed; ++k) {
        Fail(*cases[i + k], Outcome::Crash(options_.name + ": corrupt result from worker"), 0,
             &results[i + k]);
      }
      if (wait.kind == Wait::kDone) {
        i = n;
        continue;
      }
      size_t blamed = i + committed;
      if (blamed < n) {
        int64_t ns = NowNs() - ctl_->case_start_ns.load(std::memory_order_relaxed);
        Outcome o =
            wait.kind == Wait::kTimedOut
                ? Outcome::Timeout(options_.name + ": wall time over " +
                                   std::to_string(options_.timeout_ms) + " ms, worker killed")
                : Outcome::Crash(options_.name + " died: " + wait.reason);
        Fail(*cases[blamed], std::move(o), ns > 0 ? ns : 0, &results[blamed]);
      }
      i = blamed + 1;
    }
  }

 private:
  struct Wait {
    enum Kind { kDone, kDied, kTimedOut } kind;
    std::string reason;
  };

  static void Fail(const TestCase& tc, Outcome o, uint64_t ns, RunResult* r) {
    r->outcome = std::move(o);
    r->state = tc.init;
    r->pages.clear();
    r->ns = ns;
    r->unobserved = 0;
  }

  size_t ParseResults(size_t bytes, uint32_t count, RunResult* out) {
    if (count == 0) return 0;
    if (!resp_.EnsureMapped(bytes)) return 0;
    WireReader r(resp_.data(), bytes);
    for (uint32_t k = 0; k < count; ++k) {
      if (!ReadRunResult(r, &out[k])) return k;
    }
    return count;
  }

  Wait WaitForChild() {
    const int64_t limit_ns = int64_t{options_.timeout_ms} * 1'000'000;
    for (;;) {
      int wait_ms = -1;
      if (options_.timeout_ms != 0) {
        uint32_t started = ctl_->started.load(std::memory_order_acquire);
        int64_t t0 = ctl_->case_start_ns.load(std::memory_order_acquire);
        int64_t left = t0 + limit_ns - NowNs();
        if (left <= 0 && started == ctl_->started.load(std::memory_order_acquire)) {
          // Let results committed in the meantime count before the kill.
          KillChild();
          return {Wait::kTimedOut, {}};
        }
        wait_ms = left <= 0 ? 0 : static_cast<int>((left + 999'999) / 1'000'000);
      }
      pollfd p{sock_, POLLIN, 0};
      int r = poll(&p, 1, wait_ms);
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) continue;
      DoneMsg done;
      ssize_t k = recv(sock_, &done, sizeof(done), 0);
      if (k == sizeof(done)) return {Wait::kDone, {}};
      if (k < 0 && errno == EINTR) continue;
      return {Wait::kDied, WithLastWords(ReapChild(false))};
    }
  }

  // Workers are forked by a zygote: a process forked once, while the harness
  // is still small and single-threaded, that forks a worker whenever one is
  // needed. Forking the harness itself in the middle of a campaign makes
  // every page it writes afterwards a copy-on-write fault with a TLB
  // shootdown across its threads; measured on this PVM guest, that cost
  // more than the cases themselves on an engine that crashes every thousand
  // cases. The zygote also waits for the workers and reports how they ended.
  struct ZygoteReq {
    uint32_t op;  // kSpawn (with the worker's socket attached) or kReap
    int32_t pid;
  };
  struct ZygoteRep {
    int32_t pid;     // kSpawn: the worker, or -errno
    int32_t status;  // kReap: the wait status
  };
  static constexpr uint32_t kSpawn = 1, kReap = 2;

  void StartZygote() {
    int zs[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, zs) != 0) return;
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
      close(zs[0]);
      close(zs[1]);
      return;  // workers are then forked from the harness directly
    }
    if (pid == 0) {
      close(zs[0]);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(0);
      _exit(ZygoteMain(zs[1]));
    }
    close(zs[1]);
    zygote_pid_ = pid;
    zygote_sock_ = zs[0];
  }

  int ZygoteMain(int sock) {
    for (;;) {
      ZygoteReq req{};
      char cbuf[CMSG_SPACE(sizeof(int))];
      iovec iov{&req, sizeof(req)};
      msghdr mh{};
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      mh.msg_control = cbuf;
      mh.msg_controllen = sizeof(cbuf);
      ssize_t k = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
      if (k < 0 && errno == EINTR) continue;
      if (k != sizeof(req)) return 0;  // the harness is gone or done
      ZygoteRep rep{};
      if (req.op == kSpawn) {
        cmsghdr* c = CMSG_FIRSTHDR(&mh);
        int fd = -1;
        if (c != nullptr && c->cmsg_type == SCM_RIGHTS) std::memcpy(&fd, CMSG_DATA(c), sizeof(fd));
        const pid_t zygote = getpid();
        pid_t w = fd < 0 ? -EBADF : fork();
        if (w == 0) {
          close(sock);
          // Never outlive the zygote, which never outlives the harness.
          prctl(PR_SET_PDEATHSIG, SIGKILL);
          if (getppid() != zygote) _exit(0);
          _exit(ChildMain(fd));
        }
        if (fd >= 0) close(fd);
        rep.pid = w < 0 ? -errno : w;
      } else if (req.op == kReap) {
        int status = 0;
        pid_t r;
        do {
          r = waitpid(req.pid, &status, 0);
        } while (r < 0 && errno == EINTR);
        rep.pid = r < 0 ? -errno : r;
        rep.status = status;
      }
      if (send(sock, &rep, sizeof(rep), MSG_NOSIGNAL) != sizeof(rep)) return 0;
    }
  }

  // Asks the zygote for a worker on `child_sock`; -1 when there is no zygote.
  pid_t SpawnFromZygote(int child_sock) {
    if (zygote_sock_ < 0) return -1;
    ZygoteReq req{kSpawn, 0};
    char cbuf[CMSG_SPACE(sizeof(int))] = {};
    iovec iov{&req, sizeof(req)};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof(cbuf);
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &child_sock, sizeof(int));
    ZygoteRep rep{};
    if (sendmsg(zygote_sock_, &mh, MSG_NOSIGNAL) != sizeof(req) || !RecvFromZygote(&rep) ||
        rep.pid <= 0) {
      DropZygote();
      return -1;
    }
    return rep.pid;
  }

  bool RecvFromZygote(ZygoteRep* rep) {
    ssize_t k;
    do {
      k = recv(zygote_sock_, rep, sizeof(*rep), 0);
    } while (k < 0 && errno == EINTR);
    return k == sizeof(*rep);
  }

  void DropZygote() {
    if (zygote_sock_ >= 0) close(zygote_sock_);
    zygote_sock_ = -1;
  }

  // The last line a worker wrote to stderr, for a crash reason; "" if none.
  std::string LastWords() const {
    if (err_fd_ < 0) return {};
    struct stat st;
    if (fstat(err_fd_, &st) != 0 || st.st_size <= 0) return {};
    char buf[512];
    const off_t from = std::max<off_t>(0, st.st_size - static_cast<off_t>(sizeof buf));
    ssize_t n = pread(err_fd_, buf, sizeof buf, from);
    if (n <= 0) return {};
    std::string text(buf, static_cast<size_t>(n));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
      text.pop_back();
    }
    size_t nl = text.find_last_of('\n');
    if (nl != std::string::npos) text.erase(0, nl + 1);
    for (char& c : text) {
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    }
    if (text.size() > 200) text = text.substr(0, 200) + "...";
    return text;
  }

  // How a worker ended, with what it said last.
  std::string WithLastWords(std::string how) const {
    std::string said = LastWords();
    return said.empty() ? how : how + " (stderr: " + said + ")";
  }

  bool StartChild(std::string* error) {
    // A fresh worker starts with an empty log.
    if (err_fd_ >= 0 && ftruncate(err_fd_, 0) != 0) {
      close(err_fd_);
      err_fd_ = -1;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
      *error = std::string("socketpair: ") + strerror(errno);
      return false;
    }
    const pid_t parent = getpid();
    pid_t zpid = SpawnFromZygote(sv[1]);
    from_zygote_ = zpid > 0;
    pid_t pid = from_zygote_ ? zpid : fork();
    if (pid < 0) {
      *error = std::string("fork: ") + strerror(errno);
      close(sv[0]);
      close(sv[1]);
      return false;
    }
    if (pid == 0) {
      close(sv[0]);
      // Never outlive the harness.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(0);
      _exit(ChildMain(sv[1]));
    }
    close(sv[1]);
    pid_ = pid;
    sock_ = sv[0];
    ReadyMsg ready;
    pollfd p{sock_, POLLIN, 0};
    int wait_ms = std::max<int>(30'000, static_cast<int>(options_.timeout_ms));
    int r;
    do {
      r = poll(&p, 1, wait_ms);
    } while (r < 0 && errno == EINTR);
    ssize_t k = r > 0 ? recv(sock_, &ready, sizeof(ready), 0) : -1;
    if (k != sizeof(ready) || ready.magic != kReadyMagic || !ready.ok) {
      if (k == sizeof(ready) && ready.magic == kReadyMagic) {
        *error = ready.error;
        ReapChild(true);
      } else if (r == 0) {
        *error = "worker did not start in time";
        KillChild();
      } else {
        *error = "worker died while starting: " + WithLastWords(ReapChild(true));
      }
      return false;
    }
    observes_ = ready.observes;
    ready.version[sizeof(ready.version) - 1] = 0;
    version_ = ready.version;
    return true;
  }

  int ChildMain(int sock) {
    if (err_fd_ >= 0) dup2(err_fd_, STDERR_FILENO);
    ReadyMsg ready;
    std::unique_ptr<Engine> engine;
    try {
      engine = factory_();
      if (engine == nullptr) throw std::runtime_error("engine factory returned nothing");
    } catch (const std::exception& e) {
      snprintf(ready.error, sizeof(ready.error), "%s", e.what());
      send(sock, &ready, sizeof(ready), MSG_NOSIGNAL);
      return 1;
    }
    ready.ok = 1;
    ready.observes = engine->Observes();
    snprintf(ready.version, sizeof(ready.version), "%s", engine->Version().c_str());
    if (send(sock, &ready, sizeof(ready), MSG_NOSIGNAL) != sizeof(ready)) return 1;

    TestCase tc;
    RunResult res;
    for (;;) {
      RunMsg msg;
      ssize_t k = recv(sock, &msg, sizeof(msg), 0);
      if (k < 0 && errno == EINTR) continue;
      if (k != sizeof(msg)) return 0;  // the parent closed the socket
      if (!req_.EnsureMapped(msg.req_end) || msg.req_offset > msg.req_end) return 3;
      WireReader r(req_.data() + msg.req_offset, msg.req_end - msg.req_offset);
      WireWriter w(&resp_, resp_.data(), resp_.size());
      for (uint32_t i = 0; i < msg.count; ++i) {
        ctl_->case_start_ns.store(NowNs(), std::memory_order_release);
        ctl_->started.store(i + 1, std::memory_order_release);
        res.outcome = Outcome::Halt();
        res.pages.clear();
        res.ns = 0;
        res.unobserved = 0;
        if (!ReadTestCase(r, &tc)) {
          res.outcome = Outcome::Crash("worker: corrupt case message");
        } else {
          const TestCase* p = &tc;
          int64_t t0 = NowNs();
          try {
            engine->Run({&p, 1}, {&res, 1});
          } catch (const std::exception& e) {
            res.outcome = Outcome::Crash(std::string("engine threw: ") + e.what());
            res.state = tc.init;
            res.pages.clear();
          }
          if (res.ns == 0) res.ns = static_cast<uint64_t>(NowNs() - t0);
        }
        WriteRunResult(w, res);
        ctl_->resp_bytes.store(w.size(), std::memory_order_relaxed);
        ctl_->done.store(i + 1, std::memory_order_release);
      }
      DoneMsg done{msg.count, w.size()};
      if (send(sock, &done, sizeof(done), MSG_NOSIGNAL) != sizeof(done)) return 0;
    }
  }

  void KillChild() {
    if (pid_ < 0) return;
    kill(pid_, SIGKILL);
    ReapChild(true);
  }

  // Closes our end and waits for the child; returns how it ended.
  std::string ReapChild(bool block) {
    (void)block;
    if (sock_ >= 0) close(sock_);
    sock_ = -1;
    if (pid_ < 0) return "no worker";
    int status = 0;
    pid_t r;
    if (from_zygote_) {
      // The zygote is the worker's parent: it waits and reports.
      ZygoteReq req{kReap, pid_};
      ZygoteRep rep{};
      if (zygote_sock_ >= 0 && send(zygote_sock_, &req, sizeof(req), MSG_NOSIGNAL) == sizeof(req) &&
          RecvFromZygote(&rep)) {
        r = rep.pid;
        status = rep.status;
        if (r < 0) errno = -r;
      } else {
        DropZygote();
        kill(pid_, SIGKILL);
        r = -1;
        errno = ECHILD;
      }
    } else {
      do {
        r = waitpid(pid_, &status, 0);
      } while (r < 0 && errno == EINTR);
    }
    pid_ = -1;
    return r < 0 ? std::string("waitpid: ") + strerror(errno) : DescribeStatus(status);
  }

  void StopChild() {
    if (pid_ < 0) return;
    // The child has nothing to flush: closing the socket would make it exit,
    // SIGKILL does the same without waiting on it.
    KillChild();
  }

  EngineFactory factory_;
  WorkerOptions options_;
  Control* ctl_ = nullptr;
  SharedBuffer req_;
  SharedBuffer resp_;
  std::vector<size_t> offsets_;
  pid_t pid_ = -1;
  int sock_ = -1;
  uint32_t observes_ = 0;
  std::string version_;
  pid_t zygote_pid_ = -1;
  int zygote_sock_ = -1;
  bool from_zygote_ = false;
  int err_fd_ = -1;  // the workers' stderr (see LastWords)
};

}  // namespace

std::unique_ptr<Engine> MakeWorkerEngine(EngineFactory factory, const WorkerOptions& options) {
  auto engine = std::make_unique<WorkerEngine>(std::move(factory), options);
  engine->Init();
  return engine;
}

std::unique_ptr<Engine> MakeWorkerEngine(EngineFactory factory, const EngineOptions& options,
                                         std::string name) {
  WorkerOptions w;
  w.name = std::move(name);
  w.timeout_ms = options.timeout_ms;
  return MakeWorkerEngine(std::move(factory), w);
}

}  // namespace cpudiff

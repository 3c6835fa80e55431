// exec: engines, a program that speaks the process protocol
// (docs/engine-protocol.md) over its stdin and stdout.
//
// The command runs through /bin/sh ("exec COMMAND ARGS"), once for a whole
// campaign: a handshake names the engine and its protocol version, then
// batches of cases go to it in one frame each and its results come back
// one frame per case, in order. Because results are streamed, a program
// that dies, hangs or writes garbage costs exactly the case it was on: that
// case is recorded as `crash` (with the exit status or the protocol error
// and the last line of its standard error) or `timeout`, the program is
// started again, and the batch goes on after that case.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "engines/outside/exec_protocol.h"
#include "engines/outside/outside.h"
#include "engines/worker/worker_engine.h"

namespace cpudiff {
namespace {

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}
class ExecEngine : public Engine {
 public:
  ExecEngine(std::string command, const EngineOptions& options)
      : command_(std::move(command)), options_(options) {
    std::string error;
    if (!Start(&error)) throw std::runtime_error("exec engine '" + command_ + "': " + error);
  }
  ~ExecEngine() override { Stop(); }

  uint32_t Observes() const override { return observes_; }
  std::string Version() const override { return version_line_; }

  void Run(std::span<const TestCase* const> cases, std::span<RunResult> results) override {
    size_t i = 0;
    const size_t n = cases.size();
    while (i < n) {
      std::string error;
      if (pid_ < 0 && !Start(&error)) {
        for (; i < n; ++i) Fail(*cases[i], Outcome::Crash("exec engine: " + error), &results[i]);
        return;
      }
      i = RunFrom(cases, results, i);
    }
  }

 private:
  // Sends cases[first..] as one batch and reads results until the batch is
  // done or the engine fails; returns the index of the first case not done.
  size_t RunFrom(std::span<const TestCase* const> cases, std::span<RunResult> results,
                 size_t first) {
    const size_t n = cases.size();
    out_.clear();
    AppendBatchFrame(cases.subspan(first), &out_);
    size_t written = 0;
    size_t next = first;
    int64_t progress_ms = NowMs();
    int64_t case_start_ns = NowNs();
    auto fail_current = [&](Outcome o) {
      Fail(*cases[next], std::move(o), &results[next]);
      results[next].ns = static_cast<uint64_t>(NowNs() - case_start_ns);
      return next + 1;
    };
    try {
      while (next < n) {
        // Parse whatever complete frames arrived.
        ExecFrame frame;
        while (next < n && TakeFrame(&in_, &frame)) {
          if (frame.type == kExecError) {
            std::string msg = ReadErrorFrame(frame);
            Kill();
            return fail_current(Outcome::Crash("exec engine reported an error: " + msg));
          }
          if (frame.type != kExecResult) {
            throw ExecProtocolError{"expected a RESULT frame, got frame type " +
                                    std::to_string(frame.type)};
          }
          uint32_t index = 0;
          ParseResultFrame(frame, *cases[next], &index, &results[next]);
          if (index != next - first) {
            throw ExecProtocolError{"RESULT for case " + std::to_string(index) + " where case " +
                                    std::to_string(next - first) + " was due"};
          }
          int64_t now = NowNs();
          if (results[next].ns == 0) results[next].ns = static_cast<uint64_t>(now - case_start_ns);
          case_start_ns = now;
          progress_ms = NowMs();
          ++next;
        }
        if (next >= n) break;
        int64_t left = progress_ms + options_.timeout_ms - NowMs();
        if (options_.timeout_ms != 0 && left <= 0) {
          Kill();
          return fail_current(Outcome::Timeout("exec engine: no result within " +
                                               std::to_string(options_.timeout_ms) +
                                               " ms, engine killed"));
        }
        pollfd p[2] = {{from_, POLLIN, 0}, {to_, POLLOUT, 0}};
        nfds_t np = written < out_.size() && to_ >= 0 ? 2 : 1;
        int r = poll(p, np, options_.timeout_ms == 0 ? -1 : static_cast<int>(left));
        if (r < 0 && errno != EINTR)
          throw ExecProtocolError{std::string("poll: ") + strerror(errno)};
        if (r <= 0) continue;
        if (np == 2 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
          ssize_t k = write(to_, out_.data() + written, out_.size() - written);
          if (k > 0) {
            written += static_cast<size_t>(k);
            progress_ms = NowMs();
          } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
            // It closed its stdin: it is dying; its stdout tells the rest.
            close(to_);
            to_ = -1;
          }
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
          uint8_t buf[65536];
          ssize_t k = read(from_, buf, sizeof(buf));
          if (k > 0) {
            in_.insert(in_.end(), buf, buf + k);
          } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
            std::string why = Reap();
            return fail_current(Outcome::Crash("exec engine died: " + why));
          }
        }
      }
    } catch (const ExecProtocolError& e) {
      std::string tail = StderrTail();
      Kill();
      return fail_current(Outcome::Crash("exec engine protocol error: " + e.what +
                                         (tail.empty() ? "" : " (stderr: " + tail + ")")));
    }
    if (!in_.empty()) {
      // Bytes after the last result of a batch: the engine and we no longer
      // agree on where a frame starts. The batch is done; the next one gets
      // a fresh engine.
      Kill();
    }
    return next;
  }

  static void Fail(const TestCase& tc, Outcome o, RunResult* r) {
    r->outcome = std::move(o);
    r->state = tc.init;
    r->pages.clear();
    r->ns = 0;
    r->unobserved = 0;
  }

  bool Start(std::string* error) {
    in_.clear();
    int in_pipe[2], out_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) {
      *error = std::string("pipe: ") + strerror(errno);
      return false;
    }
    stderr_fd_ = memfd_create("cpudiff-exec-stderr", MFD_CLOEXEC);
    std::string script = "exec " + command_;
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
      *error = std::string("fork: ") + strerror(errno);
      return false;
    }
    if (pid == 0) {
      dup2(in_pipe[0], 0);
      dup2(out_pipe[1], 1);
      if (stderr_fd_ >= 0) dup2(stderr_fd_, 2);
      // Its own process group: a command that starts helpers (a shell
      // pipeline, a wrapper script) is killed as a whole.
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(126);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    pid_ = pid;
    to_ = in_pipe[1];
    from_ = out_pipe[0];
    fcntl(to_, F_SETFL, O_NONBLOCK);
    fcntl(from_, F_SETFL, O_NONBLOCK);

    // Handshake.
    out_.clear();
    AppendHelloFrame(options_.timeout_ms, options_.max_instructions, &out_);
    const int64_t deadline = NowMs() + std::max<int64_t>(kExecStartTimeoutMs, options_.timeout_ms);
    size_t written = 0;
    ExecFrame frame;
    try {
      for (;;) {
        if (TakeFrame(&in_, &frame)) break;
        int64_t left = deadline - NowMs();
        if (left <= 0) {
          Kill();
          *error = "no handshake within " + std::to_string(kExecStartTimeoutMs / 1000) +
                   " s (does it speak docs/engine-protocol.md?)" + StderrNote();
          return false;
        }
        pollfd p[2] = {{from_, POLLIN, 0}, {to_, POLLOUT, 0}};
        nfds_t np = written < out_.size() ? 2 : 1;
        if (poll(p, np, static_cast<int>(left)) <= 0) continue;
        if (np == 2 && (p[1].revents & POLLOUT)) {
          ssize_t k = write(to_, out_.data() + written, out_.size() - written);
          if (k > 0) written += static_cast<size_t>(k);
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
          uint8_t buf[4096];
          ssize_t k = read(from_, buf, sizeof(buf));
          if (k > 0) {
            in_.insert(in_.end(), buf, buf + k);
          } else if (k == 0) {
            std::string why = Reap();
            *error = "ended before the handshake: " + why;
            return false;
          }
        }
      }
      if (frame.type == kExecError) {
        std::string msg = ReadErrorFrame(frame);
        Kill();
        *error = "refused to start: " + msg;
        return false;
      }
      if (frame.type != kExecHelloReply) {
        throw ExecProtocolError{"expected a HELLO reply, got frame type " +
                                std::to_string(frame.type)};
      }
      ExecHello hello = ParseHelloReply(frame);
      if (hello.version != kExecProtocolVersion) {
        Kill();
        *error = "speaks process protocol version " + std::to_string(hello.version) +
                 ", this cpudiff speaks " + std::to_string(kExecProtocolVersion);
        return false;
      }
      observes_ = hello.observes & kObserveAll;
      std::string kind = hello.kind <= CPUDIFF_KIND_REFERENCE
                             ? std::string(EngineKindName(static_cast<EngineKind>(hello.kind)))
                             : "kind " + std::to_string(hello.kind);
      version_line_ = hello.name + " " + hello.version_text + " (" + kind + ", observes " +
                      ObserveNames(observes_) + ")";
    } catch (const ExecProtocolError& e) {
      Kill();
      *error = "handshake: " + e.what + StderrNote();
      return false;
    }
    if (!in_.empty()) {
      Kill();
      *error = "handshake: unexpected bytes after the HELLO reply";
      return false;
    }
    return true;
  }

  std::string StderrTail() {
    if (stderr_fd_ < 0) return {};
    off_t size = lseek(stderr_fd_, 0, SEEK_END);
    if (size <= 0) return {};
    char buf[512];
    off_t from = std::max<off_t>(0, size - static_cast<off_t>(sizeof(buf)));
    ssize_t k = pread(stderr_fd_, buf, sizeof(buf), from);
    if (k <= 0) return {};
    std::string s(buf, static_cast<size_t>(k));
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    size_t nl = s.rfind('\n');
    return nl == std::string::npos ? s : s.substr(nl + 1);
  }
  std::string StderrNote() {
    std::string t = StderrTail();
    return t.empty() ? "" : " (stderr: " + t + ")";
  }

  void CloseFds() {
    if (to_ >= 0) close(to_);
    if (from_ >= 0) close(from_);
    to_ = from_ = -1;
  }

  // Waits for the engine to end (it closed its stdout) and says how.
  std::string Reap() {
    std::string tail = StderrTail();
    CloseFds();
    if (pid_ < 0) return "not running";
    int status = 0;
    // It closed stdout; give it a moment to exit before killing it.
    pid_t r = 0;
    for (int k = 0; k < 200 && r == 0; ++k) {
      r = waitpid(pid_, &status, WNOHANG);
      if (r == 0) usleep(1000);
    }
    if (r == 0) {
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    kill(-pid_, SIGKILL);  // helpers it left behind
    pid_ = -1;
    CloseStderr();
    std::string why;
    if (r == 0) {
      why = "closed its stdout";
    } else if (WIFSIGNALED(status)) {
      const char* d = sigdescr_np(WTERMSIG(status));
      why = "killed by signal " + std::to_string(WTERMSIG(status)) +
            (d ? std::string(" (") + d + ")" : "");
    } else {
      why = "exited with status " + std::to_string(WEXITSTATUS(status));
    }
    return tail.empty() ? why : why + " (stderr: " + tail + ")";
  }

  void Kill() {
    CloseFds();
    if (pid_ > 0) {
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    pid_ = -1;
    CloseStderr();
  }
  void CloseStderr() {
    if (stderr_fd_ >= 0) close(stderr_fd_);
    stderr_fd_ = -1;
  }
  void Stop() {
    // Closing stdin asks it to end; it has nothing of ours left to finish.
    Kill();
  }

  std::string command_;
  EngineOptions options_;
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1, stderr_fd_ = -1;
  std::vector<uint8_t> out_, in_;
  uint32_t observes_ = kObserveAll;
  std::string version_line_;
};

}  // namespace

std::unique_ptr<Engine> CreateExecEngine(const std::string& command, const EngineOptions& options) {
  return std::make_unique<ExecEngine>(command, options);
}

Availability ProbeExec(const std::string& command) {
  return ProbeByStarting([&] { return CreateExecEngine(command, EngineOptions{}); });
}

}  // namespace cpudiff

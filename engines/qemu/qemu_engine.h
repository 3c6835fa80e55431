// The `qemu` engine: QEMU user mode (qemu-x86_64) as a reference.
//
// It runs the native engine's freestanding runner (engines/native/runner/,
// driven by RunnerHost) under a long-lived qemu-x86_64 process that is fed
// batches over a socket and shared memory, the same protocol as `native`.
// Differences from `native`:
//   - No seccomp inside (QEMU refuses PR_SET_SECCOMP from its guest), so
//     qemu runs in a box of its own (jail.c: fresh user, mount, pid, net,
//     ipc and uts namespaces, an empty read-only root with only qemu and its
//     libraries, no capabilities), and a case whose executable bytes hold
//     `0f 05` (syscall), `0f 34` (sysenter) or `cd 80` (int 0x80) anywhere,
//     or that maps a writable+executable region, is `unsupported` here and
//     never reaches QEMU (QemuUnsupportedReason).
//   - QEMU does not see code that the runner rewrites through its writable
//     alias of case memory (its translated blocks go stale, measured on
//     7.2), so a case whose code differs from the case before it at the same
//     layout is made to start from freshly mapped regions (see Run()).
//   - QEMU itself crashes on some cases (7.2: 32-bit adcx/adox, some
//     cmpxchg8b/16b sequences): the case becomes `crash`, qemu is restarted
//     and the batch goes on; a case past EngineOptions::timeout_ms becomes
//     `timeout` with the same recovery (both handled by RunnerHost).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engines/engine.h"

namespace cpudiff {

Availability ProbeQemu();
std::unique_ptr<Engine> CreateQemuEngine(const EngineOptions& options);

// Why `tc` must not run under QEMU user mode (a system-call instruction in
// its executable bytes, or a writable+executable region), or empty.
// Conservative: a false positive only skips the case.
std::string QemuUnsupportedReason(const TestCase& tc);

// The embedded jail executable (jail.c), and the same in a sealed memfd of
// this process (executable as /proc/<pid>/fd/<n>). The valgrind engine uses
// the same box.
std::span<const uint8_t> QemuJailImage();
int QemuJailFd();

// Why `tc` must not run where a system call would reach the host kernel
// (`engine` names the engine in the message, `why` says what would happen):
// a system-call instruction (0f 05, 0f 34, cd 80) anywhere in its executable
// bytes, or a writable+executable region. Empty when it may run.
std::string SyscallBytesReason(const TestCase& tc, std::string_view engine, std::string_view why);

class RunnerHost;

// Owns one qemu process (through RunnerHost). Not thread-safe: one engine per
// thread.
class QemuEngine : public Engine {
 public:
  // Throws std::runtime_error when qemu-x86_64 is missing or cannot start.
  explicit QemuEngine(const EngineOptions& options);
  ~QemuEngine() override;

  void Run(std::span<const TestCase* const> cases, std::span<RunResult> results) override;
  uint32_t Observes() const override { return kObserveAll; }

  // The process RunnerHost started (the jail around qemu), e.g. for tests
  // that kill it.
  pid_t pid() const;
  // qemu-x86_64 itself (the jail's grandchild), or -1.
  pid_t qemu_pid() const;
  // How often qemu was restarted after a crash or a timeout.
  uint64_t restarts() const;

 private:
  std::unique_ptr<RunnerHost> host_;
};

}  // namespace cpudiff

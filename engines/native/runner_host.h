// Host side of the native runner (runner/runner.c): starts the runner as a
// long-lived child process, feeds it batches of cases through shared memory
// (two slots, pipelined), and turns its reports into RunResults.
//
// The same runner binary runs directly on the host CPU (the `native` engine)
// or under an emulator given as a command prefix, e.g. {"qemu-x86_64"} for
// the `qemu` engine. Under a prefix the runner is passed as
// /proc/self/fd/6 (an inherited memfd) after the prefix arguments, and it
// maps an executable region anew whenever it changes its bytes (QEMU caches
// translations per guest page and does not see the runner's writes through
// its second, writable mapping of case memory).
//
// Containment of the runner: seccomp (installed by the runner itself, see
// runner.c; skipped with RunnerOptions::seccomp = false, e.g. under QEMU,
// which refuses it), no inherited file descriptors besides the channel and
// the shared memory, PR_SET_PDEATHSIG(SIGKILL), rlimits (no core files, no
// file writes, few fds, bounded address space), and a wall-time limit per
// case after which the runner is killed and restarted.
//
// A RunnerHost is not thread-safe: one per thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engines/x86/testcase.h"

namespace cpudiff {

struct RunnerOptions {
  // Command that runs the runner binary, e.g. {"qemu-x86_64"} (looked up in
  // PATH) or {"/usr/bin/qemu-x86_64", "-cpu", "max"}. Empty: run it directly.
  std::vector<std::string> command_prefix;
  // Install the runner's seccomp filter; when it cannot be installed the
  // runner refuses to start. Turn off only where something else contains the
  // process (qemu-x86_64 refuses PR_SET_SECCOMP from its guest).
  bool seccomp = true;
  // Wall time a single case may run before it is reported as `timeout` (the
  // runner is then killed and restarted; the batch goes on).
  uint32_t timeout_ms = 1000;
  // Cases per batch (at most kRunnerMaxBatch in runner_protocol.h). A pipe
  // round trip costs tens of microseconds, so batches should be large.
  uint32_t batch_size = 256;
  // RLIMIT_AS of the runner in bytes; 0 for none (e.g. under an emulator
  // that reserves a large guest address space).
  uint64_t address_space_limit = 16ull << 30;
  // How long the runner may take to start and say it is ready.
  uint32_t start_timeout_ms = 10000;
  // Environment of the command ("NAME=value"); empty by default.
  std::vector<std::string> env;
  // End EVERY case by the end stub (see stub_end below), whether or not the
  // case could tell, for translators whose signal frames lose state. The
  // code region then always has room for the stub (CheckExitStubRoom).
  bool exit_stub = false;
  // Derive fault vectors from the signal, not the frame's trap number
  // (kRunnerFlagDeriveVector).
  bool derive_vector = false;
  // Observe bits (engines/engine.h) a result loses when its case ended by a
  // signal rather than the exit stub (RunResult::unobserved), e.g. RFLAGS,
  // XMM and MXCSR under Valgrind, whose signal frames lack them.
  uint32_t unobserved_at_signal = 0;
  // What the process is called in crash reasons ("runner killed by signal
  // 6 (Aborted)"), e.g. "qemu" when the runner runs under qemu-x86_64.
  std::string process_name = "runner";
  // End a case by a jump to the runner instead of its HLT where the case
  // cannot tell the difference (engines/native/stub_end.h): the same result
  // without a kernel round trip. Off: every case ends at its HLT; the
  // environment variable CPUDIFF_HLT_END=1 turns it off for every runner.
  bool stub_end = true;
  // After a case, compare only the pages of regions the case can write by
  // the instruction set's rules (EndPlan::write_regions), not every writable
  // page. Only for silicon: an emulator that writes where it must not is
  // what the comparison is there to catch.
  bool skip_unwritten_regions = false;
};

// The embedded runner executable (a static x86-64 ELF), e.g. to write it to a
// file for a tool that cannot take a memfd.
std::span<const uint8_t> NativeRunnerImage();

class RunnerHost {
 public:
  // Starts the runner. Throws std::runtime_error when it cannot start.
  explicit RunnerHost(RunnerOptions options);
  ~RunnerHost();
  RunnerHost(const RunnerHost&) = delete;
  RunnerHost& operator=(const RunnerHost&) = delete;

  // Runs cases[i] into results[i]. Never throws for a per-case problem: a case
  // that hangs gets `timeout`, one that kills the runner `crash`, one the
  // runner cannot map `unsupported`; the runner is restarted and the rest of
  // the batch goes on. Throws std::runtime_error only when the runner cannot
  // be restarted at all.
  void Run(std::span<const TestCase* const> cases, std::span<RunResult> results);

  // The current runner process, e.g. for tests that kill it.
  pid_t pid() const;
  // How often the runner was restarted after a timeout or a crash.
  uint64_t restarts() const;
  // Whether the runner sets FS/GS bases with wrfsbase (else arch_prctl).
  bool fsgsbase() const;
  // How many cases were sent with the end stub instead of the HLT.
  uint64_t stub_ends() const;

  // Why `tc` cannot run on the runner at all (bad or too large a layout), or
  // empty when it can.
  static std::string CheckCase(const TestCase& tc, bool fsgsbase);
  // With RunnerOptions::exit_stub: why the case's code region, grown by the
  // exit jump, would overlap another region, or empty.
  static std::string CheckExitStubRoom(const TestCase& tc);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cpudiff

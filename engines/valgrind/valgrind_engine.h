// The `valgrind` engine: Valgrind's VEX (x86-64 -> IR -> x86-64), a widely
// used third-party dynamic binary translator, as a reference.
//
// Like `qemu`, it runs the native engine's freestanding runner
// (engines/native/runner, driven by RunnerHost) as one long-lived process,
// here under Valgrind's `none` tool, inside the qemu engine's box
// (engines/qemu/jail.c: fresh user, mount, pid, net, ipc and uts
// namespaces, an empty read-only root, no capabilities). What differs:
//   - No seccomp filter: Valgrind makes its own system calls from the
//     runner's process, and a filter installed by the runner traps them.
//     As under qemu, a case whose executable bytes hold a system-call
//     instruction, or that maps a writable+executable region, is
//     `unsupported` and never runs (SyscallBytesReason).
//   - A case ends by a jump to the runner's exit stub, not by the HLT fault
//     (RunnerOptions::exit_stub): under Valgrind HLT raises SIGILL, and the
//     signal frame Valgrind delivers has the right GPRs and RIP but RFLAGS 0
//     and no XMM/MXCSR. A case that ends by a fault (or an HLT of its own)
//     therefore reports RFLAGS, XMM and MXCSR as not observed
//     (RunResult::unobserved), and the comparer skips them.
//   - Valgrind is started through its tool executable
//     (/usr/libexec/valgrind/none-amd64-linux, static) with
//     VALGRIND_LAUNCHER set, which is what the `valgrind` launcher does.
// docs/engines.md has what was measured.
#pragma once

#include <memory>

#include "engines/engine.h"

namespace cpudiff {

Availability ProbeValgrind();
std::unique_ptr<Engine> CreateValgrindEngine(const EngineOptions& options);

}  // namespace cpudiff

// Runs an in-process Engine inside a forked worker process.
//
// The parent (the cpudiff process) forks a child; the child calls `factory`
// to build the real engine and then serves batches: cases travel to it
// through a shared-memory buffer (wire format, engines/worker/wire.h), one
// small message each way per batch over a socketpair, and results come back
// through a second shared buffer. The child publishes its progress (which
// case is running, how many results are committed) in a shared control page,
// so when it dies (a signal, abort() or an assertion inside a library) the
// case it was running is recorded as `crash`, the results before it are
// kept, a new child is forked and the batch goes on after it. A case that
// runs past EngineOptions::timeout_ms of wall time gets the child killed and
// is recorded as `timeout`.
//
// fork() without exec keeps this generic (any factory works) and cheap; the
// child only builds its engine and talks over the inherited descriptors.
// The parent may be multi-threaded: glibc makes malloc usable in the child,
// and the factory must not rely on other threads' locks.
//
// Thread-safety: one WorkerEngine serves one caller at a time.
#pragma once

#include <time.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "engines/engine.h"

namespace cpudiff {

using EngineFactory = std::function<std::unique_ptr<Engine>()>;

// CLOCK_MONOTONIC in nanoseconds: what engines record as RunResult::ns.
inline int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct WorkerOptions {
  // Name used in crash/timeout reasons ("unicorn worker died: ...").
  std::string name = "worker";
  // Wall-time limit per case; 0 disables the watchdog.
  uint32_t timeout_ms = 1000;
  // Initial size of each shared buffer (they grow on demand). The files are
  // sparse: untouched pages cost nothing.
  size_t initial_buffer_bytes = 64ull << 20;
};

// Forks the first worker and waits until its engine is built. Throws
// std::runtime_error with the child's message when the factory fails.
std::unique_ptr<Engine> MakeWorkerEngine(EngineFactory factory, const WorkerOptions& options);

// Same, with the watchdog taken from EngineOptions::timeout_ms.
std::unique_ptr<Engine> MakeWorkerEngine(EngineFactory factory, const EngineOptions& options,
                                         std::string name = "worker");

}  // namespace cpudiff

// The `unicorn` engine: Unicorn Engine 2 (QEMU TCG as a library).
//
// CreateUnicornEngine runs the engine inside a worker process
// (engines/worker/worker_engine.h), so that an abort() or a crash inside
// the library becomes a `crash` outcome instead of taking the harness down.
// CreateUnicornEngineInProcess is the bare engine, for benchmarks and for
// code that already runs in a disposable process.
#pragma once

#include <memory>

#include "engines/engine.h"

namespace cpudiff {

Availability ProbeUnicorn();
std::unique_ptr<Engine> CreateUnicornEngine(const EngineOptions& options);
// Throws std::runtime_error when Unicorn cannot be opened.
std::unique_ptr<Engine> CreateUnicornEngineInProcess(const EngineOptions& options);

}  // namespace cpudiff

// The `native` engine: cases run for real on the host CPU, at their own
// addresses, in a sandboxed long-lived child process (see runner_host.h and
// runner/runner.c). It is the hardware oracle and observes everything.
#pragma once

#include <memory>

#include "engines/engine.h"

namespace cpudiff {

// Available on x86-64 Linux; the version is the CPU model name.
Availability ProbeNative();
// Starts the runner; EngineOptions::timeout_ms is the wall-time limit of one
// case. Throws std::runtime_error when the runner cannot start.
std::unique_ptr<Engine> CreateNativeEngine(const EngineOptions& options);

}  // namespace cpudiff

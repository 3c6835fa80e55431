// The `emulator` engine: cpudiff's own x86-64 interpreter (user mode, 64-bit).
//
// It decodes with engines/x86/decoder.h and executes with the semantics in
// this folder (arith.cc, logic.cc, ...). Undefined flags and results follow a
// vendor profile, because Intel and AMD silicon differ there:
//   CPUDIFF_EMULATOR_VENDOR=intel|amd   (default: the host CPU's vendor)
// CreateEmulatorEngine runs it inside a worker process, so a bug in the
// emulator becomes a `crash` outcome; the in-process variant is for
// benchmarks and tests.
#pragma once

#include <memory>
#include <string_view>

#include "engines/engine.h"
#include "engines/x86/isa.h"

namespace cpudiff {

Availability ProbeEmulator();
std::unique_ptr<Engine> CreateEmulatorEngine(const EngineOptions& options);
std::unique_ptr<Engine> CreateEmulatorEngineInProcess(const EngineOptions& options);
// "intel" or "amd": the profile the emulator uses (environment, else host).
std::string_view EmulatorVendor();
// Whether the emulator has semantics for a form of the ISA table.
bool EmulatorImplements(InsnId id);

}  // namespace cpudiff

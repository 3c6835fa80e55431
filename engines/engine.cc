#include "engines/engine.h"

#include <stdexcept>

#include "engines/emulator/emulator_engine.h"
#include "engines/native/native_engine.h"
#include "engines/qemu/qemu_engine.h"
#include "engines/translator/translator_engine.h"
#include "engines/unicorn/unicorn_engine.h"

namespace cpudiff {
namespace {

Availability NotBuiltYet() { return {false, "not built yet", ""}; }
std::unique_ptr<Engine> CannotCreate(const EngineOptions&) {
  throw std::runtime_error("engine not built yet");
}

constexpr EngineDesc kEngines[] = {
    {"emulator", EngineKind::kEmulation, "in-house x86-64 interpreter", ProbeEmulator,
     CreateEmulatorEngine},
    {"translator", EngineKind::kTranslation, "in-house dynamic binary translator", ProbeTranslator,
     CreateTranslatorEngine},
    {"kvm", EngineKind::kVirtualization, "KVM guest, test code at CPL3", NotBuiltYet,
     CannotCreate},
    {"native", EngineKind::kNative, "host CPU, sandboxed child process", ProbeNative,
     CreateNativeEngine},
    {"unicorn", EngineKind::kReference, "Unicorn Engine 2 (QEMU TCG as a library)", ProbeUnicorn,
     CreateUnicornEngine},
    {"qemu", EngineKind::kReference, "QEMU user mode (qemu-x86_64), long-lived process",
     ProbeQemu, CreateQemuEngine},
};

}  // namespace

uint32_t ObserveBitForRegister(int reg) {
  switch (Registers()[reg].kind) {
    case RegKind::kGpr: return kObserveGprs;
    case RegKind::kRip: return kObserveRip;
    case RegKind::kRflags: return kObserveRflags;
    case RegKind::kXmm: return kObserveXmm;
    case RegKind::kMxcsr: return kObserveMxcsr;
    case RegKind::kSegBase: return kObserveSegBases;
  }
  return 0;
}

std::string_view EngineKindName(EngineKind k) {
  switch (k) {
    case EngineKind::kEmulation: return "emulation";
    case EngineKind::kTranslation: return "translation";
    case EngineKind::kVirtualization: return "virtualization";
    case EngineKind::kNative: return "native";
    case EngineKind::kReference: return "reference";
  }
  return "?";
}

std::span<const EngineDesc> BuiltinEngines() { return kEngines; }

const EngineDesc* FindEngine(std::string_view name) {
  for (const EngineDesc& d : kEngines) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

}  // namespace cpudiff

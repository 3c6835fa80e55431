#include "engines/engine.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

#include "engines/emulator/emulator_engine.h"
#include "engines/native/native_engine.h"
#include "engines/qemu/qemu_engine.h"
#include "engines/translator/translator_engine.h"
#include "engines/unicorn/unicorn_engine.h"
#include "engines/valgrind/valgrind_engine.h"

namespace cpudiff {
namespace {

Availability NotBuiltYet() { return {false, "not built yet", ""}; }
// The KVM engine is not built yet; say as well whether this host could run it.
Availability ProbeKvmHost() {
  if (access("/dev/kvm", R_OK | W_OK) != 0) {
    return {false, std::string("not built yet; this host has no usable /dev/kvm (") +
                       strerror(errno) + ")",
            ""};
  }
  return NotBuiltYet();
}
std::unique_ptr<Engine> CannotCreate(const EngineOptions&) {
  throw std::runtime_error("engine not built yet");
}

const EngineDesc kEngines[] = {
    {"emulator", EngineKind::kEmulation, "in-house x86-64 interpreter", ProbeEmulator,
     CreateEmulatorEngine},
    {"translator", EngineKind::kTranslation, "in-house dynamic binary translator", ProbeTranslator,
     CreateTranslatorEngine},
    {"kvm", EngineKind::kVirtualization, "KVM guest, test code at CPL3", ProbeKvmHost,
     CannotCreate},
    {"native", EngineKind::kNative, "host CPU, sandboxed child process", ProbeNative,
     CreateNativeEngine},
    {"unicorn", EngineKind::kReference, "Unicorn Engine 2 (QEMU TCG as a library)", ProbeUnicorn,
     CreateUnicornEngine},
    {"qemu", EngineKind::kReference, "QEMU user mode (qemu-x86_64), long-lived process", ProbeQemu,
     CreateQemuEngine},
    // Not in DESIGN.md's table: a third-party translator beside the in-house one.
    {"valgrind", EngineKind::kTranslation,
     "Valgrind (VEX, --tool=none), long-lived process, third-party translator", ProbeValgrind,
     CreateValgrindEngine},
};

}  // namespace

uint32_t ObserveBitForRegister(int reg) {
  switch (Registers()[reg].kind) {
    case RegKind::kGpr:
      return kObserveGprs;
    case RegKind::kRip:
      return kObserveRip;
    case RegKind::kRflags:
      return kObserveRflags;
    case RegKind::kXmm:
      return kObserveXmm;
    case RegKind::kMxcsr:
      return kObserveMxcsr;
    case RegKind::kSegBase:
      return kObserveSegBases;
  }
  return 0;
}

std::string ObserveNames(uint32_t mask) {
  if ((mask & kObserveAll) == kObserveAll) return "all";
  static constexpr std::pair<uint32_t, const char*> kNames[] = {
      {kObserveGprs, "gprs"},
      {kObserveRip, "rip"},
      {kObserveRflags, "rflags"},
      {kObserveXmm, "xmm"},
      {kObserveMxcsr, "mxcsr"},
      {kObserveSegBases, "seg-bases"},
      {kObserveMemory, "memory"},
      {kObserveErrorCode, "error-code"},
      {kObserveFaultAddr, "fault-addr"},
  };
  std::string s;
  for (const auto& [bit, name] : kNames) {
    if (mask & bit) s += (s.empty() ? "" : ",") + std::string(name);
  }
  return s.empty() ? "none" : s;
}

std::string_view EngineKindName(EngineKind k) {
  switch (k) {
    case EngineKind::kEmulation:
      return "emulation";
    case EngineKind::kTranslation:
      return "translation";
    case EngineKind::kVirtualization:
      return "virtualization";
    case EngineKind::kNative:
      return "native";
    case EngineKind::kReference:
      return "reference";
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

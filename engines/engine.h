// The engine interface: batches of cases in, results out.
//
// It is deliberately small and data-only and has the same shape as the
// plain C plugin ABI (include/cpudiff/engine.h): the Observe bits, engine
// kinds, outcome kinds and the CpuState layout are the ABI's, checked below
// at compile time. An engine states which fields it can observe, takes a
// batch of cases and fills one RunResult per case. An engine never throws for
// something that went wrong with one case: that case gets a `crash`,
// `timeout` or `unsupported` outcome and the batch goes on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engines/x86/testcase.h"
#include "include/cpudiff/engine.h"

namespace cpudiff {

// Groups of fields an engine can observe. A field an engine cannot observe is
// not compared for that engine (and reports say so).
enum Observe : uint32_t {
  kObserveGprs = CPUDIFF_OBSERVE_GPRS,
  kObserveRip = CPUDIFF_OBSERVE_RIP,
  kObserveRflags = CPUDIFF_OBSERVE_RFLAGS,
  kObserveXmm = CPUDIFF_OBSERVE_XMM,
  kObserveMxcsr = CPUDIFF_OBSERVE_MXCSR,
  kObserveSegBases = CPUDIFF_OBSERVE_SEG_BASES,
  kObserveMemory = CPUDIFF_OBSERVE_MEMORY,
  kObserveErrorCode = CPUDIFF_OBSERVE_ERROR_CODE,  // fault error codes
  kObserveFaultAddr = CPUDIFF_OBSERVE_FAULT_ADDR,  // #PF fault address
  kObserveAll = CPUDIFF_OBSERVE_ALL,
};
// Which Observe bit covers a register of the register table.
uint32_t ObserveBitForRegister(int reg);
// "gprs,rip,..." for a mask of Observe bits ("all", "none").
std::string ObserveNames(uint32_t mask);

// What kind of execution path an engine is, for reports.
enum class EngineKind : uint8_t {
  kEmulation = CPUDIFF_KIND_EMULATION,
  kTranslation = CPUDIFF_KIND_TRANSLATION,
  kVirtualization = CPUDIFF_KIND_VIRTUALIZATION,
  kNative = CPUDIFF_KIND_NATIVE,
  kReference = CPUDIFF_KIND_REFERENCE,
};
std::string_view EngineKindName(EngineKind k);

struct EngineOptions {
  // Wall-time limit per case for engines that run in real time.
  uint32_t timeout_ms = 1000;
  // Instruction budget for engines that count instructions.
  uint64_t max_instructions = 1'000'000;
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Runs cases[i] and stores its result in results[i]. `results` has the same
  // size as `cases`. Must not throw for per-case problems.
  virtual void Run(std::span<const TestCase* const> cases, std::span<RunResult> results) = 0;
  // Fields this engine observes (a mask of Observe bits). A result may
  // observe less (RunResult::unobserved).
  virtual uint32_t Observes() const { return kObserveAll; }
  // What the engine says it is ("tiny 1.0"), when it knows better than the
  // registry (outside engines); empty otherwise.
  virtual std::string Version() const { return {}; }
};

struct Availability {
  bool available = false;
  std::string reason;               // why not, when unavailable
  std::string version;              // engine version, when known
  uint32_t observes = kObserveAll;  // what it observes, when known before it starts
};

// One entry of the engine registry.
struct EngineDesc {
  std::string_view name;
  EngineKind kind;
  std::string_view description;
  std::function<Availability()> probe;
  // Creates the engine; throws std::runtime_error with a message if it
  // cannot start.
  std::function<std::unique_ptr<Engine>(const EngineOptions&)> create;
  // Built-in (the registry below) or outside (plugin:, exec:).
  bool builtin = true;
};

// Every built-in engine, in the order of DESIGN.md (which is also the order
// in which a default reference is chosen).
std::span<const EngineDesc> BuiltinEngines();
const EngineDesc* FindEngine(std::string_view name);

// ---- One shape with the C plugin ABI ----------------------------------------
static_assert(sizeof(CpuState) == sizeof(cpudiff_state));
static_assert(offsetof(CpuState, gpr) == offsetof(cpudiff_state, gpr));
static_assert(offsetof(CpuState, rip) == offsetof(cpudiff_state, rip));
static_assert(offsetof(CpuState, rflags) == offsetof(cpudiff_state, rflags));
static_assert(offsetof(CpuState, xmm) == offsetof(cpudiff_state, xmm));
static_assert(offsetof(CpuState, mxcsr) == offsetof(cpudiff_state, mxcsr));
static_assert(offsetof(CpuState, fs_base) == offsetof(cpudiff_state, fs_base));
static_assert(offsetof(CpuState, gs_base) == offsetof(cpudiff_state, gs_base));
static_assert(static_cast<uint32_t>(OutcomeKind::kHalt) == CPUDIFF_OUTCOME_HALT);
static_assert(static_cast<uint32_t>(OutcomeKind::kFault) == CPUDIFF_OUTCOME_FAULT);
static_assert(static_cast<uint32_t>(OutcomeKind::kTimeout) == CPUDIFF_OUTCOME_TIMEOUT);
static_assert(static_cast<uint32_t>(OutcomeKind::kSyscall) == CPUDIFF_OUTCOME_SYSCALL);
static_assert(static_cast<uint32_t>(OutcomeKind::kUnsupported) == CPUDIFF_OUTCOME_UNSUPPORTED);
static_assert(static_cast<uint32_t>(OutcomeKind::kCrash) == CPUDIFF_OUTCOME_CRASH);
static_assert(kPermR == CPUDIFF_PERM_R && kPermW == CPUDIFF_PERM_W && kPermX == CPUDIFF_PERM_X);

}  // namespace cpudiff

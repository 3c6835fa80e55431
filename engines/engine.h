// The engine interface: batches of cases in, results out.
//
// It is deliberately small and data-only so that it maps one to one onto a
// plain C plugin ABI: an engine states which fields it can observe, takes a
// batch of cases and fills one RunResult per case. An engine never throws for
// something that went wrong with one case: that case gets a `crash`,
// `timeout` or `unsupported` outcome and the batch goes on.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engines/x86/testcase.h"

namespace cpudiff {

// Groups of fields an engine can observe. A field an engine cannot observe is
// not compared for that engine (and reports say so).
enum Observe : uint32_t {
  kObserveGprs = 1u << 0,
  kObserveRip = 1u << 1,
  kObserveRflags = 1u << 2,
  kObserveXmm = 1u << 3,
  kObserveMxcsr = 1u << 4,
  kObserveSegBases = 1u << 5,
  kObserveMemory = 1u << 6,
  kObserveErrorCode = 1u << 7,  // fault error codes
  kObserveFaultAddr = 1u << 8,  // #PF fault address
  kObserveAll = (1u << 9) - 1,
};
// Which Observe bit covers a register of the register table.
uint32_t ObserveBitForRegister(int reg);

// What kind of execution path an engine is, for reports.
enum class EngineKind : uint8_t { kEmulation, kTranslation, kVirtualization, kNative, kReference };
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
  // Fields this engine observes (a mask of Observe bits).
  virtual uint32_t Observes() const { return kObserveAll; }
};

struct Availability {
  bool available = false;
  std::string reason;   // why not, when unavailable
  std::string version;  // engine version, when known
};

// One entry of the engine registry.
struct EngineDesc {
  std::string_view name;
  EngineKind kind;
  std::string_view description;
  Availability (*probe)();
  // Creates the engine; throws std::runtime_error with a message if it
  // cannot start.
  std::unique_ptr<Engine> (*create)(const EngineOptions&);
};

// Every built-in engine, in the order of DESIGN.md (which is also the order
// in which a default reference is chosen).
std::span<const EngineDesc> BuiltinEngines();
const EngineDesc* FindEngine(std::string_view name);

}  // namespace cpudiff

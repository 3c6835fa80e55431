// The fuzzing generator of `cpudiff fuzz`: deterministic from a seed, a
// pipeline of named stages.
//
//   Layout  -> the memory map: data pages (rw), an unmapped gap, a read-only
//              page, a stack page.
//   Values  -> initial registers, XMM, MXCSR, RFLAGS and memory, biased to
//              edges (0, 1, -1, sign boundaries, powers of two, shift counts;
//              for XMM +-0, +-inf, QNaN, SNaN, denormals, largest and
//              smallest normals; every MXCSR rounding mode, DAZ/FTZ and
//              unmasked exceptions); pointer registers point into the data
//              pages.
//   Fault   -> a per-case decision: most cases are built to run to their
//              end (every memory operand valid and mapped, divisions that
//              cannot trap, no lock prefix); some get exactly one
//              deliberate fault (#PF on an unmapped or read-only page or
//              across a page end, non-canonical #GP/#SS, misaligned SSE
//              #GP, #AC with RFLAGS.AC, #DE, #UD from lock) at a random
//              instruction. A stream ends at its first fault: faults spread
//              over every operand would end almost every stream early.
//   Stream  -> code of one shape: a single instruction, a random stream,
//              forward branches and a bounded loop, a memory-heavy stream,
//              raw random bytes (decoder fuzzing) or a mutated corpus case.
//              Instructions come from FormSet (testgen/forms.h) with their
//              operands rewritten and re-encoded by the Zydis encoder.
//   Check   -> by default an instruction that would read a flag left
//              undefined by an earlier one is not emitted (Zydis flag
//              metadata, the same that the comparer masks with).
//
// The same options and case seed always give the same case, byte for byte.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engines/x86/testcase.h"
#include "testgen/forms.h"
#include "testgen/generate.h"

namespace cpudiff {

enum class Shape : uint8_t { kSingle, kRandom, kBranch, kMemory, kRaw, kMutate };
std::string_view ShapeName(Shape s);
// Parses "single", "random", "branch", "memory", "raw", "mutate".
bool ParseShape(std::string_view name, Shape* out);

struct FuzzOptions {
  FormFilter forms;
  int max_length = 16;        // instructions per stream (random, branch, memory shapes), 1..64
  std::vector<Shape> shapes;  // empty: every shape (mutate only with a corpus)
  // Allow streams that read a flag an earlier instruction left undefined.
  bool include_undefined_flag_reads = false;
  // Cases to mutate (the "mutate" shape).
  std::vector<TestCase> corpus;
};

class FuzzGenerator {
 public:
  // Throws std::invalid_argument for options that select nothing.
  explicit FuzzGenerator(FuzzOptions opts);

  // The case for one case seed. `out` is overwritten entirely.
  void Generate(uint64_t case_seed, TestCase* out) const;
  // The case seed of the index-th case of a campaign with `seed`.
  static uint64_t CaseSeed(uint64_t seed, uint64_t index);

  // The options as JSON text, recorded in a run's config so that a case can
  // be rebuilt from its seed.
  std::string ConfigJson() const;
  const FormSet& forms() const { return *forms_; }

 private:
  struct Stream;
  struct Plan;
  void PlanFault(Rng& rng, int len, Plan* plan) const;
  void Values(Rng& rng, const Plan& plan, TestCase* tc) const;
  const InsnForm* FaultForm(Rng& rng, const Stream& s) const;
  bool EmitForm(Rng& rng, const InsnForm& f, Stream& s, uint32_t avoid_regs, bool target) const;
  void EmitInstructions(Rng& rng, int n, bool memory_only, uint32_t avoid_regs, Stream& s) const;
  void Straight(Rng& rng, int n, bool memory_only, Stream& s) const;
  void Branches(Rng& rng, int n, Stream& s) const;
  void Raw(Rng& rng, TestCase* tc) const;
  void Mutate(Rng& rng, TestCase* tc) const;

  FuzzOptions opts_;
  std::shared_ptr<const FormSet> forms_;
  std::vector<Shape> shapes_;
  // Forms by what they can be made to fault with (indexes into forms()).
  std::vector<uint32_t> write_forms_;     // a written memory operand: read-only #PF
  std::vector<uint32_t> m128_forms_;      // SSE with a 128-bit memory operand: misaligned #GP
  std::vector<uint32_t> narrow_forms_;    // 16- to 64-bit memory operand: #AC
  std::vector<uint32_t> divide_forms_;    // div, idiv: #DE
  std::vector<uint32_t> register_forms_;  // no memory operand: lock is #UD
  std::vector<uint32_t> float_forms_;     // SSE floating-point arithmetic: #XM
  // Forms that fault whatever the values (cli, sti: #GP at CPL 3; nop with
  // two register operands, which the Zydis encoder encodes as 0f 0d /r: #UD
  // on AMD) or depending on memory contents
  // (ldmxcsr: #GP on reserved bits): only as a case's planned fault.
  std::vector<uint32_t> faulting_forms_;
  std::vector<bool> fault_only_;  // by form index
};

}  // namespace cpudiff

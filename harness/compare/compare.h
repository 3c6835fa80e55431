// The comparer: end state against end state, or end state against a case's
// `expect`, field by field over the register table, every writable memory
// region and the outcome.
//
// Flags the architecture leaves undefined are masked using Zydis's
// per-instruction flag metadata, with taint: an instruction that reads a flag
// that is undefined at that point makes what it writes undefined too.
// `strict` compares undefined flags as well. RF is never compared.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engines/engine.h"
#include "engines/x86/testcase.h"

namespace cpudiff {

// What kind of field differs; part of a divergence's signature.
enum class FieldKind : uint8_t { kOutcome, kGpr, kRip, kFlags, kXmm, kMxcsr, kSegBase, kMemory };
std::string_view FieldKindName(FieldKind k);

struct Mismatch {
  FieldKind kind;
  // "outcome", "rax", "rflags.ZF" (one entry per differing flag), "xmm3",
  // "mxcsr", "mem[0x20000010]" (one entry per run of differing bytes).
  std::string field;
  std::string a;  // value on the reference side (or `expect`), formatted
  std::string b;  // value on the other side
  // Index (in decode order) of the instruction the field is attributed to
  // (the last instruction before the end that writes it, or the faulting
  // instruction for an outcome); -1 when unknown.
  int insn_index = -1;
  // That instruction's form, e.g. "bsr r32, r32" or "add m64, imm8"; empty
  // when unknown.
  std::string insn_form;
};

struct CompareOptions {
  bool strict = false;         // compare undefined flags too
  uint32_t observes_a = kObserveAll;  // fields the reference side observes
  uint32_t observes_b = kObserveAll;  // fields the other side observes
};

// Compares two engines' results for one case. `a` is the reference. When
// either outcome is unsupported, crash or timeout only the outcome is
// compared. Register and flag masks for undefined flags are derived from
// the instructions executed up to a's end (see AnalyzeUndefined).
std::vector<Mismatch> CompareResults(const TestCase& tc, const RunResult& a, const RunResult& b,
                                     const CompareOptions& opts);

// Compares a result with the case's `expect` (if any): only the fields that
// `expect` lists. `a` is the expectation, `b` the engine's value.
std::vector<Mismatch> CompareExpect(const TestCase& tc, const RunResult& got,
                                    const CompareOptions& opts);

// What is undefined at the end of a run that ended at `end_rip`.
struct UndefinedState {
  uint64_t rflags_mask = 0;       // flags whose value is undefined at the end
  uint32_t gpr_mask = 0;          // bit i: gpr i is undefined (tainted)
  uint32_t xmm_mask = 0;          // bit i: xmm i is undefined (tainted)
  bool memory_tainted = false;    // a store of tainted data happened
  bool control_tainted = false;   // a branch read an undefined flag: state is unknowable
};
UndefinedState AnalyzeUndefined(const TestCase& tc, uint64_t end_rip);

// One line of disassembly per instruction of the case's code, "addr: bytes  text".
std::vector<std::string> Disassemble(const TestCase& tc);
// The kind of a formatted outcome without its details: "#PF" of
// "#PF(err=0x4, addr=0x0)", "crash" of "crash: ...", "halt".
std::string OutcomeLabel(std::string_view formatted);
// The signature of a mismatch: instruction form + field kind + engines,
// "bsr r32, r32|gpr|native~unicorn". An outcome's field kind carries the
// pair of outcome kinds in the order of the (sorted) engine names:
// "mov m64, r64|outcome.#GP->#PF|native~qemu".
std::string Signature(const Mismatch& m, std::string_view engine_a, std::string_view engine_b);

}  // namespace cpudiff

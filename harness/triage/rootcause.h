// Root causes: a campaign's divergences collapsed so that one root cause is
// one signature. A divergence is recorded against the instruction the
// differing field is attributed to (the last writer of a register, the
// faulting instruction), which is not where the engines started to
// disagree: a wrong value flows on into later flags, stores and faults,
// and each of those has its own form. Lockstep over the case's instruction
// prefixes finds the first instruction after which the engines' states
// differ; the root signature names that instruction's form, the first
// differing field there (for an outcome, the pair of outcome kinds) and the
// engines.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "engines/engine.h"
#include "engines/x86/testcase.h"
#include "harness/compare/compare.h"
#include "harness/triage/known.h"

namespace cpudiff {

struct RootCause {
  std::string signature;  // "form|field|engineA~engineB"
  std::string insn_form;  // the root instruction's form, or its class ("any m64")
  std::string field;      // "gpr", "flags.CF", "outcome.#GP->#PF", ...
  int insn_index = -1;    // index of the root instruction in the case
};

// The case stopped after its first `count` instructions (Zydis boundaries):
// a HLT over the first byte of the next one, the code otherwise unchanged
// (rip-relative loads of the code's own bytes see the same values), without
// an expect. `count` >= the number of instructions: the whole case.
TestCase InstructionPrefix(const TestCase& tc, size_t count);
// Every prefix of the case: 1, 2, ... instructions, the last one the whole
// case.
std::vector<TestCase> InstructionPrefixes(const TestCase& tc);

// The root cause from both engines' results on every prefix of a case
// (`prefixes` as InstructionPrefixes made them): the first prefix whose
// results differ names the instruction and the field. An outcome
// difference comes first; a register, flag or memory difference is the
// comparer's first mismatch there. When the reference faults on memory
// (#GP, #SS, #PF, #AC) at an instruction with an explicit memory operand,
// the form is the operand's class ("any m64"): the address decides such
// faults, not the operation (one missing canonical-address check shows up
// under every form that touches memory); an instruction-fetch #PF is
// "any fetch". MXCSR differences and #XM on silicon are "any simd-fp": the
// status flags and #XM delivery are shared by every SIMD floating-point
// instruction. nullopt when no prefix differs.
std::optional<RootCause> RootCauseFromPrefixes(const std::vector<TestCase>& prefixes,
                                               const std::vector<RunResult>& ref,
                                               const std::vector<RunResult>& other,
                                               const std::string& ref_name,
                                               const std::string& other_name,
                                               const CompareOptions& opts);

// Runs the prefixes of `tc` on both engines and returns its root cause.
std::optional<RootCause> FindRootCause(const TestCase& tc, Engine& ref, Engine& other,
                                       const std::string& ref_name, const std::string& other_name,
                                       const CompareOptions& opts);

struct MinimizedRoot {
  TestCase tc;  // the smallest case found (with the reference's end state as expect)
  int instructions = 0;
  int runs = 0;  // candidates tried
  bool timed_out = false;
};

// Delta debugging over the instruction list keeping the root signature,
// then each general register towards zero. Stops trying after `seconds`
// (the best case so far is kept). nullopt when the case does not show
// `signature` when run again.
std::optional<MinimizedRoot> MinimizeRoot(const TestCase& tc, const std::string& signature,
                                          Engine& ref, Engine& other, const std::string& ref_name,
                                          const std::string& other_name, const CompareOptions& opts,
                                          double seconds);

struct CollapseOptions {
  std::string db_path = "cpudiff.db";
  int64_t run_id = 0;  // 0: the latest run
  uint32_t timeout_ms = 1000;
  uint64_t max_instructions = 1'000'000;
  bool minimize = true;
  double minimize_seconds = 900;      // for all signatures together
  double per_signature_seconds = 10;  // for one signature
  size_t max_list = SIZE_MAX;         // signatures printed (all are stored)
  const KnownList* known = nullptr;
};

// `cpudiff triage --collapse`: the root cause of every divergent (case,
// engine) of the run by lockstep, grouped by root signature, one
// representative per signature minimized (most frequent first, within the
// time budget), stored in the database (table root_causes) and listed.
// Progress goes to `err`. Returns 0, or 2 on bad input.
int RunCollapse(const CollapseOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace cpudiff

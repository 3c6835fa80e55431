// Minimizing a divergent case and finding the first instruction after which
// engines disagree.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "engines/x86/testcase.h"
#include "harness/store/store.h"

namespace cpudiff {

// Byte offset and length of each instruction of a case's code, in decode
// order (Zydis). Stops at the first undecodable byte, which becomes one
// last one-byte "instruction" so that the bytes are all covered.
std::vector<std::pair<size_t, size_t>> InstructionBounds(const std::vector<uint8_t>& code);

// Delta debugging (ddmin) over a list of instruction indices: the smallest
// subset of `keep` (order kept) for which `shows` still holds, found by
// dropping ever smaller chunks. `go_on` (optional) is asked before every
// try; once it says no, the smallest list so far is returned.
std::vector<size_t> DeltaDebug(std::vector<size_t> keep,
                               const std::function<bool(const std::vector<size_t>&)>& shows,
                               const std::function<bool()>& go_on = {});

struct MinimizeOptions {
  std::string db_path = "cpudiff.db";
  int64_t run_id = 0;     // 0: the latest run
  std::string case_key;   // id, hash prefix or name
  std::string signature;  // empty: the case's first divergence in the run
  std::string output;     // corpus v1 file to write; empty: stdout
  uint32_t timeout_ms = 1000;
  uint64_t max_instructions = 1'000'000;
};

// Delta debugging over the instruction list (keeping instruction
// boundaries), then registers, flags, MXCSR and memory pushed towards zero,
// keeping every step that still shows the same signature on the same two
// engines (run again for each try). Writes the smallest case as one corpus
// v1 line, with the reference engine's end state as its expect. Progress
// and the result go to `out`. Returns 0 on success, 2 on bad input (no such
// case, signature or engine), 1 when the case no longer shows the
// signature when run again.
int RunMinimize(const MinimizeOptions& opts, std::ostream& out, std::ostream& err);

struct LockstepOptions {
  std::string db_path = "cpudiff.db";
  int64_t run_id = 0;
  std::string case_key;
  std::vector<std::string> engines;  // empty: the run's engines available here
  uint32_t timeout_ms = 1000;
  uint64_t max_instructions = 1'000'000;
};

// Runs every prefix of the case's instruction list (1, 2, ... instructions,
// each ending at the appended HLT) on each engine and names the first
// instruction after which an engine's state differs from the reference,
// with both states. Returns 0 when all agree, 1 when some differ, 2 on bad
// input.
int RunLockstep(const LockstepOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace cpudiff

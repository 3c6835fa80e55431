// The CI gate: a run passes when every divergence signature it recorded is
// either a known divergence (corpus/known) or already in a baseline
// database; anything else is new and fails the gate.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace cpudiff {

struct GateOptions {
  std::string db_path = "cpudiff.db";
  int64_t run_id = 0;         // 0: the latest run
  std::string known_path;     // file or directory of known divergences; empty: none
  std::string baseline_path;  // an earlier campaign database; empty: none
  std::string junit_path;     // write JUnit XML here when set
  std::string markdown_path;  // write a Markdown summary here when set
  // When set, each new signature's example case is minimized (both engines
  // run again, see RunMinimize) and appended to this corpus file.
  std::string minimize_path;
};

// Prints a summary and the new signatures to `out`. Returns 0 when nothing is
// new, 1 when something is, 2 on bad input (missing database or run,
// malformed known file, unwritable output), with the reason on `err`.
int RunGate(const GateOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace cpudiff

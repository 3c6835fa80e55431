// `cpudiff merge`: joins the databases of a sharded campaign (`cpudiff fuzz
// --shard K/N`, one database per shard) into one.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace cpudiff {

struct MergeOptions {
  std::vector<std::string> inputs;  // shard databases; the latest run of each is merged
  std::string output;               // created if missing; the merged run is added to it
  bool quiet = false;
};

// Merges the latest run of every input into one new run of the output:
// cases stored in full once per hash (the first input that has a hash wins;
// later copies and their results and divergences are dropped), agreeing
// cases once per hash, outcome counts summed, signatures counted once per
// divergence kept, and triage statuses other than "new" carried over.
// The inputs must be runs of the same campaign (same engines, generator
// options and seed; only the shard differs). The merged run is `done` when
// every input run is, `interrupted` otherwise. Returns the exit code.
int RunMerge(const MergeOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace cpudiff

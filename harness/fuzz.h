// `cpudiff fuzz`: a campaign over generated cases (testgen/fuzz.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "harness/campaign.h"
#include "testgen/fuzz.h"

namespace cpudiff {

struct FuzzCommandOptions {
  CampaignOptions campaign;
  FuzzOptions generator;
  uint64_t seed = 1;
  uint64_t count = 0;                     // cases; 0 with seconds == 0: kDefaultFuzzCount
  double seconds = 0;                     // wall-time limit; 0: none
  std::vector<std::string> mutate_files;  // corpus files whose cases are mutated
  size_t report_examples = 10;            // most frequent signatures listed at the end
  // This process runs shard `shard_index` of `shard_count` (--shard K/N):
  // the cases whose index i has i % N == K, so that N shards together run
  // exactly the cases of one unsharded campaign (harness/merge.h joins
  // their databases).
  uint64_t shard_index = 0;
  uint64_t shard_count = 1;
  // Continue the latest run of the database when it is the same campaign
  // (same options and seed): its cases are skipped, the run goes on.
  bool resume = false;
};

inline constexpr uint64_t kDefaultFuzzCount = 10000;

// Parses "90", "90s", "15m", "2h" into seconds; false when malformed.
bool ParseDuration(const std::string& text, double* seconds);

// Parses "K/N" (0 <= K < N, the index as Kubernetes' JOB_COMPLETION_INDEX
// gives it) into *index and *count; false when malformed.
bool ParseShard(const std::string& text, uint64_t* index, uint64_t* count);

// Generates cases from `seed` (case i is FuzzGenerator::CaseSeed(seed, i))
// until `count` cases or `seconds` have passed. With a shard, only the
// indexes i < count with i % shard_count == shard_index.
class GeneratorSource final : public CaseSource {
 public:
  GeneratorSource(const FuzzGenerator& gen, uint64_t seed, uint64_t count, double seconds,
                  uint64_t shard_index = 0, uint64_t shard_count = 1);
  bool Next(TestCase* out) override;
  double FractionDone(size_t done) const override;

 private:
  const FuzzGenerator& gen_;
  uint64_t seed_;
  uint64_t count_;
  double seconds_;
  uint64_t shard_count_;
  uint64_t index_;
  std::chrono::steady_clock::time_point start_;
};

// Runs the fuzzing campaign, then (unless quiet) the report of its
// divergences. Returns the exit code.
int RunFuzz(FuzzCommandOptions opts, std::ostream& out, std::ostream& err);

}  // namespace cpudiff

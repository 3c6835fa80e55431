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
};

inline constexpr uint64_t kDefaultFuzzCount = 10000;

// Parses "90", "90s", "15m", "2h" into seconds; false when malformed.
bool ParseDuration(const std::string& text, double* seconds);

// Generates cases from `seed` (case i is FuzzGenerator::CaseSeed(seed, i))
// until `count` cases or `seconds` have passed.
class GeneratorSource final : public CaseSource {
 public:
  GeneratorSource(const FuzzGenerator& gen, uint64_t seed, uint64_t count, double seconds);
  bool Next(TestCase* out) override;
  double FractionDone(size_t done) const override;

 private:
  const FuzzGenerator& gen_;
  uint64_t seed_;
  uint64_t count_;
  double seconds_;
  uint64_t index_ = 0;
  std::chrono::steady_clock::time_point start_;
};

// Runs the fuzzing campaign, then (unless quiet) the report of its
// divergences. Returns the exit code.
int RunFuzz(FuzzCommandOptions opts, std::ostream& out, std::ostream& err);

}  // namespace cpudiff

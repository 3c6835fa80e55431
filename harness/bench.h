// `cpudiff bench`: cases per second per engine, side by side in one run.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace cpudiff {

struct BenchOptions {
  std::vector<std::string> engines;  // empty: every available engine
  // A corpus file or a folder of .jsonl files measured as they are.
  std::string seed_corpus = "corpus/seed";
  size_t cases = 20000;  // generated cases per workload
  // Cases of the end-to-end campaign measurement (0: skip it).
  size_t campaign_cases = 20000;
  size_t batch = 256;
  std::string json_path;
  // Also write the generated new-code cases here as a corpus file, e.g. for
  // a `cpudiff run` campaign over the same random cases.
  std::string write_corpus;
  uint64_t seed = 1;
};

int RunBench(const BenchOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace cpudiff

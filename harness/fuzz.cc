#include "harness/fuzz.h"

#include <cstdlib>
#include <iostream>
#include <stdexcept>

#include "harness/corpus/corpus.h"
#include "harness/store/store.h"
#include "reports/report.h"

namespace cpudiff {

bool ParseDuration(const std::string& text, double* seconds) {
  if (text.empty()) return false;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  std::string unit(end);
  double scale = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : -1;
  if (scale < 0 || end == text.c_str() || !(v > 0)) return false;
  *seconds = v * scale;
  return true;
}

bool ParseShard(const std::string& text, uint64_t* index, uint64_t* count) {
  size_t slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == text.size()) return false;
  std::string k = text.substr(0, slash), n = text.substr(slash + 1);
  auto digits = [](const std::string& s) {
    return s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (!digits(k) || !digits(n)) return false;
  *index = std::stoull(k);
  *count = std::stoull(n);
  return *count > 0 && *index < *count;
}

GeneratorSource::GeneratorSource(const FuzzGenerator& gen, uint64_t seed, uint64_t count,
                                 double seconds, uint64_t shard_index, uint64_t shard_count)
    : gen_(gen),
      seed_(seed),
      count_(count),
      seconds_(seconds),
      shard_count_(shard_count ? shard_count : 1),
      index_(shard_index),
      start_(std::chrono::steady_clock::now()) {}

bool GeneratorSource::Next(TestCase* out) {
  if (count_ && index_ >= count_) return false;
  if (seconds_ > 0 &&
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count() >=
          seconds_) {
    return false;
  }
  gen_.Generate(FuzzGenerator::CaseSeed(seed_, index_), out);
  index_ += shard_count_;
  return true;
}

double GeneratorSource::FractionDone(size_t done) const {
  if (count_) {
    // This shard's share of the indexes below count_.
    return static_cast<double>(done) * static_cast<double>(shard_count_) /
           static_cast<double>(count_);
  }
  if (seconds_ > 0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count() /
           seconds_;
  }
  return -1;
}

int RunFuzz(FuzzCommandOptions opts, std::ostream& out, std::ostream& err) {
  size_t rejected = 0;
  for (const std::string& path : opts.mutate_files) {
    CorpusReadResult r = ReadCorpusFile(
        path, [&](TestCase&& tc) { opts.generator.corpus.push_back(std::move(tc)); });
    for (const CorpusError& e : r.errors) err << e.ToString() << "\n";
    if (r.io_error) {
      err << "cpudiff: cannot read " << path << "; nothing was run\n";
      return kExitUsage;
    }
    rejected += r.errors.size();
  }
  if (rejected && opts.campaign.strict) {
    err << "cpudiff: " << rejected << " malformed line(s); --strict refuses to start\n";
    return kExitUsage;
  }
  std::unique_ptr<FuzzGenerator> gen;
  try {
    gen = std::make_unique<FuzzGenerator>(opts.generator);
  } catch (const std::invalid_argument& e) {
    err << "cpudiff: " << e.what() << "\n";
    return kExitUsage;
  }
  if (opts.count == 0 && opts.seconds <= 0) opts.count = kDefaultFuzzCount;
  std::string config = gen->ConfigJson();
  config.pop_back();  // '}'
  config += ",\"seed\":" + std::to_string(opts.seed) + ",\"count\":" + std::to_string(opts.count) +
            ",\"seconds\":" + std::to_string(opts.seconds);
  if (opts.shard_count > 1) {
    config += ",\"shard\":\"" + std::to_string(opts.shard_index) + "/" +
              std::to_string(opts.shard_count) + "\"";
  }
  config += "}";
  opts.campaign.extra_config = config;
  opts.campaign.resume = opts.resume;
  GeneratorSource source(*gen, opts.seed, opts.count, opts.seconds, opts.shard_index,
                         opts.shard_count);
  int rc = RunCases(opts.campaign, source, rejected, out, err);
  if (rc == kExitDiverged && !opts.campaign.quiet) {
    try {
      std::unique_ptr<Store> store = Store::Open(opts.campaign.db_path);
      if (std::optional<RunInfo> run = store->LatestRun()) {
        // The most frequent signatures; the whole report is one command away.
        std::vector<SignatureRow> sigs = store->RunSignatures(run->id);
        out << "\ntop signatures (divergences, cases):\n";
        for (size_t i = 0; i < sigs.size() && i < opts.report_examples; ++i) {
          out << "  " << sigs[i].count << "  " << sigs[i].cases << "  " << sigs[i].signature
              << "  e.g. 'cpudiff show " << sigs[i].example_case << " --db "
              << opts.campaign.db_path << "'\n";
        }
        if (sigs.size() > opts.report_examples) {
          out << "  ... " << sigs.size() - opts.report_examples << " more: 'cpudiff report --db "
              << opts.campaign.db_path << "'\n";
        }
      }
    } catch (const std::exception& e) {
      err << "cpudiff: report: " << e.what() << "\n";
    }
  }
  return rc;
}

}  // namespace cpudiff

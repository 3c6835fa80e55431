#include "harness/bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "harness/campaign.h"
#include "harness/corpus/corpus.h"
#include "testgen/generate.h"

namespace cpudiff {
namespace {

struct Workload {
  std::string name;
  std::string description;
  std::vector<TestCase> cases;
};

std::vector<std::string> CorpusFiles(const std::string& path) {
  std::vector<std::string> files;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
      if (e.path().extension() == ".jsonl") files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
  } else if (std::filesystem::exists(path, ec)) {
    files.push_back(path);
  }
  return files;
}

// Runs every case once through the engine in batches and returns cases/s,
// after one warm-up batch that is not timed.
double Measure(Engine& engine, const std::vector<TestCase>& cases, size_t batch_size,
               std::vector<std::pair<OutcomeKind, size_t>>* outcomes, uint64_t* executed,
               uint64_t* translated) {
  std::vector<const TestCase*> ptrs;
  ptrs.reserve(cases.size());
  for (const TestCase& tc : cases) ptrs.push_back(&tc);
  std::vector<RunResult> results(batch_size);
  {
    size_t n = std::min(batch_size, ptrs.size());
    engine.Run(std::span(ptrs.data(), n), std::span(results.data(), n));
  }
  std::map<OutcomeKind, size_t> counts;
  auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < ptrs.size(); i += batch_size) {
    size_t n = std::min(batch_size, ptrs.size() - i);
    engine.Run(std::span(ptrs.data() + i, n), std::span(results.data(), n));
    for (size_t k = 0; k < n; ++k) {
      counts[results[k].outcome.kind]++;
      *executed += results[k].insns_executed;
      *translated += results[k].insns_translated;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  outcomes->assign(counts.begin(), counts.end());
  return secs > 0 ? static_cast<double>(ptrs.size()) / secs : 0;
}

}  // namespace

int RunBench(const BenchOptions& opts, std::ostream& out, std::ostream& err) {
  std::vector<SelectedEngine> selected;
  std::string error;
  if (!SelectEngines(opts.engines, "", &selected, &error, err)) {
    err << "cpudiff: " << error << "\n";
    return kExitUsage;
  }

  std::vector<Workload> workloads;
  // The seed corpus, as it is (repeated up to `cases` so that short corpora
  // are timed over more than a few batches).
  std::vector<TestCase> seed_cases;
  for (const std::string& f : CorpusFiles(opts.seed_corpus)) {
    CorpusReadResult r = ReadCorpusFile(f, [&](TestCase&& tc) { seed_cases.push_back(std::move(tc)); });
    for (const CorpusError& e : r.errors) err << e.ToString() << "\n";
  }
  if (!seed_cases.empty()) {
    Workload w{"seed", "seed corpus (" + std::to_string(seed_cases.size()) + " cases, repeated)", {}};
    while (w.cases.size() < opts.cases) {
      for (const TestCase& tc : seed_cases) {
        if (w.cases.size() >= opts.cases) break;
        w.cases.push_back(tc);
      }
    }
    workloads.push_back(std::move(w));
  } else {
    err << "note: no seed corpus at " << opts.seed_corpus << "; measuring generated cases only\n";
  }
  Rng rng(opts.seed);
  GenOptions gen;
  {
    Workload w{"new-code", "generated, 1-8 instructions, new code per case", {}};
    for (size_t i = 0; i < opts.cases; ++i) w.cases.push_back(GenerateAluCase(rng, gen));
    workloads.push_back(std::move(w));
  }
  {
    constexpr size_t kVariants = 64;
    Workload w{"shared-code", "generated, 1-8 instructions, 64 initial states per code stream", {}};
    while (w.cases.size() < opts.cases) {
      TestCase base = GenerateAluCase(rng, gen);
      for (size_t v = 0; v < kVariants && w.cases.size() < opts.cases; ++v) {
        TestCase tc = base;
        RandomizeRegisters(rng, &tc);
        w.cases.push_back(std::move(tc));
      }
    }
    workloads.push_back(std::move(w));
  }

  nlohmann::ordered_json json;
  json["host_cpu"] = HostCpuName();
  json["cases_per_workload"] = opts.cases;
  json["batch"] = opts.batch;
  char line[256];
  std::snprintf(line, sizeof line, "%-11s", "engine");
  out << line;
  for (const Workload& w : workloads) {
    std::snprintf(line, sizeof line, " %14s", (w.name + " c/s").c_str());
    out << line;
  }
  out << "\n";
  std::map<std::string, double> native_rate;
  // Per engine that reports it: the share of executed guest instructions
  // that ran as translated code, per workload.
  std::vector<std::string> shares;
  for (const SelectedEngine& s : selected) {
    std::unique_ptr<Engine> engine;
    try {
      engine = s.desc->create(EngineOptions{});
    } catch (const std::exception& e) {
      err << "cpudiff: engine '" << s.desc->name << "' failed to start: " << e.what() << "\n";
      return kExitUsage;
    }
    std::snprintf(line, sizeof line, "%-11s", std::string(s.desc->name).c_str());
    out << line << std::flush;
    nlohmann::ordered_json ej;
    ej["version"] = s.availability.version;
    for (const Workload& w : workloads) {
      std::vector<std::pair<OutcomeKind, size_t>> outcomes;
      uint64_t executed = 0, translated = 0;
      double rate = Measure(*engine, w.cases, opts.batch, &outcomes, &executed, &translated);
      std::snprintf(line, sizeof line, " %14.0f", rate);
      out << line << std::flush;
      nlohmann::ordered_json wj;
      wj["cases_per_second"] = rate;
      for (const auto& [k, n] : outcomes) wj["outcomes"][std::string(OutcomeKindName(k))] = n;
      if (executed != 0) {
        double share = 100.0 * static_cast<double>(translated) / static_cast<double>(executed);
        wj["guest_instructions"] = executed;
        wj["translated_share_percent"] = share;
        std::snprintf(line, sizeof line, " %s %.1f%%", w.name.c_str(), share);
        if (shares.empty() || shares.back().rfind(std::string(s.desc->name) + ":", 0) != 0) {
          shares.push_back(std::string(s.desc->name) + ":");
        }
        shares.back() += line;
      }
      ej["workloads"][w.name] = wj;
      if (s.desc->name == "native") native_rate[w.name] = rate;
    }
    out << "\n";
    json["engines"][std::string(s.desc->name)] = ej;
  }
  for (const Workload& w : workloads) {
    json["workloads"][w.name] = w.description;
    out << "  " << w.name << ": " << w.description << "\n";
  }
  if (!native_rate.empty()) {
    out << "ratios to native (same run):";
    for (const SelectedEngine& s : selected) {
      if (s.desc->name == "native") continue;
      out << "\n  " << s.desc->name << ":";
      for (const Workload& w : workloads) {
        double r = json["engines"][std::string(s.desc->name)]["workloads"][w.name]["cases_per_second"];
        double n = native_rate[w.name];
        std::snprintf(line, sizeof line, " %s %.2f", w.name.c_str(), n > 0 ? r / n : 0.0);
        out << line;
      }
    }
    out << "\n";
  }
  if (!shares.empty()) {
    out << "guest instructions run as translated code:";
    for (const std::string& sh : shares) out << "\n  " << sh;
    out << "\n";
  }
  if (!opts.json_path.empty()) {
    std::ofstream f(opts.json_path);
    if (!f) {
      err << "cpudiff: cannot write " << opts.json_path << "\n";
      return kExitUsage;
    }
    f << json.dump(2) << "\n";
  }
  return kExitAgree;
}

}  // namespace cpudiff

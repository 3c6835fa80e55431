#include "harness/bench.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "harness/campaign.h"
#include "harness/corpus/corpus.h"
#include "harness/fuzz.h"
#include "harness/store/store.h"
#include "testgen/generate.h"

namespace cpudiff {
namespace {

struct Workload {
  std::string name;
  std::string description;
  std::vector<TestCase> cases;
};

std::vector<std::string> CorpusFiles(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {};
  return ExpandCorpusPaths({path});
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

// A long integer loop: mov ecx, N; l: add rax, rcx; xor rdx, rax; dec ecx;
// jnz l (then the appended hlt).
constexpr uint32_t kLoopIterations = 5'000'000;
constexpr uint64_t kLoopInstructions = 1 + 4ull * kLoopIterations;

double MeasureLoopMips(const EngineDesc& desc) {
  TestCase tc;
  tc.generator = "loop";
  tc.mem = SmallLayout();
  tc.init.rip = tc.code_addr;
  tc.init.gpr[kRsp] = kDefaultStackAddr + kPageSize - 16;
  tc.code = {0xb9,
             static_cast<uint8_t>(kLoopIterations),
             static_cast<uint8_t>(kLoopIterations >> 8),
             static_cast<uint8_t>(kLoopIterations >> 16),
             static_cast<uint8_t>(kLoopIterations >> 24),
             0x48,
             0x01,
             0xc8,
             0x48,
             0x31,
             0xc2,
             0xff,
             0xc9,
             0x75,
             0xf6};
  EngineOptions o;
  o.timeout_ms = 60000;
  o.max_instructions = 2 * kLoopInstructions;
  std::unique_ptr<Engine> engine;
  try {
    engine = desc.create(o);
  } catch (const std::exception&) {
    return 0;
  }
  const TestCase* p = &tc;
  RunResult r;
  auto t0 = std::chrono::steady_clock::now();
  engine->Run(std::span(&p, 1), std::span(&r, 1));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r.outcome.kind != OutcomeKind::kHalt || secs <= 0) return 0;
  return static_cast<double>(kLoopInstructions) / secs / 1e6;
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
    CorpusReadResult r =
        ReadCorpusFile(f, [&](TestCase&& tc) { seed_cases.push_back(std::move(tc)); });
    for (const CorpusError& e : r.errors) err << e.ToString() << "\n";
  }
  if (!seed_cases.empty()) {
    Workload w{
        "seed", "seed corpus (" + std::to_string(seed_cases.size()) + " cases, repeated)", {}};
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
  if (!opts.write_corpus.empty()) {
    std::ofstream f(opts.write_corpus);
    for (const TestCase& tc : workloads.back().cases) f << WriteCaseLine(tc) << "\n";
    if (!f) {
      err << "cpudiff: cannot write " << opts.write_corpus << "\n";
      return kExitUsage;
    }
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
  std::snprintf(line, sizeof line, " %14s", "loop MIPS");
  out << line << "\n";
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
    double mips = MeasureLoopMips(*s.desc);
    if (mips > 0) {
      std::snprintf(line, sizeof line, " %14.0f", mips);
    } else {
      std::snprintf(line, sizeof line, " %14s", "-");
    }
    out << line << "\n";
    ej["loop_mips"] = mips;
    json["engines"][std::string(s.desc->name)] = ej;
  }
  for (const Workload& w : workloads) {
    json["workloads"][w.name] = w.description;
    out << "  " << w.name << ": " << w.description << "\n";
  }
  out << "  loop MIPS: one case running a 4-instruction integer loop " << kLoopIterations
      << " times (millions of instructions per second; - when the engine did not halt)\n";
  if (!native_rate.empty()) {
    out << "ratios to native (same run):";
    for (const SelectedEngine& s : selected) {
      if (s.desc->name == "native") continue;
      out << "\n  " << s.desc->name << ":";
      for (const Workload& w : workloads) {
        double r =
            json["engines"][std::string(s.desc->name)]["workloads"][w.name]["cases_per_second"];
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
  // End to end: what `cpudiff fuzz` sustains with every selected engine at
  // once (generation, every engine, comparison, store), into a scratch
  // database, with one and with two lanes of engine processes.
  if (opts.campaign_cases > 0) {
    std::vector<std::string> names;
    for (const SelectedEngine& s : selected) names.emplace_back(s.desc->name);
    FuzzGenerator gen{FuzzOptions{}};
    std::string joined;
    for (const std::string& n : names) joined += (joined.empty() ? "" : ",") + n;
    out << "campaign end to end (cpudiff fuzz, " << opts.campaign_cases << " cases, engines "
        << joined << "):\n";
    for (size_t jobs : {size_t{1}, size_t{2}}) {
      std::string db = (std::filesystem::temp_directory_path() /
                        ("cpudiff-bench-" + std::to_string(getpid()) + ".db"))
                           .string();
      CampaignOptions co;
      co.engines = names;
      co.db_path = db;
      co.quiet = true;
      co.jobs = jobs;
      co.engine_options.timeout_ms = 250;  // as cpudiff fuzz
      GeneratorSource source(gen, opts.seed, opts.campaign_cases, 0);
      std::ostringstream sink;
      // CPU time of this process and of every engine process: on a shared
      // machine the elapsed time says more about the other load than about
      // the campaign. A worker left running when its zygote is killed would
      // be reaped by init and its time lost, so this process adopts
      // orphaned descendants and reaps them (RUSAGE_CHILDREN then counts
      // them) once the campaign's engines are gone.
      prctl(PR_SET_CHILD_SUBREAPER, 1);
      auto reap_all = [] {
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (std::chrono::steady_clock::now() < until) {
          pid_t p = waitpid(-1, nullptr, WNOHANG);
          if (p < 0 && errno != EINTR) return;  // ECHILD: none left
          if (p == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      };
      reap_all();
      auto cpu_seconds = [] {
        double total = 0;
        for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
          rusage ru{};
          getrusage(who, &ru);
          for (const timeval& tv : {ru.ru_utime, ru.ru_stime}) {
            total += static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
          }
        }
        return total;
      };
      const double cpu_before = cpu_seconds();
      auto start = std::chrono::steady_clock::now();
      int rc = RunCases(co, source, 0, sink, err);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      reap_all();
      const double cpu = cpu_seconds() - cpu_before;
      const long cores = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
      int64_t divergent = 0, stored = 0;
      {
        std::unique_ptr<Store> store = Store::Open(db);
        int64_t run = store->LatestRun()->id;
        divergent = store->CountDivergentCases(run);
        stored = store->CountCasesDone(run) - store->CountAgreedCases(run);
      }
      std::uintmax_t bytes = std::filesystem::file_size(db);
      for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
      if (rc != kExitAgree && rc != kExitDiverged) {
        err << "cpudiff: bench: the campaign failed (exit " << rc << ")\n";
        return kExitInternal;
      }
      double rate = secs > 0 ? static_cast<double>(opts.campaign_cases) / secs : 0;
      const double cpu_ms_per_case =
          opts.campaign_cases ? cpu * 1e3 / static_cast<double>(opts.campaign_cases) : 0;
      char campaign_line[512];
      std::snprintf(
          campaign_line, sizeof campaign_line,
          "  --jobs %zu: %8.0f cases/s  (%.2f s; %lld divergent cases, %lld stored in "
          "full; database %.1f MB)\n"
          "            CPU %.3f ms per case over every process: at most %.0f cases/s "
          "on %ld idle cores\n",
          jobs, rate, secs, static_cast<long long>(divergent), static_cast<long long>(stored),
          static_cast<double>(bytes) / 1e6, cpu_ms_per_case,
          cpu_ms_per_case > 0 ? static_cast<double>(cores) * 1e3 / cpu_ms_per_case : 0, cores);
      out << campaign_line << std::flush;
      nlohmann::ordered_json cj;
      cj["cases"] = opts.campaign_cases;
      cj["cases_per_second"] = rate;
      cj["divergent_cases"] = divergent;
      cj["database_bytes"] = bytes;
      cj["cpu_ms_per_case"] = cpu_ms_per_case;
      json["campaign"]["jobs_" + std::to_string(jobs)] = cj;
    }
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

#include "harness/campaign.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <unordered_set>

#include "engines/outside/outside.h"
#include "harness/compare/compare.h"
#include "harness/corpus/corpus.h"
#include "harness/store/store.h"
#include "harness/version.h"

namespace cpudiff {

std::atomic<bool> g_stop_requested{false};

std::string HostCpuName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}

bool SelectEngines(const std::vector<std::string>& names, const std::string& reference,
                   std::vector<SelectedEngine>* out, std::string* error, std::ostream& note) {
  out->clear();
  auto known = [] {
    std::string s;
    for (const EngineDesc& d : BuiltinEngines()) s += (s.empty() ? "" : ", ") + std::string(d.name);
    return s;
  };
  if (names.empty()) {
    for (const EngineDesc& d : BuiltinEngines()) {
      Availability a = d.probe();
      if (a.available) {
        out->push_back({&d, a});
      } else {
        note << "note: engine " << d.name << " skipped: " << a.reason << "\n";
      }
    }
    if (out->empty()) {
      *error = "no engine is available on this host (see 'cpudiff engines')";
      return false;
    }
  } else {
    for (const std::string& n : names) {
      // plugin:PATH and exec:COMMAND name outside engines (engines/outside).
      const EngineDesc* d = IsOutsideEngine(n) ? OutsideEngine(n, error) : FindEngine(n);
      if (!d && IsOutsideEngine(n)) return false;
      if (!d) {
        *error = "unknown engine '" + n + "' (known: " + known() +
                 ", plugin:PATH.so, exec:'COMMAND ARGS')";
        return false;
      }
      if (std::any_of(out->begin(), out->end(), [&](const SelectedEngine& s) { return s.desc == d; })) {
        continue;
      }
      Availability a = d->probe();
      if (!a.available) {
        *error = "engine '" + n + "' is not available: " + a.reason;
        return false;
      }
      out->push_back({d, a});
    }
  }
  // The reference goes first.
  size_t ref = out->size();
  if (!reference.empty()) {
    for (size_t i = 0; i < out->size(); ++i) {
      if ((*out)[i].desc->name == reference) ref = i;
    }
    if (ref == out->size()) {
      const EngineDesc* d =
          IsOutsideEngine(reference) ? OutsideEngine(reference, error) : FindEngine(reference);
      if (!d) {
        if (!IsOutsideEngine(reference)) {
          *error = "unknown reference engine '" + reference + "' (known: " + known() + ")";
        }
        return false;
      }
      Availability a = d->probe();
      if (!a.available) {
        *error = "reference engine '" + reference + "' is not available: " + a.reason;
        return false;
      }
      out->push_back({d, a});
      ref = out->size() - 1;
    }
  } else {
    for (size_t i = 0; i < out->size(); ++i) {
      if ((*out)[i].desc->name == "native") ref = i;
    }
    if (ref == out->size()) {
      // First built-in in DESIGN order (BuiltinEngines() is in that order),
      // else the first named.
      ref = 0;
      for (size_t i = 1; i < out->size(); ++i) {
        const EngineDesc* a = (*out)[i].desc;
        const EngineDesc* b = (*out)[ref].desc;
        if (a->builtin && (!b->builtin || a < b)) ref = i;
      }
    }
  }
  std::rotate(out->begin(), out->begin() + static_cast<long>(ref), out->begin() + static_cast<long>(ref) + 1);
  return true;
}

namespace {

std::string NowIso() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

struct EngineTally {
  std::map<OutcomeKind, int64_t> outcomes;
  int64_t compared = 0;        // cases compared with the reference
  int64_t agreed = 0;          // ... that agreed
  int64_t expect_checked = 0;  // cases with expect compared
  int64_t expect_failed = 0;
  uint64_t ns = 0;
};

class ProgressLine {
 public:
  ProgressLine(bool enabled, size_t total, std::ostream& err)
      : enabled_(enabled && isatty(STDERR_FILENO)), total_(total), err_(err) {}
  void Update(size_t done, int64_t divergences, bool force = false) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0;
    char buf[160];
    std::snprintf(buf, sizeof buf, "\r%zu/%zu cases  %.0f cases/s  %lld divergences  ETA %.0fs   ",
                  done, total_, rate, static_cast<long long>(divergences), eta);
    err_ << buf << std::flush;
    shown_ = true;
  }
  void Finish() {
    if (shown_) err_ << "\n";
  }

 private:
  bool enabled_;
  size_t total_;
  std::ostream& err_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

bool ComparableOutcome(OutcomeKind k) {
  return k != OutcomeKind::kUnsupported;
}

}  // namespace

int RunCampaign(const CampaignOptions& opts, std::ostream& out, std::ostream& err) {
  // 1. Engines.
  std::vector<SelectedEngine> selected;
  std::string error;
  if (!SelectEngines(opts.engines, opts.reference, &selected, &error, err)) {
    err << "cpudiff: " << error << "\n";
    return kExitUsage;
  }

  // 2. Corpora. Every malformed line is reported; --strict refuses to start.
  // A deque: cases keep their addresses (batches point into it) and growing
  // it never moves the cases already read.
  std::deque<TestCase> cases;
  size_t rejected = 0;
  bool io_error = false;
  for (const std::string& path : opts.corpus_files) {
    CorpusReadResult r = ReadCorpusFile(path, [&](TestCase&& tc) { cases.push_back(std::move(tc)); });
    for (const CorpusError& e : r.errors) err << e.ToString() << "\n";
    io_error |= r.io_error;
    if (!r.io_error) rejected += r.errors.size();
  }
  if (io_error) {
    err << "cpudiff: cannot read every corpus file; nothing was run\n";
    return kExitUsage;
  }
  if (rejected && opts.strict) {
    err << "cpudiff: " << rejected << " malformed line(s); --strict refuses to start\n";
    return kExitUsage;
  }

  // Checked before anything is recorded.
  std::ofstream expect_out;
  if (!opts.write_expect.empty()) {
    expect_out.open(opts.write_expect);
    if (!expect_out) {
      err << "cpudiff: cannot write " << opts.write_expect << ": " << std::strerror(errno) << "\n";
      return kExitUsage;
    }
  }

  // 3. Store.
  std::unique_ptr<Store> store;
  try {
    store = Store::Open(opts.db_path);
  } catch (const std::exception& e) {
    err << "cpudiff: " << e.what() << "\n";
    return kExitUsage;
  }

  nlohmann::ordered_json config;
  config["command"] = opts.command_line;
  config["corpus"] = opts.corpus_files;
  std::vector<std::string> engine_names;
  nlohmann::ordered_json versions = nlohmann::ordered_json::object();
  for (const SelectedEngine& s : selected) {
    engine_names.emplace_back(s.desc->name);
    versions[std::string(s.desc->name)] = s.availability.version;
  }
  config["engines"] = engine_names;
  config["reference"] = engine_names[0];
  config["strict"] = opts.strict;
  config["timeout_ms"] = opts.engine_options.timeout_ms;
  config["max_instructions"] = opts.engine_options.max_instructions;

  int64_t run_id = 0;
  if (opts.resume) {
    std::optional<RunInfo> last = store->LatestRun();
    if (last) {
      auto old = nlohmann::ordered_json::parse(last->config, nullptr, false);
      if (old.is_discarded() || old["engines"] != config["engines"] ||
          old["corpus"] != config["corpus"] || old["strict"] != config["strict"]) {
        err << "cpudiff: --resume: the last run in " << opts.db_path
            << " used other engines, corpora or modes (run " << last->id
            << "); start a new database or run without --resume\n";
        return kExitUsage;
      }
      run_id = last->id;
      err << "resuming run " << run_id << " (" << store->CountCasesDone(run_id)
          << " cases already done)\n";
    }
  }
  if (run_id == 0) {
    RunInfo info;
    info.started = NowIso();
    info.config = config.dump();
    info.host_cpu = HostCpuName();
    info.engine_versions = versions.dump();
    info.git_rev = CPUDIFF_GIT_REV;
    info.status = "running";
    run_id = store->BeginRun(info);
  }


  // 4. Start the engines.
  std::vector<std::unique_ptr<Engine>> engines;
  for (const SelectedEngine& s : selected) {
    try {
      engines.push_back(s.desc->create(opts.engine_options));
    } catch (const std::exception& e) {
      err << "cpudiff: engine '" << s.desc->name << "' failed to start: " << e.what() << "\n";
      store->FinishRun(run_id, "failed");
      return kExitUsage;
    }
  }
  CompareOptions cmp_base;
  cmp_base.strict = opts.strict;

  // 5. Batches.
  const size_t n_engines = engines.size();
  std::vector<EngineTally> tally(n_engines);
  int64_t divergences = 0;
  int64_t divergent_cases = 0;
  size_t skipped_done = 0;
  size_t done = 0;
  ProgressLine progress(opts.progress && !opts.quiet, cases.size(), err);
  std::vector<const TestCase*> batch;
  std::vector<std::vector<RunResult>> results(n_engines);
  bool interrupted = false;

  auto run_batch = [&]() -> bool {
    if (batch.empty()) return true;
    for (auto& r : results) {
      r.assign(batch.size(), RunResult{});
    }
    std::vector<std::thread> threads;
    std::vector<std::string> failures(n_engines);
    for (size_t e = 0; e < n_engines; ++e) {
      threads.emplace_back([&, e] {
        try {
          engines[e]->Run(batch, results[e]);
        } catch (const std::exception& ex) {
          failures[e] = ex.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    for (size_t e = 0; e < n_engines; ++e) {
      if (!failures[e].empty()) {
        err << "cpudiff: engine '" << selected[e].desc->name << "' failed: " << failures[e] << "\n";
        return false;
      }
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      const TestCase& tc = *batch[i];
      int64_t case_id = store->AddCase(tc, WriteCaseLine(tc));
      bool diverged = false;
      auto record = [&](const std::string& a, const std::string& b, const std::vector<Mismatch>& ms) {
        for (const Mismatch& m : ms) {
          StoredDivergence d;
          d.run_id = run_id;
          d.case_id = case_id;
          d.engine_a = a;
          d.engine_b = b;
          d.mismatch = m;
          d.signature = Signature(m, a, b);
          store->AddDivergence(d);
          ++divergences;
        }
        diverged |= !ms.empty();
      };
      const RunResult& ref = results[0][i];
      for (size_t e = 0; e < n_engines; ++e) {
        const RunResult& r = results[e][i];
        store->AddResult(run_id, case_id, std::string(selected[e].desc->name), r);
        tally[e].outcomes[r.outcome.kind]++;
        tally[e].ns += r.ns;
        if (e > 0 && ComparableOutcome(ref.outcome.kind) && ComparableOutcome(r.outcome.kind)) {
          CompareOptions co = cmp_base;
          co.observes_a = engines[0]->Observes() & ~ref.unobserved;
          co.observes_b = engines[e]->Observes() & ~r.unobserved;
          std::vector<Mismatch> ms = CompareResults(tc, ref, r, co);
          tally[e].compared++;
          if (ms.empty()) tally[e].agreed++;
          record(std::string(selected[0].desc->name), std::string(selected[e].desc->name), ms);
        }
        if (tc.expect && ComparableOutcome(r.outcome.kind)) {
          CompareOptions co = cmp_base;
          co.observes_b = engines[e]->Observes() & ~r.unobserved;
          std::vector<Mismatch> ms = CompareExpect(tc, r, co);
          tally[e].expect_checked++;
          if (!ms.empty()) tally[e].expect_failed++;
          record("expect", std::string(selected[e].desc->name), ms);
        }
      }
      if (diverged) ++divergent_cases;
      store->MarkCaseDone(run_id, case_id);
      if (expect_out.is_open() && ref.outcome.kind != OutcomeKind::kUnsupported &&
          ref.outcome.kind != OutcomeKind::kCrash) {
        TestCase with = tc;
        with.expect = ExpectFromResult(tc, ref);
        if (ref.outcome.kind == OutcomeKind::kTimeout) with.expect->regs.clear();
        expect_out << WriteCaseLine(with) << "\n";
      }
    }
    store->CommitBatch();
    done += batch.size();
    batch.clear();
    progress.Update(done, divergences);
    return true;
  };

  bool engine_failed = false;
  std::unordered_set<uint64_t> seen;
  size_t duplicates = 0;
  for (const TestCase& tc : cases) {
    if (g_stop_requested.load()) {
      interrupted = true;
      break;
    }
    // A case runs once per run: repeats within the corpora are skipped, and
    // so are cases a resumed run has already done.
    const uint64_t hash = tc.Hash();
    if (!seen.insert(hash).second) {
      ++duplicates;
      continue;
    }
    if (opts.resume && store->IsCaseDone(run_id, hash)) {
      ++skipped_done;
      continue;
    }
    batch.push_back(&tc);
    if (batch.size() >= opts.batch_size && !run_batch()) {
      engine_failed = true;
      break;
    }
  }
  if (!engine_failed && !interrupted && !run_batch()) engine_failed = true;
  progress.Update(done, divergences, true);
  progress.Finish();
  store->FinishRun(run_id, engine_failed ? "failed" : interrupted ? "interrupted" : "done");

  // 6. Summary.
  if (!opts.quiet) {
    out << "run " << run_id << ": " << done << " cases";
    if (skipped_done) out << " (" << skipped_done << " already done, skipped)";
    if (duplicates) out << ", " << duplicates << " repeated case(s) skipped";
    if (rejected) out << ", " << rejected << " malformed line(s) rejected";
    out << ", reference " << selected[0].desc->name << (opts.strict ? ", strict" : "") << "\n";
    for (size_t e = 0; e < n_engines; ++e) {
      const EngineTally& t = tally[e];
      char line[256];
      std::snprintf(line, sizeof line, "  %-10s", std::string(selected[e].desc->name).c_str());
      out << line;
      for (const auto& [kind, count] : t.outcomes) out << " " << OutcomeKindName(kind) << "=" << count;
      if (e > 0) out << "  agree " << t.agreed << "/" << t.compared;
      if (t.expect_checked) {
        out << "  expect " << (t.expect_checked - t.expect_failed) << "/" << t.expect_checked;
      }
      out << "\n";
    }
    out << divergences << " divergence(s) in " << divergent_cases << " case(s); database "
        << opts.db_path << " ('cpudiff report --db " << opts.db_path << "' for details)\n";
  }
  if (interrupted) err << "cpudiff: interrupted; everything done so far is committed\n";
  if (engine_failed) return kExitInternal;
  if (interrupted) return kExitInterrupted;
  if (rejected) {
    err << "cpudiff: " << rejected << " malformed line(s) were rejected\n";
    return kExitUsage;
  }
  return divergences ? kExitDiverged : kExitAgree;
}

}  // namespace cpudiff

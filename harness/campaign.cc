#include "harness/campaign.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
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
      if (std::any_of(out->begin(), out->end(),
                      [&](const SelectedEngine& s) { return s.desc == d; })) {
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
  std::rotate(out->begin(), out->begin() + static_cast<long>(ref),
              out->begin() + static_cast<long>(ref) + 1);
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
  ProgressLine(bool enabled, const CaseSource& source, std::ostream& err)
      : enabled_(enabled && isatty(STDERR_FILENO)), source_(source), err_(err) {}
  void Update(size_t done, int64_t divergences, size_t signatures, bool force = false) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    double f = source_.FractionDone(done);
    char eta[32] = "";
    if (f > 0 && f <= 1) std::snprintf(eta, sizeof eta, "  ETA %.0fs", secs * (1 - f) / f);
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "\r%zu cases  %.0f cases/s  %lld divergences  %zu signatures%s   ", done, rate,
                  static_cast<long long>(divergences), signatures, eta);
    err_ << buf << std::flush;
    shown_ = true;
  }
  void Finish() {
    if (shown_) err_ << "\n";
  }

 private:
  bool enabled_;
  const CaseSource& source_;
  std::ostream& err_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

bool ComparableOutcome(OutcomeKind k) { return k != OutcomeKind::kUnsupported; }

// Cases of a corpus, read up front.
class CorpusSource final : public CaseSource {
 public:
  explicit CorpusSource(std::deque<TestCase> cases) : cases_(std::move(cases)) {}
  bool Next(TestCase* out) override {
    if (next_ >= cases_.size()) return false;
    *out = std::move(cases_[next_++]);
    return true;
  }
  double FractionDone(size_t) const override {
    return cases_.empty() ? 1.0 : static_cast<double>(next_) / static_cast<double>(cases_.size());
  }

 private:
  std::deque<TestCase> cases_;
  size_t next_ = 0;
};

// One batch of cases and every engine's results for it. Reused: the cases'
// and results' buffers keep their capacity from batch to batch.
struct Batch {
  std::vector<TestCase> cases;
  std::vector<uint64_t> hashes;
  std::vector<const TestCase*> ptrs;
  std::vector<std::vector<RunResult>> results;  // [engine][case]
  size_t n = 0;
};

// A set of engine instances running one batch while the harness fills the
// next and compares the previous one. Engines run in worker or runner
// processes, so the threads here mostly wait.
//
// Each engine has one thread for the whole campaign: engines fork their
// worker processes from the thread that runs them, and a child set up with
// PR_SET_PDEATHSIG dies when the thread that forked it exits. A thread per
// batch would kill every restarted worker at the end of its batch.
class Lane {
 public:
  explicit Lane(std::vector<std::unique_ptr<Engine>> engines)
      : engines_(std::move(engines)), failures_(engines_.size()) {
    for (size_t e = 0; e < engines_.size(); ++e) {
      threads_.emplace_back([this, e] { Serve(e); });
    }
  }
  ~Lane() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  std::vector<std::unique_ptr<Engine>>& engines() { return engines_; }
  const std::string& failure(size_t e) const { return failures_[e]; }

  Batch running, next, done;
  bool active = false;

  // Runs `running` on every engine in the background.
  void Start() {
    running.ptrs.clear();
    for (size_t i = 0; i < running.n; ++i) running.ptrs.push_back(&running.cases[i]);
    running.results.resize(engines_.size());
    for (size_t e = 0; e < engines_.size(); ++e) {
      running.results[e].assign(running.n, RunResult{});
      failures_[e].clear();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++generation_;
      pending_ = engines_.size();
    }
    cv_.notify_all();
    active = true;
  }

  // Waits for the running batch; returns the index of an engine that failed
  // (or -1).
  int Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return pending_ == 0; });
    active = false;
    for (size_t e = 0; e < failures_.size(); ++e) {
      if (!failures_[e].empty()) return static_cast<int>(e);
    }
    return -1;
  }

 private:
  void Serve(size_t e) {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return quit_ || generation_ != seen; });
        if (quit_) return;
        seen = generation_;
      }
      try {
        engines_[e]->Run(std::span(running.ptrs.data(), running.n),
                         std::span(running.results[e].data(), running.n));
      } catch (const std::exception& ex) {
        failures_[e] = ex.what();
        if (failures_[e].empty()) failures_[e] = "unknown error";
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        --pending_;
      }
      done_cv_.notify_one();
    }
  }

  std::vector<std::unique_ptr<Engine>> engines_;
  std::vector<std::string> failures_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  uint64_t generation_ = 0;
  size_t pending_ = 0;
  bool quit_ = false;
};

}  // namespace

int RunCampaign(const CampaignOptions& opts, std::ostream& out, std::ostream& err) {
  // Corpora. Every malformed line is reported; --strict refuses to start.
  // A deque: growing it never moves the cases already read.
  std::deque<TestCase> cases;
  size_t rejected = 0;
  bool io_error = false;
  for (const std::string& path : opts.corpus_files) {
    CorpusReadResult r =
        ReadCorpusFile(path, [&](TestCase&& tc) { cases.push_back(std::move(tc)); });
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
  CorpusSource source(std::move(cases));
  return RunCases(opts, source, rejected, out, err);
}

int RunCases(const CampaignOptions& opts, CaseSource& source, size_t rejected, std::ostream& out,
             std::ostream& err) {
  // 1. Engines.
  std::vector<SelectedEngine> selected;
  std::string error;
  if (!SelectEngines(opts.engines, opts.reference, &selected, &error, err)) {
    err << "cpudiff: " << error << "\n";
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

  // 2. Store.
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
  config["keep_all"] = opts.keep_all;
  config["timeout_ms"] = opts.engine_options.timeout_ms;
  config["max_instructions"] = opts.engine_options.max_instructions;
  if (!opts.extra_config.empty()) {
    auto extra = nlohmann::ordered_json::parse(opts.extra_config, nullptr, false);
    if (extra.is_object()) {
      for (auto& [k, v] : extra.items()) config[k] = v;
    }
  }

  int64_t run_id = 0;
  if (opts.resume) {
    std::optional<RunInfo> last = store->LatestRun();
    if (last) {
      auto old = nlohmann::ordered_json::parse(last->config, nullptr, false);
      // A generated campaign continues only with the same generator options,
      // seed and shard: otherwise its cases would be other cases.
      bool same_generator = true;
      if (!old.is_discarded() && !opts.extra_config.empty()) {
        auto extra = nlohmann::ordered_json::parse(opts.extra_config, nullptr, false);
        if (extra.is_object()) {
          for (auto& [k, v] : extra.items()) {
            if (!old.contains(k) || old[k] != v) same_generator = false;
          }
        }
      }
      if (old.is_discarded() || !same_generator || old["engines"] != config["engines"] ||
          old["corpus"] != config["corpus"] || old["strict"] != config["strict"]) {
        err << "cpudiff: --resume: the last run in " << opts.db_path
            << " used other engines, corpora, generator options or modes (run " << last->id
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

  // 3. Start the engines: one instance of each per lane.
  const size_t n_engines = selected.size();
  std::vector<std::unique_ptr<Lane>> lanes;
  for (size_t j = 0; j < std::max<size_t>(1, opts.jobs); ++j) {
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
    lanes.push_back(std::make_unique<Lane>(std::move(engines)));
  }
  std::vector<uint32_t> observes(n_engines);
  std::vector<std::string> names(n_engines);
  for (size_t e = 0; e < n_engines; ++e) {
    observes[e] = lanes[0]->engines()[e]->Observes();
    names[e] = std::string(selected[e].desc->name);
  }
  CompareOptions cmp_base;
  cmp_base.strict = opts.strict;

  // 4. Batches, pipelined: while a lane's engines run batch k, the harness
  // compares and stores batch k-1 and fills batch k+1.
  std::vector<EngineTally> tally(n_engines);
  int64_t divergences = 0;
  int64_t divergent_cases = 0;
  int64_t stored_cases = 0;
  size_t skipped_done = 0;
  size_t duplicates = 0;
  size_t done = 0;
  std::unordered_set<std::string> signatures;
  ProgressLine progress(opts.progress && !opts.quiet, source, err);
  bool interrupted = false;
  bool engine_failed = false;
  bool source_done = false;
  std::unordered_set<uint64_t> seen;

  // Fills `b` from the source. A case runs once per run: repeats are
  // skipped, and so are cases a resumed run has already done.
  auto fill = [&](Batch& b) {
    b.n = 0;
    if (b.cases.size() < opts.batch_size) b.cases.resize(opts.batch_size);
    b.hashes.resize(opts.batch_size);
    while (b.n < opts.batch_size && !source_done) {
      if (g_stop_requested.load()) {
        interrupted = true;
        return;
      }
      TestCase& tc = b.cases[b.n];
      if (!source.Next(&tc)) {
        source_done = true;
        break;
      }
      const uint64_t hash = tc.Hash();
      if (!seen.insert(hash).second) {
        ++duplicates;
        continue;
      }
      if (opts.resume && store->IsCaseDone(run_id, hash)) {
        ++skipped_done;
        continue;
      }
      b.hashes[b.n++] = hash;
    }
  };

  struct PendingDivergence {
    size_t a, b;  // engine indexes; a == SIZE_MAX: expect
    Mismatch m;
  };
  std::vector<PendingDivergence> pending;
  std::vector<EngineOutcome> outcomes(n_engines);
  auto process = [&](Batch& b) {
    for (size_t i = 0; i < b.n; ++i) {
      const TestCase& tc = b.cases[i];
      pending.clear();
      const RunResult& ref = b.results[0][i];
      bool crashed = false;
      for (size_t e = 0; e < n_engines; ++e) {
        const RunResult& r = b.results[e][i];
        tally[e].outcomes[r.outcome.kind]++;
        tally[e].ns += r.ns;
        crashed |= r.outcome.kind == OutcomeKind::kCrash;
        if (e > 0 && ComparableOutcome(ref.outcome.kind) && ComparableOutcome(r.outcome.kind)) {
          CompareOptions co = cmp_base;
          co.observes_a = observes[0] & ~ref.unobserved;
          co.observes_b = observes[e] & ~r.unobserved;
          std::vector<Mismatch> ms = CompareResults(tc, ref, r, co);
          tally[e].compared++;
          if (ms.empty()) tally[e].agreed++;
          for (Mismatch& m : ms) pending.push_back({0, e, std::move(m)});
        }
        if (tc.expect && ComparableOutcome(r.outcome.kind)) {
          CompareOptions co = cmp_base;
          co.observes_b = observes[e] & ~r.unobserved;
          std::vector<Mismatch> ms = CompareExpect(tc, r, co);
          tally[e].expect_checked++;
          if (!ms.empty()) tally[e].expect_failed++;
          for (Mismatch& m : ms) pending.push_back({SIZE_MAX, e, std::move(m)});
        }
      }
      if (!pending.empty()) ++divergent_cases;
      if (opts.keep_all || !pending.empty() || crashed) {
        // In full: the case, every result and every divergence, so that
        // `show` and the reports can print it without rerunning anything.
        ++stored_cases;
        // No corpus line: the store keeps the raw fields and the reports
        // rebuild the line from them.
        int64_t case_id = store->AddCase(tc, std::string(), b.hashes[i]);
        for (size_t e = 0; e < n_engines; ++e) {
          store->AddResult(run_id, case_id, names[e], b.results[e][i]);
        }
        for (const PendingDivergence& p : pending) {
          StoredDivergence d;
          d.run_id = run_id;
          d.case_id = case_id;
          d.engine_a = p.a == SIZE_MAX ? "expect" : names[p.a];
          d.engine_b = names[p.b];
          d.mismatch = p.m;
          d.signature = Signature(p.m, d.engine_a, d.engine_b);
          signatures.insert(d.signature);
          store->AddDivergence(d);
          ++divergences;
        }
        store->MarkCaseDone(run_id, case_id);
      } else {
        // Agreement: the hash and the generator seed say which case it was.
        for (size_t e = 0; e < n_engines; ++e) {
          const Outcome& o = b.results[e][i].outcome;
          outcomes[e] = EngineOutcome{names[e], o.kind, o.vector};
        }
        store->AddAgreedCase(run_id, b.hashes[i], tc.seed, outcomes);
      }
      if (expect_out.is_open() && ref.outcome.kind != OutcomeKind::kUnsupported &&
          ref.outcome.kind != OutcomeKind::kCrash) {
        TestCase with = tc;
        with.expect = ExpectFromResult(tc, ref);
        if (ref.outcome.kind == OutcomeKind::kTimeout) with.expect->regs.clear();
        expect_out << WriteCaseLine(with) << "\n";
      }
    }
    store->CommitBatch();
    done += b.n;
    progress.Update(done, divergences, signatures.size());
  };

  auto fail = [&](Lane& lane, int e) {
    err << "cpudiff: engine '" << names[static_cast<size_t>(e)]
        << "' failed: " << lane.failure(static_cast<size_t>(e)) << "\n";
    engine_failed = true;
  };

  for (auto& lane : lanes) fill(lane->next);
  for (auto& lane : lanes) {
    if (lane->next.n == 0) continue;
    std::swap(lane->running, lane->next);
    lane->Start();
    fill(lane->next);
  }
  for (bool any = true; any;) {
    any = false;
    for (auto& lane_ptr : lanes) {
      Lane& lane = *lane_ptr;
      if (!lane.active) continue;
      any = true;
      int failed = lane.Wait();
      if (failed >= 0) {
        fail(lane, failed);
        continue;
      }
      std::swap(lane.running, lane.done);
      if (lane.next.n > 0 && !engine_failed && !g_stop_requested.load()) {
        std::swap(lane.running, lane.next);
        lane.Start();
      }
      if (!engine_failed) process(lane.done);
      if (!engine_failed && !interrupted) fill(lane.next);
    }
  }
  if (g_stop_requested.load() && !engine_failed && !source_done) interrupted = true;
  progress.Update(done, divergences, signatures.size(), true);
  progress.Finish();
  store->FinishRun(run_id, engine_failed ? "failed" : interrupted ? "interrupted" : "done");

  // 5. Summary.
  if (!opts.quiet) {
    out << "run " << run_id << ": " << done << " cases";
    if (skipped_done) out << " (" << skipped_done << " already done, skipped)";
    if (duplicates) out << ", " << duplicates << " repeated case(s) skipped";
    if (rejected) out << ", " << rejected << " malformed line(s) rejected";
    out << ", reference " << names[0] << (opts.strict ? ", strict" : "") << "\n";
    for (size_t e = 0; e < n_engines; ++e) {
      const EngineTally& t = tally[e];
      char line[256];
      std::snprintf(line, sizeof line, "  %-10s", names[e].c_str());
      out << line;
      for (const auto& [kind, count] : t.outcomes)
        out << " " << OutcomeKindName(kind) << "=" << count;
      if (e > 0) out << "  agree " << t.agreed << "/" << t.compared;
      if (t.expect_checked) {
        out << "  expect " << (t.expect_checked - t.expect_failed) << "/" << t.expect_checked;
      }
      out << "\n";
    }
    out << divergences << " divergence(s) in " << divergent_cases << " case(s), "
        << signatures.size() << " signature(s); ";
    if (!opts.keep_all) out << stored_cases << " case(s) stored in full, the others by hash; ";
    out << "database " << opts.db_path << " ('cpudiff report --db " << opts.db_path
        << "' for details)\n";
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

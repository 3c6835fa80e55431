#include "harness/merge.h"

#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <tuple>
#include <unordered_set>

#include "harness/campaign.h"
#include "harness/store/store.h"

namespace cpudiff {

namespace {

// The parts of a run's config that differ between the shards of one
// campaign and say nothing about which cases it ran.
nlohmann::ordered_json CampaignIdentity(const std::string& config_text) {
  auto config = nlohmann::ordered_json::parse(config_text, nullptr, false);
  if (!config.is_object()) return nlohmann::ordered_json();
  config.erase("shard");
  config.erase("command");
  config.erase("merged_from");
  config.erase("shards");
  return config;
}

using OutcomeKey = std::tuple<std::string, OutcomeKind, int>;

OutcomeKey KeyOf(const std::string& engine, const Outcome& o) {
  return {engine, o.kind, o.kind == OutcomeKind::kFault ? o.vector : -1};
}

struct Input {
  std::string path;
  std::unique_ptr<Store> store;
  RunInfo run;
};

}  // namespace

int RunMerge(const MergeOptions& opts, std::ostream& out, std::ostream& err) {
  if (opts.inputs.empty()) {
    err << "cpudiff: merge: no input database\n";
    return kExitUsage;
  }
  namespace fs = std::filesystem;
  std::vector<Input> inputs;
  for (const std::string& path : opts.inputs) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      err << "cpudiff: merge: " << path << ": no such database\n";
      return kExitUsage;
    }
    if (fs::exists(opts.output, ec) && fs::equivalent(path, opts.output, ec)) {
      err << "cpudiff: merge: " << path << " is also the output; write to a new database\n";
      return kExitUsage;
    }
    Input in;
    in.path = path;
    try {
      in.store = Store::Open(path);
    } catch (const std::exception& e) {
      err << "cpudiff: merge: " << e.what() << "\n";
      return kExitUsage;
    }
    std::optional<RunInfo> run = in.store->LatestRun();
    if (!run) {
      err << "cpudiff: merge: " << path << ": the database has no run\n";
      return kExitUsage;
    }
    in.run = *run;
    inputs.push_back(std::move(in));
  }

  // Only shards of one campaign merge into one run: the same engines,
  // generator options and seed.
  const nlohmann::ordered_json identity = CampaignIdentity(inputs[0].run.config);
  for (const Input& in : inputs) {
    nlohmann::ordered_json other = CampaignIdentity(in.run.config);
    if (other == identity) continue;
    std::string diff = "its config";
    if (other.is_object() && identity.is_object()) {
      for (auto& [k, v] : identity.items()) {
        if (!other.contains(k) || other[k] != v) {
          diff = "'" + k + "' (" + (other.contains(k) ? other[k].dump() : "missing") + " vs " +
                 v.dump() + " in " + inputs[0].path + ")";
          break;
        }
      }
    }
    err << "cpudiff: merge: " << in.path << " (run " << in.run.id
        << ") is not a shard of the same campaign as " << inputs[0].path << ": " << diff << "\n";
    return kExitUsage;
  }

  std::unique_ptr<Store> dst;
  try {
    dst = Store::Open(opts.output);
  } catch (const std::exception& e) {
    err << "cpudiff: merge: " << e.what() << "\n";
    return kExitUsage;
  }

  nlohmann::ordered_json config = identity;
  nlohmann::ordered_json from = nlohmann::ordered_json::array();
  nlohmann::ordered_json shards = nlohmann::ordered_json::array();
  RunInfo info = inputs[0].run;
  std::string status = "done";
  for (const Input& in : inputs) {
    from.push_back(in.path);
    auto c = nlohmann::ordered_json::parse(in.run.config, nullptr, false);
    shards.push_back(c.is_object() && c.contains("shard") ? c["shard"] : nlohmann::ordered_json());
    if (in.run.started < info.started) info.started = in.run.started;
    if (in.run.status != "done") {
      // A shard that did not finish: what it recorded is merged, and the
      // merged run says that it is incomplete.
      err << "note: " << in.path << ": run " << in.run.id << " is " << in.run.status
          << "; the merged run is marked interrupted\n";
      status = "interrupted";
    }
  }
  config["merged_from"] = from;
  config["shards"] = shards;
  info.config = config.dump();
  info.status = "running";
  const int64_t run_id = dst->BeginRun(info);

  std::unordered_set<uint64_t> seen;
  int64_t full = 0, agreed = 0, repeated = 0, divergences = 0;
  for (Input& in : inputs) {
    Store& src = *in.store;
    const int64_t src_run = in.run.id;
    // The run's outcome counts cover every case; the cases stored in full
    // are added below with their results (which count themselves), so what
    // is left over belongs to the cases recorded by hash.
    std::map<OutcomeKey, int64_t> by_hash;
    for (const OutcomeTotal& t : src.OutcomeTotals(src_run)) {
      by_hash[{t.engine, t.kind, t.vector}] += t.count;
    }
    size_t pending = 0;
    for (int64_t id : src.RunCaseIds(src_run)) {
      std::optional<StoredCase> c = src.GetCase(id);
      std::optional<TestCase> tc = src.LoadCase(id);
      if (!c || !tc) {
        err << "cpudiff: merge: " << in.path << ": case " << id << " cannot be read\n";
        dst->FinishRun(run_id, "failed");
        return kExitInternal;
      }
      std::vector<StoredResult> results = src.ResultsForCase(src_run, id);
      for (const StoredResult& r : results) by_hash[KeyOf(r.engine, r.result.outcome)] -= 1;
      if (!seen.insert(c->hash).second) {
        ++repeated;
        continue;
      }
      int64_t case_id = dst->AddCase(*tc, std::string(), c->hash);
      for (const StoredResult& r : results) dst->AddResult(run_id, case_id, r.engine, r.result);
      for (StoredDivergence d : src.DivergencesForCase(src_run, id)) {
        d.run_id = run_id;
        d.case_id = case_id;
        dst->AddDivergence(d);
        ++divergences;
      }
      dst->MarkCaseDone(run_id, case_id);
      ++full;
      if (++pending % 1024 == 0) dst->CommitBatch();
    }
    for (const AgreedRow& a : src.AgreedCases(src_run)) {
      // A case two shards both drew (the same hash) is kept once. Its
      // outcomes were counted by both shards and stay so: an agreed case
      // keeps no per-case outcomes to take away.
      if (!seen.insert(a.hash).second) {
        ++repeated;
        continue;
      }
      dst->AddAgreedCase(run_id, a.hash, a.seed, {});
      ++agreed;
      if (++pending % 4096 == 0) dst->CommitBatch();
    }
    for (const auto& [key, count] : by_hash) {
      if (count <= 0) continue;
      OutcomeTotal t;
      std::tie(t.engine, t.kind, t.vector) = key;
      t.count = count;
      dst->AddOutcomeTotal(run_id, t);
    }
    dst->CommitBatch();
  }
  // Triage decisions recorded in a shard carry over.
  for (Input& in : inputs) {
    for (const SignatureRow& s : in.store->Signatures()) {
      if (s.status != "new") dst->SetSignatureStatus(s.signature, s.status);
    }
  }
  dst->FinishRun(run_id, status);
  if (!opts.quiet) {
    out << "run " << run_id << " of " << opts.output << ": " << inputs.size() << " run(s) merged, "
        << full + agreed << " cases (" << full << " stored in full, " << agreed << " by hash), "
        << divergences << " divergence(s), " << dst->RunSignatures(run_id).size()
        << " signature(s)";
    if (repeated) out << "; " << repeated << " case(s) in more than one input kept once";
    out << "\n";
  }
  return kExitAgree;
}

}  // namespace cpudiff

// The data the report writers share: one case's view (disassembly, end
// states side by side, memory diff) and a run's summary. Built from the
// store only. Internal to reports/.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "engines/x86/testcase.h"
#include "harness/store/store.h"
#include "harness/triage/known.h"

namespace cpudiff {
namespace report_view {

using Json = nlohmann::ordered_json;

struct RegRow {
  int reg = 0;
  std::string name;
  std::string initial;
  std::string expect;               // empty when the expect does not list it
  std::vector<std::string> values;  // per engine; "-" without an end state
  bool differs = false;             // some engine differs from the reference
};

struct MemRow {
  uint64_t addr = 0;
  std::string initial;
  std::vector<std::string> values;
  bool differs = false;
};

struct CaseView {
  StoredCase stored;
  std::optional<TestCase> tc;
  std::vector<StoredResult> results;
  int ref = -1;  // index into results, -1 when the reference did not run it
  std::string reference;
  std::vector<std::string> disassembly;
  std::string outcome_expect;
  std::vector<std::string> outcomes;
  bool outcome_differs = false;
  std::vector<RegRow> regs;
  std::vector<MemRow> mem;
  size_t mem_rows_total = 0;
  std::vector<StoredDivergence> divergences;
};

struct Summary {
  std::optional<RunInfo> run;
  std::string reference;
  Json config;
  Json versions;
  int64_t cases = 0, cases_done = 0, divergences = 0, divergent_cases = 0;
  // engine -> outcome label -> count, engines in first-seen order.
  std::vector<std::string> engines;
  std::map<std::string, std::map<std::string, int64_t>> counts;
  std::vector<std::string> labels;  // union of outcome labels, sorted
  std::vector<SignatureRow> signatures;
  // Per signature: the known-divergence entry that matches it, or nullptr.
  std::vector<const KnownEntry*> known_by;
  // Per signature: also recorded in the baseline database.
  std::vector<bool> in_baseline;
  // Signatures neither known nor in the baseline (what the gate fails on).
  int64_t new_signatures = 0;
};

// The status flags set in an RFLAGS value ("CF ZF", "-" for none).
std::string FlagNames(uint64_t rflags);
// Text escaped for XML and HTML (& < > " '). No XML library is among the
// project's dependencies, and five replacements do not justify one.
std::string MarkupEscape(const std::string& s);
// Whether an outcome comes with an end state (halt, fault, syscall).
bool HasEndState(const Outcome& o);
Json ParseJson(const std::string& text);
// The reference engine of a run, from its config.
std::string RunReference(const std::optional<RunInfo>& run);
CaseView BuildCaseView(Store& store, int64_t run_id, const StoredCase& c,
                       const std::string& reference);
void WriteCaseViewText(const CaseView& v, int64_t run_id, std::ostream& out);
Json CaseViewJson(const CaseView& v);
// Throws std::runtime_error when the run does not exist. With `known`, the
// signatures it matches get status "known" and their entry in `known_by`.
// With `baseline`, the signatures it holds are marked in_baseline.
Summary BuildSummary(Store& store, int64_t run_id, const KnownList* known = nullptr,
                     const std::set<std::string>* baseline = nullptr);
// Whether signature i is new: neither known nor in the baseline.
bool IsNew(const Summary& s, size_t i);
// The engine a signature is about: the side that is not the reference or
// `expect`.
std::string EngineUnderTest(const Summary& s, const SignatureRow& r);
// "value a -> value b" of the example case's first divergence with this
// signature ("field: a vs b"), empty when none is stored.
std::string ExampleDifference(Store& store, int64_t run_id, const SignatureRow& r);
std::string EngineVersion(const Summary& s, const std::string& engine);

}  // namespace report_view
}  // namespace cpudiff

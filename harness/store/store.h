// The campaign database. Only this adapter touches SQLite; everything else
// reads and writes through this interface. The schema is documented in
// harness/store/SCHEMA.md and versioned by kSchemaVersion.
//
// A Store is owned by one thread. Writes are buffered and committed in
// batched transactions (CommitBatch); a process killed between commits
// loses only the uncommitted batch, and the database stays valid (WAL).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engines/x86/testcase.h"
#include "harness/compare/compare.h"

namespace cpudiff {

inline constexpr int kSchemaVersion = 3;

struct RunInfo {
  int64_t id = 0;
  std::string started;          // ISO 8601 UTC
  std::string config;           // JSON text: command line, engines, reference, options
  std::string host_cpu;         // model name
  std::string engine_versions;  // JSON text: {"native":"...", ...}
  std::string git_rev;
  std::string status;  // "running", "done", "interrupted"
};

struct StoredDivergence {
  int64_t id = 0;
  int64_t run_id = 0;
  int64_t case_id = 0;
  std::string engine_a;  // the reference, or "expect"
  std::string engine_b;
  Mismatch mismatch;
  std::string signature;
};

struct StoredResult {
  int64_t case_id = 0;
  std::string engine;
  RunResult result;
};

struct StoredCase {
  int64_t id = 0;
  uint64_t hash = 0;
  std::string line;  // the case as a corpus v1 line
  std::string name;
  std::string source;
};

struct SignatureRow {
  std::string signature;
  int64_t count = 0;
  int64_t first_run = 0;
  int64_t example_case = 0;
  std::string status;  // "new", "known", ...
  std::string insn_form, field_kind, engine_a, engine_b;
  // Filled by RunSignatures only: distinct cases of that run with this
  // signature (count is then the run's divergence rows).
  int64_t cases = 0;
  int64_t last_run = 0;  // the last run that recorded this signature
};

// One engine's outcome for a case recorded by hash only (AddAgreedCase):
// what the run's outcome counts need.
struct EngineOutcome {
  std::string_view engine;
  OutcomeKind kind = OutcomeKind::kHalt;
  uint8_t vector = 0;  // for faults
};

// Results of one engine in one run with one outcome label ("halt", "#PF",
// "timeout", ...: faults are split by vector).
struct OutcomeCount {
  std::string engine;
  std::string outcome;
  int64_t count = 0;
};

// One root cause of a run (`cpudiff triage --collapse`): the divergent
// cases whose first differing instruction (lockstep) has the same form,
// field kind, outcome pair and engines, with a minimized example.
struct RootCauseRow {
  std::string signature;  // "form|field|engineA~engineB", as Signature()
  int64_t divergent = 0;  // (case, engine) pairs with this root cause
  int64_t cases = 0;      // distinct cases
  std::string engine_a, engine_b;
  std::string insn_form;  // the root instruction's form (or its class)
  std::string field;      // "gpr", "flags.CF", "outcome.#GP->#PF", ...
  int64_t example_case = 0;
  int insn_index = -1;    // the root instruction's index in the example
  std::string root_insn;  // its disassembly in the example
  std::string minimized;  // corpus v1 line of the minimized example; empty when none
  int min_insns = -1;     // instructions of the minimized example
  std::string min_disasm; // its disassembly, one line per instruction
  std::string min_note;   // why there is no (or no short) minimized example
};

// A case recorded by hash only (table `agreed`).
struct AgreedRow {
  uint64_t hash = 0;
  uint64_t seed = 0;
};

// One row of a run's outcome counts, as stored (`run_outcomes`).
struct OutcomeTotal {
  std::string engine;
  OutcomeKind kind = OutcomeKind::kHalt;
  int vector = -1;  // the exception vector of a fault, -1 otherwise
  int64_t count = 0;
};

class Store {
 public:
  // Opens or creates the database. Throws std::runtime_error with the path
  // and the reason when it cannot (unwritable, not a cpudiff database,
  // newer schema).
  static std::unique_ptr<Store> Open(const std::string& path);
  virtual ~Store() = default;

  virtual int64_t BeginRun(const RunInfo& info) = 0;
  virtual void FinishRun(int64_t run_id, const std::string& status) = 0;
  virtual std::optional<RunInfo> GetRun(int64_t run_id) = 0;
  virtual std::optional<RunInfo> LatestRun() = 0;
  virtual std::vector<RunInfo> Runs() = 0;

  // Inserts the case if its hash is new; returns its id either way.
  // `line` is the case written as a corpus v1 line.
  virtual int64_t AddCase(const TestCase& tc, const std::string& line) = 0;
  virtual std::optional<StoredCase> GetCase(int64_t case_id) = 0;
  // Case by id, or by a unique prefix of its hex hash, or by name.
  virtual std::optional<StoredCase> FindCase(const std::string& id_hash_or_name) = 0;

  virtual void AddResult(int64_t run_id, int64_t case_id, const std::string& engine,
                         const RunResult& r) = 0;
  virtual void AddDivergence(const StoredDivergence& d) = 0;
  // Marks that every engine of the run has finished with this case: resume
  // skips it.
  virtual void MarkCaseDone(int64_t run_id, int64_t case_id) = 0;
  virtual bool IsCaseDone(int64_t run_id, uint64_t case_hash) = 0;
  // Commits everything added since the last commit in one transaction.
  virtual void CommitBatch() = 0;

  virtual std::vector<StoredResult> ResultsForCase(int64_t run_id, int64_t case_id) = 0;
  virtual std::vector<StoredDivergence> Divergences(int64_t run_id) = 0;
  virtual std::vector<SignatureRow> Signatures() = 0;
  // Number of cases done in a run, results per engine and outcome, etc.
  virtual int64_t CountCasesDone(int64_t run_id) = 0;

  // ---- Added after the first API (not pure so that other Store
  // implementations keep compiling; the SQLite store implements them all,
  // the defaults throw std::logic_error). ----

  // Rebuilds the case from the raw fields stored with it (code, initial
  // state, regions, expect, tags), without parsing its corpus line.
  virtual std::optional<TestCase> LoadCase(int64_t case_id);
  // Divergences of one case in one run, in insertion order.
  virtual std::vector<StoredDivergence> DivergencesForCase(int64_t run_id, int64_t case_id);
  // The signatures seen in one run, most frequent first: count and cases are
  // that run's, status/first_run/last_run come from the triage table, the
  // example case is the run's first case with that signature.
  virtual std::vector<SignatureRow> RunSignatures(int64_t run_id);
  // Result counts of a run per engine and outcome label.
  virtual std::vector<OutcomeCount> OutcomeCounts(int64_t run_id);
  // Cases with at least one result (done or not) in a run.
  virtual int64_t CountCases(int64_t run_id);
  virtual int64_t CountDivergences(int64_t run_id);
  // Distinct cases of a run with at least one divergence.
  virtual int64_t CountDivergentCases(int64_t run_id);
  // Sets the triage status of a signature ("new", "known", "fixed", ...).
  // Returns false when there is no such signature.
  virtual bool SetSignatureStatus(const std::string& signature, const std::string& status);
  // The file this store was opened on.
  virtual std::string Path() const;

  // ---- Schema version 2 ----

  // AddCase with the hash already computed (it is the case's identity and
  // costs as much as the insert).
  virtual int64_t AddCase(const TestCase& tc, const std::string& line, uint64_t hash);
  // Records a case on which every engine agreed by its hash and generator
  // seed only (table `agreed`, SCHEMA.md): a generated case is rebuilt from
  // the run's options and the seed, a corpus case from its file. Counts the
  // outcomes in the run's outcome counts. Part of the open batch.
  virtual void AddAgreedCase(int64_t run_id, uint64_t hash, uint64_t seed,
                             std::span<const EngineOutcome> outcomes);
  // Cases of a run recorded by hash only.
  virtual int64_t CountAgreedCases(int64_t run_id);
  // Ids of the cases a run has results for, in id order.
  virtual std::vector<int64_t> RunCaseIds(int64_t run_id);

  // ---- Schema version 3 ----

  // Replaces the root causes recorded for a run (committed at once).
  virtual void ReplaceRootCauses(int64_t run_id, const std::vector<RootCauseRow>& rows);
  // The root causes of a run, most cases first; empty when none were made.
  virtual std::vector<RootCauseRow> RootCauses(int64_t run_id);

  // ---- For `cpudiff merge` (harness/merge.h) ----

  // The cases of a run recorded by hash only, in hash order.
  virtual std::vector<AgreedRow> AgreedCases(int64_t run_id);
  // The run's outcome counts with kind and vector (OutcomeCounts gives
  // labels).
  virtual std::vector<OutcomeTotal> OutcomeTotals(int64_t run_id);
  // Adds `t.count` to the run's count of that engine and outcome. Part of
  // the open batch.
  virtual void AddOutcomeTotal(int64_t run_id, const OutcomeTotal& t);
};

}  // namespace cpudiff

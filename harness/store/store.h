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
#include <string>
#include <vector>

#include "engines/x86/testcase.h"
#include "harness/compare/compare.h"

namespace cpudiff {

inline constexpr int kSchemaVersion = 1;

struct RunInfo {
  int64_t id = 0;
  std::string started;          // ISO 8601 UTC
  std::string config;           // JSON text: command line, engines, reference, options
  std::string host_cpu;         // model name
  std::string engine_versions;  // JSON text: {"native":"...", ...}
  std::string git_rev;
  std::string status;           // "running", "done", "interrupted"
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
};

}  // namespace cpudiff

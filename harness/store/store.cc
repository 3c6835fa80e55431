// The SQLite campaign store. The schema is documented in SCHEMA.md; every
// table, column and blob layout written here is described there, and a
// change to any of them bumps kSchemaVersion (store.h).
#include "harness/store/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

namespace cpudiff {

// ---- Defaults of the methods added after the first API ---------------------

namespace {
[[noreturn]] void NotImplemented(const char* what) {
  throw std::logic_error(std::string("Store::") + what + " is not implemented by this store");
}
}  // namespace

std::optional<TestCase> Store::LoadCase(int64_t) { NotImplemented("LoadCase"); }
std::vector<StoredDivergence> Store::DivergencesForCase(int64_t, int64_t) {
  NotImplemented("DivergencesForCase");
}
std::vector<SignatureRow> Store::RunSignatures(int64_t) { NotImplemented("RunSignatures"); }
std::vector<OutcomeCount> Store::OutcomeCounts(int64_t) { NotImplemented("OutcomeCounts"); }
int64_t Store::CountCases(int64_t) { NotImplemented("CountCases"); }
int64_t Store::CountDivergences(int64_t) { NotImplemented("CountDivergences"); }
int64_t Store::CountDivergentCases(int64_t) { NotImplemented("CountDivergentCases"); }
bool Store::SetSignatureStatus(const std::string&, const std::string&) {
  NotImplemented("SetSignatureStatus");
}
std::string Store::Path() const { return {}; }
int64_t Store::AddCase(const TestCase& tc, const std::string& line, uint64_t) {
  return AddCase(tc, line);
}
void Store::AddAgreedCase(int64_t, uint64_t, uint64_t, std::span<const EngineOutcome>) {
  NotImplemented("AddAgreedCase");
}
int64_t Store::CountAgreedCases(int64_t) { NotImplemented("CountAgreedCases"); }
std::vector<int64_t> Store::RunCaseIds(int64_t) { NotImplemented("RunCaseIds"); }
void Store::ReplaceRootCauses(int64_t, const std::vector<RootCauseRow>&) {
  NotImplemented("ReplaceRootCauses");
}
std::vector<RootCauseRow> Store::RootCauses(int64_t) { NotImplemented("RootCauses"); }
std::vector<AgreedRow> Store::AgreedCases(int64_t) { NotImplemented("AgreedCases"); }
std::vector<OutcomeTotal> Store::OutcomeTotals(int64_t) { NotImplemented("OutcomeTotals"); }
void Store::AddOutcomeTotal(int64_t, const OutcomeTotal&) { NotImplemented("AddOutcomeTotal"); }

namespace {

// PRAGMA application_id of a cpudiff database: "cpud". Lets Open() tell a
// cpudiff database from any other SQLite file before reading its tables.
constexpr int32_t kApplicationId = 0x63707564;

// Field kinds as stored in divergences.field_kind / triage.field_kind. The
// store keeps its own names (rather than FieldKindName) so that the on-disk
// format does not change when a display name does.
constexpr std::string_view kFieldKindNames[] = {"outcome", "gpr",   "rip",      "flags",
                                                "xmm",     "mxcsr", "seg_base", "memory"};
static_assert(std::size(kFieldKindNames) == static_cast<size_t>(FieldKind::kMemory) + 1);

std::string_view StoredFieldKind(FieldKind k) { return kFieldKindNames[static_cast<size_t>(k)]; }
FieldKind ParseFieldKind(std::string_view s) {
  for (size_t i = 0; i < std::size(kFieldKindNames); ++i) {
    if (kFieldKindNames[i] == s) return static_cast<FieldKind>(i);
  }
  return FieldKind::kOutcome;
}

constexpr OutcomeKind kOutcomeKinds[] = {OutcomeKind::kHalt,        OutcomeKind::kFault,
                                         OutcomeKind::kTimeout,     OutcomeKind::kSyscall,
                                         OutcomeKind::kUnsupported, OutcomeKind::kCrash};
bool ParseOutcomeKind(std::string_view s, OutcomeKind* out) {
  for (OutcomeKind k : kOutcomeKinds) {
    if (OutcomeKindName(k) == s) {
      *out = k;
      return true;
    }
  }
  return false;
}

// SQLite integers are signed 64-bit: unsigned values (hashes, addresses,
// error codes) are stored bit-cast.
int64_t ToSql(uint64_t v) { return static_cast<int64_t>(v); }
uint64_t FromSql(int64_t v) { return static_cast<uint64_t>(v); }

std::string NowIso8601() {
  time_t t = time(nullptr);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ---- Blob encoding (little-endian, layouts in SCHEMA.md) -------------------

class BlobWriter {
 public:
  void U8(uint8_t v) { out_.push_back(v); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  void Raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  void Bytes(const uint8_t* p, size_t n) {
    U32(static_cast<uint32_t>(n));
    Raw(p, n);
  }
  void Str(std::string_view s) { Bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }
  const std::vector<uint8_t>& data() const { return out_; }

 private:
  std::vector<uint8_t> out_;
};

// Bounds-checked reader: a short or garbled blob sets ok() to false instead
// of reading past the end.
class BlobReader {
 public:
  BlobReader(const void* p, size_t n) : p_(static_cast<const uint8_t*>(p)), n_(p ? n : 0) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ == n_; }
  uint8_t U8() {
    uint8_t v = 0;
    Raw(&v, 1);
    return v;
  }
  uint32_t U32() {
    uint32_t v = 0;
    Raw(&v, 4);
    return v;
  }
  uint64_t U64() {
    uint64_t v = 0;
    Raw(&v, 8);
    return v;
  }
  void Raw(void* out, size_t n) {
    if (!ok_ || n > n_ - pos_) {
      ok_ = false;
      return;
    }
    std::memcpy(out, p_ + pos_, n);
    pos_ += n;
  }
  std::vector<uint8_t> Bytes() {
    uint32_t n = U32();
    if (!ok_ || n > n_ - pos_) {
      ok_ = false;
      return {};
    }
    std::vector<uint8_t> v(p_ + pos_, p_ + pos_ + n);
    pos_ += n;
    return v;
  }
  std::string Str() {
    std::vector<uint8_t> b = Bytes();
    return std::string(b.begin(), b.end());
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  bool ok_ = true;
};

std::vector<uint8_t> EncodeRegions(const std::vector<MemRegion>& regions) {
  BlobWriter w;
  w.U32(static_cast<uint32_t>(regions.size()));
  for (const MemRegion& r : regions) {
    w.U64(r.addr);
    w.U64(r.size);
    w.U8(r.perm);
    // Trailing zeros are the same as absent data (the region is zero-filled).
    size_t n = r.data.size();
    while (n > 0 && r.data[n - 1] == 0) --n;
    w.Bytes(r.data.data(), n);
  }
  return w.data();
}

bool DecodeRegions(BlobReader& r, std::vector<MemRegion>* out) {
  uint32_t n = r.U32();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    MemRegion m;
    m.addr = r.U64();
    m.size = r.U64();
    m.perm = r.U8();
    m.data = r.Bytes();
    out->push_back(std::move(m));
  }
  return r.ok() && r.done();
}

std::vector<uint8_t> EncodeExpect(const Expect& e) {
  BlobWriter w;
  w.U8(e.outcome.has_value());
  if (e.outcome) {
    w.U8(static_cast<uint8_t>(e.outcome->kind));
    w.U8(e.outcome->vector);
    w.U8(e.outcome->error_code.has_value());
    w.U64(e.outcome->error_code.value_or(0));
    w.U8(e.outcome->addr.has_value());
    w.U64(e.outcome->addr.value_or(0));
  }
  // Registers by name, so that a reordered register table cannot misread an
  // old database.
  w.U32(static_cast<uint32_t>(e.regs.size()));
  for (const auto& [reg, v] : e.regs) {
    w.Str(Registers()[reg].name);
    w.U64(v.lo);
    w.U64(v.hi);
  }
  w.U32(static_cast<uint32_t>(e.mem.size()));
  for (const MemBytes& m : e.mem) {
    w.U64(m.addr);
    w.Bytes(m.data.data(), m.data.size());
  }
  return w.data();
}

bool DecodeExpect(BlobReader& r, Expect* e) {
  if (r.U8()) {
    ExpectOutcome o;
    o.kind = static_cast<OutcomeKind>(r.U8());
    o.vector = r.U8();
    bool has_code = r.U8();
    uint64_t code = r.U64();
    bool has_addr = r.U8();
    uint64_t addr = r.U64();
    if (has_code) o.error_code = code;
    if (has_addr) o.addr = addr;
    e->outcome = o;
  }
  uint32_t nregs = r.U32();
  for (uint32_t i = 0; i < nregs && r.ok(); ++i) {
    std::string name = r.Str();
    RegValue v;
    v.lo = r.U64();
    v.hi = r.U64();
    int reg = FindRegister(name);
    if (reg < 0) return false;
    e->regs.emplace_back(reg, v);
  }
  uint32_t nmem = r.U32();
  for (uint32_t i = 0; i < nmem && r.ok(); ++i) {
    MemBytes m;
    m.addr = r.U64();
    m.data = r.Bytes();
    e->mem.push_back(std::move(m));
  }
  return r.ok() && r.done();
}

std::vector<uint8_t> EncodeTags(const std::vector<std::string>& tags) {
  BlobWriter w;
  w.U32(static_cast<uint32_t>(tags.size()));
  for (const std::string& t : tags) w.Str(t);
  return w.data();
}

bool DecodeTags(BlobReader& r, std::vector<std::string>* tags) {
  uint32_t n = r.U32();
  for (uint32_t i = 0; i < n && r.ok(); ++i) tags->push_back(r.Str());
  return r.ok() && r.done();
}

// The initial contents of the page at `page` of a case whose data regions
// are `mem` (zero outside them): what a stored page is diffed against.
void InitialPage(const std::vector<MemRegion>& mem, uint64_t page,
                 std::array<uint8_t, kPageSize>* out) {
  out->fill(0);
  for (const MemRegion& m : mem) {
    if (page + kPageSize <= m.addr || page >= m.addr + m.size) continue;
    uint64_t lo = std::max(page, m.addr);
    uint64_t hi = std::min({page + kPageSize, m.addr + m.size, m.addr + m.data.size()});
    if (lo < hi) std::memcpy(out->data() + (lo - page), m.data.data() + (lo - m.addr), hi - lo);
  }
}

// Pages are stored as runs of bytes that differ from the case's initial
// contents: a store of a few bytes costs a few bytes instead of 4 KiB, which
// is what keeps a campaign of millions of results on disk small and the
// insert rate up (SCHEMA.md, results.pages). Runs closer than kRunGap bytes
// are merged: a run header costs 4 bytes.
constexpr size_t kRunGap = 8;

std::vector<uint8_t> EncodePages(const std::vector<PageImage>& pages,
                                 const std::vector<MemRegion>& mem) {
  BlobWriter w;
  w.U32(static_cast<uint32_t>(pages.size()));
  std::array<uint8_t, kPageSize> init;
  for (const PageImage& p : pages) {
    InitialPage(mem, p.addr, &init);
    // First differing offset at or after `from` (kPageSize if none),
    // eight bytes at a time: most of a page equals its initial contents.
    auto next_diff = [&](size_t from) {
      size_t i = from;
      while (i < kPageSize && i % 8 != 0 && p.bytes[i] == init[i]) ++i;
      while (i + 8 <= kPageSize) {
        uint64_t x, y;
        std::memcpy(&x, p.bytes.data() + i, 8);
        std::memcpy(&y, init.data() + i, 8);
        if (x != y) break;
        i += 8;
      }
      while (i < kPageSize && p.bytes[i] == init[i]) ++i;
      return i;
    };
    std::vector<std::pair<uint16_t, uint16_t>> runs;  // offset, length
    for (size_t start = next_diff(0); start < kPageSize;) {
      size_t end = start + 1;  // [start, end) begins and ends with a difference
      for (size_t n = next_diff(end); n < kPageSize && n < end + kRunGap; n = next_diff(end)) {
        end = n + 1;
      }
      runs.emplace_back(static_cast<uint16_t>(start), static_cast<uint16_t>(end - start));
      start = next_diff(end);
    }
    w.U64(p.addr);
    w.U32(static_cast<uint32_t>(runs.size()));
    for (const auto& [off, len] : runs) {
      uint16_t hdr[2] = {off, len};
      w.Raw(hdr, sizeof hdr);
      w.Raw(p.bytes.data() + off, len);
    }
  }
  return w.data();
}

bool DecodePages(BlobReader& r, const std::vector<MemRegion>& mem, std::vector<PageImage>* pages) {
  uint32_t n = r.U32();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    PageImage& p = pages->emplace_back();
    p.addr = r.U64();
    InitialPage(mem, p.addr, &p.bytes);
    uint32_t runs = r.U32();
    for (uint32_t k = 0; k < runs && r.ok(); ++k) {
      uint16_t hdr[2] = {0, 0};
      r.Raw(hdr, sizeof hdr);
      if (static_cast<size_t>(hdr[0]) + hdr[1] > kPageSize) return false;
      r.Raw(p.bytes.data() + hdr[0], hdr[1]);
    }
  }
  return r.ok() && r.done();
}

// ---- Schema ----------------------------------------------------------------

// The current schema (version 2). Column meanings are in SCHEMA.md.
constexpr const char* kSchema = R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE runs (
  id              INTEGER PRIMARY KEY,
  started         TEXT NOT NULL,
  finished        TEXT,
  config          TEXT NOT NULL DEFAULT '{}',
  host_cpu        TEXT NOT NULL DEFAULT '',
  engine_versions TEXT NOT NULL DEFAULT '{}',
  git_rev         TEXT NOT NULL DEFAULT '',
  status          TEXT NOT NULL DEFAULT 'running'
);
CREATE TABLE cases (
  id         INTEGER PRIMARY KEY,
  hash       INTEGER NOT NULL UNIQUE,
  name       TEXT NOT NULL DEFAULT '',
  source     TEXT NOT NULL DEFAULT '',
  generator  TEXT NOT NULL DEFAULT '',
  seed       INTEGER NOT NULL DEFAULT 0,
  code_addr  INTEGER NOT NULL,
  code       BLOB NOT NULL,
  init_state BLOB NOT NULL,
  regions    BLOB NOT NULL,
  expect     BLOB,
  tags       BLOB,
  line       TEXT NOT NULL
);
CREATE INDEX cases_name ON cases(name);
CREATE TABLE results (
  id         INTEGER PRIMARY KEY,
  run_id     INTEGER NOT NULL REFERENCES runs(id),
  case_id    INTEGER NOT NULL REFERENCES cases(id),
  engine     TEXT NOT NULL,
  outcome    TEXT NOT NULL,
  vector     INTEGER,
  error_code INTEGER,
  addr       INTEGER,
  reason     TEXT,
  end_state  BLOB NOT NULL,
  pages      BLOB,
  ns         INTEGER NOT NULL DEFAULT 0,
  UNIQUE (run_id, case_id, engine)
);
CREATE TABLE run_cases (
  run_id  INTEGER NOT NULL REFERENCES runs(id),
  case_id INTEGER NOT NULL REFERENCES cases(id),
  done    INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, case_id)
) WITHOUT ROWID;
CREATE TABLE divergences (
  id         INTEGER PRIMARY KEY,
  run_id     INTEGER NOT NULL REFERENCES runs(id),
  case_id    INTEGER NOT NULL REFERENCES cases(id),
  engine_a   TEXT NOT NULL,
  engine_b   TEXT NOT NULL,
  field_kind TEXT NOT NULL,
  field      TEXT NOT NULL,
  value_a    TEXT NOT NULL,
  value_b    TEXT NOT NULL,
  insn_index INTEGER NOT NULL DEFAULT -1,
  insn_form  TEXT NOT NULL DEFAULT '',
  signature  TEXT NOT NULL
);
CREATE INDEX divergences_run_sig ON divergences(run_id, signature);
CREATE INDEX divergences_run_case ON divergences(run_id, case_id);
CREATE TABLE triage (
  signature    TEXT PRIMARY KEY,
  count        INTEGER NOT NULL DEFAULT 0,
  first_run    INTEGER NOT NULL,
  last_run     INTEGER NOT NULL,
  example_case INTEGER NOT NULL,
  status       TEXT NOT NULL DEFAULT 'new',
  insn_form    TEXT NOT NULL DEFAULT '',
  field_kind   TEXT NOT NULL DEFAULT '',
  engine_a     TEXT NOT NULL DEFAULT '',
  engine_b     TEXT NOT NULL DEFAULT ''
);
)sql";

// Tables added by version 2 (also part of a new database's schema).
constexpr const char* kSchemaV2Tables = R"sql(
CREATE TABLE agreed (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  hash   INTEGER NOT NULL,
  seed   INTEGER NOT NULL,
  PRIMARY KEY (run_id, hash)
) WITHOUT ROWID;
CREATE TABLE run_outcomes (
  run_id  INTEGER NOT NULL REFERENCES runs(id),
  engine  TEXT NOT NULL,
  outcome TEXT NOT NULL,
  vector  INTEGER NOT NULL,
  count   INTEGER NOT NULL,
  PRIMARY KEY (run_id, engine, outcome, vector)
) WITHOUT ROWID;
)sql";

// Tables added by version 3 (also part of a new database's schema).
constexpr const char* kSchemaV3Tables = R"sql(
CREATE TABLE root_causes (
  run_id        INTEGER NOT NULL REFERENCES runs(id),
  signature     TEXT NOT NULL,
  divergent     INTEGER NOT NULL,
  cases         INTEGER NOT NULL,
  engine_a      TEXT NOT NULL,
  engine_b      TEXT NOT NULL,
  insn_form     TEXT NOT NULL,
  field         TEXT NOT NULL,
  example_case  INTEGER NOT NULL,
  insn_index    INTEGER NOT NULL,
  root_insn     TEXT NOT NULL,
  minimized     TEXT NOT NULL DEFAULT '',
  min_insns     INTEGER NOT NULL DEFAULT -1,
  min_disasm    TEXT NOT NULL DEFAULT '',
  min_note      TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, signature)
) WITHOUT ROWID;
)sql";

// Migrations from version i to i+1, applied in order inside one
// transaction.
struct Migration {
  int from;
  const char* sql;
  const char* sql2 = nullptr;
};
constexpr Migration kMigrations[] = {
    // 1 -> 2: agreeing cases by hash and seed; outcome counts kept per run
    // (results no longer hold a row for every case), filled from results.
    {1, kSchemaV2Tables,
     "INSERT INTO run_outcomes (run_id, engine, outcome, vector, count) "
     "SELECT run_id, engine, outcome, coalesce(vector, -1), count(*) FROM results "
     "GROUP BY run_id, engine, outcome, coalesce(vector, -1);"},
    // 2 -> 3: root causes of a run (cpudiff triage --collapse); empty until
    // it runs.
    {2, kSchemaV3Tables, nullptr},
};

// ---- SQLite plumbing ---------------------------------------------------

// A prepared statement in use: binds, steps, reads columns, and resets the
// statement (it stays prepared in the cache) when it goes out of scope.
class Query {
 public:
  Query(sqlite3* db, sqlite3_stmt* s, const std::string* path) : db_(db), s_(s), path_(path) {}
  ~Query() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& Bind(int i, int64_t v) {
    Check(sqlite3_bind_int64(s_, i, v));
    return *this;
  }
  Query& Bind(int i, std::string_view v) {
    Check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Query& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }
  Query& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
  Query& BindBlob(int i, const void* p, size_t n) {
    // A zero-length blob is stored as an empty blob, not NULL.
    Check(sqlite3_bind_blob64(s_, i, n ? p : "", n, SQLITE_TRANSIENT));
    return *this;
  }
  Query& BindBlob(int i, const std::vector<uint8_t>& v) { return BindBlob(i, v.data(), v.size()); }
  Query& BindNull(int i) {
    Check(sqlite3_bind_null(s_, i));
    return *this;
  }
  // True while there is a row.
  bool Step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    Check(rc);
    return false;
  }
  void Run() {
    while (Step()) {
    }
  }
  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string Text(int col) const {
    const auto* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
  }
  std::vector<uint8_t> BlobBytes(int col) const {
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s_, col));
    return p ? std::vector<uint8_t>(p, p + sqlite3_column_bytes(s_, col)) : std::vector<uint8_t>();
  }
  BlobReader Blob(int col) const {
    const void* p = sqlite3_column_blob(s_, col);
    return BlobReader(p, static_cast<size_t>(sqlite3_column_bytes(s_, col)));
  }

 private:
  void Check(int rc) const {
    if (rc == SQLITE_OK) return;
    throw std::runtime_error(*path_ + ": " + sqlite3_errmsg(db_) + " (in: " + sqlite3_sql(s_) +
                             ")");
  }
  sqlite3* db_;
  sqlite3_stmt* s_;
  const std::string* path_;
};

std::string OsReason(int err) { return err ? std::strerror(err) : "unknown reason"; }

// Checks, before SQLite touches it, that `path` can be opened for writing
// and is either empty/new or starts with the SQLite header. SQLite alone
// would report an unwritable file only at the first write and a foreign
// file as "file is not a database", without saying which file or why.
void PrecheckFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      throw std::runtime_error(path + ": cannot open database: " + OsReason(errno));
    }
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      throw std::runtime_error(path + ": cannot create database: " + OsReason(errno));
    }
    close(fd);
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    throw std::runtime_error(path + ": cannot open database: " + OsReason(EISDIR));
  }
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    throw std::runtime_error(path + ": cannot open database for writing: " + OsReason(errno));
  }
  char header[16] = {};
  ssize_t n = read(fd, header, sizeof header);
  int read_errno = errno;
  close(fd);
  if (n < 0) {
    throw std::runtime_error(path + ": cannot read database: " + OsReason(read_errno));
  }
  if (n == 0) return;                                           // empty file: a new database
  static constexpr char kSqliteHeader[16] = "SQLite format 3";  // with its NUL
  if (n < 16 || std::memcmp(header, kSqliteHeader, 16) != 0) {
    throw std::runtime_error(path +
                             ": not a cpudiff database: the file is not a SQLite database "
                             "(its header is not \"SQLite format 3\")");
  }
}

// ---- The store -------------------------------------------------------------

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(std::string path) : path_(std::move(path)) {}

  ~SqliteStore() override {
    // A normal shutdown keeps what was added; a killed process loses only
    // the open batch.
    if (in_txn_) {
      try {
        CommitBatch();
      } catch (...) {
      }
    }
    for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  void Open() {
    bool in_memory = path_.empty() || path_ == ":memory:" || path_.starts_with("file:");
    if (!in_memory) PrecheckFile(path_);
    int rc = sqlite3_open_v2(
        path_.c_str(), &db_,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
        nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      int err = db_ ? sqlite3_system_errno(db_) : 0;
      throw std::runtime_error(path_ + ": cannot open database: " + msg +
                               (err ? " (" + OsReason(err) + ")" : ""));
    }
    sqlite3_extended_result_codes(db_, 1);
    // Another process (a merge, a report) may hold the lock briefly.
    sqlite3_busy_timeout(db_, 5000);

    int64_t app_id = PragmaInt("application_id");
    int64_t tables = 0;
    {
      Query q = Prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table'");
      if (q.Step()) tables = q.Int(0);
    }
    if (tables > 0 && app_id != kApplicationId) {
      throw std::runtime_error(path_ +
                               ": not a cpudiff database: it is a SQLite database with other "
                               "tables (application_id " +
                               std::to_string(app_id) + ")");
    }

    if (tables == 0) {
      // Must precede the switch to WAL. Bigger pages: a result's 4 KiB
      // memory pages then sit in one database page instead of an overflow
      // chain, and the WAL is written in fewer, larger writes.
      Exec("PRAGMA page_size = 16384");
    }
    // WAL: readers (reports) do not block the campaign, and a crash between
    // commits leaves the last committed state. NORMAL sync is durable
    // against process death (not power loss), which is what a campaign needs.
    std::string mode = PragmaText("journal_mode = WAL");
    if (mode != "wal" && !in_memory) {
      throw std::runtime_error(path_ + ": cannot switch the database to WAL mode (got " + mode +
                               ")");
    }
    Exec("PRAGMA synchronous = NORMAL");
    Exec("PRAGMA temp_store = MEMORY");
    // Measured on a virtio disk (SCHEMA.md, File settings): checkpoints
    // are what waits for the disk (each one an fdatasync, then pages read
    // back), so the WAL may grow to 64 MiB before one (4096 pages of 16 KiB),
    // and a 64 MiB page cache keeps the indexes of a long campaign in memory.
    Exec("PRAGMA cache_size = -65536");
    Exec("PRAGMA wal_autocheckpoint = 4096");

    if (tables == 0) {
      CreateSchema();
    } else {
      CheckVersion();
    }
  }

  // ---- runs ----

  int64_t BeginRun(const RunInfo& info) override {
    BeginWrite();
    Prepare(
        "INSERT INTO runs (started, config, host_cpu, engine_versions, git_rev, status) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .Bind(1, info.started.empty() ? NowIso8601() : info.started)
        .Bind(2, info.config.empty() ? "{}" : info.config)
        .Bind(3, info.host_cpu)
        .Bind(4, info.engine_versions.empty() ? "{}" : info.engine_versions)
        .Bind(5, info.git_rev)
        .Bind(6, info.status.empty() ? "running" : info.status)
        .Run();
    int64_t id = sqlite3_last_insert_rowid(db_);
    // The run row is committed at once so that an interrupted campaign
    // still shows up in `runs`.
    CommitBatch();
    return id;
  }

  void FinishRun(int64_t run_id, const std::string& status) override {
    BeginWrite();
    Prepare("UPDATE runs SET status = ?2, finished = ?3 WHERE id = ?1")
        .Bind(1, run_id)
        .Bind(2, status)
        .Bind(3, NowIso8601())
        .Run();
    CommitBatch();
  }

  std::optional<RunInfo> GetRun(int64_t run_id) override {
    Query q = Prepare(std::string(kRunColumns) + " WHERE id = ?1");
    q.Bind(1, run_id);
    if (!q.Step()) return std::nullopt;
    return ReadRun(q);
  }

  std::optional<RunInfo> LatestRun() override {
    Query q = Prepare(std::string(kRunColumns) + " ORDER BY id DESC LIMIT 1");
    if (!q.Step()) return std::nullopt;
    return ReadRun(q);
  }

  std::vector<RunInfo> Runs() override {
    std::vector<RunInfo> runs;
    Query q = Prepare(std::string(kRunColumns) + " ORDER BY id");
    while (q.Step()) runs.push_back(ReadRun(q));
    return runs;
  }

  // ---- cases ----

  int64_t AddCase(const TestCase& tc, const std::string& line) override {
    return AddCase(tc, line, tc.Hash());
  }

  int64_t AddCase(const TestCase& tc, const std::string& line, uint64_t case_hash) override {
    BeginWrite();
    int64_t hash = ToSql(case_hash);
    {
      Query q = Prepare(
          "INSERT INTO cases (hash, name, source, generator, seed, code_addr, code, init_state, "
          "regions, expect, tags, line) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
          "?12) ON CONFLICT (hash) DO NOTHING");
      q.Bind(1, hash)
          .Bind(2, tc.name)
          .Bind(3, tc.source)
          .Bind(4, tc.generator)
          .Bind(5, ToSql(tc.seed))
          .Bind(6, ToSql(tc.code_addr))
          .BindBlob(7, tc.code)
          .BindBlob(8, &tc.init, sizeof tc.init)
          .BindBlob(9, EncodeRegions(tc.mem));
      if (tc.expect) {
        q.BindBlob(10, EncodeExpect(*tc.expect));
      } else {
        q.BindNull(10);
      }
      q.BindBlob(11, EncodeTags(tc.tags)).Bind(12, line).Run();
    }
    int64_t id;
    if (sqlite3_changes(db_) > 0) {
      id = sqlite3_last_insert_rowid(db_);
    } else {
      Query q = Prepare("SELECT id FROM cases WHERE hash = ?1");
      q.Bind(1, hash);
      if (!q.Step()) throw std::runtime_error(path_ + ": case vanished after insert");
      id = q.Int(0);
    }
    RememberRegions(id, tc.mem);
    return id;
  }

  std::optional<StoredCase> GetCase(int64_t case_id) override {
    Query q = Prepare(std::string(kCaseColumns) + " WHERE id = ?1");
    q.Bind(1, case_id);
    if (!q.Step()) return std::nullopt;
    return ReadCase(q);
  }

  std::optional<StoredCase> FindCase(const std::string& key_in) override {
    std::string_view key = key_in;
    if (key.empty()) return std::nullopt;
    bool decimal = key.find_first_not_of("0123456789") == std::string_view::npos;
    if (decimal) {
      if (auto c = GetCase(std::stoll(std::string(key.substr(0, 18))))) return c;
    }
    std::string_view hex = key;
    if (hex.starts_with("0x")) hex.remove_prefix(2);
    bool is_hex = !hex.empty() && hex.size() <= 16 &&
                  hex.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
    if (is_hex) {
      // A hex prefix of k digits is the range [p << 4(16-k), that + 2^4(16-k)).
      // The top digit is fixed, so the range never crosses the sign bit of
      // the bit-cast stored value.
      uint64_t p = std::stoull(std::string(hex), nullptr, 16);
      int shift = 4 * (16 - static_cast<int>(hex.size()));
      uint64_t lo = shift == 64 ? 0 : p << shift;
      uint64_t hi = lo + (shift == 64 ? ~0ull : ((1ull << shift) - 1));
      int64_t slo = ToSql(lo), shi = ToSql(hi);
      if (slo > shi) std::swap(slo, shi);
      Query q =
          Prepare(std::string(kCaseColumns) + " WHERE hash BETWEEN ?1 AND ?2 ORDER BY id LIMIT 2");
      q.Bind(1, slo).Bind(2, shi);
      if (q.Step()) {
        StoredCase c = ReadCase(q);
        if (!q.Step()) return c;  // unique prefix
      }
    }
    Query q = Prepare(std::string(kCaseColumns) + " WHERE name = ?1 ORDER BY id DESC LIMIT 1");
    q.Bind(1, key);
    if (q.Step()) return ReadCase(q);
    return std::nullopt;
  }

  std::optional<TestCase> LoadCase(int64_t case_id) override {
    Query q = Prepare(
        "SELECT name, source, generator, seed, code_addr, code, init_state, regions, expect, "
        "tags FROM cases WHERE id = ?1");
    q.Bind(1, case_id);
    if (!q.Step()) return std::nullopt;
    TestCase tc;
    tc.name = q.Text(0);
    tc.source = q.Text(1);
    tc.generator = q.Text(2);
    tc.seed = FromSql(q.Int(3));
    tc.code_addr = FromSql(q.Int(4));
    tc.code = q.BlobBytes(5);
    BlobReader state = q.Blob(6);
    state.Raw(&tc.init, sizeof tc.init);
    bool ok = state.ok() && state.done();
    BlobReader regions = q.Blob(7);
    ok = ok && DecodeRegions(regions, &tc.mem);
    if (!q.IsNull(8)) {
      BlobReader expect = q.Blob(8);
      tc.expect.emplace();
      ok = ok && DecodeExpect(expect, &*tc.expect);
    }
    if (!q.IsNull(9)) {
      BlobReader tags = q.Blob(9);
      ok = ok && DecodeTags(tags, &tc.tags);
    }
    if (!ok) {
      throw std::runtime_error(path_ + ": case " + std::to_string(case_id) +
                               ": stored fields are corrupt");
    }
    return tc;
  }

  // ---- results, divergences, resume ----

  void AddResult(int64_t run_id, int64_t case_id, const std::string& engine,
                 const RunResult& r) override {
    BeginWrite();
    {
      // A case rerun after a resume replaces its earlier partial results.
      Query q = Prepare(
          "INSERT OR REPLACE INTO results (run_id, case_id, engine, outcome, vector, error_code, "
          "addr, reason, end_state, pages, ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
          "?11)");
      q.Bind(1, run_id).Bind(2, case_id).Bind(3, engine).Bind(4, OutcomeKindName(r.outcome.kind));
      if (r.outcome.kind == OutcomeKind::kFault) {
        q.Bind(5, static_cast<int64_t>(r.outcome.vector));
      } else {
        q.BindNull(5);
      }
      if (r.outcome.has_error_code) {
        q.Bind(6, ToSql(r.outcome.error_code));
      } else {
        q.BindNull(6);
      }
      if (r.outcome.has_addr) {
        q.Bind(7, ToSql(r.outcome.addr));
      } else {
        q.BindNull(7);
      }
      if (r.outcome.reason.empty()) {
        q.BindNull(8);
      } else {
        q.Bind(8, r.outcome.reason);
      }
      q.BindBlob(9, &r.state, sizeof r.state);
      if (r.pages.empty()) {
        q.BindNull(10);
      } else {
        q.BindBlob(10, EncodePages(r.pages, CaseRegions(case_id)));
      }
      q.Bind(11, ToSql(r.ns)).Run();
    }
    CountOutcome(run_id, engine, r.outcome.kind, r.outcome.vector);
    Prepare("INSERT OR IGNORE INTO run_cases (run_id, case_id, done) VALUES (?1, ?2, 0)")
        .Bind(1, run_id)
        .Bind(2, case_id)
        .Run();
  }

  void AddDivergence(const StoredDivergence& d) override {
    BeginWrite();
    std::string_view kind = StoredFieldKind(d.mismatch.kind);
    Prepare(
        "INSERT INTO divergences (run_id, case_id, engine_a, engine_b, field_kind, field, "
        "value_a, value_b, insn_index, insn_form, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
        "?8, ?9, ?10, ?11)")
        .Bind(1, d.run_id)
        .Bind(2, d.case_id)
        .Bind(3, d.engine_a)
        .Bind(4, d.engine_b)
        .Bind(5, kind)
        .Bind(6, d.mismatch.field)
        .Bind(7, d.mismatch.a)
        .Bind(8, d.mismatch.b)
        .Bind(9, static_cast<int64_t>(d.mismatch.insn_index))
        .Bind(10, d.mismatch.insn_form)
        .Bind(11, d.signature)
        .Run();
    Prepare(
        "INSERT INTO triage (signature, count, first_run, last_run, example_case, insn_form, "
        "field_kind, engine_a, engine_b) VALUES (?1, 1, ?2, ?2, ?3, ?4, ?5, ?6, ?7) "
        "ON CONFLICT (signature) DO UPDATE SET count = count + 1, "
        "last_run = max(last_run, excluded.last_run)")
        .Bind(1, d.signature)
        .Bind(2, d.run_id)
        .Bind(3, d.case_id)
        .Bind(4, d.mismatch.insn_form)
        .Bind(5, kind)
        .Bind(6, d.engine_a)
        .Bind(7, d.engine_b)
        .Run();
  }

  void MarkCaseDone(int64_t run_id, int64_t case_id) override {
    BeginWrite();
    Prepare(
        "INSERT INTO run_cases (run_id, case_id, done) VALUES (?1, ?2, 1) "
        "ON CONFLICT (run_id, case_id) DO UPDATE SET done = 1")
        .Bind(1, run_id)
        .Bind(2, case_id)
        .Run();
  }

  void AddAgreedCase(int64_t run_id, uint64_t hash, uint64_t seed,
                     std::span<const EngineOutcome> outcomes) override {
    BeginWrite();
    Prepare("INSERT OR IGNORE INTO agreed (run_id, hash, seed) VALUES (?1, ?2, ?3)")
        .Bind(1, run_id)
        .Bind(2, ToSql(hash))
        .Bind(3, ToSql(seed))
        .Run();
    if (sqlite3_changes(db_) == 0) return;  // already recorded (a repeated case)
    for (const EngineOutcome& o : outcomes) CountOutcome(run_id, o.engine, o.kind, o.vector);
  }

  std::vector<AgreedRow> AgreedCases(int64_t run_id) override {
    Query q = Prepare("SELECT hash, seed FROM agreed WHERE run_id = ?1 ORDER BY hash");
    q.Bind(1, run_id);
    std::vector<AgreedRow> out;
    while (q.Step()) out.push_back({FromSql(q.Int(0)), FromSql(q.Int(1))});
    return out;
  }

  std::vector<OutcomeTotal> OutcomeTotals(int64_t run_id) override {
    Query q = Prepare(
        "SELECT engine, outcome, vector, count FROM run_outcomes WHERE run_id = ?1 "
        "ORDER BY engine, outcome, vector");
    q.Bind(1, run_id);
    std::vector<OutcomeTotal> out;
    while (q.Step()) {
      OutcomeTotal& t = out.emplace_back();
      t.engine = q.Text(0);
      if (!ParseOutcomeKind(q.Text(1), &t.kind)) {
        throw std::runtime_error(path_ + ": unknown outcome '" + q.Text(1) + "' in run_outcomes");
      }
      t.vector = static_cast<int>(q.Int(2));
      t.count = q.Int(3);
    }
    return out;
  }

  void AddOutcomeTotal(int64_t run_id, const OutcomeTotal& t) override {
    BeginWrite();
    Prepare(
        "INSERT INTO run_outcomes (run_id, engine, outcome, vector, count) "
        "VALUES (?1, ?2, ?3, ?4, ?5) "
        "ON CONFLICT (run_id, engine, outcome, vector) DO UPDATE SET count = count + "
        "excluded.count")
        .Bind(1, run_id)
        .Bind(2, t.engine)
        .Bind(3, OutcomeKindName(t.kind))
        .Bind(4, static_cast<int64_t>(t.vector))
        .Bind(5, t.count)
        .Run();
  }

  int64_t CountAgreedCases(int64_t run_id) override {
    return CountWhere("SELECT count(*) FROM agreed WHERE run_id = ?1", run_id);
  }

  bool IsCaseDone(int64_t run_id, uint64_t case_hash) override {
    {
      Query q = Prepare("SELECT 1 FROM agreed WHERE run_id = ?1 AND hash = ?2");
      q.Bind(1, run_id).Bind(2, ToSql(case_hash));
      if (q.Step()) return true;
    }
    Query q = Prepare(
        "SELECT rc.done FROM cases c JOIN run_cases rc ON rc.case_id = c.id "
        "WHERE c.hash = ?2 AND rc.run_id = ?1");
    q.Bind(1, run_id).Bind(2, ToSql(case_hash));
    return q.Step() && q.Int(0) != 0;
  }

  void CommitBatch() override {
    if (!in_txn_) return;
    FlushOutcomeCounts();
    Prepare("COMMIT").Run();
    in_txn_ = false;
  }

  // ---- queries ----

  std::vector<StoredResult> ResultsForCase(int64_t run_id, int64_t case_id) override {
    std::vector<StoredResult> out;
    Query q = Prepare(
        "SELECT engine, outcome, vector, error_code, addr, reason, end_state, pages, ns "
        "FROM results WHERE run_id = ?1 AND case_id = ?2 ORDER BY id");
    q.Bind(1, run_id).Bind(2, case_id);
    while (q.Step()) {
      StoredResult& sr = out.emplace_back();
      sr.case_id = case_id;
      sr.engine = q.Text(0);
      Outcome& o = sr.result.outcome;
      if (!ParseOutcomeKind(q.Text(1), &o.kind)) {
        throw std::runtime_error(path_ + ": unknown outcome '" + q.Text(1) + "' in results");
      }
      o.vector = static_cast<uint8_t>(q.Int(2));
      o.has_error_code = !q.IsNull(3);
      o.error_code = FromSql(q.Int(3));
      o.has_addr = !q.IsNull(4);
      o.addr = FromSql(q.Int(4));
      o.reason = q.Text(5);
      BlobReader state = q.Blob(6);
      state.Raw(&sr.result.state, sizeof sr.result.state);
      bool ok = state.ok() && state.done();
      if (!q.IsNull(7)) {
        BlobReader pages = q.Blob(7);
        ok = ok && DecodePages(pages, CaseRegions(case_id), &sr.result.pages);
      }
      if (!ok) {
        throw std::runtime_error(path_ + ": result of case " + std::to_string(case_id) + " on " +
                                 sr.engine + ": stored fields are corrupt");
      }
      sr.result.ns = FromSql(q.Int(8));
    }
    return out;
  }

  std::vector<StoredDivergence> Divergences(int64_t run_id) override {
    Query q = Prepare(std::string(kDivergenceColumns) + " WHERE run_id = ?1 ORDER BY id");
    q.Bind(1, run_id);
    std::vector<StoredDivergence> out;
    while (q.Step()) out.push_back(ReadDivergence(q));
    return out;
  }

  std::vector<StoredDivergence> DivergencesForCase(int64_t run_id, int64_t case_id) override {
    Query q = Prepare(std::string(kDivergenceColumns) +
                      " WHERE run_id = ?1 AND case_id = ?2 ORDER BY id");
    q.Bind(1, run_id).Bind(2, case_id);
    std::vector<StoredDivergence> out;
    while (q.Step()) out.push_back(ReadDivergence(q));
    return out;
  }

  std::vector<SignatureRow> Signatures() override {
    Query q = Prepare(
        "SELECT signature, count, first_run, example_case, status, insn_form, field_kind, "
        "engine_a, engine_b, last_run FROM triage ORDER BY count DESC, signature");
    std::vector<SignatureRow> out;
    while (q.Step()) {
      SignatureRow& s = out.emplace_back();
      s.signature = q.Text(0);
      s.count = q.Int(1);
      s.first_run = q.Int(2);
      s.example_case = q.Int(3);
      s.status = q.Text(4);
      s.insn_form = q.Text(5);
      s.field_kind = q.Text(6);
      s.engine_a = q.Text(7);
      s.engine_b = q.Text(8);
      s.last_run = q.Int(9);
    }
    return out;
  }

  std::vector<SignatureRow> RunSignatures(int64_t run_id) override {
    Query q = Prepare(
        "SELECT d.signature, count(*), count(DISTINCT d.case_id), "
        "  (SELECT d2.case_id FROM divergences d2 WHERE d2.run_id = ?1 "
        "   AND d2.signature = d.signature ORDER BY d2.id LIMIT 1), "
        "  min(d.insn_form), min(d.field_kind), min(d.engine_a), min(d.engine_b), "
        "  coalesce(t.status, 'new'), coalesce(t.first_run, ?1), coalesce(t.last_run, ?1) "
        "FROM divergences d LEFT JOIN triage t ON t.signature = d.signature "
        "WHERE d.run_id = ?1 GROUP BY d.signature ORDER BY count(*) DESC, d.signature");
    q.Bind(1, run_id);
    std::vector<SignatureRow> out;
    while (q.Step()) {
      SignatureRow& s = out.emplace_back();
      s.signature = q.Text(0);
      s.count = q.Int(1);
      s.cases = q.Int(2);
      s.example_case = q.Int(3);
      s.insn_form = q.Text(4);
      s.field_kind = q.Text(5);
      s.engine_a = q.Text(6);
      s.engine_b = q.Text(7);
      s.status = q.Text(8);
      s.first_run = q.Int(9);
      s.last_run = q.Int(10);
    }
    return out;
  }

  void ReplaceRootCauses(int64_t run_id, const std::vector<RootCauseRow>& rows) override {
    CommitBatch();
    Exec("BEGIN IMMEDIATE");
    try {
      {
        Query d = Prepare("DELETE FROM root_causes WHERE run_id = ?1");
        d.Bind(1, run_id);
        d.Run();
      }
      for (const RootCauseRow& r : rows) {
        Query q = Prepare(
            "INSERT INTO root_causes (run_id, signature, divergent, cases, engine_a, engine_b, "
            "insn_form, field, example_case, insn_index, root_insn, minimized, min_insns, "
            "min_disasm, min_note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
            "?13, ?14, ?15)");
        q.Bind(1, run_id).Bind(2, r.signature).Bind(3, r.divergent).Bind(4, r.cases);
        q.Bind(5, r.engine_a).Bind(6, r.engine_b).Bind(7, r.insn_form).Bind(8, r.field);
        q.Bind(9, r.example_case).Bind(10, r.insn_index).Bind(11, r.root_insn);
        q.Bind(12, r.minimized).Bind(13, r.min_insns).Bind(14, r.min_disasm).Bind(15, r.min_note);
        q.Run();
      }
      Exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  std::vector<RootCauseRow> RootCauses(int64_t run_id) override {
    Query q = Prepare(
        "SELECT signature, divergent, cases, engine_a, engine_b, insn_form, field, example_case, "
        "insn_index, root_insn, minimized, min_insns, min_disasm, min_note FROM root_causes "
        "WHERE run_id = ?1 ORDER BY cases DESC, signature");
    q.Bind(1, run_id);
    std::vector<RootCauseRow> out;
    while (q.Step()) {
      RootCauseRow& r = out.emplace_back();
      r.signature = q.Text(0);
      r.divergent = q.Int(1);
      r.cases = q.Int(2);
      r.engine_a = q.Text(3);
      r.engine_b = q.Text(4);
      r.insn_form = q.Text(5);
      r.field = q.Text(6);
      r.example_case = q.Int(7);
      r.insn_index = static_cast<int>(q.Int(8));
      r.root_insn = q.Text(9);
      r.minimized = q.Text(10);
      r.min_insns = static_cast<int>(q.Int(11));
      r.min_disasm = q.Text(12);
      r.min_note = q.Text(13);
    }
    return out;
  }

  std::vector<OutcomeCount> OutcomeCounts(int64_t run_id) override {
    // run_outcomes counts every result, stored in full or not (AddAgreedCase).
    std::vector<OutcomeCount> out;
    for (const OutcomeTotal& t : OutcomeTotals(run_id)) {
      OutcomeCount& c = out.emplace_back();
      c.engine = t.engine;
      c.outcome = t.vector < 0 ? std::string(OutcomeKindName(t.kind))
                               : VectorName(static_cast<uint8_t>(t.vector));
      c.count = t.count;
    }
    return out;
  }

  int64_t CountCasesDone(int64_t run_id) override {
    return CountWhere("SELECT count(*) FROM run_cases WHERE run_id = ?1 AND done = 1", run_id) +
           CountAgreedCases(run_id);
  }
  int64_t CountCases(int64_t run_id) override {
    return CountWhere("SELECT count(*) FROM run_cases WHERE run_id = ?1", run_id) +
           CountAgreedCases(run_id);
  }
  int64_t CountDivergences(int64_t run_id) override {
    return CountWhere("SELECT count(*) FROM divergences WHERE run_id = ?1", run_id);
  }
  int64_t CountDivergentCases(int64_t run_id) override {
    return CountWhere("SELECT count(DISTINCT case_id) FROM divergences WHERE run_id = ?1", run_id);
  }

  bool SetSignatureStatus(const std::string& signature, const std::string& status) override {
    BeginWrite();
    Prepare("UPDATE triage SET status = ?2 WHERE signature = ?1")
        .Bind(1, signature)
        .Bind(2, status)
        .Run();
    bool found = sqlite3_changes(db_) > 0;
    CommitBatch();
    return found;
  }

  std::string Path() const override { return path_; }

  std::vector<int64_t> RunCaseIds(int64_t run_id) override {
    Query q = Prepare("SELECT case_id FROM run_cases WHERE run_id = ?1 ORDER BY case_id");
    q.Bind(1, run_id);
    std::vector<int64_t> ids;
    while (q.Step()) ids.push_back(q.Int(0));
    return ids;
  }

 private:
  static constexpr const char* kRunColumns =
      "SELECT id, started, config, host_cpu, engine_versions, git_rev, status FROM runs";
  static constexpr const char* kCaseColumns = "SELECT id, hash, line, name, source FROM cases";
  static constexpr const char* kDivergenceColumns =
      "SELECT id, run_id, case_id, engine_a, engine_b, field_kind, field, value_a, value_b, "
      "insn_index, insn_form, signature FROM divergences";

  static RunInfo ReadRun(const Query& q) {
    RunInfo r;
    r.id = q.Int(0);
    r.started = q.Text(1);
    r.config = q.Text(2);
    r.host_cpu = q.Text(3);
    r.engine_versions = q.Text(4);
    r.git_rev = q.Text(5);
    r.status = q.Text(6);
    return r;
  }

  static StoredCase ReadCase(const Query& q) {
    StoredCase c;
    c.id = q.Int(0);
    c.hash = FromSql(q.Int(1));
    c.line = q.Text(2);
    c.name = q.Text(3);
    c.source = q.Text(4);
    return c;
  }

  static StoredDivergence ReadDivergence(const Query& q) {
    StoredDivergence d;
    d.id = q.Int(0);
    d.run_id = q.Int(1);
    d.case_id = q.Int(2);
    d.engine_a = q.Text(3);
    d.engine_b = q.Text(4);
    d.mismatch.kind = ParseFieldKind(q.Text(5));
    d.mismatch.field = q.Text(6);
    d.mismatch.a = q.Text(7);
    d.mismatch.b = q.Text(8);
    d.mismatch.insn_index = static_cast<int>(q.Int(9));
    d.mismatch.insn_form = q.Text(10);
    d.signature = q.Text(11);
    return d;
  }

  // Statements are prepared once and kept: the hot inserts run millions of
  // times in a campaign and preparing costs more than executing.
  Query Prepare(const std::string& sql) {
    auto it = stmts_.find(sql);
    if (it == stmts_.end()) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) !=
          SQLITE_OK) {
        throw std::runtime_error(path_ + ": " + sqlite3_errmsg(db_) + " (in: " + sql + ")");
      }
      it = stmts_.emplace(sql, s).first;
    }
    return Query(db_, it->second, &path_);
  }

  // " (OS reason)" when SQLite's last error came from a system call.
  std::string SystemReason() const {
    int err = sqlite3_system_errno(db_);
    return err ? " (" + OsReason(err) + ")" : "";
  }

  void Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      throw std::runtime_error(path_ + ": " + msg + SystemReason());
    }
  }

  int64_t PragmaInt(const std::string& pragma) {
    sqlite3_stmt* s = nullptr;
    std::string sql = "PRAGMA " + pragma;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      std::string msg = sqlite3_errmsg(db_);
      sqlite3_finalize(s);
      throw std::runtime_error(path_ + ": not a cpudiff database: " + msg);
    }
    int64_t v = 0;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) v = sqlite3_column_int64(s, 0);
    std::string msg = sqlite3_errmsg(db_);
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      throw std::runtime_error(path_ + ": not a cpudiff database: " + msg);
    }
    return v;
  }

  std::string PragmaText(const std::string& pragma) {
    sqlite3_stmt* s = nullptr;
    std::string sql = "PRAGMA " + pragma;
    std::string v;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      const auto* p = sqlite3_column_text(s, 0);
      if (p) v = reinterpret_cast<const char*>(p);
    } else {
      std::string msg = sqlite3_errmsg(db_) + SystemReason();
      sqlite3_finalize(s);
      throw std::runtime_error(path_ + ": PRAGMA " + pragma + ": " + msg);
    }
    sqlite3_finalize(s);
    return v;
  }

  int64_t CountWhere(const char* sql, int64_t run_id) {
    Query q = Prepare(sql);
    q.Bind(1, run_id);
    return q.Step() ? q.Int(0) : 0;
  }

  void CreateSchema() {
    Exec("BEGIN IMMEDIATE");
    try {
      // Another process may have created the schema between our look at
      // sqlite_master and taking the write lock (two cpudiff processes
      // opening a new database at once): then there is nothing to create.
      bool exists = false;
      {
        Query q = Prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table'");
        exists = q.Step() && q.Int(0) > 0;
      }
      if (exists) {
        Exec("COMMIT");
        CheckVersion();
        return;
      }
      Exec(kSchema);
      Exec(kSchemaV2Tables);
      Exec(kSchemaV3Tables);
      Exec("PRAGMA application_id = " + std::to_string(kApplicationId));
      Exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
      Exec("INSERT INTO meta (key, value) VALUES ('app', 'cpudiff'), ('schema_version', '" +
           std::to_string(kSchemaVersion) + "'), ('created', '" + NowIso8601() + "')");
      Exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  void CheckVersion() {
    // meta.schema_version is the version of record; PRAGMA user_version
    // mirrors it for tools that look there.
    int64_t version = -1;
    {
      Query q = Prepare("SELECT value FROM meta WHERE key = 'schema_version'");
      if (q.Step()) version = std::atoll(q.Text(0).c_str());
    }
    if (version < 0) {
      throw std::runtime_error(path_ + ": not a cpudiff database: no schema_version in meta");
    }
    if (version > kSchemaVersion) {
      throw std::runtime_error(path_ + ": database schema version " + std::to_string(version) +
                               " is newer than this cpudiff supports (" +
                               std::to_string(kSchemaVersion) + "); use a newer cpudiff");
    }
    while (version < kSchemaVersion) {
      const Migration* m = nullptr;
      for (const Migration& mig : kMigrations) {
        if (mig.from == version && mig.sql) m = &mig;
      }
      if (!m) {
        throw std::runtime_error(path_ + ": database schema version " + std::to_string(version) +
                                 " is older than " + std::to_string(kSchemaVersion) +
                                 " and cannot be migrated; start a new database");
      }
      Exec("BEGIN IMMEDIATE");
      try {
        Exec(m->sql);
        if (m->sql2) Exec(m->sql2);
        Exec("UPDATE meta SET value = '" + std::to_string(version + 1) +
             "' WHERE key = 'schema_version'");
        Exec("PRAGMA user_version = " + std::to_string(version + 1));
        Exec("COMMIT");
      } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
      ++version;
    }
  }

  void RememberRegions(int64_t case_id, std::vector<MemRegion> mem) {
    // The campaign adds a case and then its results: a few entries suffice.
    if (regions_.size() >= 64) regions_.clear();
    regions_[case_id] = std::move(mem);
  }

  const std::vector<MemRegion>& CaseRegions(int64_t case_id) {
    auto it = regions_.find(case_id);
    if (it != regions_.end()) return it->second;
    std::vector<MemRegion> mem;
    {
      Query q = Prepare("SELECT regions FROM cases WHERE id = ?1");
      q.Bind(1, case_id);
      if (!q.Step()) {
        throw std::runtime_error(path_ + ": no case " + std::to_string(case_id));
      }
      BlobReader r = q.Blob(0);
      if (!DecodeRegions(r, &mem)) {
        throw std::runtime_error(path_ + ": case " + std::to_string(case_id) +
                                 ": stored regions are corrupt");
      }
    }
    RememberRegions(case_id, std::move(mem));
    return regions_[case_id];
  }

  // Outcome counts are kept in memory and added to run_outcomes at each
  // commit: one row update per engine and outcome instead of one per result.
  void CountOutcome(int64_t run_id, std::string_view engine, OutcomeKind kind, uint8_t vector) {
    int64_t v = kind == OutcomeKind::kFault ? vector : -1;
    for (PendingCount& p : pending_counts_) {
      if (p.run_id == run_id && p.kind == kind && p.vector == v && p.engine == engine) {
        ++p.count;
        return;
      }
    }
    pending_counts_.push_back({run_id, std::string(engine), kind, v, 1});
  }

  void FlushOutcomeCounts() {
    for (const PendingCount& p : pending_counts_) {
      Prepare(
          "INSERT INTO run_outcomes (run_id, engine, outcome, vector, count) "
          "VALUES (?1, ?2, ?3, ?4, ?5) "
          "ON CONFLICT (run_id, engine, outcome, vector) DO UPDATE SET count = count + "
          "excluded.count")
          .Bind(1, p.run_id)
          .Bind(2, p.engine)
          .Bind(3, OutcomeKindName(p.kind))
          .Bind(4, p.vector)
          .Bind(5, p.count)
          .Run();
    }
    pending_counts_.clear();
  }

  void BeginWrite() {
    if (in_txn_) return;
    Prepare("BEGIN IMMEDIATE").Run();
    in_txn_ = true;
  }

  struct PendingCount {
    int64_t run_id;
    std::string engine;
    OutcomeKind kind;
    int64_t vector;
    int64_t count;
  };

  std::string path_;
  sqlite3* db_ = nullptr;
  bool in_txn_ = false;
  std::vector<PendingCount> pending_counts_;
  std::unordered_map<std::string, sqlite3_stmt*> stmts_;
  // Data regions of recently added or read cases, for diffing and
  // rebuilding result pages without a query per result.
  std::unordered_map<int64_t, std::vector<MemRegion>> regions_;
};

}  // namespace

std::unique_ptr<Store> Store::Open(const std::string& path) {
  auto store = std::make_unique<SqliteStore>(path);
  store->Open();
  return store;
}

}  // namespace cpudiff

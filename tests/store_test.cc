#include "harness/store/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>

namespace cpudiff {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "cpudiff_store_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// add rax, rbx / mov [rdi], rax / hlt
TestCase SampleCase(uint64_t variant = 0) {
  TestCase tc;
  tc.name = "sample-" + std::to_string(variant);
  tc.source = "test.jsonl:" + std::to_string(variant + 1);
  tc.generator = "unit";
  tc.seed = 0x8000000000000001ull + variant;  // high bit set: stored bit-cast
  tc.code = {0x48, 0x01, 0xd8, 0x48, 0x89, 0x07};
  tc.init.rip = tc.code_addr;
  tc.init.gpr[kRax] = 0xffffffffffffffffull;
  tc.init.gpr[kRbx] = 1 + variant;
  tc.init.gpr[kRdi] = kDefaultDataAddr;
  tc.init.gpr[kRsp] = kDefaultRsp;
  tc.init.xmm[3] = {0x1122334455667788ull, 0x99aabbccddeeff00ull};
  tc.init.rflags = 0x203;
  MemRegion data;
  data.addr = kDefaultDataAddr;
  data.size = kDefaultDataSize;
  data.perm = kPermR | kPermW;
  data.data = {0xde, 0xad, 0xbe, 0xef};
  MemRegion ro;
  ro.addr = 0x40000000;
  ro.size = kPageSize;
  ro.perm = kPermR;
  tc.mem = {data, ro};
  tc.tags = {"alu", "add"};
  Expect e;
  e.outcome = ExpectOutcome{OutcomeKind::kFault, kVecPF, 0x6, 0x40000000};
  e.regs.emplace_back(kRax, RegValue{variant, 0});
  e.regs.emplace_back(kRegXmm0 + 3, RegValue{1, 2});
  e.mem.push_back({kDefaultDataAddr + 3, {1, 2, 3}});
  tc.expect = e;
  return tc;
}

RunResult SampleResult(const Outcome& o) {
  RunResult r;
  r.outcome = o;
  r.state.gpr[kRax] = 0x1234;
  r.state.rip = 0x10000006;
  r.state.rflags = 0x10246;
  r.state.xmm[15] = {5, 6};
  r.state.mxcsr = 0x1fa0;
  r.state.fs_base = 0x7000;
  r.ns = 4242;
  return r;
}

TEST(StoreRoundTrip, CaseFieldsSurviveStorage) {
  TempDir dir;
  auto store = Store::Open(dir.File("c.db"));
  TestCase tc = SampleCase();
  int64_t id = store->AddCase(tc, "{\"v\":1,\"code\":\"4801d8488907\"}");
  store->CommitBatch();

  auto sc = store->GetCase(id);
  ASSERT_TRUE(sc);
  EXPECT_EQ(sc->id, id);
  EXPECT_EQ(sc->hash, tc.Hash());
  EXPECT_EQ(sc->name, "sample-0");
  EXPECT_EQ(sc->source, "test.jsonl:1");
  EXPECT_EQ(sc->line, "{\"v\":1,\"code\":\"4801d8488907\"}");

  auto back = store->LoadCase(id);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->Hash(), tc.Hash());
  EXPECT_EQ(back->name, tc.name);
  EXPECT_EQ(back->generator, "unit");
  EXPECT_EQ(back->seed, tc.seed);
  EXPECT_EQ(back->code_addr, tc.code_addr);
  EXPECT_EQ(back->code, tc.code);
  EXPECT_EQ(back->init, tc.init);
  ASSERT_EQ(back->mem.size(), 2u);
  EXPECT_EQ(back->mem[0].addr, kDefaultDataAddr);
  EXPECT_EQ(back->mem[0].size, kDefaultDataSize);
  EXPECT_EQ(back->mem[0].perm, kPermR | kPermW);
  EXPECT_EQ(back->mem[0].data, tc.mem[0].data);
  EXPECT_EQ(back->mem[1].perm, kPermR);
  EXPECT_TRUE(back->mem[1].data.empty());
  EXPECT_EQ(back->tags, tc.tags);
  ASSERT_TRUE(back->expect);
  ASSERT_TRUE(back->expect->outcome);
  EXPECT_EQ(back->expect->outcome->kind, OutcomeKind::kFault);
  EXPECT_EQ(back->expect->outcome->vector, kVecPF);
  EXPECT_EQ(back->expect->outcome->error_code, std::optional<uint64_t>(6));
  EXPECT_EQ(back->expect->outcome->addr, std::optional<uint64_t>(0x40000000));
  ASSERT_EQ(back->expect->regs.size(), 2u);
  EXPECT_EQ(back->expect->regs[1].first, kRegXmm0 + 3);
  EXPECT_EQ(back->expect->regs[1].second, (RegValue{1, 2}));
  ASSERT_EQ(back->expect->mem.size(), 1u);
  EXPECT_EQ(back->expect->mem[0].addr, kDefaultDataAddr + 3);
  EXPECT_EQ(back->expect->mem[0].data, (std::vector<uint8_t>{1, 2, 3}));

  EXPECT_FALSE(store->GetCase(id + 100));
  EXPECT_FALSE(store->LoadCase(id + 100));
}

TEST(StoreRoundTrip, CaseWithoutExpectOrData) {
  TempDir dir;
  auto store = Store::Open(dir.File("c.db"));
  TestCase tc;
  tc.code = {0x90};
  tc.init.rip = tc.code_addr;
  int64_t id = store->AddCase(tc, "{}");
  auto back = store->LoadCase(id);
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->expect);
  EXPECT_TRUE(back->mem.empty());
  EXPECT_TRUE(back->tags.empty());
  EXPECT_EQ(back->Hash(), tc.Hash());
}

TEST(StoreRoundTrip, AddCaseIsIdempotentByHash) {
  TempDir dir;
  auto store = Store::Open(dir.File("c.db"));
  TestCase a = SampleCase(1);
  int64_t id1 = store->AddCase(a, "line-a");
  int64_t id2 = store->AddCase(a, "line-a");
  EXPECT_EQ(id1, id2);
  // Name and tags are not part of the identity: same case, same row, the
  // first name is kept.
  TestCase renamed = a;
  renamed.name = "other-name";
  renamed.tags = {"x"};
  EXPECT_EQ(store->AddCase(renamed, "line-b"), id1);
  EXPECT_EQ(store->GetCase(id1)->name, "sample-1");
  EXPECT_NE(store->AddCase(SampleCase(2), "line-c"), id1);
  store->CommitBatch();
  // Still idempotent after a commit and a reopen.
  store.reset();
  store = Store::Open(dir.File("c.db"));
  EXPECT_EQ(store->AddCase(a, "line-a"), id1);
}

TEST(StoreRoundTrip, FindCaseByIdHashPrefixOrName) {
  TempDir dir;
  auto store = Store::Open(dir.File("c.db"));
  TestCase a = SampleCase(1), b = SampleCase(2);
  int64_t ida = store->AddCase(a, "la");
  int64_t idb = store->AddCase(b, "lb");
  store->CommitBatch();
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(a.Hash()));
  EXPECT_EQ(store->FindCase(std::to_string(idb))->id, idb);
  EXPECT_EQ(store->FindCase(hex)->id, ida);
  EXPECT_EQ(store->FindCase(std::string("0x") + hex)->id, ida);
  // Ten digits are unique among two cases (unless the hashes collide there).
  EXPECT_EQ(store->FindCase(std::string(hex, 10))->id, ida);
  EXPECT_EQ(store->FindCase("sample-2")->id, idb);
  EXPECT_FALSE(store->FindCase("no-such-case"));
  EXPECT_FALSE(store->FindCase(""));
}

TEST(StoreRoundTrip, ResultsOfEveryOutcomeKind) {
  TempDir dir;
  auto store = Store::Open(dir.File("r.db"));
  RunInfo info;
  info.config = R"({"reference":"native"})";
  info.host_cpu = "Test CPU";
  info.engine_versions = R"({"native":"1"})";
  info.git_rev = "abc123";
  int64_t run = store->BeginRun(info);
  TestCase tc = SampleCase();
  int64_t cid = store->AddCase(tc, "l");

  std::vector<std::pair<std::string, Outcome>> outcomes = {
      {"halt", Outcome::Halt()},
      {"ud", Outcome::Fault(kVecUD)},
      {"gp", Outcome::FaultWithCode(kVecGP, 0)},
      {"pf", Outcome::PageFault(0xffffffffffffffffull, 0xfffffffffffff000ull)},
      {"timeout", Outcome::Timeout("1000 ms")},
      {"syscall", Outcome::Syscall()},
      {"unsupported", Outcome::Unsupported("no AVX")},
      {"crash", Outcome::Crash("SIGSEGV in worker")},
  };
  for (const auto& [engine, o] : outcomes) {
    RunResult r = SampleResult(o);
    if (engine == "pf") {
      PageImage p1, p2;
      p1.addr = kDefaultDataAddr;
      p1.bytes[0] = 0xaa;
      p1.bytes[4095] = 0x55;
      p2.addr = kDefaultDataAddr + 3 * kPageSize;
      p2.bytes[17] = 1;
      r.pages = {p1, p2};
    }
    store->AddResult(run, cid, engine, r);
  }
  store->CommitBatch();
  store.reset();
  store = Store::Open(dir.File("r.db"));

  auto results = store->ResultsForCase(run, cid);
  ASSERT_EQ(results.size(), outcomes.size());
  for (size_t i = 0; i < outcomes.size(); ++i) {
    SCOPED_TRACE(outcomes[i].first);
    const StoredResult& sr = results[i];
    const Outcome& want = outcomes[i].second;
    EXPECT_EQ(sr.case_id, cid);
    EXPECT_EQ(sr.engine, outcomes[i].first);
    EXPECT_EQ(sr.result.outcome.kind, want.kind);
    EXPECT_TRUE(sr.result.outcome.SameAs(want));
    EXPECT_EQ(sr.result.outcome.has_error_code, want.has_error_code);
    EXPECT_EQ(sr.result.outcome.has_addr, want.has_addr);
    EXPECT_EQ(sr.result.outcome.reason, want.reason);
    EXPECT_EQ(FormatOutcome(sr.result.outcome), FormatOutcome(want));
    EXPECT_EQ(sr.result.state, SampleResult(want).state);
    EXPECT_EQ(sr.result.ns, 4242u);
  }
  const RunResult& pf = results[3].result;
  EXPECT_EQ(pf.outcome.error_code, 0xffffffffffffffffull);
  EXPECT_EQ(pf.outcome.addr, 0xfffffffffffff000ull);
  ASSERT_EQ(pf.pages.size(), 2u);
  EXPECT_EQ(pf.pages[0].addr, kDefaultDataAddr);
  EXPECT_EQ(pf.pages[0].bytes[0], 0xaa);
  EXPECT_EQ(pf.pages[0].bytes[4095], 0x55);
  EXPECT_EQ(pf.pages[1].addr, kDefaultDataAddr + 3 * kPageSize);
  EXPECT_EQ(pf.pages[1].bytes[17], 1);
  EXPECT_TRUE(results[0].result.pages.empty());

  auto counts = store->OutcomeCounts(run);
  ASSERT_EQ(counts.size(), outcomes.size());
  bool saw_pf = false;
  for (const OutcomeCount& c : counts) {
    EXPECT_EQ(c.count, 1);
    if (c.engine == "pf") {
      EXPECT_EQ(c.outcome, "#PF");
      saw_pf = true;
    }
    if (c.engine == "halt") {
      EXPECT_EQ(c.outcome, "halt");
    }
  }
  EXPECT_TRUE(saw_pf);

  auto ri = store->GetRun(run);
  ASSERT_TRUE(ri);
  EXPECT_EQ(ri->host_cpu, "Test CPU");
  EXPECT_EQ(ri->git_rev, "abc123");
  EXPECT_EQ(ri->config, info.config);
  EXPECT_EQ(ri->status, "running");
  EXPECT_FALSE(ri->started.empty());
  store->FinishRun(run, "done");
  EXPECT_EQ(store->LatestRun()->status, "done");
  int64_t run2 = store->BeginRun(info);
  EXPECT_EQ(store->LatestRun()->id, run2);
  EXPECT_EQ(store->Runs().size(), 2u);
  EXPECT_FALSE(store->GetRun(run2 + 1));
}

// Pages are stored as differences from the case's initial contents: every
// pattern must come back byte for byte (sparse and dense changes, a page
// that only partly holds initial data, a page outside every region).
TEST(StoreRoundTrip, PagesComeBackByteForByte) {
  TempDir dir;
  auto store = Store::Open(dir.File("p.db"));
  int64_t run = store->BeginRun({});
  TestCase tc = SampleCase();
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  auto rnd = [&seed] {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
  };
  tc.mem[0].data.resize(6000);  // page 0 full of data, page 1 partly
  for (uint8_t& b : tc.mem[0].data) b = static_cast<uint8_t>(rnd());
  int64_t cid = store->AddCase(tc, "l");

  std::vector<PageImage> pages(5);
  for (int i = 0; i < 3; ++i) {
    pages[i].addr = kDefaultDataAddr + i * kPageSize;
    for (size_t k = 0; k < kPageSize; ++k) {
      size_t off = i * kPageSize + k;
      pages[i].bytes[k] = off < tc.mem[0].data.size() ? tc.mem[0].data[off] : 0;
    }
  }
  // Page 0: sparse changes at the edges and in runs of various gaps.
  for (size_t k : {0, 1, 9, 18, 100, 107, 4000, 4095}) pages[0].bytes[k] ^= 0xff;
  // Page 1: dense random changes across the data/zero boundary.
  for (size_t k = 0; k < kPageSize; ++k) {
    if (rnd() % 3 == 0) pages[1].bytes[k] = static_cast<uint8_t>(rnd());
  }
  // Page 2: everything changed.
  for (auto& b : pages[2].bytes) b = static_cast<uint8_t>(rnd() | 1);
  // Page 3: a stack page, one qword.
  pages[3].addr = kDefaultStackAddr + 15 * kPageSize;
  pages[3].bytes[4088] = 0x42;
  // Page 4: outside every region (an engine may report one).
  pages[4].addr = 0x50000000;
  pages[4].bytes[7] = 7;
  RunResult r = SampleResult(Outcome::Halt());
  r.pages = pages;
  store->AddResult(run, cid, "native", r);
  store->CommitBatch();
  store.reset();

  store = Store::Open(dir.File("p.db"));
  auto results = store->ResultsForCase(run, cid);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_EQ(results[0].result.pages.size(), pages.size());
  for (size_t i = 0; i < pages.size(); ++i) {
    EXPECT_EQ(results[0].result.pages[i].addr, pages[i].addr) << i;
    EXPECT_TRUE(results[0].result.pages[i].bytes == pages[i].bytes) << "page " << i;
  }
}

TEST(StoreRoundTrip, ResultOfARerunReplacesTheOldOne) {
  TempDir dir;
  auto store = Store::Open(dir.File("r.db"));
  int64_t run = store->BeginRun({});
  int64_t cid = store->AddCase(SampleCase(), "l");
  store->AddResult(run, cid, "native", SampleResult(Outcome::Crash("first")));
  store->AddResult(run, cid, "native", SampleResult(Outcome::Halt()));
  auto results = store->ResultsForCase(run, cid);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].result.outcome.kind, OutcomeKind::kHalt);
}

StoredDivergence MakeDivergence(int64_t run, int64_t cid, const std::string& sig,
                                const std::string& field) {
  StoredDivergence d;
  d.run_id = run;
  d.case_id = cid;
  d.engine_a = "native";
  d.engine_b = "unicorn";
  d.mismatch.kind = field.starts_with("rflags") ? FieldKind::kFlags : FieldKind::kGpr;
  d.mismatch.field = field;
  d.mismatch.a = "1";
  d.mismatch.b = "0";
  d.mismatch.insn_index = 2;
  d.mismatch.insn_form = "imul r64, r64";
  d.signature = sig;
  return d;
}

TEST(StoreRoundTrip, DivergencesAndTriageCounts) {
  TempDir dir;
  auto store = Store::Open(dir.File("d.db"));
  int64_t run1 = store->BeginRun({});
  int64_t c1 = store->AddCase(SampleCase(1), "l1");
  int64_t c2 = store->AddCase(SampleCase(2), "l2");
  store->AddDivergence(MakeDivergence(run1, c1, "imul|flags|native|unicorn", "rflags.ZF"));
  store->AddDivergence(MakeDivergence(run1, c1, "imul|flags|native|unicorn", "rflags.SF"));
  store->AddDivergence(MakeDivergence(run1, c2, "imul|flags|native|unicorn", "rflags.ZF"));
  store->AddDivergence(MakeDivergence(run1, c2, "bsr|gpr|native|unicorn", "rax"));
  store->CommitBatch();
  int64_t run2 = store->BeginRun({});
  store->AddDivergence(MakeDivergence(run2, c2, "imul|flags|native|unicorn", "rflags.ZF"));
  store->CommitBatch();

  auto divs = store->Divergences(run1);
  ASSERT_EQ(divs.size(), 4u);
  EXPECT_EQ(divs[0].case_id, c1);
  EXPECT_EQ(divs[0].engine_a, "native");
  EXPECT_EQ(divs[0].engine_b, "unicorn");
  EXPECT_EQ(divs[0].mismatch.kind, FieldKind::kFlags);
  EXPECT_EQ(divs[0].mismatch.field, "rflags.ZF");
  EXPECT_EQ(divs[0].mismatch.a, "1");
  EXPECT_EQ(divs[0].mismatch.b, "0");
  EXPECT_EQ(divs[0].mismatch.insn_index, 2);
  EXPECT_EQ(divs[0].mismatch.insn_form, "imul r64, r64");
  EXPECT_EQ(divs[0].signature, "imul|flags|native|unicorn");
  EXPECT_EQ(divs[3].mismatch.kind, FieldKind::kGpr);
  EXPECT_EQ(store->CountDivergences(run1), 4);
  EXPECT_EQ(store->DivergencesForCase(run1, c2).size(), 2u);
  EXPECT_EQ(store->DivergencesForCase(run2, c2).size(), 1u);

  auto sigs = store->Signatures();
  ASSERT_EQ(sigs.size(), 2u);
  EXPECT_EQ(sigs[0].signature, "imul|flags|native|unicorn");
  EXPECT_EQ(sigs[0].count, 4);
  EXPECT_EQ(sigs[0].first_run, run1);
  EXPECT_EQ(sigs[0].last_run, run2);
  EXPECT_EQ(sigs[0].example_case, c1);
  EXPECT_EQ(sigs[0].status, "new");
  EXPECT_EQ(sigs[0].field_kind, "flags");
  EXPECT_EQ(sigs[0].insn_form, "imul r64, r64");
  EXPECT_EQ(sigs[0].engine_a, "native");
  EXPECT_EQ(sigs[0].engine_b, "unicorn");
  EXPECT_EQ(sigs[1].count, 1);
  EXPECT_EQ(sigs[1].example_case, c2);

  auto run_sigs = store->RunSignatures(run1);
  ASSERT_EQ(run_sigs.size(), 2u);
  EXPECT_EQ(run_sigs[0].count, 3);
  EXPECT_EQ(run_sigs[0].cases, 2);
  EXPECT_EQ(run_sigs[0].example_case, c1);
  auto run2_sigs = store->RunSignatures(run2);
  ASSERT_EQ(run2_sigs.size(), 1u);
  EXPECT_EQ(run2_sigs[0].count, 1);
  EXPECT_EQ(run2_sigs[0].example_case, c2);
  EXPECT_EQ(run2_sigs[0].first_run, run1);

  EXPECT_TRUE(store->SetSignatureStatus("bsr|gpr|native|unicorn", "known"));
  EXPECT_FALSE(store->SetSignatureStatus("nope", "known"));
  EXPECT_EQ(store->Signatures()[1].status, "known");
}

TEST(StoreResume, CaseIsDoneOnlyAfterMarkCaseDoneInThatRun) {
  TempDir dir;
  auto store = Store::Open(dir.File("resume.db"));
  int64_t run = store->BeginRun({});
  TestCase a = SampleCase(1), b = SampleCase(2);
  int64_t ida = store->AddCase(a, "la");
  store->AddCase(b, "lb");
  EXPECT_FALSE(store->IsCaseDone(run, a.Hash()));
  store->AddResult(run, ida, "native", SampleResult(Outcome::Halt()));
  // A result alone does not make the case done: another engine may still
  // be missing.
  EXPECT_FALSE(store->IsCaseDone(run, a.Hash()));
  EXPECT_EQ(store->CountCases(run), 1);
  EXPECT_EQ(store->CountCasesDone(run), 0);
  store->MarkCaseDone(run, ida);
  EXPECT_TRUE(store->IsCaseDone(run, a.Hash()));
  EXPECT_FALSE(store->IsCaseDone(run, b.Hash()));
  EXPECT_FALSE(store->IsCaseDone(run + 1, a.Hash()));
  EXPECT_FALSE(store->IsCaseDone(run, 0x1234));  // unknown case
  store->MarkCaseDone(run, ida);                 // twice is harmless
  store->CommitBatch();
  store.reset();

  store = Store::Open(dir.File("resume.db"));
  EXPECT_TRUE(store->IsCaseDone(run, a.Hash()));
  EXPECT_FALSE(store->IsCaseDone(run, b.Hash()));
  EXPECT_EQ(store->CountCasesDone(run), 1);
  EXPECT_EQ(store->CountCases(run), 1);
}

TEST(StoreResume, DestroyingTheStoreCommitsTheOpenBatch) {
  TempDir dir;
  {
    auto store = Store::Open(dir.File("x.db"));
    store->AddCase(SampleCase(7), "l");
  }
  auto store = Store::Open(dir.File("x.db"));
  EXPECT_TRUE(store->FindCase("sample-7"));
}

// ---- Open errors -----------------------------------------------------------

std::string OpenError(const std::string& path) {
  try {
    Store::Open(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(StoreOpen, PathInsideARegularFileNamesPathAndReason) {
  TempDir dir;
  std::ofstream(dir.File("plain")) << "x";
  std::string path = dir.File("plain") + "/db.sqlite";
  std::string err = OpenError(path);
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("Not a directory"), std::string::npos) << err;
}

TEST(StoreOpen, MissingDirectoryNamesPathAndReason) {
  TempDir dir;
  std::string path = dir.File("missing/sub/db.sqlite");
  std::string err = OpenError(path);
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("No such file or directory"), std::string::npos) << err;
}

// Root ignores directory permissions, so as root the open is tried in a
// child that has dropped to the unprivileged "nobody" ids.
TEST(StoreOpen, ReadOnlyDirectoryNamesPathAndReason) {
  TempDir dir;
  fs::create_directory(dir.File("ro"));
  fs::permissions(dir.File("."),
                  fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  fs::permissions(dir.File("ro"), fs::perms::owner_read | fs::perms::owner_exec |
                                      fs::perms::others_read | fs::perms::others_exec);
  std::string path = dir.File("ro/db.sqlite");
  std::string err;
  if (geteuid() != 0) {
    err = OpenError(path);
  } else {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
      std::string e = OpenError(path);
      (void)!write(fds[1], e.data(), e.size());
      _exit(0);
    }
    close(fds[1]);
    char buf[1024];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) err.append(buf, static_cast<size_t>(n));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "could not drop privileges";
  }
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("Permission denied"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(path));
}

TEST(StoreOpen, DirectoryIsRefused) {
  TempDir dir;
  fs::create_directory(dir.File("d"));
  std::string err = OpenError(dir.File("d"));
  EXPECT_NE(err.find(dir.File("d")), std::string::npos) << err;
  EXPECT_NE(err.find("Is a directory"), std::string::npos) << err;
}

TEST(StoreOpen, TextFileIsRefusedAndLeftAlone) {
  TempDir dir;
  std::string path = dir.File("notes.txt");
  std::ofstream(path) << "this is not a database, it is a text file with some words\n";
  std::string err = OpenError(path);
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("not a SQLite database"), std::string::npos) << err;
  std::ifstream in(path);
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, "this is not a database, it is a text file with some words");
}

// Runs SQL on a database file directly, as a foreign tool would.
void RawSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

TEST(StoreOpen, ForeignSqliteDatabaseIsRefused) {
  TempDir dir;
  std::string path = dir.File("other.db");
  RawSql(path, "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)");
  std::string err = OpenError(path);
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("not a cpudiff database"), std::string::npos) << err;
}

TEST(StoreOpen, NewerSchemaIsRefused) {
  TempDir dir;
  std::string path = dir.File("new.db");
  Store::Open(path).reset();
  RawSql(path, "UPDATE meta SET value = '" + std::to_string(kSchemaVersion + 1) +
                   "' WHERE key = 'schema_version'");
  std::string err = OpenError(path);
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("newer"), std::string::npos) << err;
}

TEST(StoreOpen, OlderSchemaWithoutMigrationIsRefused) {
  TempDir dir;
  std::string path = dir.File("old.db");
  Store::Open(path).reset();
  RawSql(path, "UPDATE meta SET value = '0' WHERE key = 'schema_version'");
  std::string err = OpenError(path);
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("cannot be migrated"), std::string::npos) << err;
}

// A version 1 file (no agreed, no run_outcomes) is migrated on open: its
// outcome counts come from its results.
TEST(StoreOpen, Version2IsMigratedWithAnEmptyRootCauseTable) {
  TempDir dir;
  std::string path = dir.File("v2.db");
  int64_t run = 0;
  {
    auto store = Store::Open(path);
    run = store->BeginRun(RunInfo{});
  }
  RawSql(path,
         "DROP TABLE root_causes; "
         "UPDATE meta SET value = '2' WHERE key = 'schema_version'; PRAGMA user_version = 2");
  auto store = Store::Open(path);
  EXPECT_TRUE(store->RootCauses(run).empty());
  RootCauseRow r;
  r.signature = "bswap r16|gpr|native~unicorn";
  r.cases = 3;
  r.min_insns = 1;
  store->ReplaceRootCauses(run, {r});
  store->ReplaceRootCauses(run, {r});  // replaced, not added
  std::vector<RootCauseRow> rows = store->RootCauses(run);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].signature, r.signature);
  EXPECT_EQ(rows[0].cases, 3);
  EXPECT_EQ(rows[0].min_insns, 1);
}

TEST(StoreOpen, Version1IsMigrated) {
  TempDir dir;
  std::string path = dir.File("v1.db");
  {
    auto store = Store::Open(path);
    RunInfo info;
    int64_t run = store->BeginRun(info);
    int64_t c1 = store->AddCase(SampleCase(1), "l1");
    int64_t c2 = store->AddCase(SampleCase(2), "l2");
    store->AddResult(run, c1, "native", SampleResult(Outcome::Halt()));
    store->AddResult(run, c2, "native", SampleResult(Outcome::Fault(14)));
    store->CommitBatch();
  }
  RawSql(path,
         "DROP TABLE agreed; DROP TABLE run_outcomes; DROP TABLE root_causes; "
         "UPDATE meta SET value = '1' WHERE key = 'schema_version'; PRAGMA user_version = 1");
  auto store = Store::Open(path);
  int64_t run = store->LatestRun()->id;
  std::map<std::string, int64_t> counts;
  for (const OutcomeCount& c : store->OutcomeCounts(run)) counts[c.outcome] += c.count;
  EXPECT_EQ(counts["halt"], 1);
  EXPECT_EQ(counts["#PF"], 1);
  // Version 2 from here on: agreed cases can be added and are counted.
  EngineOutcome o{"native", OutcomeKind::kHalt, 0};
  store->AddAgreedCase(run, 0x1234, 7, std::span(&o, 1));
  store->CommitBatch();
  EXPECT_EQ(store->CountAgreedCases(run), 1);
  EXPECT_TRUE(store->IsCaseDone(run, 0x1234));
  EXPECT_EQ(store->CountCasesDone(run), 1);  // the v1 cases were never marked done
}

TEST(StoreOpen, EmptyFileBecomesADatabaseInWalMode) {
  TempDir dir;
  std::string path = dir.File("empty.db");
  std::ofstream(path).close();
  auto store = Store::Open(path);
  store->AddCase(SampleCase(), "l");
  store->CommitBatch();
  EXPECT_EQ(store->Path(), path);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "wal");
  sqlite3_finalize(s);
  sqlite3_close(db);
}

// Other tests (campaign, gate) may want a throwaway store.
TEST(StoreOpen, InMemoryDatabaseWorks) {
  auto store = Store::Open(":memory:");
  int64_t run = store->BeginRun({});
  TestCase tc = SampleCase(3);
  int64_t id = store->AddCase(tc, "l");
  store->MarkCaseDone(run, id);
  store->CommitBatch();
  EXPECT_TRUE(store->IsCaseDone(run, tc.Hash()));
  EXPECT_EQ(store->LoadCase(id)->Hash(), tc.Hash());
}

// ---- Crash safety ----------------------------------------------------------

// A child commits batches of kBatch cases, tells the parent after commit
// kSignalAfter, then keeps adding cases without committing until it is
// killed. Every committed case must survive; no uncommitted case may appear.
TEST(StoreCrash, SigkillBetweenCommitsKeepsExactlyTheCommittedCases) {
  TempDir dir;
  std::string path = dir.File("kill.db");
  constexpr int kBatch = 50;
  constexpr int kSignalAfter = 5;  // batches 0..4 committed
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(ready[0]);
    // Only async-signal-unsafe work of our own below; no gtest in the child.
    try {
      auto store = Store::Open(path);
      int64_t run = store->BeginRun({});
      for (int i = 0;; ++i) {
        TestCase tc = SampleCase(static_cast<uint64_t>(i));
        int64_t id = store->AddCase(tc, "line");
        store->AddResult(run, id, "native", SampleResult(Outcome::Halt()));
        store->MarkCaseDone(run, id);
        if (i % kBatch == kBatch - 1 && i < kSignalAfter * kBatch) {
          store->CommitBatch();
          if (i == kSignalAfter * kBatch - 1) {
            (void)!write(ready[1], "c", 1);
          }
        }
        if (i == kSignalAfter * kBatch + 2 * kBatch) {
          // Two uncommitted batches' worth are in the open transaction.
          (void)!write(ready[1], "u", 1);
        }
      }
    } catch (...) {
      _exit(3);
    }
    _exit(0);
  }
  close(ready[1]);
  char buf[2] = {};
  ASSERT_EQ(read(ready[0], buf, 1), 1);
  EXPECT_EQ(buf[0], 'c');
  ASSERT_EQ(read(ready[0], buf + 1, 1), 1);
  EXPECT_EQ(buf[1], 'u');
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  close(ready[0]);

  auto store = Store::Open(path);
  auto run = store->LatestRun();
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, "running");
  constexpr int kCommitted = kSignalAfter * kBatch;
  EXPECT_EQ(store->CountCasesDone(run->id), kCommitted);
  for (int i = 0; i < kCommitted; ++i) {
    TestCase tc = SampleCase(static_cast<uint64_t>(i));
    ASSERT_TRUE(store->IsCaseDone(run->id, tc.Hash())) << i;
    auto sc = store->FindCase(tc.name);
    ASSERT_TRUE(sc) << i;
    ASSERT_EQ(store->ResultsForCase(run->id, sc->id).size(), 1u) << i;
  }
  for (int i = kCommitted; i < kCommitted + 2 * kBatch; ++i) {
    ASSERT_FALSE(store->FindCase("sample-" + std::to_string(i))) << i;
  }
  // The database is writable again after the crash.
  store->AddCase(SampleCase(100000), "l");
  store->CommitBatch();
}

// Not an assertion on speed (machines differ), a measurement for the log.
TEST(StorePerf, BatchedInsertRate) {
  TempDir dir;
  auto store = Store::Open(dir.File("perf.db"));
  int64_t run = store->BeginRun({});
  constexpr int kCases = 20000;
  std::vector<TestCase> cases;
  for (int i = 0; i < kCases; ++i) cases.push_back(SampleCase(static_cast<uint64_t>(i)));
  RunResult r = SampleResult(Outcome::Halt());
  PageImage page;
  page.addr = kDefaultDataAddr;
  r.pages = {page};
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kCases; ++i) {
    if (store->IsCaseDone(run, cases[i].Hash())) continue;
    int64_t id = store->AddCase(cases[i], "{\"v\":1,\"code\":\"4801d8488907\"}");
    store->AddResult(run, id, "native", r);
    store->AddResult(run, id, "unicorn", r);
    store->MarkCaseDone(run, id);
    if (i % 256 == 255) store->CommitBatch();
  }
  store->CommitBatch();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(store->CountCasesDone(run), kCases);
  printf("[ perf ] %d cases, 2 results each (one 4 KiB page), batches of 256: %.0f cases/s\n",
         kCases, kCases / s);
}

}  // namespace
}  // namespace cpudiff

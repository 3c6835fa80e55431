// End-to-end tests of the cpudiff binary: exit codes, messages, the store
// left behind, resume after SIGKILL.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>

#include "engines/engine.h"
#include "harness/corpus/corpus.h"
#include "harness/store/store.h"
#include "testgen/generate.h"

namespace cpudiff {
namespace {

struct Exec {
  int code = -1;
  std::string out;  // stdout and stderr together
};

Exec RunCpudiff(const std::string& args) {
  std::string cmd = std::string(CPUDIFF_BINARY) + " " + args + " 2>&1";
  Exec e;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return e;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) e.out.append(buf.data(), n);
  int status = pclose(p);
  e.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return e;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("cpudiff_cli_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) { return (dir_ / name).string(); }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(Path(name)) << text;
    return Path(name);
  }
  static void NeedNative() {
    Availability a = FindEngine("native")->probe();
    if (!a.available) GTEST_SKIP() << "native engine not available: " << a.reason;
  }
  std::filesystem::path dir_;
};

TEST_F(Cli, EnginesListsAllSix) {
  Exec e = RunCpudiff("engines");
  EXPECT_EQ(e.code, 0) << e.out;
  for (const char* name : {"emulator", "translator", "kvm", "native", "unicorn", "qemu"}) {
    EXPECT_NE(e.out.find(name), std::string::npos) << name << "\n" << e.out;
  }
  EXPECT_NE(e.out.find("not built yet"), std::string::npos) << e.out;
}

TEST_F(Cli, HelpAndUsageErrors) {
  Exec help = RunCpudiff("--help");
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("Exit codes"), std::string::npos) << help.out;
  EXPECT_EQ(RunCpudiff("").code, 2);
  EXPECT_EQ(RunCpudiff("frobnicate").code, 2);
  EXPECT_EQ(RunCpudiff("run").code, 2);  // a corpus is required
}

TEST_F(Cli, UnknownEngineIsAUsageError) {
  std::string corpus = Write("c.jsonl", R"({"v":1,"code":"90"})" "\n");
  Exec e = RunCpudiff("run " + corpus + " --engines native,bochs --db " + Path("x.db"));
  EXPECT_EQ(e.code, 2);
  EXPECT_NE(e.out.find("unknown engine 'bochs'"), std::string::npos) << e.out;
  Exec r = RunCpudiff("run " + corpus + " --reference nope --db " + Path("x.db"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("unknown reference engine 'nope'"), std::string::npos) << r.out;
}

TEST_F(Cli, UnwritableDatabaseIsAUsageError) {
  NeedNative();
  std::string corpus = Write("c.jsonl", R"({"v":1,"code":"90"})" "\n");
  Exec e = RunCpudiff("run " + corpus + " --engines native --db /nonexistent-dir/x.db");
  EXPECT_EQ(e.code, 2) << e.out;
  EXPECT_NE(e.out.find("/nonexistent-dir/x.db"), std::string::npos) << e.out;
}

TEST_F(Cli, MissingCorpusFileIsAUsageError) {
  Exec e = RunCpudiff("run " + Path("absent.jsonl") + " --db " + Path("x.db"));
  EXPECT_EQ(e.code, 2) << e.out;
  EXPECT_NE(e.out.find("absent.jsonl: file: cannot open"), std::string::npos) << e.out;
}

TEST_F(Cli, MalformedLinesAreReportedSkippedAndCounted) {
  NeedNative();
  std::string corpus = Write("c.jsonl",
                             R"({"v":1,"name":"ok1","code":"4801d8"})" "\n"
                             R"({"v":1,"name":"bad","code":"4801d"})" "\n"
                             "\n"
                             R"({"v":1,"name":"ok2","code":"90","regs":{"rflags":"0x100"}})" "\n"
                             R"({"v":1,"name":"ok3","code":"90"})" "\n");
  std::string db = Path("m.db");
  Exec e = RunCpudiff("run " + corpus + " --engines native --db " + db);
  EXPECT_EQ(e.code, 2) << e.out;
  EXPECT_NE(e.out.find(corpus + ":2: code: expected an even number of hex digits"),
            std::string::npos)
      << e.out;
  EXPECT_NE(e.out.find(corpus + ":4: regs.rflags: bits 0x100 may not be set"), std::string::npos)
      << e.out;
  EXPECT_NE(e.out.find("2 malformed line(s)"), std::string::npos) << e.out;
  // The valid cases ran and are in the store.
  auto store = Store::Open(db);
  auto run = store->LatestRun();
  ASSERT_TRUE(run);
  EXPECT_EQ(store->CountCasesDone(run->id), 2);

  // --strict refuses to start: nothing is run.
  std::string db2 = Path("s.db");
  Exec s = RunCpudiff("run " + corpus + " --engines native --strict --db " + db2);
  EXPECT_EQ(s.code, 2) << s.out;
  EXPECT_NE(s.out.find("--strict refuses to start"), std::string::npos) << s.out;
}

TEST_F(Cli, NativeAgreesWithItsOwnRecordedExpectations) {
  NeedNative();
  // Record expectations on native, then check them on native: exit 0, also
  // with --strict.
  std::string corpus = Write("c.jsonl",
                             R"({"v":1,"name":"add","code":"4801d8","regs":{"rax":"0x5","rbx":"0x7"}})" "\n"
                             R"({"v":1,"name":"imul","code":"480fafc3","regs":{"rax":"0x5","rbx":"0x7"}})" "\n"
                             R"({"v":1,"name":"pf","code":"488b03","regs":{"rbx":"0x40000000"}})" "\n");
  std::string recorded = Path("rec.jsonl");
  Exec rec = RunCpudiff("run " + corpus + " --engines native --db " + Path("a.db") +
                        " --write-expect " + recorded);
  ASSERT_EQ(rec.code, 0) << rec.out;
  Exec check = RunCpudiff("run " + recorded + " --engines native --strict --db " + Path("b.db"));
  EXPECT_EQ(check.code, 0) << check.out;
  EXPECT_NE(check.out.find("expect 3/3"), std::string::npos) << check.out;

  // A wrong expectation is a divergence: exit 1, and report shows it.
  std::string wrong = Write("w.jsonl",
                            R"({"v":1,"name":"add-wrong","code":"4801d8","regs":{"rax":"0x5","rbx":"0x7"},"expect":{"regs":{"rax":"0xd"}}})" "\n");
  Exec w = RunCpudiff("run " + wrong + " --engines native --db " + Path("c.db"));
  EXPECT_EQ(w.code, 1) << w.out;
  Exec report = RunCpudiff("report --db " + Path("c.db"));
  EXPECT_EQ(report.code, 0) << report.out;
  EXPECT_NE(report.out.find("rax"), std::string::npos) << report.out;
  Exec json = RunCpudiff("report --format json --db " + Path("c.db"));
  EXPECT_EQ(json.code, 0) << json.out;
  EXPECT_EQ(json.out.substr(0, 1), "{") << json.out;
  Exec show = RunCpudiff("show add-wrong --db " + Path("c.db"));
  EXPECT_EQ(show.code, 0) << show.out;
  EXPECT_NE(show.out.find("add rax, rbx"), std::string::npos) << show.out;
  Exec missing = RunCpudiff("show nosuchcase --db " + Path("c.db"));
  EXPECT_EQ(missing.code, 2) << missing.out;
}

TEST_F(Cli, ResumeAfterSigkillNeitherRedoesNorDuplicates) {
  NeedNative();
  constexpr int kCases = 60000;
  {
    std::ofstream out(Path("big.jsonl"));
    Rng rng(42);
    for (int i = 0; i < kCases; ++i) out << WriteCaseLine(GenerateAluCase(rng, GenOptions{})) << "\n";
  }
  std::string db = Path("r.db");
  std::string args = "run " + Path("big.jsonl") + " --engines native --quiet --batch 64 --db " + db;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", (std::string("exec ") + CPUDIFF_BINARY + " " + args).c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Kill it once some batches are committed (up to a minute: sanitizer
  // builds read the corpus slowly).
  int64_t done_before = 0;
  for (int i = 0; i < 3000 && done_before == 0; ++i) {
    usleep(20000);
    try {
      auto store = Store::Open(db);
      if (auto run = store->LatestRun()) done_before = store->CountCasesDone(run->id);
    } catch (const std::exception&) {
    }
  }
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  ASSERT_GT(done_before, 0);
  int64_t after_kill;
  {
    auto store = Store::Open(db);
    after_kill = store->CountCasesDone(store->LatestRun()->id);
    EXPECT_GE(after_kill, done_before);
    EXPECT_LT(after_kill, kCases);
  }
  Exec resumed = RunCpudiff(args + " --resume");
  EXPECT_EQ(resumed.code, 0) << resumed.out;
  auto store = Store::Open(db);
  auto runs = store->Runs();
  ASSERT_EQ(runs.size(), 1u);
  // Generated cases can repeat a hash; count distinct ones.
  std::set<uint64_t> distinct;
  {
    Rng rng(42);
    for (int i = 0; i < kCases; ++i) distinct.insert(GenerateAluCase(rng, GenOptions{}).Hash());
  }
  EXPECT_EQ(store->CountCasesDone(runs[0].id), static_cast<int64_t>(distinct.size()));
}

}  // namespace
}  // namespace cpudiff

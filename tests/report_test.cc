#include "reports/report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "harness/compare/compare.h"
#include "harness/store/store.h"
#include "reports/table.h"

namespace cpudiff {
namespace {

namespace fs = std::filesystem;

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cpudiff_report_XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    store_ = Store::Open(dir_ + "/r.db");
    Populate();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  // bsr eax, ecx / mov [rdi], rax, with ecx = 0. The two end states are the
  // ones PLATFORM-NOTES records for this case: silicon leaves all of rax
  // unchanged, Unicorn zeroes its upper half (and stores what it has).
  void Populate() {
    tc_.name = "bsr-zero-source";
    tc_.source = "regress.jsonl:7";
    tc_.code = {0x0f, 0xbd, 0xc1, 0x48, 0x89, 0x07};
    tc_.init.rip = tc_.code_addr;
    tc_.init.gpr[kRax] = 0xffffffff12345678ull;
    tc_.init.gpr[kRdi] = kDefaultDataAddr + 0x10;
    tc_.init.gpr[kRsp] = kDefaultRsp;
    MemRegion data{kDefaultDataAddr, kDefaultDataSize, kPermR | kPermW, {}};
    MemRegion stack{kDefaultStackAddr, kDefaultStackSize, kPermR | kPermW, {}};
    tc_.mem = {data, stack};

    RunInfo info;
    info.config =
        R"({"engines":["native","unicorn"],"reference":"native","command":"cpudiff run x"})";
    info.host_cpu = "AMD EPYC (test)";
    info.engine_versions = R"({"native":"host","unicorn":"2.0.1"})";
    info.git_rev = "deadbeef1234";
    run_ = store_->BeginRun(info);
    case_id_ = store_->AddCase(tc_, R"({"v":1,"name":"bsr-zero-source","code":"0fbdc1488907"})");

    auto result = [&](uint64_t rax) {
      RunResult r;
      r.outcome = Outcome::Halt();
      r.state = tc_.init;
      r.state.gpr[kRax] = rax;
      r.state.rip = tc_.code_addr + tc_.code.size();
      r.state.rflags = 0x246;
      PageImage p;
      p.addr = kDefaultDataAddr;
      for (int k = 0; k < 8; ++k) p.bytes[0x10 + k] = static_cast<uint8_t>(rax >> (8 * k));
      r.pages = {p};
      return r;
    };
    store_->AddResult(run_, case_id_, "native", result(0xffffffff12345678ull));
    store_->AddResult(run_, case_id_, "unicorn", result(0x12345678ull));

    StoredDivergence d;
    d.run_id = run_;
    d.case_id = case_id_;
    d.engine_a = "native";
    d.engine_b = "unicorn";
    d.mismatch.kind = FieldKind::kGpr;
    d.mismatch.field = "rax";
    d.mismatch.a = "0xffffffff12345678";
    d.mismatch.b = "0x0000000012345678";
    d.mismatch.insn_index = 0;
    d.mismatch.insn_form = "bsr r32, r32";
    d.signature = "bsr r32, r32|gpr|native~unicorn";
    store_->AddDivergence(d);
    StoredDivergence m = d;
    m.mismatch.kind = FieldKind::kMemory;
    m.mismatch.field = "mem[0x20000014]";
    m.mismatch.a = "ffffffff";
    m.mismatch.b = "00000000";
    m.mismatch.insn_index = 1;
    m.mismatch.insn_form = "mov m64, r64";
    m.signature = "mov m64, r64|memory|native~unicorn";
    store_->AddDivergence(m);
    store_->MarkCaseDone(run_, case_id_);
    store_->CommitBatch();
  }

  // The line of `text` that starts with `prefix` after leading blanks.
  static std::string LineStarting(const std::string& text, const std::string& prefix,
                                  size_t from = 0) {
    std::istringstream in(text.substr(from));
    std::string line;
    while (std::getline(in, line)) {
      size_t b = line.find_first_not_of(' ');
      if (b != std::string::npos && line.compare(b, prefix.size(), prefix) == 0) return line;
    }
    return "";
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  TestCase tc_;
  int64_t run_ = 0;
  int64_t case_id_ = 0;
};

TEST_F(ReportTest, CaseDetailsMarkDifferingRowsOnly) {
  std::ostringstream out;
  WriteCaseDetails(*store_, run_, *store_->GetCase(case_id_), out);
  std::string text = out.str();
  SCOPED_TRACE(text);

  EXPECT_NE(text.find("bsr-zero-source"), std::string::npos);
  EXPECT_NE(text.find("regress.jsonl:7"), std::string::npos);
  size_t end_states = text.find("end states");
  ASSERT_NE(end_states, std::string::npos);
  std::string header = LineStarting(text, "initial", end_states);
  EXPECT_NE(header.find("native"), std::string::npos);
  EXPECT_NE(header.find("unicorn"), std::string::npos);
  EXPECT_LT(header.find("native"), header.find("unicorn"));

  std::string rax = LineStarting(text, "rax ", end_states);
  ASSERT_FALSE(rax.empty());
  EXPECT_NE(rax.find("0xffffffff12345678"), std::string::npos);
  EXPECT_NE(rax.find("0x0000000012345678"), std::string::npos);
  EXPECT_EQ(rax.back(), '*');
  std::string rip = LineStarting(text, "rip ", end_states);
  ASSERT_FALSE(rip.empty());
  EXPECT_NE(rip.back(), '*');
  std::string rdi = LineStarting(text, "rdi ", end_states);
  ASSERT_FALSE(rdi.empty());
  EXPECT_NE(rdi.back(), '*');
  std::string outcome = LineStarting(text, "outcome", end_states);
  ASSERT_FALSE(outcome.empty());
  EXPECT_NE(outcome.back(), '*');
  // Registers that are zero everywhere are not shown.
  EXPECT_EQ(LineStarting(text, "r15 ", end_states), "");

  size_t memory = text.find("memory (");
  ASSERT_NE(memory, std::string::npos);
  std::string row = LineStarting(text, "0x20000010", memory);
  ASSERT_FALSE(row.empty());
  EXPECT_NE(row.find("0000000000000000"), std::string::npos);  // initial
  EXPECT_NE(row.find("78563412ffffffff"), std::string::npos);  // native
  EXPECT_NE(row.find("7856341200000000"), std::string::npos);  // unicorn
  EXPECT_EQ(row.back(), '*');

  EXPECT_NE(text.find("bsr r32, r32|gpr|native~unicorn"), std::string::npos);
  EXPECT_NE(text.find("mem[0x20000014]"), std::string::npos);
}

TEST_F(ReportTest, CaseDetailsShowTheDisassembly) {
  std::vector<std::string> lines = Disassemble(tc_);
  if (lines.empty()) GTEST_SKIP() << "Disassemble() returns nothing yet";
  std::ostringstream out;
  WriteCaseDetails(*store_, run_, *store_->GetCase(case_id_), out);
  for (const std::string& l : lines) EXPECT_NE(out.str().find(l), std::string::npos) << l;
  EXPECT_NE(out.str().find("bsr"), std::string::npos) << out.str();
}

TEST_F(ReportTest, TextReportSummarizesAndGroupsBySignature) {
  std::ostringstream out;
  WriteTextReport(*store_, run_, out);
  std::string text = out.str();
  SCOPED_TRACE(text);
  EXPECT_NE(text.find("run " + std::to_string(run_)), std::string::npos);
  EXPECT_NE(text.find("AMD EPYC (test)"), std::string::npos);
  EXPECT_NE(text.find("deadbeef1234"), std::string::npos);
  EXPECT_NE(text.find("unicorn (2.0.1)"), std::string::npos);
  EXPECT_NE(LineStarting(text, "reference").find("native"), std::string::npos);
  EXPECT_NE(text.find("cases: 1 (1 done)"), std::string::npos);
  EXPECT_NE(text.find("divergences: 2 in 1 cases, 2 signatures"), std::string::npos);
  std::string unicorn_counts = LineStarting(text, "unicorn ");
  EXPECT_NE(unicorn_counts.find("1"), std::string::npos) << unicorn_counts;
  EXPECT_NE(text.find("bsr r32, r32|gpr|native~unicorn"), std::string::npos);
  EXPECT_NE(text.find("mov m64, r64|memory|native~unicorn"), std::string::npos);
  // One example per signature, each with its marked rows.
  EXPECT_NE(text.find("==== signature 1/2"), std::string::npos);
  EXPECT_NE(text.find("==== signature 2/2"), std::string::npos);
  size_t example = text.find("==== signature 1/2");
  std::string rax = LineStarting(text, "rax ", text.find("end states", example));
  ASSERT_FALSE(rax.empty());
  EXPECT_EQ(rax.back(), '*');
}

TEST_F(ReportTest, JsonReportHasTheSameContent) {
  std::ostringstream out;
  WriteJsonReport(*store_, run_, out);
  nlohmann::json j = nlohmann::json::parse(out.str());
  EXPECT_EQ(j["run"]["id"], run_);
  EXPECT_EQ(j["run"]["reference"], "native");
  EXPECT_EQ(j["run"]["host_cpu"], "AMD EPYC (test)");
  EXPECT_EQ(j["run"]["engine_versions"]["unicorn"], "2.0.1");
  EXPECT_EQ(j["summary"]["cases"], 1);
  EXPECT_EQ(j["summary"]["divergences"], 2);
  EXPECT_EQ(j["summary"]["signatures"], 2);
  EXPECT_EQ(j["summary"]["results"]["native"]["halt"], 1);
  ASSERT_EQ(j["signatures"].size(), 2u);
  std::set<std::string> sigs;
  for (const auto& s : j["signatures"]) {
    sigs.insert(s["signature"].get<std::string>());
    const auto& ex = s["example"];
    EXPECT_EQ(ex["name"], "bsr-zero-source");
    EXPECT_EQ(ex["end_states"]["unicorn"]["regs"]["rax"], "0x0000000012345678");
    EXPECT_EQ(ex["differs_from_reference"], nlohmann::json::array({"rax"}));
    ASSERT_EQ(ex["memory_diff"].size(), 1u);
    EXPECT_EQ(ex["memory_diff"][0]["addr"], "0x20000010");
    EXPECT_EQ(ex["memory_diff"][0]["differs"], true);
    EXPECT_EQ(ex["divergences"].size(), 2u);
  }
  EXPECT_TRUE(sigs.count("bsr r32, r32|gpr|native~unicorn"));
  EXPECT_TRUE(sigs.count("mov m64, r64|memory|native~unicorn"));
}

TEST_F(ReportTest, CaseWithoutResultsInTheRunStillShowsTheCase) {
  TestCase other = tc_;
  other.name = "not-run";
  other.init.gpr[kRbx] = 5;
  int64_t id = store_->AddCase(other, "{}");
  store_->CommitBatch();
  std::ostringstream out;
  WriteCaseDetails(*store_, run_, *store_->GetCase(id), out);
  EXPECT_NE(out.str().find("not-run"), std::string::npos);
  EXPECT_NE(out.str().find("no results for this case"), std::string::npos);
  EXPECT_NE(LineStarting(out.str(), "rbx").find("0x0000000000000005"), std::string::npos)
      << out.str();
}

TEST_F(ReportTest, UnknownRunIsAClearError) {
  std::ostringstream out;
  try {
    WriteTextReport(*store_, run_ + 10, out);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no run"), std::string::npos) << e.what();
  }
}

TEST(ReportTable, PadsColumnsAndTrimsTrailingBlanks) {
  TextTable t({"name", "n", ""});
  t.AlignRight(1);
  t.AddRow({"a", "10", "*"});
  t.AddRow({"long-name", "5", ""});
  std::ostringstream out;
  t.Print(out, "");
  EXPECT_EQ(out.str(),
            "name        n\n"
            "a          10  *\n"
            "long-name   5\n");
}

}  // namespace
}  // namespace cpudiff

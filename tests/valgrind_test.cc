// Tests of the valgrind engine (engines/valgrind): the native runner under
// Valgrind's none tool in the qemu box. Expected end states are silicon's:
// every case also runs on the `native` engine (this CPU), and valgrind must
// agree with it on what it observes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engines/engine.h"
#include "engines/valgrind/valgrind_engine.h"
#include "engines/x86/layout.h"
#include "harness/compare/compare.h"

namespace cpudiff {
namespace {

TestCase MakeCase(const std::string& name, std::vector<uint8_t> code) {
  TestCase tc;
  tc.name = name;
  tc.code = std::move(code);
  tc.init.rip = kDefaultCodeAddr;
  tc.init.gpr[kRsp] = kDefaultRsp;
  tc.mem.push_back({kDefaultDataAddr, kDefaultDataSize, kPermR | kPermW, {}});
  tc.mem.push_back({kDefaultStackAddr, kDefaultStackSize, kPermR | kPermW, {}});
  return tc;
}

std::vector<RunResult> RunAll(Engine& e, const std::vector<TestCase>& cases) {
  std::vector<const TestCase*> ptrs;
  for (const TestCase& tc : cases) ptrs.push_back(&tc);
  std::vector<RunResult> out(cases.size());
  e.Run(ptrs, out);
  return out;
}

class ValgrindTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"valgrind", "native"}) {
      Availability a = FindEngine(name)->probe();
      if (!a.available) GTEST_SKIP() << name << " engine unavailable: " << a.reason;
    }
    EngineOptions o;
    o.timeout_ms = 2000;
    valgrind_ = FindEngine("valgrind")->create(o);
    native_ = FindEngine("native")->create(o);
  }
  // Runs on both and checks that they agree on what valgrind observes.
  std::vector<RunResult> RunAndCompare(const std::vector<TestCase>& cases) {
    std::vector<RunResult> v = RunAll(*valgrind_, cases);
    std::vector<RunResult> n = RunAll(*native_, cases);
    for (size_t i = 0; i < cases.size(); ++i) {
      CompareOptions co;
      co.observes_b = valgrind_->Observes() & ~v[i].unobserved;
      std::vector<Mismatch> ms = CompareResults(cases[i], n[i], v[i], co);
      std::string all;
      for (const Mismatch& m : ms) all += m.field + ": " + m.a + " vs " + m.b + "\n";
      EXPECT_TRUE(ms.empty()) << cases[i].name << " native " << FormatOutcome(n[i].outcome)
                              << ", valgrind " << FormatOutcome(v[i].outcome) << "\n"
                              << all;
    }
    return v;
  }
  std::unique_ptr<Engine> valgrind_, native_;
};

TEST_F(ValgrindTest, HaltThroughTheExitStubObservesFlagsXmmAndMemory) {
  // add rax, rbx; movq xmm0, rax; paddq xmm0, xmm0; mov [rdi], rax
  TestCase tc = MakeCase("add-xmm-store", {0x48, 0x01, 0xd8, 0x66, 0x48, 0x0f, 0x6e, 0xc0, 0x66,
                                           0x0f, 0xd4, 0xc0, 0x48, 0x89, 0x07});
  tc.init.gpr[kRax] = 0x7fffffffffffffff;
  tc.init.gpr[kRbx] = 1;
  tc.init.gpr[kRdi] = kDefaultDataAddr + 8;
  std::vector<RunResult> r = RunAndCompare({tc});
  EXPECT_EQ(r[0].outcome.kind, OutcomeKind::kHalt);
  EXPECT_EQ(r[0].unobserved, 0u);  // ended by the stub: everything observed
  EXPECT_EQ(r[0].state.rip, kDefaultCodeAddr + tc.code.size());
  // Silicon: 0x7fff...f + 1 sets OF, SF, AF, PF (0x8000000000000000).
  EXPECT_EQ(r[0].state.rflags, 0xa96u);
  EXPECT_EQ(r[0].pages.size(), 1u);
}

TEST_F(ValgrindTest, FaultsKeepGprsAndRipAndDeclareTheRestUnobserved) {
  TestCase ud = MakeCase("ud2", {0x48, 0xff, 0xc0, 0x0f, 0x0b});          // inc rax; ud2
  TestCase pf = MakeCase("pf", {0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0x40});  // mov rax, [0x40000000]
  TestCase hlt = MakeCase("hlt-mid", {0x48, 0xff, 0xc0, 0xf4, 0x48, 0xff, 0xc0});  // inc; hlt; inc
  std::vector<RunResult> r = RunAndCompare({ud, pf, hlt});
  EXPECT_EQ(FormatOutcome(r[0].outcome), "#UD");
  EXPECT_EQ(r[0].state.gpr[kRax], 1u);
  EXPECT_EQ(r[1].outcome.vector, kVecPF);
  EXPECT_EQ(r[1].outcome.addr, 0x40000000u);
  EXPECT_EQ(r[2].outcome.kind, OutcomeKind::kHalt);
  EXPECT_EQ(r[2].state.rip, kDefaultCodeAddr + 3);
  for (const RunResult& x : r) {
    EXPECT_EQ(x.unobserved, kObserveRflags | kObserveXmm | kObserveMxcsr | kObserveErrorCode);
  }
}

TEST_F(ValgrindTest, CodeAfterAnUndecodableInstructionRunsAsWritten) {
  // ud1 eax, eax (0f b9 c0) is not decoded by VEX 3.19; the same address
  // then holds `add al, bl`, which must run (docs/engines.md).
  TestCase ud1 = MakeCase("ud1", {0x0f, 0xb9, 0xc0});
  TestCase add = MakeCase("add", {0x00, 0xd8});
  add.init.gpr[kRax] = 0x7f;
  add.init.gpr[kRbx] = 1;
  std::vector<RunResult> r = RunAndCompare({ud1, add, ud1, add});
  EXPECT_EQ(FormatOutcome(r[0].outcome), "#UD");
  EXPECT_EQ(r[1].outcome.kind, OutcomeKind::kHalt);
  EXPECT_EQ(r[1].state.gpr[kRax], 0x80u);
  EXPECT_EQ(r[3].outcome.kind, OutcomeKind::kHalt);
  // A batch that ends with a #UD, then the next batch.
  r = RunAndCompare({add, ud1});
  EXPECT_EQ(FormatOutcome(r[1].outcome), "#UD");
  r = RunAndCompare({add});
  EXPECT_EQ(r[0].state.gpr[kRax], 0x80u);
}

TEST_F(ValgrindTest, SystemCallBytesAreUnsupported) {
  TestCase sc = MakeCase("syscall", {0x0f, 0x05});
  std::vector<RunResult> r = RunAll(*valgrind_, {sc});
  EXPECT_EQ(r[0].outcome.kind, OutcomeKind::kUnsupported);
  EXPECT_NE(r[0].outcome.reason.find("syscall (0f 05)"), std::string::npos) << r[0].outcome.reason;
}

}  // namespace
}  // namespace cpudiff

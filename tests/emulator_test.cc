// Unit tests per instruction family (tests/data/emulator_families.jsonl),
// run on every engine that can execute them, compared in strict mode.
//
// Each case's tag names its instruction (`adc rax, rbx`, ...). The
// expectations were recorded on `native` (silicon, AMD EPYC) with
// `cpudiff run FILE --engines native --write-expect`; running the same file
// on native here proves them again. The emulator runs with the AMD profile
// for this file, because that is the silicon the expectations came from.
// All cases run through one engine in file order, so the `cache-*` cases
// (same layout, other code; self-modifying code run twice) also check that
// decoded instructions kept from one case are never used for another.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "engines/emulator/emulator_engine.h"
#include "engines/engine.h"
#include "harness/compare/compare.h"
#include "harness/corpus/corpus.h"

namespace cpudiff {
namespace {

std::vector<TestCase> FamilyCases() {
  std::vector<TestCase> cases;
  CorpusReadResult r = ReadCorpusFile(CPUDIFF_SOURCE_DIR "/tests/data/emulator_families.jsonl",
                                      [&](TestCase&& tc) { cases.push_back(std::move(tc)); });
  EXPECT_TRUE(r.errors.empty() && !r.io_error);
  return cases;
}

class EmulatorFamilies : public ::testing::TestWithParam<std::string> {};

TEST_P(EmulatorFamilies, MatchSilicon) {
  const EngineDesc* d = FindEngine(GetParam());
  ASSERT_NE(d, nullptr);
  Availability a = d->probe();
  if (!a.available) GTEST_SKIP() << GetParam() << " is not available here: " << a.reason;
  setenv("CPUDIFF_EMULATOR_VENDOR", "amd", 1);
  EngineOptions opts;
  std::unique_ptr<Engine> engine =
      GetParam() == "emulator" ? CreateEmulatorEngineInProcess(opts) : d->create(opts);
  unsetenv("CPUDIFF_EMULATOR_VENDOR");
  std::vector<TestCase> cases = FamilyCases();
  ASSERT_EQ(cases.size(), 93u);
  std::vector<const TestCase*> ptrs;
  for (const TestCase& tc : cases) ptrs.push_back(&tc);
  std::vector<RunResult> results(cases.size());
  engine->Run(ptrs, results);
  CompareOptions co;
  co.strict = true;
  co.observes_b = engine->Observes();
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name + " (" + (cases[i].tags.size() > 1 ? cases[i].tags[1] : "") + ")");
    std::string all;
    for (const Mismatch& m : CompareExpect(cases[i], results[i], co)) {
      all += m.field + ": expected " + m.a + ", got " + m.b + "\n";
    }
    EXPECT_TRUE(all.empty()) << "outcome " << FormatOutcome(results[i].outcome) << "\n" << all;
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, EmulatorFamilies, ::testing::Values("native", "emulator"),
                         [](const auto& info) { return info.param; });

// The vendor profile is chosen by CPUDIFF_EMULATOR_VENDOR.
TEST(EmulatorVendor, EnvironmentSelectsTheProfile) {
  setenv("CPUDIFF_EMULATOR_VENDOR", "intel", 1);
  EXPECT_EQ(EmulatorVendor(), "intel");
  setenv("CPUDIFF_EMULATOR_VENDOR", "amd", 1);
  EXPECT_EQ(EmulatorVendor(), "amd");
  unsetenv("CPUDIFF_EMULATOR_VENDOR");
}

// mul r8 leaves SF ZF AF PF undefined: AMD keeps them (seed corpus
// mul-r8-small on native), the Intel profile computes SF/PF and clears ZF/AF
// (shared Intel samples). Same case, the two profiles.
TEST(EmulatorVendor, ProfilesDifferOnUndefinedFlags) {
  TestCase tc;
  CorpusError err;
  // mul bl
  ASSERT_TRUE(
      ParseCaseLine(R"({"v":1,"code":"f6e3","regs":{"rax":"0x7","rbx":"0x6","rflags":"0xad7"}})",
                    "t", &tc, &err));
  uint64_t flags[2];
  const char* vendors[2] = {"amd", "intel"};
  for (int v = 0; v < 2; ++v) {
    setenv("CPUDIFF_EMULATOR_VENDOR", vendors[v], 1);
    std::unique_ptr<Engine> e = CreateEmulatorEngineInProcess(EngineOptions{});
    const TestCase* p = &tc;
    RunResult r;
    e->Run(std::span(&p, 1), std::span(&r, 1));
    flags[v] = r.state.rflags & kStatusFlags;
  }
  unsetenv("CPUDIFF_EMULATOR_VENDOR");
  EXPECT_EQ(flags[0], 0xd4u);  // AMD: SF ZF AF PF kept from 0xad7, CF OF cleared
  EXPECT_EQ(flags[1], 0x00u);  // Intel: 42 = 0b101010 has odd parity and no sign: all clear
}

// The emulator skips the flags an instruction writes when the next one
// overwrites them all (add, then xor). A run cut by the instruction budget
// right after such an add must still end with every flag the add produced.
// The loop below runs add, xor, jmp, add (budget 4; the second add uses the
// flag-skipping form learned on the first pass); the expected state comes
// from native running add, xor, add straight.
TEST(EmulatorBudget, LastInstructionOfTheBudgetComputesEveryFlag) {
  const EngineDesc* native = FindEngine("native");
  ASSERT_NE(native, nullptr);
  Availability a = native->probe();
  if (!a.available) GTEST_SKIP() << "native is not available here: " << a.reason;
  const char* kRegs = R"("regs":{"rax":"0x7fffffffffffffff","rbx":"0x1","rdx":"0x5"})";
  TestCase loop, straight;
  CorpusError err;
  // add rax, rbx; xor rdx, rax; jmp -8
  ASSERT_TRUE(ParseCaseLine(std::string(R"({"v":1,"code":"4801d84831c2ebf8",)") + kRegs + "}", "t",
                            &loop, &err));
  // add rax, rbx; xor rdx, rax; add rax, rbx
  ASSERT_TRUE(ParseCaseLine(std::string(R"({"v":1,"code":"4801d84831c24801d8",)") + kRegs + "}",
                            "t", &straight, &err));
  RunResult silicon;
  {
    std::unique_ptr<Engine> e = native->create(EngineOptions{});
    const TestCase* p = &straight;
    e->Run(std::span(&p, 1), std::span(&silicon, 1));
  }
  ASSERT_EQ(silicon.outcome.kind, OutcomeKind::kHalt);
  setenv("CPUDIFF_EMULATOR_VENDOR", "amd", 1);
  EngineOptions opts;
  opts.max_instructions = 4;
  std::unique_ptr<Engine> emu = CreateEmulatorEngineInProcess(opts);
  unsetenv("CPUDIFF_EMULATOR_VENDOR");
  // Twice: the second run starts with the code decoded by the first.
  for (int i = 0; i < 2; ++i) {
    const TestCase* p = &loop;
    RunResult r;
    emu->Run(std::span(&p, 1), std::span(&r, 1));
    EXPECT_EQ(r.outcome.kind, OutcomeKind::kTimeout);
    EXPECT_EQ(r.state.gpr[kRax], silicon.state.gpr[kRax]);
    EXPECT_EQ(r.state.gpr[kRdx], silicon.state.gpr[kRdx]);
    EXPECT_EQ(r.state.rflags, silicon.state.rflags) << "run " << i;
  }
}

}  // namespace
}  // namespace cpudiff

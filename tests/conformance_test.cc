// One conformance catalogue of named canonical cases, run over every engine
// of the registry. Engines that are not available here are skipped with the
// reason. Expected values were checked on the `native` engine (silicon) on
// this machine kind.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engines/engine.h"
#include "harness/compare/compare.h"
#include "harness/corpus/corpus.h"

namespace cpudiff {
namespace {

struct CatalogueCase {
  const char* name;
  const char* line;       // corpus v1, with the expectation recorded on native
  bool expect_mismatch;   // the catalogue's deliberately wrong expectations
  const char* mismatch_field;
};

// clang-format off
const CatalogueCase kCatalogue[] = {
  // add rax, rbx
  {"ends-as-expected",
   R"({"v":1,"code":"4801d8","regs":{"rax":"0x5","rbx":"0x7"},"expect":{"outcome":"halt","regs":{"rax":"0xc","rbx":"0x7","rip":"0x10000003","rflags":"0x206"}}})",
   false, nullptr},
  // add rax, rbx, with a wrong expected rax
  {"register-mismatch",
   R"({"v":1,"code":"4801d8","regs":{"rax":"0x5","rbx":"0x7"},"expect":{"outcome":"halt","regs":{"rax":"0xd"}}})",
   true, "rax"},
  // mov [rdi], rax
  {"memory-written",
   R"({"v":1,"code":"488907","regs":{"rax":"0x1122334455667788","rdi":"0x20000010"},"expect":{"outcome":"halt","mem":[{"addr":"0x2000000f","data":"00887766554433221100"}]}})",
   false, nullptr},
  // mov [rdi], rax, with a wrong expected byte
  {"memory-mismatch",
   R"({"v":1,"code":"488907","regs":{"rax":"0x1122334455667788","rdi":"0x20000010"},"expect":{"outcome":"halt","mem":[{"addr":"0x20000010","data":"8877665544332299"}]}})",
   true, "mem[0x20000017]"},
  // nop; mov rax, [rbx] with rbx unmapped
  {"pf-read",
   R"({"v":1,"code":"90488b03","regs":{"rbx":"0x40000000"},"expect":{"outcome":{"fault":"#PF","error_code":"0x4","addr":"0x40000000"},"regs":{"rip":"0x10000001"}}})",
   false, nullptr},
  // nop; mov [rbx], rax with rbx unmapped
  {"pf-write",
   R"({"v":1,"code":"90488903","regs":{"rbx":"0x40000000"},"expect":{"outcome":{"fault":"#PF","error_code":"0x6","addr":"0x40000000"},"regs":{"rip":"0x10000001"}}})",
   false, nullptr},
  // ud2
  {"ud",
   R"({"v":1,"code":"0f0b","expect":{"outcome":"#UD","regs":{"rip":"0x10000000"}}})",
   false, nullptr},
  // xor edx, edx; div rbx with rbx = 0
  {"de",
   R"({"v":1,"code":"31d248f7f3","regs":{"rax":"0x10"},"expect":{"outcome":"#DE","regs":{"rip":"0x10000002","rdx":"0x0"}}})",
   false, nullptr},
  // jmp $
  {"runaway-loop",
   R"({"v":1,"code":"ebfe","expect":{"outcome":"timeout"}})",
   false, nullptr},
  // syscall with the number of kill(0, SIGKILL): must never reach the host
  {"blocked-syscall",
   R"({"v":1,"code":"0f05","regs":{"rax":"0x3e","rdi":"0x0","rsi":"0x9"},"expect":{"outcome":"syscall"}})",
   false, nullptr},
};
// clang-format on

class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const EngineDesc* d = FindEngine(GetParam());
    ASSERT_NE(d, nullptr);
    Availability a = d->probe();
    if (!a.available) GTEST_SKIP() << GetParam() << " is not available here: " << a.reason;
    EngineOptions opts;
    opts.timeout_ms = 200;
    opts.max_instructions = 100000;
    engine_ = d->create(opts);
  }
  std::unique_ptr<Engine> engine_;
};

TEST_P(Conformance, Catalogue) {
  std::vector<TestCase> cases;
  for (const CatalogueCase& c : kCatalogue) {
    TestCase tc;
    CorpusError err;
    ASSERT_TRUE(ParseCaseLine(c.line, c.name, &tc, &err)) << err.ToString();
    tc.name = c.name;
    cases.push_back(std::move(tc));
  }
  std::vector<const TestCase*> ptrs;
  for (const TestCase& tc : cases) ptrs.push_back(&tc);
  std::vector<RunResult> results(cases.size());
  engine_->Run(ptrs, results);
  CompareOptions opts;
  opts.observes_b = engine_->Observes();
  for (size_t i = 0; i < cases.size(); ++i) {
    const CatalogueCase& c = kCatalogue[i];
    SCOPED_TRACE(c.name);
    const RunResult& r = results[i];
    // QEMU's containment refuses cases whose bytes could reach a system
    // call: that is its documented answer for the syscall case.
    if (GetParam() == "qemu" && std::string(c.name) == "blocked-syscall") {
      EXPECT_EQ(r.outcome.kind, OutcomeKind::kUnsupported) << FormatOutcome(r.outcome);
      continue;
    }
    std::vector<Mismatch> ms = CompareExpect(cases[i], r, opts);
    if (c.expect_mismatch) {
      ASSERT_EQ(ms.size(), 1u) << FormatOutcome(r.outcome);
      EXPECT_EQ(ms[0].field, c.mismatch_field);
    } else {
      std::string all;
      for (const Mismatch& m : ms) all += m.field + ": expected " + m.a + ", got " + m.b + "\n";
      EXPECT_TRUE(ms.empty()) << "outcome " << FormatOutcome(r.outcome) << "\n" << all;
    }
  }
}

std::vector<std::string> AllEngineNames() {
  std::vector<std::string> names;
  for (const EngineDesc& d : BuiltinEngines()) names.emplace_back(d.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(AllEngines, Conformance, ::testing::ValuesIn(AllEngineNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace cpudiff

// Random cases on native (silicon) and the emulator, compared in strict mode
// (undefined flags included).
//
// ctest runs 20,000 generated cases; CPUDIFF_RANDOM_CASES=1000000 runs the
// campaign size of the emulator's acceptance. Divergences are grouped by
// signature and printed; any divergence fails.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "engines/emulator/emulator_engine.h"
#include "engines/engine.h"
#include "harness/compare/compare.h"
#include "testgen/generate.h"

namespace cpudiff {
namespace {

TEST(EmulatorVsNative, RandomAluCasesStrict) {
  const EngineDesc* native = FindEngine("native");
  Availability a = native->probe();
  if (!a.available) GTEST_SKIP() << "native is not available here: " << a.reason;
  size_t n = 20000;
  if (const char* e = std::getenv("CPUDIFF_RANDOM_CASES")) n = std::strtoull(e, nullptr, 10);
  EngineOptions opts;
  std::unique_ptr<Engine> silicon = native->create(opts);
  std::unique_ptr<Engine> emulator = CreateEmulatorEngineInProcess(opts);
  Rng rng(20261124);
  GenOptions gen;
  std::map<std::string, std::pair<size_t, std::string>> by_signature;
  size_t diverged = 0, done = 0;
  const size_t kBatch = 4096;
  std::vector<TestCase> cases;
  std::vector<const TestCase*> ptrs;
  std::vector<RunResult> ra, rb;
  while (done < n) {
    size_t m = std::min(kBatch, n - done);
    cases.clear();
    for (size_t i = 0; i < m; ++i) cases.push_back(GenerateAluCase(rng, gen));
    ptrs.clear();
    for (const TestCase& tc : cases) ptrs.push_back(&tc);
    ra.assign(m, RunResult{});
    rb.assign(m, RunResult{});
    silicon->Run(ptrs, ra);
    emulator->Run(ptrs, rb);
    CompareOptions co;
    co.strict = true;
    co.observes_a = silicon->Observes();
    co.observes_b = emulator->Observes();
    for (size_t i = 0; i < m; ++i) {
      std::vector<Mismatch> ms = CompareResults(cases[i], ra[i], rb[i], co);
      if (ms.empty()) continue;
      ++diverged;
      for (const Mismatch& mm : ms) {
        auto& slot = by_signature[Signature(mm, "native", "emulator")];
        if (slot.first++ == 0) {
          slot.second = HexBytes(cases[i].code) + " " + mm.field + ": " + mm.a + " vs " + mm.b;
        }
      }
    }
    done += m;
  }
  for (const auto& [sig, v] : by_signature) {
    std::printf("%zu x %s  e.g. %s\n", v.first, sig.c_str(), v.second.c_str());
  }
  std::printf("%zu cases, %zu diverged\n", n, diverged);
  EXPECT_EQ(diverged, 0u);
}

}  // namespace
}  // namespace cpudiff

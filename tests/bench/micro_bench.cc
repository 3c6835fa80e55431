// Google Benchmark micro-benchmarks of the harness's hot paths: corpus
// parsing and writing, comparison, generation. Not part of ctest; run
// build/tests/cpudiff_microbench. Engine throughput is `cpudiff bench`.
#include <benchmark/benchmark.h>

#include "harness/compare/compare.h"
#include "harness/corpus/corpus.h"
#include "testgen/fuzz.h"
#include "testgen/generate.h"

namespace cpudiff {
namespace {

const char kLine[] =
    R"({"v":1,"name":"adc","code":"4811d8","regs":{"rax":"0x7fffffffffffffff","rbx":"0x1","rflags":"0x203"},)"
    R"("mem":[{"addr":"0x20000000","size":4096,"perm":"rw","data":"00ff"}],"expect":{"outcome":"halt","regs":{"rax":"0x8000000000000001"}}})";

void BM_ParseCaseLine(benchmark::State& state) {
  TestCase tc;
  CorpusError err;
  for (auto _ : state) {
    bool ok = ParseCaseLine(kLine, "bench", &tc, &err);
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_ParseCaseLine);

void BM_WriteCaseLine(benchmark::State& state) {
  TestCase tc;
  CorpusError err;
  ParseCaseLine(kLine, "bench", &tc, &err);
  for (auto _ : state) benchmark::DoNotOptimize(WriteCaseLine(tc));
}
BENCHMARK(BM_WriteCaseLine);

void BM_CompareEqual(benchmark::State& state) {
  Rng rng(1);
  TestCase tc = GenerateAluCase(rng, GenOptions{});
  RunResult a;
  a.state = tc.init;
  RunResult b = a;
  for (auto _ : state) benchmark::DoNotOptimize(CompareResults(tc, a, b, {}));
}
BENCHMARK(BM_CompareEqual);

void BM_CompareOneRegisterDiffers(benchmark::State& state) {
  Rng rng(1);
  TestCase tc = GenerateAluCase(rng, GenOptions{});
  RunResult a;
  a.state = tc.init;
  RunResult b = a;
  b.state.gpr[kRax] ^= 1;
  for (auto _ : state) benchmark::DoNotOptimize(CompareResults(tc, a, b, {}));
}
BENCHMARK(BM_CompareOneRegisterDiffers);

// Cases of 1-8 instructions (4.5 on average) generated per second (items/s).
void BM_GenerateAluCase(benchmark::State& state) {
  Rng rng(1);
  GenOptions opts;
  for (auto _ : state) {
    TestCase tc = GenerateAluCase(rng, opts);
    benchmark::DoNotOptimize(tc);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GenerateAluCase);

// The fuzzing generator (testgen/fuzz.h) with its default options:
// instructions generated per second (items/s). The instruction count per
// case is measured once on 2,000 cases (linear Zydis decode) and applied to
// the timed loop, so that counting costs nothing in it.
void BM_FuzzGenerate(benchmark::State& state) {
  static const FuzzGenerator* gen = new FuzzGenerator(FuzzOptions{});
  ZydisDecoder d;
  ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  TestCase tc;
  size_t insns = 0;
  constexpr uint64_t kSample = 2000;
  for (uint64_t i = 0; i < kSample; ++i) {
    gen->Generate(FuzzGenerator::CaseSeed(9, i), &tc);
    ZydisDecodedInstruction in;
    for (size_t off = 0; off < tc.code.size(); ++insns) {
      off += ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&d, nullptr, tc.code.data() + off,
                                                        tc.code.size() - off, &in))
                 ? in.length
                 : 1;
    }
  }
  const double per_case = static_cast<double>(insns) / kSample;
  uint64_t i = 0;
  for (auto _ : state) {
    gen->Generate(FuzzGenerator::CaseSeed(9, i++), &tc);
    benchmark::DoNotOptimize(tc);
  }
  state.SetItemsProcessed(static_cast<int64_t>(static_cast<double>(state.iterations()) * per_case));
  state.counters["insns_per_case"] = per_case;
}
BENCHMARK(BM_FuzzGenerate);

}  // namespace
}  // namespace cpudiff

BENCHMARK_MAIN();

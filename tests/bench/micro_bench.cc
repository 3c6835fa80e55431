// Google Benchmark micro-benchmarks of the harness's hot paths: corpus
// parsing and writing, comparison, generation. Not part of ctest; run
// build/tests/cpudiff_microbench. Engine throughput is `cpudiff bench`.
#include <benchmark/benchmark.h>

#include "harness/compare/compare.h"
#include "harness/corpus/corpus.h"
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

}  // namespace
}  // namespace cpudiff

BENCHMARK_MAIN();

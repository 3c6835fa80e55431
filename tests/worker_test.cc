// Tests of the worker-process wrapper (engines/worker) and its wire format.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "engines/worker/wire.h"
#include "engines/worker/worker_engine.h"

namespace cpudiff {
namespace {

// Markers in the initial rax that make FakeEngine misbehave.
constexpr uint64_t kAbortMarker = 0xdead;
constexpr uint64_t kHangMarker = 0xbeef;
constexpr uint64_t kSegvMarker = 0x5e6f;
constexpr uint64_t kWriteMarker = 0xcafe;
constexpr uint64_t kLastWordsMarker = 0x1a57;

// An engine with predictable results: rax+1, and a written page on demand.
class FakeEngine : public Engine {
 public:
  void Run(std::span<const TestCase* const> cases, std::span<RunResult> results) override {
    for (size_t i = 0; i < cases.size(); ++i) {
      const TestCase& tc = *cases[i];
      uint64_t rax = tc.init.gpr[kRax];
      if (rax == kAbortMarker) abort();
      if (rax == kLastWordsMarker) {
        fprintf(stderr, "fake engine: first line\nfake engine: fatal error at case %s\n",
                tc.name.c_str());
        abort();
      }
      if (rax == kSegvMarker) raise(SIGSEGV);
      if (rax == kHangMarker) {
        for (;;) pause();
      }
      RunResult& r = results[i];
      r.outcome = Outcome::Halt();
      r.state = tc.init;
      r.state.gpr[kRax] = rax + 1;
      r.state.gpr[kRbx] = tc.code.size();
      r.state.gpr[kRcx] = tc.mem.empty() ? 0 : tc.mem[0].data.size();
      r.pages.clear();
      if (rax == kWriteMarker) {
        PageImage& p = r.pages.emplace_back();
        p.addr = 0x20000000;
        p.bytes.fill(0x5a);
      }
    }
  }
  uint32_t Observes() const override { return kObserveGprs | kObserveMemory; }
};

TestCase Case(uint64_t rax) {
  TestCase tc;
  tc.name = "case-" + std::to_string(rax);
  tc.code = {0x48, 0x01, 0xd8};
  tc.init.rip = tc.code_addr;
  tc.init.gpr[kRax] = rax;
  MemRegion m;
  m.addr = 0x20000000;
  m.size = 4096;
  m.data = {1, 2, 3};
  tc.mem.push_back(m);
  return tc;
}

std::vector<RunResult> RunAll(Engine& e, const std::vector<TestCase>& cases) {
  std::vector<const TestCase*> ptrs;
  for (const TestCase& tc : cases) ptrs.push_back(&tc);
  std::vector<RunResult> results(cases.size());
  e.Run(ptrs, results);
  return results;
}

std::unique_ptr<Engine> MakeFake(uint32_t timeout_ms = 2000, size_t buffer_bytes = 1 << 20) {
  WorkerOptions o;
  o.initial_buffer_bytes = buffer_bytes;
  o.name = "fake";
  o.timeout_ms = timeout_ms;
  return MakeWorkerEngine([] { return std::make_unique<FakeEngine>(); }, o);
}

TEST(WorkerWire, TestCaseAndResultRoundTrip) {
  TestCase tc = Case(42);
  tc.init.xmm[3] = {0x1122334455667788, 0x99aabbccddeeff00};
  tc.init.mxcsr = 0x3f80;
  tc.mem.push_back({0x30000000, 8192, kPermR, {}});
  std::vector<uint8_t> buf;
  VectorSink sink(&buf);
  WireWriter w(&sink);
  WriteTestCase(w, tc);
  RunResult res;
  res.outcome = Outcome::PageFault(6, 0x40000000);
  res.outcome.reason = "why";
  res.state = tc.init;
  res.ns = 1234;
  res.pages.resize(2);
  res.pages[1].addr = 0x20001000;
  res.pages[1].bytes[7] = 9;
  WriteRunResult(w, res);

  WireReader r(buf.data(), w.size());
  TestCase back;
  ASSERT_TRUE(ReadTestCase(r, &back));
  EXPECT_EQ(back.name, tc.name);
  EXPECT_EQ(back.code, tc.code);
  EXPECT_EQ(back.init, tc.init);
  ASSERT_EQ(back.mem.size(), 2u);
  EXPECT_EQ(back.mem[0].data, tc.mem[0].data);
  EXPECT_EQ(back.mem[1].perm, kPermR);
  EXPECT_EQ(back.mem[1].size, 8192u);
  EXPECT_EQ(back.Hash(), tc.Hash());
  RunResult rback;
  ASSERT_TRUE(ReadRunResult(r, &rback));
  EXPECT_TRUE(rback.outcome.SameAs(res.outcome));
  EXPECT_EQ(rback.outcome.reason, "why");
  EXPECT_EQ(rback.state, res.state);
  EXPECT_EQ(rback.ns, 1234u);
  ASSERT_EQ(rback.pages.size(), 2u);
  EXPECT_EQ(rback.pages[1].addr, 0x20001000u);
  EXPECT_EQ(rback.pages[1].bytes[7], 9);
  EXPECT_EQ(r.remaining(), 0u);

  // A truncated message is refused, not overread.
  for (size_t cut : {size_t{0}, size_t{5}, w.size() / 2, w.size() - 1}) {
    WireReader t(buf.data(), cut);
    TestCase c;
    RunResult rr;
    EXPECT_FALSE(ReadTestCase(t, &c) && ReadRunResult(t, &rr)) << cut;
  }
}

TEST(Worker, RunsBatchesAndReportsObserves) {
  auto e = MakeFake();
  EXPECT_EQ(e->Observes(), kObserveGprs | kObserveMemory);
  std::vector<TestCase> cases;
  for (uint64_t i = 0; i < 300; ++i) cases.push_back(Case(i));
  cases[17].init.gpr[kRax] = kWriteMarker;
  for (int round = 0; round < 3; ++round) {
    auto results = RunAll(*e, cases);
    for (size_t i = 0; i < cases.size(); ++i) {
      EXPECT_EQ(results[i].outcome.kind, OutcomeKind::kHalt) << i;
      EXPECT_EQ(results[i].state.gpr[kRax], cases[i].init.gpr[kRax] + 1) << i;
      EXPECT_EQ(results[i].state.gpr[kRbx], 3u);
      EXPECT_EQ(results[i].state.gpr[kRcx], 3u);
      EXPECT_GT(results[i].ns, 0u);
      ASSERT_EQ(results[i].pages.size(), i == 17 ? 1u : 0u) << i;
    }
    EXPECT_EQ(results[17].pages[0].bytes[4095], 0x5a);
  }
}

TEST(Worker, CrashIsRecordedAndBatchGoesOn) {
  auto e = MakeFake();
  std::vector<TestCase> cases;
  for (uint64_t i = 0; i < 20; ++i) cases.push_back(Case(i));
  cases[0].init.gpr[kRax] = kAbortMarker;  // first case
  cases[7].init.gpr[kRax] = kAbortMarker;
  cases[8].init.gpr[kRax] = kSegvMarker;    // right after a crash
  cases[19].init.gpr[kRax] = kAbortMarker;  // last case
  auto results = RunAll(*e, cases);
  for (size_t i = 0; i < cases.size(); ++i) {
    if (i == 0 || i == 7 || i == 19) {
      EXPECT_EQ(results[i].outcome.kind, OutcomeKind::kCrash) << i;
      EXPECT_NE(results[i].outcome.reason.find("SIGABRT"), std::string::npos)
          << results[i].outcome.reason;
      EXPECT_EQ(results[i].state, cases[i].init);
    } else if (i == 8) {
      EXPECT_EQ(results[i].outcome.kind, OutcomeKind::kCrash);
#ifndef __SANITIZE_ADDRESS__
      // Under AddressSanitizer the child reports the SEGV itself and exits
      // with status 1 instead of dying by the signal.
      EXPECT_NE(results[i].outcome.reason.find("SIGSEGV"), std::string::npos)
          << results[i].outcome.reason;
#endif
    } else {
      EXPECT_EQ(results[i].outcome.kind, OutcomeKind::kHalt) << i;
      EXPECT_EQ(results[i].state.gpr[kRax], i + 1) << i;
    }
  }
  // The restarted worker serves the next batch.
  auto again = RunAll(*e, {Case(5)});
  EXPECT_EQ(again[0].outcome.kind, OutcomeKind::kHalt);
  EXPECT_EQ(again[0].state.gpr[kRax], 6u);
}

// What a dying worker wrote last to stderr is part of the crash reason (and
// does not reach the terminal); a worker that did not say anything gets
// none, not the previous worker's words.
TEST(Worker, CrashReasonCarriesTheWorkersLastWords) {
  auto e = MakeFake();
  std::vector<TestCase> cases = {Case(1), Case(kLastWordsMarker), Case(kAbortMarker), Case(2)};
  auto results = RunAll(*e, cases);
  ASSERT_EQ(results[1].outcome.kind, OutcomeKind::kCrash);
  EXPECT_NE(results[1].outcome.reason.find("SIGABRT"), std::string::npos)
      << results[1].outcome.reason;
  EXPECT_NE(results[1].outcome.reason.find("stderr: fake engine: fatal error at case case-6743"),
            std::string::npos)
      << results[1].outcome.reason;
  EXPECT_EQ(results[1].outcome.reason.find("first line"), std::string::npos)
      << results[1].outcome.reason;
  ASSERT_EQ(results[2].outcome.kind, OutcomeKind::kCrash);
  EXPECT_EQ(results[2].outcome.reason.find("stderr:"), std::string::npos)
      << results[2].outcome.reason;
  EXPECT_EQ(results[3].outcome.kind, OutcomeKind::kHalt);
}

TEST(Worker, WatchdogKillsHungCase) {
  auto e = MakeFake(/*timeout_ms=*/200);
  std::vector<TestCase> cases;
  for (uint64_t i = 0; i < 10; ++i) cases.push_back(Case(i));
  cases[4].init.gpr[kRax] = kHangMarker;
  auto t0 = std::chrono::steady_clock::now();
  auto results = RunAll(*e, cases);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 5.0);
  EXPECT_GE(secs, 0.19);
  for (size_t i = 0; i < cases.size(); ++i) {
    if (i == 4) {
      EXPECT_EQ(results[i].outcome.kind, OutcomeKind::kTimeout);
      EXPECT_GE(results[i].ns, 190'000'000u);
    } else {
      EXPECT_EQ(results[i].outcome.kind, OutcomeKind::kHalt) << i;
      EXPECT_EQ(results[i].state.gpr[kRax], i + 1);
    }
  }
}

TEST(Worker, FactoryErrorIsReported) {
  try {
    MakeWorkerEngine([]() -> std::unique_ptr<Engine> { throw std::runtime_error("no device"); },
                     WorkerOptions{});
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no device"), std::string::npos) << e.what();
  }
}

TEST(Worker, BuffersGrowForLargeBatches) {
  auto e = MakeFake(2000, /*buffer_bytes=*/64 << 10);
  // 8 cases with 64 KiB of data each: more than the initial request buffer.
  std::vector<TestCase> cases;
  for (uint64_t i = 0; i < 8; ++i) {
    TestCase tc = Case(i);
    tc.mem[0].size = 64 << 10;
    tc.mem[0].data.assign(64 << 10, static_cast<uint8_t>(i));
    cases.push_back(std::move(tc));
  }
  auto results = RunAll(*e, cases);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(results[i].outcome.kind, OutcomeKind::kHalt);
    EXPECT_EQ(results[i].state.gpr[kRcx], 64u << 10);
  }
  // 100 results with a page each: more than the initial result buffer.
  std::vector<TestCase> many(100, Case(kWriteMarker));
  auto r2 = RunAll(*e, many);
  size_t ok = 0;
  for (const RunResult& r : r2) ok += r.pages.size() == 1 && r.pages[0].bytes[0] == 0x5a;
  EXPECT_EQ(ok, many.size());
}

}  // namespace
}  // namespace cpudiff

// Tests of the native engine (engines/native): cases run on this CPU in the
// sandboxed runner. Expected values are what silicon does; the sample corpus
// cross-check compares against a second, independent silicon runner.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "engines/engine.h"
#include "engines/native/native_engine.h"
#include "engines/native/runner_host.h"
#include "engines/native/runner_protocol.h"
#include "engines/x86/layout.h"
#include "engines/x86/testcase.h"
#include "harness/compare/compare.h"
#include "harness/corpus/corpus.h"
#include "testgen/generate.h"

namespace cpudiff {
namespace {

constexpr uint64_t kCode = kDefaultCodeAddr;
constexpr uint64_t kData = kDefaultDataAddr;
constexpr uint64_t kStack = kDefaultStackAddr;

// A case with two 4 KiB rw pages: data at kData, stack at kStack.
TestCase MakeCase(std::vector<uint8_t> code) {
  TestCase tc;
  tc.code = std::move(code);
  tc.init.rip = kCode;
  tc.init.gpr[kRsp] = kStack + 0xff0;
  tc.mem.push_back({kData, kPageSize, kPermR | kPermW, {}});
  tc.mem.push_back({kStack, kPageSize, kPermR | kPermW, {}});
  return tc;
}

class NativeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!ProbeNative().available) return;
    RunnerOptions o;
    o.timeout_ms = 200;
    o.skip_unwritten_regions = true;  // as the native engine runs
    host_ = new RunnerHost(o);
  }
  static void TearDownTestSuite() {
    delete host_;
    host_ = nullptr;
  }
  void SetUp() override {
    if (!host_) GTEST_SKIP() << "native engine unavailable: " << ProbeNative().reason;
  }

  static std::vector<RunResult> RunAll(const std::vector<TestCase>& cases) {
    std::vector<const TestCase*> ptrs;
    for (const TestCase& tc : cases) ptrs.push_back(&tc);
    std::vector<RunResult> results(cases.size());
    host_->Run(ptrs, results);
    return results;
  }
  static RunResult RunOne(const TestCase& tc) { return RunAll({tc})[0]; }

  static RunnerHost* host_;
};
RunnerHost* NativeTest::host_ = nullptr;

uint64_t Read64(const TestCase& tc, const RunResult& r, uint64_t addr) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) {
    uint8_t b = 0;
    EXPECT_TRUE(FinalByte(tc, r, addr + i, &b));
    v = v << 8 | b;
  }
  return v;
}

TEST(NativeProbe, AvailableWithCpuModel) {
  Availability a = ProbeNative();
  ASSERT_TRUE(a.available) << a.reason;
  EXPECT_FALSE(a.version.empty());
  const EngineDesc* d = FindEngine("native");
  ASSERT_NE(d, nullptr);
  auto engine = d->create(EngineOptions{});
  EXPECT_EQ(engine->Observes(), kObserveAll);
}

TEST_F(NativeTest, HaltWithRegisterChanges) {
  TestCase tc = MakeCase({0x48, 0x01, 0xd8});  // add rax, rbx
  tc.init.gpr[kRax] = 0x7fffffffffffffff;
  tc.init.gpr[kRbx] = 1;
  tc.init.gpr[kR12] = 0x1234;
  RunResult r = RunOne(tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kHalt) << FormatOutcome(r.outcome);
  EXPECT_EQ(r.state.gpr[kRax], 0x8000000000000000ull);
  EXPECT_EQ(r.state.gpr[kRbx], 1u);
  EXPECT_EQ(r.state.gpr[kR12], 0x1234u);
  EXPECT_EQ(r.state.gpr[kRsp], kStack + 0xff0);
  EXPECT_EQ(r.state.rip, kCode + 3);  // the appended HLT
  // OF SF AF PF set, ZF CF clear.
  EXPECT_EQ(r.state.rflags & kComparedFlags, 0xa96u);
  EXPECT_TRUE(r.pages.empty());
}

TEST_F(NativeTest, EmptyCodeHaltsAtCodeAddress) {
  RunResult r = RunOne(MakeCase({}));
  EXPECT_EQ(r.outcome.kind, OutcomeKind::kHalt);
  EXPECT_EQ(r.state.rip, kCode);
}

TEST_F(NativeTest, MemoryWriteVisibleInPages) {
  // mov [0x20000010], rax ; push rbx
  TestCase tc = MakeCase({0x48, 0x89, 0x04, 0x25, 0x10, 0x00, 0x00, 0x20, 0x53});
  tc.init.gpr[kRax] = 0x1122334455667788;
  tc.init.gpr[kRbx] = 0xcafe;
  tc.mem[0].data = {0xaa, 0xbb};
  RunResult r = RunOne(tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kHalt) << FormatOutcome(r.outcome);
  ASSERT_EQ(r.pages.size(), 2u);
  EXPECT_EQ(r.pages[0].addr, kData);
  EXPECT_EQ(r.pages[1].addr, kStack);
  EXPECT_EQ(Read64(tc, r, kData + 0x10), 0x1122334455667788u);
  EXPECT_EQ(r.pages[0].bytes[0], 0xaa);  // initial data kept
  EXPECT_EQ(r.pages[0].bytes[1], 0xbb);
  EXPECT_EQ(Read64(tc, r, kStack + 0xfe8), 0xcafeu);
  EXPECT_EQ(r.state.gpr[kRsp], kStack + 0xfe8);
}

TEST_F(NativeTest, WriteOfSameValueIsNoChange) {
  // mov [0x20000000], al with al equal to the initial byte.
  TestCase tc = MakeCase({0x88, 0x04, 0x25, 0x00, 0x00, 0x00, 0x20});
  tc.mem[0].data = {0x5a};
  tc.init.gpr[kRax] = 0x5a;
  RunResult r = RunOne(tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kHalt);
  EXPECT_TRUE(r.pages.empty());
}

TEST_F(NativeTest, PageFaultRead) {
  // mov rax, [0x40000000]
  TestCase tc = MakeCase({0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x40});
  tc.init.gpr[kRax] = 7;
  RunResult r = RunOne(tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kFault);
  EXPECT_EQ(r.outcome.vector, kVecPF);
  EXPECT_EQ(r.outcome.error_code, 4u);  // user, read, not present
  EXPECT_TRUE(r.outcome.has_addr);
  EXPECT_EQ(r.outcome.addr, 0x40000000u);
  EXPECT_EQ(r.state.rip, kCode);  // before the faulting instruction
  EXPECT_EQ(r.state.gpr[kRax], 7u);
}

TEST_F(NativeTest, PageFaultWrite) {
  // mov [0x40000008], rax
  RunResult r = RunOne(MakeCase({0x48, 0x89, 0x04, 0x25, 0x08, 0x00, 0x00, 0x40}));
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kFault);
  EXPECT_EQ(r.outcome.vector, kVecPF);
  EXPECT_EQ(r.outcome.error_code, 6u);  // user, write, not present
  EXPECT_EQ(r.outcome.addr, 0x40000008u);
}

TEST_F(NativeTest, PageFaultWriteToReadOnlyPageIsProtection) {
  // mov [0x50000010], rax: the page is mapped read-only.
  TestCase tc = MakeCase({0x48, 0x89, 0x04, 0x25, 0x10, 0x00, 0x00, 0x50});
  tc.mem.push_back({0x50000000, kPageSize, kPermR, {1, 2, 3}});
  RunResult r = RunOne(tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kFault);
  EXPECT_EQ(r.outcome.vector, kVecPF);
  EXPECT_EQ(r.outcome.error_code, 7u);  // user, write, present
  EXPECT_EQ(r.outcome.addr, 0x50000010u);
}

TEST_F(NativeTest, PageFaultOnFetch) {
  TestCase tc = MakeCase({0xff, 0xe0});  // jmp rax
  tc.init.gpr[kRax] = 0x40000000;
  RunResult r = RunOne(tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kFault);
  EXPECT_EQ(r.outcome.vector, kVecPF);
  EXPECT_EQ(r.outcome.error_code, 0x14u);  // user, instruction fetch
  EXPECT_EQ(r.outcome.addr, 0x40000000u);
  EXPECT_EQ(r.state.rip, 0x40000000u);
}

TEST_F(NativeTest, InvalidOpcode) {
  RunResult r = RunOne(MakeCase({0x90, 0x0f, 0x0b}));  // nop ; ud2
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kFault);
  EXPECT_EQ(r.outcome.vector, kVecUD);
  EXPECT_FALSE(r.outcome.has_error_code);
  EXPECT_EQ(r.state.rip, kCode + 1);
}

TEST_F(NativeTest, DivideError) {
  TestCase tc = MakeCase({0x31, 0xc9, 0x48, 0xf7, 0xf1});  // xor ecx, ecx ; div rcx
  tc.init.gpr[kRcx] = 5;
  tc.init.gpr[kRax] = 100;
  RunResult r = RunOne(tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kFault);
  EXPECT_EQ(r.outcome.vector, kVecDE);
  EXPECT_EQ(r.state.rip, kCode + 2);
  EXPECT_EQ(r.state.gpr[kRcx], 0u);
  EXPECT_EQ(r.state.gpr[kRax], 100u);
}

TEST_F(NativeTest, BreakpointTrapsAfterInt3) {
  TestCase tc = MakeCase({0x48, 0xff, 0xc0, 0xcc, 0x90});  // inc rax ; int3 ; nop
  RunResult r = RunOne(tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kFault);
  EXPECT_EQ(r.outcome.vector, kVecBP);
  EXPECT_EQ(r.state.rip, kCode + 4);  // after the int3
  EXPECT_EQ(r.state.gpr[kRax], 1u);
}

TEST_F(NativeTest, GeneralProtectionFromNonCanonicalAddress) {
  // mov rax, 0x8000000000000000 ; mov rbx, [rax]
  TestCase tc = MakeCase({0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x48, 0x8b, 0x18});
  RunResult r = RunOne(tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kFault);
  EXPECT_EQ(r.outcome.vector, kVecGP);
  EXPECT_TRUE(r.outcome.has_error_code);
  EXPECT_EQ(r.outcome.error_code, 0u);
  EXPECT_EQ(r.state.rip, kCode + 10);
  EXPECT_EQ(r.state.gpr[kRax], 0x8000000000000000ull);
}

TEST_F(NativeTest, AlignmentCheckWithAcFlag) {
  TestCase tc = MakeCase({0x8b, 0x04, 0x25, 0x01, 0x00, 0x00, 0x20});  // mov eax, [0x20000001]
  tc.init.rflags = 0x202 | kFlagAC;
  RunResult r = RunOne(tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kFault);
  EXPECT_EQ(r.outcome.vector, kVecAC);
  EXPECT_EQ(r.outcome.error_code, 0u);
  EXPECT_EQ(r.state.rip, kCode);
  EXPECT_TRUE(r.state.rflags & kFlagAC);
  // Without AC the same access is fine; the next case must not inherit AC.
  tc.init.rflags = 0x202;
  EXPECT_EQ(RunOne(tc).outcome.kind, OutcomeKind::kHalt);
}

TEST_F(NativeTest, HltWithPrefixIsHalt) {
  RunResult r = RunOne(MakeCase({0x90, 0x66, 0xf4, 0x90}));  // nop ; o16 hlt ; nop
  EXPECT_EQ(r.outcome.kind, OutcomeKind::kHalt);
  EXPECT_EQ(r.state.rip, kCode + 1);
}

TEST_F(NativeTest, OtherSoftwareInterruptIsGp) {
  RunResult r = RunOne(MakeCase({0xcd, 0x21}));  // int 0x21: not allowed from CPL3
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kFault);
  EXPECT_EQ(r.outcome.vector, kVecGP);
  EXPECT_EQ(r.outcome.error_code, 0x21u * 8 + 2);  // IDT entry, EXT=0
}

TEST_F(NativeTest, TimeoutInTheMiddleOfABatch) {
  std::vector<TestCase> cases;
  for (int i = 0; i < 100; ++i) {
    TestCase tc = i == 50 ? MakeCase({0xeb, 0xfe})         // jmp $
                          : MakeCase({0x48, 0x01, 0xd8});  // add rax, rbx
    tc.init.gpr[kRax] = 1000 + i;
    tc.init.gpr[kRbx] = i;
    cases.push_back(tc);
  }
  uint64_t restarts = host_->restarts();
  auto t0 = std::chrono::steady_clock::now();
  std::vector<RunResult> r = RunAll(cases);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_EQ(r[50].outcome.kind, OutcomeKind::kTimeout) << FormatOutcome(r[50].outcome);
  for (int i = 0; i < 100; ++i) {
    if (i == 50) continue;
    ASSERT_EQ(r[i].outcome.kind, OutcomeKind::kHalt) << i << ": " << FormatOutcome(r[i].outcome);
    EXPECT_EQ(r[i].state.gpr[kRax], 1000u + 2 * i) << i;
  }
  EXPECT_EQ(host_->restarts(), restarts + 1);
  EXPECT_GE(ms, 200);
  EXPECT_LT(ms, 2000);
}

TEST(NativeCrash, RunnerKilledMidBatchBecomesCrash) {
  if (!ProbeNative().available) GTEST_SKIP() << "native engine unavailable";
  RunnerOptions o;
  o.timeout_ms = 10000;  // long: the kill, not the limit, ends the spin
  RunnerHost host(o);
  std::vector<TestCase> cases;
  for (int i = 0; i < 20; ++i) {
    TestCase tc = i == 7 ? MakeCase({0xeb, 0xfe}) : MakeCase({0x48, 0x01, 0xd8});
    tc.init.gpr[kRax] = i;
    tc.init.gpr[kRbx] = 1;
    cases.push_back(tc);
  }
  std::vector<const TestCase*> ptrs;
  for (const TestCase& tc : cases) ptrs.push_back(&tc);
  std::vector<RunResult> r(cases.size());
  pid_t victim = host.pid();
  std::thread killer([victim] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    kill(victim, SIGKILL);
  });
  host.Run(ptrs, r);
  killer.join();
  EXPECT_EQ(r[7].outcome.kind, OutcomeKind::kCrash) << FormatOutcome(r[7].outcome);
  EXPECT_NE(r[7].outcome.reason.find("signal 9"), std::string::npos) << r[7].outcome.reason;
  for (int i = 0; i < 20; ++i) {
    if (i == 7) continue;
    ASSERT_EQ(r[i].outcome.kind, OutcomeKind::kHalt) << i;
    EXPECT_EQ(r[i].state.gpr[kRax], static_cast<uint64_t>(i + 1));
  }
  EXPECT_EQ(host.restarts(), 1u);
  EXPECT_NE(host.pid(), victim);
}

TEST(NativeCrash, CaseThatBreaksTheRunnerIsCrash) {
  if (!ProbeNative().available) GTEST_SKIP() << "native engine unavailable";
  RunnerHost host(RunnerOptions{});
  // A case that jumps into the runner's own `syscall; ret` (rsys in
  // runner.c) asking for getpid(): seccomp lets the address through but not
  // that number, and kills the runner. (Were the call let through, the case
  // would go on and #PF at address 0 instead.)
  std::vector<TestCase> cases;
  TestCase bad = MakeCase({0xff, 0xe1});  // jmp rcx
  bad.init.gpr[kRax] = 39;                // getpid
  std::span<const uint8_t> img = NativeRunnerImage();
  const uint8_t kSyscallRet[] = {0x0f, 0x05, 0xc3};
  auto it = std::search(img.begin(), img.end(), std::begin(kSyscallRet), std::end(kSyscallRet));
  ASSERT_NE(it, img.end());
  // The runner's file offsets equal its addresses minus kRunnerTextAddr.
  bad.init.gpr[kRcx] = kRunnerTextAddr + static_cast<uint64_t>(it - img.begin());
  cases.push_back(MakeCase({0x90}));
  cases.push_back(bad);
  cases.push_back(MakeCase({0x90}));
  std::vector<const TestCase*> ptrs;
  for (const TestCase& tc : cases) ptrs.push_back(&tc);
  std::vector<RunResult> r(cases.size());
  host.Run(ptrs, r);
  EXPECT_EQ(r[0].outcome.kind, OutcomeKind::kHalt);
  EXPECT_EQ(r[1].outcome.kind, OutcomeKind::kCrash) << FormatOutcome(r[1].outcome);
  EXPECT_EQ(r[2].outcome.kind, OutcomeKind::kHalt);
  EXPECT_EQ(host.restarts(), 1u);
}

// The same runner under qemu-x86_64, as the qemu engine uses it: no seccomp
// (QEMU refuses it), code rewritten at the same address between cases.
TEST(NativeRunnerUnderQemu, RunsCasesAndRecovers) {
  if (access("/usr/bin/qemu-x86_64", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/qemu-x86_64";
  RunnerOptions o;
  o.command_prefix = {"/usr/bin/qemu-x86_64"};
  o.seccomp = false;
  o.address_space_limit = 0;
  o.timeout_ms = 300;
  RunnerHost host(o);
  std::vector<TestCase> cases;
  TestCase add = MakeCase({0x48, 0x01, 0xd8});  // add rax, rbx
  add.init.gpr[kRax] = 5;
  add.init.gpr[kRbx] = 7;
  cases.push_back(add);
  TestCase store = MakeCase({0x48, 0x89, 0x04, 0x25, 0x10, 0x00, 0x00, 0x20});  // mov [..], rax
  store.init.gpr[kRax] = 0x1122;
  cases.push_back(store);
  cases.push_back(MakeCase({0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x40}));  // #PF read
  cases.push_back(MakeCase({0xcc}));                                            // int3
  cases.push_back(MakeCase({0xeb, 0xfe}));                                      // jmp $
  cases.push_back(add);
  std::vector<const TestCase*> ptrs;
  for (const TestCase& tc : cases) ptrs.push_back(&tc);
  std::vector<RunResult> r(cases.size());
  host.Run(ptrs, r);
  EXPECT_EQ(r[0].outcome.kind, OutcomeKind::kHalt);
  EXPECT_EQ(r[0].state.gpr[kRax], 12u);
  EXPECT_EQ(r[1].outcome.kind, OutcomeKind::kHalt) << FormatOutcome(r[1].outcome);
  ASSERT_EQ(r[1].pages.size(), 1u);
  EXPECT_EQ(Read64(cases[1], r[1], kData + 0x10), 0x1122u);
  EXPECT_EQ(r[2].outcome.vector, kVecPF);
  EXPECT_EQ(r[2].outcome.addr, 0x40000000u);
  EXPECT_EQ(r[3].outcome.vector, kVecBP);
  EXPECT_EQ(r[3].state.rip, kCode + 1);
  EXPECT_EQ(r[4].outcome.kind, OutcomeKind::kTimeout);
  EXPECT_EQ(r[5].outcome.kind, OutcomeKind::kHalt);
  EXPECT_EQ(r[5].state.gpr[kRax], 12u);
}

// System calls are trapped by seccomp and never reach the host.
TEST_F(NativeTest, SyscallIsNeverExecuted) {
  char path[] = "/tmp/cpudiff-native-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::vector<TestCase> cases;
  auto with_path = [&](std::vector<uint8_t> code, uint64_t nr) {
    TestCase tc = MakeCase(std::move(code));
    tc.mem[0].data.assign(path, path + sizeof(path));
    tc.init.gpr[kRax] = nr;
    tc.init.gpr[kRdi] = kData;
    return tc;
  };
  cases.push_back(with_path({0x0f, 0x05}, 87));  // syscall: unlink(path)
  cases.push_back(with_path({0x0f, 0x05}, 59));  // syscall: execve(path)
  TestCase k = MakeCase({0x0f, 0x05});           // syscall: kill(our pid, SIGKILL)
  k.init.gpr[kRax] = 62;
  k.init.gpr[kRdi] = static_cast<uint64_t>(getpid());
  k.init.gpr[kRsi] = SIGKILL;
  cases.push_back(k);
  TestCase i80 = with_path({0xcd, 0x80}, 10);  // int 0x80: 32-bit unlink(path)
  cases.push_back(i80);
  cases.push_back(with_path({0x0f, 0x34}, 10));  // sysenter
  cases.push_back(with_path({0x0f, 0x07}, 10));  // sysret: #UD at CPL3... or #GP
  std::vector<RunResult> r = RunAll(cases);
  struct stat st;
  EXPECT_EQ(stat(path, &st), 0) << "the file was unlinked";
  unlink(path);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(r[i].outcome.kind, OutcomeKind::kSyscall) << i << ": " << FormatOutcome(r[i].outcome);
    EXPECT_EQ(r[i].state.rip, kCode + 2) << i;  // after the instruction
  }
  // syscall itself ran: RCX holds the return address, R11 the flags.
  EXPECT_EQ(r[0].state.gpr[kRcx], kCode + 2);
  EXPECT_EQ(r[0].state.gpr[kR11] & kComparedFlags, 0x202u);
  EXPECT_EQ(r[0].state.gpr[kRax], 87u);
  EXPECT_EQ(r[3].state.gpr[kRax], 10u);
  EXPECT_EQ(r[5].outcome.kind, OutcomeKind::kFault);
}

TEST_F(NativeTest, MemoryDoesNotLeakBetweenCases) {
  // Case A writes two qwords; case B reads them back (same layout).
  // A: mov [0x20000100], rax ; mov [0x30000f00], rax
  TestCase a = MakeCase({0x48, 0x89, 0x04, 0x25, 0x00, 0x01, 0x00, 0x20,  //
                         0x48, 0x89, 0x04, 0x25, 0x00, 0x0f, 0x00, 0x30});
  a.init.gpr[kRax] = 0xdeadbeefdeadbeef;
  // B: mov rbx, [0x20000100] ; mov rcx, [0x30000f00] ; mov rdx, [0x20000000]
  TestCase b = MakeCase({0x48, 0x8b, 0x1c, 0x25, 0x00, 0x01, 0x00, 0x20,  //
                         0x48, 0x8b, 0x0c, 0x25, 0x00, 0x0f, 0x00, 0x30,  //
                         0x48, 0x8b, 0x14, 0x25, 0x00, 0x00, 0x00, 0x20});
  b.init.gpr[kRbx] = b.init.gpr[kRcx] = 1;
  TestCase b_data = b;
  b_data.mem[0].data = {1, 2, 3, 4, 5, 6, 7, 8};
  b_data.mem[0].data.resize(0x108, 0);
  b_data.mem[0].data[0x100] = 0x42;
  std::vector<RunResult> r = RunAll({a, b, a, b_data, b, a});
  for (const RunResult& x : r) ASSERT_EQ(x.outcome.kind, OutcomeKind::kHalt);
  EXPECT_EQ(r[0].pages.size(), 2u);
  EXPECT_EQ(r[1].state.gpr[kRbx], 0u);
  EXPECT_EQ(r[1].state.gpr[kRcx], 0u);
  EXPECT_TRUE(r[1].pages.empty());
  EXPECT_EQ(r[3].state.gpr[kRbx], 0x42u);
  EXPECT_EQ(r[3].state.gpr[kRcx], 0u);
  EXPECT_EQ(r[3].state.gpr[kRdx], 0x0807060504030201u);
  EXPECT_EQ(r[4].state.gpr[kRbx], 0u);  // b_data's initial data is gone too
  EXPECT_EQ(r[4].state.gpr[kRdx], 0u);
  // Across calls too.
  RunResult again = RunOne(b);
  EXPECT_EQ(again.state.gpr[kRbx], 0u);
  EXPECT_EQ(again.state.gpr[kRcx], 0u);
}

TEST_F(NativeTest, LayoutChangesAndCodeChangesAtTheSameAddress) {
  TestCase one = MakeCase({0xb8, 0x01, 0x00, 0x00, 0x00});  // mov eax, 1
  TestCase two = MakeCase({0xb8, 0x02, 0x00, 0x00, 0x00});  // mov eax, 2
  TestCase big = MakeCase({0xb8, 0x03, 0x00, 0x00, 0x00, 0x8b, 0x1c, 0x25, 0x00, 0x00, 0x01,
                           0x20});  // mov eax, 3 ; mov ebx, [0x20010000]
  big.mem[0].size = 0x20000;
  big.mem[0].data.assign(0x10004, 0x11);
  TestCase moved = two;
  moved.code_addr = 0x12345000;
  moved.init.rip = 0x12345000;
  std::vector<RunResult> r = RunAll({one, two, big, one, moved, two});
  const uint64_t want[] = {1, 2, 3, 1, 2, 2};
  for (size_t i = 0; i < r.size(); ++i) {
    ASSERT_EQ(r[i].outcome.kind, OutcomeKind::kHalt) << i << FormatOutcome(r[i].outcome);
    EXPECT_EQ(r[i].state.gpr[kRax], want[i]) << i;
  }
  EXPECT_EQ(r[2].state.gpr[kRbx], 0x11111111u);
  EXPECT_EQ(r[4].state.rip, 0x12345005u);
}

TEST_F(NativeTest, XmmAndMxcsrRoundTrip) {
  TestCase tc = MakeCase({0x66, 0x0f, 0xfe, 0xc1});  // paddd xmm0, xmm1
  for (int i = 0; i < 16; ++i) {
    tc.init.xmm[i] = {0x0101010101010101ull * (i + 1), 0xf0f0f0f000000000ull + i};
  }
  tc.init.mxcsr = 0x7fa0;  // round toward zero, FZ, DAZ... plus PE flag set
  RunResult r = RunOne(tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kHalt);
  EXPECT_EQ(r.state.mxcsr, 0x7fa0u);
  EXPECT_EQ(r.state.xmm[0].lo, 0x0303030303030303ull);
  EXPECT_EQ(r.state.xmm[0].hi, 0xe1e1e1e000000001ull);
  for (int i = 1; i < 16; ++i) EXPECT_EQ(r.state.xmm[i], tc.init.xmm[i]) << i;
  // The next case starts from its own values, not the last case's.
  RunResult z = RunOne(MakeCase({0x90}));
  EXPECT_EQ(z.state.mxcsr, kMxcsrDefault);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(z.state.xmm[i], Xmm{}) << i;
}

TEST_F(NativeTest, SimdFloatingPointExceptionIsXm) {
  TestCase tc = MakeCase({0xf3, 0x0f, 0x5e, 0xc1});  // divss xmm0, xmm1
  tc.init.xmm[0].lo = 0x3f800000;                    // 1.0f
  tc.init.mxcsr = 0x1f80 & ~0x200u;                  // divide-by-zero unmasked
  RunResult r = RunOne(tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kFault) << FormatOutcome(r.outcome);
  EXPECT_EQ(r.outcome.vector, kVecXM);
  EXPECT_EQ(r.state.mxcsr & 0x3f, 0x4u);  // ZE
  EXPECT_EQ(r.state.rip, kCode);
}

TEST_F(NativeTest, FsGsBaseRoundTrip) {
  // mov rax, fs:[8] ; mov rbx, gs:[16]
  TestCase tc = MakeCase({0x64, 0x48, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x00, 0x00,  //
                          0x65, 0x48, 0x8b, 0x1c, 0x25, 0x10, 0x00, 0x00, 0x00});
  tc.init.fs_base = kData;
  tc.init.gs_base = kData + 0x100;
  tc.mem[0].data.assign(0x200, 0);
  tc.mem[0].data[8] = 0x77;
  tc.mem[0].data[0x110] = 0x99;
  RunResult r = RunOne(tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kHalt) << FormatOutcome(r.outcome);
  EXPECT_EQ(r.state.gpr[kRax], 0x77u);
  EXPECT_EQ(r.state.gpr[kRbx], 0x99u);
  EXPECT_EQ(r.state.fs_base, kData);
  EXPECT_EQ(r.state.gs_base, kData + 0x100);
  if (host_->fsgsbase()) {
    TestCase w = MakeCase({0xf3, 0x48, 0x0f, 0xae, 0xd1});  // wrfsbase rcx
    w.init.gpr[kRcx] = 0x123456789000;
    RunResult rw = RunOne(w);
    ASSERT_EQ(rw.outcome.kind, OutcomeKind::kHalt);
    EXPECT_EQ(rw.state.fs_base, 0x123456789000u);
  }
  RunResult z = RunOne(MakeCase({0x90}));
  EXPECT_EQ(z.state.fs_base, 0u);
  EXPECT_EQ(z.state.gs_base, 0u);
}

TEST_F(NativeTest, UnmappableCasesAreUnsupported) {
  TestCase high = MakeCase({0x90});
  high.mem.push_back({kUserAddrLimit, kPageSize, kPermR | kPermW, {}});
  TestCase overlap = MakeCase({0x90});
  overlap.mem.push_back({kData, kPageSize, kPermR, {}});
  TestCase low = MakeCase({0x90});
  low.mem.push_back({0x40000800, kPageSize, kPermR | kPermW, {}});  // not page aligned
  std::vector<RunResult> r = RunAll({high, MakeCase({0x90}), overlap, low, MakeCase({0x90})});
  EXPECT_EQ(r[0].outcome.kind, OutcomeKind::kUnsupported);
  EXPECT_EQ(r[1].outcome.kind, OutcomeKind::kHalt);
  EXPECT_EQ(r[2].outcome.kind, OutcomeKind::kUnsupported);
  EXPECT_EQ(r[3].outcome.kind, OutcomeKind::kUnsupported) << FormatOutcome(r[3].outcome);
  EXPECT_EQ(r[4].outcome.kind, OutcomeKind::kHalt);
}

// ---- Ending by the stub or by the HLT ---------------------------------------

// The appended HLT is part of what a case can read: corpus v1 puts f4 after
// the code (checked here on silicon). Such a case must keep its HLT.
TEST_F(NativeTest, CodeReadingItsOwnEndSeesTheHlt) {
  // mov al, [rip+0] ; mov bl, [rip+0] (the second reads the byte after the
  // code: the HLT)
  TestCase tc = MakeCase({0x8a, 0x05, 0x00, 0x00, 0x00, 0x00, 0x8a, 0x1d, 0x00, 0x00, 0x00, 0x00});
  RunResult r = RunOne(tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kHalt) << FormatOutcome(r.outcome);
  EXPECT_EQ(r.state.gpr[kRax] & 0xff, 0x8au);  // the first byte of the second mov
  EXPECT_EQ(r.state.gpr[kRbx] & 0xff, kHltByte);
  EXPECT_EQ(r.state.rip, kCode + 12);
}

// Every case of the seed corpus and a few thousand generated ones give the
// same result whether the runner may end them by its stub or only at their
// HLT; and the stub is used for most generated cases.
TEST_F(NativeTest, StubEndAndHltEndAgree) {
  std::vector<TestCase> cases;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(CPUDIFF_SOURCE_DIR) + "/corpus/seed")) {
    CorpusReadResult read = ReadCorpusFile(
        entry.path().string(), [&](TestCase&& tc) { cases.push_back(std::move(tc)); });
    ASSERT_TRUE(read.errors.empty()) << read.errors[0].ToString();
  }
  const size_t seed_cases = cases.size();
  ASSERT_GT(seed_cases, 400u);
  Rng rng(42);
  for (int i = 0; i < 3000; ++i) cases.push_back(GenerateAluCase(rng, GenOptions{}));

  RunnerOptions hlt_only;
  hlt_only.timeout_ms = 200;
  hlt_only.stub_end = false;
  RunnerHost hlt_host(hlt_only);
  std::vector<const TestCase*> ptrs;
  for (const TestCase& tc : cases) ptrs.push_back(&tc);
  std::vector<RunResult> by_hlt(cases.size());
  hlt_host.Run(ptrs, by_hlt);
  EXPECT_EQ(hlt_host.stub_ends(), 0u);

  const uint64_t stubs_before = host_->stub_ends();
  std::vector<RunResult> by_stub = RunAll(cases);
  const uint64_t stubs = host_->stub_ends() - stubs_before;
  EXPECT_GT(stubs, 2000u);  // of the 3000 generated cases, most qualify
  EXPECT_LT(stubs, cases.size());

  CompareOptions strict;
  strict.strict = true;
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name.empty() ? "generated #" + std::to_string(i - seed_cases)
                                       : cases[i].name);
    EXPECT_EQ(FormatOutcome(by_stub[i].outcome), FormatOutcome(by_hlt[i].outcome));
    for (const Mismatch& m : CompareResults(cases[i], by_hlt[i], by_stub[i], strict)) {
      ADD_FAILURE() << m.field << ": " << m.a << " by HLT, " << m.b << " by stub";
    }
  }
}

// ---- Cross-check against the silicon samples ------------------------------

// Differences between this run and a sample's expectation, by kind.
struct SampleDiff {
  std::string outcome;             // outcome or rip: must never differ
  std::vector<std::string> flags;  // rflags
  std::vector<std::string> other;  // other registers and memory
};

SampleDiff CheckSample(const TestCase& tc, const RunResult& r) {
  CompareOptions strict;
  strict.strict = true;  // every flag, so that flag differences are counted
  SampleDiff d;
  for (const Mismatch& m : CompareExpect(tc, r, strict)) {
    std::string what = m.field + " " + m.b + " want " + m.a;
    if (m.kind == FieldKind::kOutcome || m.kind == FieldKind::kRip) {
      d.outcome += what;
    } else if (m.kind == FieldKind::kFlags) {
      d.flags.push_back(what);
    } else {
      d.other.push_back(what);
    }
  }
  return d;
}

// The samples were recorded on an Intel CPU of this machine kind; this host
// may be another CPU (an AMD EPYC when this was written). Outcome and RIP must
// agree everywhere. RFLAGS may differ where the architecture leaves flags
// undefined (mul/div, shifts, lzcnt/tzcnt, BMI, ...), and these cases differ
// in defined-by-vendor state, each a known Intel/AMD difference:
const char* const kVendorDifferences[] = {
    // shld/shrd of a 16-bit operand by more than 16: result undefined (in
    // 00178 the shld that follows the sal writes memory).
    "sample-00584-shift-shrd",
    "sample-00874-shift-shrd",
    "sample-00972-shift-shld",
    "sample-00178-shift-sal",
    // dpps: Intel and AMD round the intermediate dot product differently.
    "sample-00843-sse4-dpps",
    // call to a non-canonical address: Intel pushes the return address
    // before the #GP, AMD faults before the push.
    "sample-00410-fault-gp_noncanon",
};

TEST_F(NativeTest, AgreesWithSiliconSamples) {
  const std::string path = std::string(CPUDIFF_SOURCE_DIR) + "/../shared/samples/silicon-1000.jsonl";
  if (!std::ifstream(path)) GTEST_SKIP() << "no sample corpus at " << path;
  std::vector<TestCase> cases;
  CorpusReadResult read = ReadCorpusFile(path, [&](TestCase&& tc) { cases.push_back(std::move(tc)); });
  ASSERT_TRUE(read.errors.empty()) << read.errors[0].ToString();
  ASSERT_GE(cases.size(), 1000u);
  const bool intel = ProbeNative().version.find("Intel") != std::string::npos;
  // Twice: the second round shows that nothing depends on what ran before.
  for (int round = 0; round < 2; ++round) {
    std::vector<RunResult> r = RunAll(cases);
    int flag_diffs = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      SampleDiff d = CheckSample(cases[i], r[i]);
      EXPECT_EQ(d.outcome, "") << cases[i].name;
      flag_diffs += !d.flags.empty();
      bool known = std::find_if(std::begin(kVendorDifferences), std::end(kVendorDifferences),
                                [&](const char* n) { return cases[i].name == n; }) !=
                   std::end(kVendorDifferences);
      if (!d.other.empty() && (intel || !known)) {
        ADD_FAILURE() << cases[i].name << ": " << d.other[0];
      }
      if (intel && !d.flags.empty()) ADD_FAILURE() << cases[i].name << ": " << d.flags[0];
    }
    std::printf(
        "[native samples] round %d: %zu cases, outcome and rip agree; rflags differ in "
        "%d (undefined flags, %s)\n",
        round, cases.size(), flag_diffs, intel ? "Intel host" : "non-Intel host");
    EXPECT_LE(flag_diffs, 200);
  }
}

}  // namespace
}  // namespace cpudiff

// Tests of the qemu engine (engines/qemu): the native runner under
// qemu-x86_64 in its box. Expected end states are what silicon does: the
// same cases are run on the `native` engine (this CPU) and must agree,
// besides the literal values written here (checked on this CPU).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engines/engine.h"
#include "engines/native/native_engine.h"
#include "engines/qemu/qemu_engine.h"
#include "engines/x86/layout.h"
#include "engines/x86/testcase.h"

namespace cpudiff {
namespace {

constexpr uint64_t kCode = kDefaultCodeAddr;
constexpr uint64_t kData = kDefaultDataAddr;
constexpr uint64_t kStack = kDefaultStackAddr;

// A case with the corpus default layout: 64 KiB rw data and stack.
TestCase MakeCase(std::vector<uint8_t> code) {
  TestCase tc;
  tc.code = std::move(code);
  tc.init.rip = kCode;
  tc.init.gpr[kRsp] = kDefaultRsp;
  tc.mem.push_back({kData, kDefaultDataSize, kPermR | kPermW, {}});
  tc.mem.push_back({kStack, kDefaultStackSize, kPermR | kPermW, {}});
  return tc;
}

std::unique_ptr<QemuEngine> MakeQemu(uint32_t timeout_ms = 1000) {
  EngineOptions o;
  o.timeout_ms = timeout_ms;
  return std::make_unique<QemuEngine>(o);
}

#define SKIP_WITHOUT_QEMU()                                                    \
  do {                                                                         \
    Availability a = ProbeQemu();                                              \
    if (!a.available) GTEST_SKIP() << "qemu engine unavailable: " << a.reason; \
  } while (0)

std::vector<RunResult> RunAll(Engine& e, const std::vector<TestCase>& cases) {
  std::vector<const TestCase*> ptrs;
  for (const TestCase& tc : cases) ptrs.push_back(&tc);
  std::vector<RunResult> out(cases.size());
  e.Run(ptrs, out);
  return out;
}

RunResult RunOne(Engine& e, const TestCase& tc) { return RunAll(e, {tc})[0]; }

// Silicon's answer for the same cases, when the native engine runs here.
std::vector<RunResult> OnSilicon(const std::vector<TestCase>& cases) {
  if (!ProbeNative().available) return {};
  EngineOptions o;
  std::unique_ptr<Engine> native = CreateNativeEngine(o);
  return RunAll(*native, cases);
}

// Registers and outcome agree with silicon (RF is not compared).
void ExpectSameAsSilicon(const std::vector<TestCase>& cases, const std::vector<RunResult>& q) {
  std::vector<RunResult> n = OnSilicon(cases);
  if (n.empty()) return;
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    EXPECT_TRUE(q[i].outcome.SameAs(n[i].outcome))
        << FormatOutcome(q[i].outcome) << " vs silicon " << FormatOutcome(n[i].outcome);
    EXPECT_EQ(q[i].state.gpr, n[i].state.gpr);
    EXPECT_EQ(q[i].state.rip, n[i].state.rip);
    EXPECT_EQ(q[i].state.rflags & kComparedFlags, n[i].state.rflags & kComparedFlags);
  }
}

TEST(QemuProbe, ReportsVersion) {
  Availability a = ProbeQemu();
  if (!a.available) GTEST_SKIP() << "qemu engine unavailable: " << a.reason;
  EXPECT_NE(a.version.find("qemu-x86_64 version"), std::string::npos) << a.version;
  EXPECT_EQ(a.version.find('\n'), std::string::npos);
}

TEST(QemuScan, SystemCallBytesAndWxRegionsAreRefused) {
  TestCase ok = MakeCase({0x48, 0x01, 0xd8});  // add rax, rbx
  EXPECT_EQ(QemuUnsupportedReason(ok), "");
  for (std::vector<uint8_t> code : std::vector<std::vector<uint8_t>>{
           {0x0f, 0x05},
           {0x90, 0x0f, 0x34},
           {0xcd, 0x80},
           // Inside another instruction's immediate: mov eax, 0x90050f90
           {0xb8, 0x90, 0x0f, 0x05, 0x90}}) {
    EXPECT_NE(QemuUnsupportedReason(MakeCase(code)), "");
  }
  TestCase rwx = ok;
  rwx.mem.push_back({0x50000000, kPageSize, kPermR | kPermW | kPermX, {}});
  EXPECT_NE(QemuUnsupportedReason(rwx).find("writable and executable"), std::string::npos);
  TestCase rx = ok;
  rx.mem.push_back({0x50000000, kPageSize, kPermR | kPermX, {0x00, 0xcd, 0x80}});
  EXPECT_NE(QemuUnsupportedReason(rx).find("int 0x80"), std::string::npos);
  // The same bytes in a region that cannot execute are data.
  TestCase data = ok;
  data.mem[0].data = {0x0f, 0x05};
  EXPECT_EQ(QemuUnsupportedReason(data), "");
}

TEST(QemuEngine, HaltWithRegisterResult) {
  SKIP_WITHOUT_QEMU();
  auto q = MakeQemu();
  TestCase tc = MakeCase({0x48, 0x01, 0xd8});  // add rax, rbx
  tc.init.gpr[kRax] = 5;
  tc.init.gpr[kRbx] = 7;
  tc.init.xmm[3] = {0x1111, 0x2222};
  RunResult r = RunOne(*q, tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kHalt) << FormatOutcome(r.outcome);
  EXPECT_EQ(r.state.gpr[kRax], 12u);
  EXPECT_EQ(r.state.gpr[kRbx], 7u);
  EXPECT_EQ(r.state.gpr[kRsp], kDefaultRsp);
  EXPECT_EQ(r.state.rip, kCode + 3);  // at the appended HLT
  EXPECT_EQ(r.state.rflags & kComparedFlags, 0x206u);
  EXPECT_EQ(r.state.xmm[3], (Xmm{0x1111, 0x2222}));
  EXPECT_EQ(r.state.mxcsr, kMxcsrDefault);
  EXPECT_TRUE(r.pages.empty());
  ExpectSameAsSilicon({tc}, {r});
}

TEST(QemuEngine, MemoryWriteIsInPages) {
  SKIP_WITHOUT_QEMU();
  auto q = MakeQemu();
  TestCase tc = MakeCase({0x48, 0x89, 0x07});  // mov [rdi], rax
  tc.init.gpr[kRax] = 0x1122334455667788;
  tc.init.gpr[kRdi] = kData + 0x1010;
  RunResult r = RunOne(*q, tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kHalt) << FormatOutcome(r.outcome);
  ASSERT_EQ(r.pages.size(), 1u);
  EXPECT_EQ(r.pages[0].addr, kData + 0x1000);
  uint64_t v;
  std::memcpy(&v, r.pages[0].bytes.data() + 0x10, 8);
  EXPECT_EQ(v, 0x1122334455667788u);
  uint8_t b = 0xff;
  ASSERT_TRUE(FinalByte(tc, r, kData + 0x1018, &b));
  EXPECT_EQ(b, 0);
}

TEST(QemuEngine, PageFaults) {
  SKIP_WITHOUT_QEMU();
  auto q = MakeQemu();
  std::vector<TestCase> cases = {
      MakeCase({0x90, 0x48, 0x8b, 0x03}),  // nop; mov rax, [rbx]
      MakeCase({0x90, 0x48, 0x89, 0x03}),  // nop; mov [rbx], rax
  };
  for (TestCase& tc : cases) tc.init.gpr[kRbx] = 0x40000000;
  std::vector<RunResult> r = RunAll(*q, cases);
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    ASSERT_EQ(r[i].outcome.kind, OutcomeKind::kFault) << FormatOutcome(r[i].outcome);
    EXPECT_EQ(r[i].outcome.vector, kVecPF);
    EXPECT_TRUE(r[i].outcome.has_error_code);
    EXPECT_EQ(r[i].outcome.error_code, i == 0 ? 4u : 6u);
    EXPECT_TRUE(r[i].outcome.has_addr);
    EXPECT_EQ(r[i].outcome.addr, 0x40000000u);
    EXPECT_EQ(r[i].state.rip, kCode + 1);
    EXPECT_EQ(r[i].state.gpr[kRbx], 0x40000000u);
  }
  ExpectSameAsSilicon(cases, r);
}

TEST(QemuEngine, UdDeBp) {
  SKIP_WITHOUT_QEMU();
  auto q = MakeQemu();
  std::vector<TestCase> cases = {
      MakeCase({0x0f, 0x0b}),                    // ud2
      MakeCase({0x31, 0xd2, 0x48, 0xf7, 0xf3}),  // xor edx, edx; div rbx (rbx = 0)
      MakeCase({0x90, 0xcc}),                    // nop; int3
  };
  cases[1].init.gpr[kRax] = 0x10;
  cases[1].init.gpr[kRdx] = 0x55;
  std::vector<RunResult> r = RunAll(*q, cases);
  ASSERT_EQ(r[0].outcome.kind, OutcomeKind::kFault) << FormatOutcome(r[0].outcome);
  EXPECT_EQ(r[0].outcome.vector, kVecUD);
  EXPECT_EQ(r[0].state.rip, kCode);
  ASSERT_EQ(r[1].outcome.kind, OutcomeKind::kFault) << FormatOutcome(r[1].outcome);
  EXPECT_EQ(r[1].outcome.vector, kVecDE);
  EXPECT_EQ(r[1].state.rip, kCode + 2);
  EXPECT_EQ(r[1].state.gpr[kRdx], 0u);
  ASSERT_EQ(r[2].outcome.kind, OutcomeKind::kFault) << FormatOutcome(r[2].outcome);
  EXPECT_EQ(r[2].outcome.vector, kVecBP);
  EXPECT_EQ(r[2].state.rip, kCode + 2);  // #BP is a trap: after the int3
  ExpectSameAsSilicon(cases, r);
}

// FS/GS bases are set for the case (arch_prctl under QEMU).
TEST(QemuEngine, SegmentBases) {
  SKIP_WITHOUT_QEMU();
  auto q = MakeQemu();
  // mov rax, fs:[8]; mov rbx, gs:[0x10]
  TestCase tc = MakeCase(
      {0x64, 0x48, 0x8b, 0x04, 0x25, 0x08, 0, 0, 0, 0x65, 0x48, 0x8b, 0x1c, 0x25, 0x10, 0, 0, 0});
  tc.init.fs_base = kData + 0x100;
  tc.init.gs_base = kData + 0x200;
  tc.mem[0].data.resize(0x220);
  tc.mem[0].data[0x108] = 0x42;
  tc.mem[0].data[0x210] = 0x43;
  RunResult r = RunOne(*q, tc);
  ASSERT_EQ(r.outcome.kind, OutcomeKind::kHalt) << FormatOutcome(r.outcome);
  EXPECT_EQ(r.state.gpr[kRax], 0x42u);
  EXPECT_EQ(r.state.gpr[kRbx], 0x43u);
  EXPECT_EQ(r.state.fs_base, kData + 0x100);
  EXPECT_EQ(r.state.gs_base, kData + 0x200);
  ExpectSameAsSilicon({tc}, {r});
}

// QEMU 7.2 keeps translated code when the runner rewrites it through its
// writable alias; the engine must map afresh. Covers 2, 1 and 0 data regions.
TEST(QemuEngine, NewCodeAtTheSameAddressRunsTheNewCode) {
  SKIP_WITHOUT_QEMU();
  auto q = MakeQemu();
  std::vector<TestCase> cases;
  for (int regions : {2, 1, 0}) {
    for (uint8_t v = 1; v <= 4; ++v) {
      TestCase tc = MakeCase({0xb8, v, 0, 0, 0});  // mov eax, v
      tc.mem.resize(regions);
      cases.push_back(tc);
      cases.push_back(tc);  // same code again: the fast path
    }
  }
  std::vector<RunResult> r = RunAll(*q, cases);
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    ASSERT_EQ(r[i].outcome.kind, OutcomeKind::kHalt) << FormatOutcome(r[i].outcome);
    EXPECT_EQ(r[i].state.gpr[kRax], cases[i].code[1]);
  }
  // And across calls.
  TestCase again = MakeCase({0xb8, 9, 0, 0, 0});
  again.mem.clear();
  EXPECT_EQ(RunOne(*q, again).state.gpr[kRax], 9u);
}

TEST(QemuEngine, TimeoutInTheMiddleOfABatch) {
  SKIP_WITHOUT_QEMU();
  auto q = MakeQemu(300);
  std::vector<TestCase> cases;
  for (int i = 0; i < 100; ++i) {
    TestCase tc = MakeCase({0x48, 0x01, 0xd8});  // add rax, rbx
    if (i == 50) tc.code = {0xeb, 0xfe};         // jmp $
    tc.init.gpr[kRax] = static_cast<uint64_t>(i);
    tc.init.gpr[kRbx] = 1000;
    cases.push_back(tc);
  }
  std::vector<RunResult> r = RunAll(*q, cases);
  for (int i = 0; i < 100; ++i) {
    SCOPED_TRACE(i);
    if (i == 50) {
      EXPECT_EQ(r[i].outcome.kind, OutcomeKind::kTimeout) << FormatOutcome(r[i].outcome);
      continue;
    }
    ASSERT_EQ(r[i].outcome.kind, OutcomeKind::kHalt) << FormatOutcome(r[i].outcome);
    EXPECT_EQ(r[i].state.gpr[kRax], static_cast<uint64_t>(i) + 1000);
  }
  EXPECT_GE(q->restarts(), 1u);
  // The engine goes on after the restart.
  EXPECT_EQ(RunOne(*q, cases[0]).state.gpr[kRax], 1000u);
}

// QEMU 7.2 aborts on a 32-bit adox with non-zero upper register halves
// ("assertion failed: (IOPL(dc) == iopl)" in target/i386/tcg/translate.c:
// the flags it computes spill into IOPL). The case becomes `crash`, qemu is
// restarted and the rest of the batch runs.
TEST(QemuEngine, QemuCrashIsRecovered) {
  SKIP_WITHOUT_QEMU();
  auto q = MakeQemu();
  std::vector<TestCase> cases;
  for (int i = 0; i < 10; ++i) {
    TestCase tc = MakeCase({0x48, 0xff, 0xc0});  // inc rax
    tc.init.gpr[kRax] = static_cast<uint64_t>(i);
    if (i == 4) {
      tc.code = {0xf3, 0x0f, 0x38, 0xf6, 0xe8};  // adox ebp, eax
      // QEMU adds the full 64-bit registers: the carry it then moves
      // into OF is 3 here, and its upper bit lands in IOPL.
      tc.init.gpr[kRax] = 0x0000000280000000;
      tc.init.gpr[kRbp] = 0x0000000180000000;
      tc.init.rflags = 0xa13;
    }
    cases.push_back(tc);
  }
  std::vector<RunResult> r = RunAll(*q, cases);
  for (int i = 0; i < 10; ++i) {
    SCOPED_TRACE(i);
    if (i == 4) {
      ASSERT_EQ(r[i].outcome.kind, OutcomeKind::kCrash) << FormatOutcome(r[i].outcome);
      EXPECT_NE(r[i].outcome.reason.find("signal 6"), std::string::npos) << r[i].outcome.reason;
      continue;
    }
    ASSERT_EQ(r[i].outcome.kind, OutcomeKind::kHalt) << FormatOutcome(r[i].outcome);
    EXPECT_EQ(r[i].state.gpr[kRax], static_cast<uint64_t>(i) + 1);
  }
  EXPECT_EQ(q->restarts(), 1u);
}

// Recovery also when qemu is killed from outside while it runs a case that
// never ends.
TEST(QemuEngine, KilledQemuIsRecovered) {
  SKIP_WITHOUT_QEMU();
  auto q = MakeQemu(20000);
  std::vector<TestCase> cases;
  for (int i = 0; i < 20; ++i) {
    TestCase tc = MakeCase({0x48, 0xff, 0xc0});  // inc rax
    tc.init.gpr[kRax] = static_cast<uint64_t>(i);
    if (i == 7) tc.code = {0xeb, 0xfe};  // jmp $: killed while here
    cases.push_back(tc);
  }
  pid_t qemu = q->qemu_pid();
  ASSERT_GT(qemu, 0);
  std::thread killer([qemu] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    // SIGKILL: qemu catches SIGSEGV and the like and hands them to its
    // guest (the runner would report #GP).
    kill(qemu, SIGKILL);
  });
  auto start = std::chrono::steady_clock::now();
  std::vector<RunResult> r = RunAll(*q, cases);
  killer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  for (int i = 0; i < 20; ++i) {
    SCOPED_TRACE(i);
    if (i == 7) {
      ASSERT_EQ(r[i].outcome.kind, OutcomeKind::kCrash) << FormatOutcome(r[i].outcome);
      EXPECT_NE(r[i].outcome.reason.find("signal 9"), std::string::npos) << r[i].outcome.reason;
      continue;
    }
    ASSERT_EQ(r[i].outcome.kind, OutcomeKind::kHalt) << FormatOutcome(r[i].outcome);
    EXPECT_EQ(r[i].state.gpr[kRax], static_cast<uint64_t>(i) + 1);
  }
  EXPECT_EQ(q->restarts(), 1u);
}

// A case that would unlink a host file through `syscall` never reaches QEMU.
TEST(QemuContainment, SyscallCaseIsUnsupportedAndTheFileStays) {
  SKIP_WITHOUT_QEMU();
  char path[] = "/tmp/cpudiff-qemu-test-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  // mov eax, 87 (unlink); mov rdi, kData; syscall
  TestCase tc = MakeCase({0xb8, 87, 0, 0, 0, 0x48, 0xc7, 0xc7, 0, 0, 0, 0x20, 0x0f, 0x05});
  tc.mem[0].data.assign(path, path + sizeof(path));
  auto q = MakeQemu();
  RunResult r = RunOne(*q, tc);
  EXPECT_EQ(r.outcome.kind, OutcomeKind::kUnsupported) << FormatOutcome(r.outcome);
  EXPECT_NE(r.outcome.reason.find("syscall"), std::string::npos) << r.outcome.reason;
  EXPECT_EQ(access(path, F_OK), 0) << "the case removed " << path;
  unlink(path);
  // A writable+executable region is refused too.
  TestCase rwx = MakeCase({0x90});
  rwx.mem.push_back({0x50000000, kPageSize, kPermR | kPermW | kPermX, {}});
  EXPECT_EQ(RunOne(*q, rwx).outcome.kind, OutcomeKind::kUnsupported);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// qemu's own view: an empty read-only root with only read-only mounts, its
// own pid, network and user namespaces.
TEST(QemuContainment, QemuSeesNothingWritable) {
  SKIP_WITHOUT_QEMU();
  auto q = MakeQemu();
  ASSERT_EQ(RunOne(*q, MakeCase({0x90})).outcome.kind, OutcomeKind::kHalt);
  pid_t qemu = q->qemu_pid();
  ASSERT_GT(qemu, 0);
  std::string proc = "/proc/" + std::to_string(qemu);
  EXPECT_NE(ReadFile(proc + "/cmdline").find("qemu-x86_64"), std::string::npos);
  std::istringstream mountinfo(ReadFile(proc + "/mountinfo"));
  std::string line;
  int mounts = 0;
  bool root_is_tmpfs = false;
  while (std::getline(mountinfo, line)) {
    ++mounts;
    // id parent major:minor root mountpoint options ... - fstype source super
    std::istringstream f(line);
    std::string id, parent, dev, root, point, options;
    f >> id >> parent >> dev >> root >> point >> options;
    EXPECT_TRUE(options.rfind("ro,", 0) == 0 || options == "ro") << line;
    if (point == "/") root_is_tmpfs = line.find(" - tmpfs ") != std::string::npos;
    EXPECT_TRUE(point == "/" || point == "/proc" || point.find("qemu") != std::string::npos ||
                point.find(".so") != std::string::npos || point == "/etc/ld.so.cache")
        << line;
  }
  EXPECT_GT(mounts, 2);
  EXPECT_TRUE(root_is_tmpfs);
  {
    std::istringstream st(ReadFile(proc + "/status"));
    while (std::getline(st, line)) {
      if (line.rfind("VmPeak", 0) == 0) std::printf("[ qemu box ] %s\n", line.c_str());
    }
  }
  for (const char* ns : {"mnt", "pid", "net", "user", "ipc", "uts"}) {
    char mine[64] = {}, theirs[64] = {};
    ASSERT_GT(readlink((std::string("/proc/self/ns/") + ns).c_str(), mine, sizeof(mine) - 1), 0);
    ASSERT_GT(readlink((proc + "/ns/" + ns).c_str(), theirs, sizeof(theirs) - 1), 0);
    EXPECT_STRNE(mine, theirs) << ns;
  }
  // No capabilities, no new privileges.
  std::string status = ReadFile(proc + "/status");
  EXPECT_NE(status.find("CapEff:\t0000000000000000"), std::string::npos);
  EXPECT_NE(status.find("CapBnd:\t0000000000000000"), std::string::npos);
  EXPECT_NE(status.find("NoNewPrivs:\t1"), std::string::npos);
}

// Throughput on non-faulting cases of 8 instructions, with the corpus
// default layout (2 x 64 KiB writable) and with 2 x 4 KiB, every case with
// its own code (QEMU translates each one) or all sharing it. Prints the
// rates; asserts only a floor far below them so that a loaded machine does
// not fail it. CPUDIFF_QEMU_SPEED_CASES sets the number of cases.
TEST(QemuSpeed, NonFaultingCases) {
  SKIP_WITHOUT_QEMU();
  auto q = MakeQemu();
  const char* env = getenv("CPUDIFF_QEMU_SPEED_CASES");
  const int n = env ? atoi(env) : 5000;
  for (uint64_t region : {kPageSize, kDefaultDataSize}) {
    for (bool shared_code : {true, false}) {
      std::vector<TestCase> cases;
      for (int i = 0; i < n; ++i) {
        // mov eax, imm32; add rax, rbx; xor ecx, ecx; inc rcx;
        // lea rdx, [rax+rcx]; sub rdx, rbx; mov [rdi], rdx; nop
        // Immediates from 0x10 up: never `0f 05`-like bytes, which would be
        // refused.
        uint8_t imm = shared_code ? 7 : static_cast<uint8_t>(0x10 + i % 0x60);
        uint8_t imm2 = shared_code ? 0 : static_cast<uint8_t>(0x10 + (i / 0x60) % 0x60);
        TestCase tc =
            MakeCase({0xb8, imm,  imm2, 0,    0,    0x48, 0x01, 0xd8, 0x31, 0xc9, 0x48, 0xff,
                      0xc1, 0x48, 0x8d, 0x14, 0x08, 0x48, 0x29, 0xda, 0x48, 0x89, 0x17, 0x90});
        tc.mem[0].size = region;
        tc.mem[1].size = region;
        tc.init.gpr[kRsp] = kStack + region - 16;
        tc.init.gpr[kRbx] = static_cast<uint64_t>(i);
        tc.init.gpr[kRdi] = kData + 8 * (i % 64);
        cases.push_back(tc);
      }
      RunAll(*q, {cases[0]});  // warm up
      auto start = std::chrono::steady_clock::now();
      std::vector<RunResult> r = RunAll(*q, cases);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      double rate = static_cast<double>(cases.size()) / s;
      std::printf(
          "[ qemu speed ] 2 x %llu KiB, %s code: %.0f cases/s (%zu cases, %.3f s)\n",
          static_cast<unsigned long long>(region / 1024), shared_code ? "shared" : "new", rate,
          cases.size(), s);
      for (size_t i = 0; i < cases.size(); ++i) {
        ASSERT_EQ(r[i].outcome.kind, OutcomeKind::kHalt) << i << FormatOutcome(r[i].outcome);
        uint64_t imm = cases[i].code[1] | (uint64_t{cases[i].code[2]} << 8);
        ASSERT_EQ(r[i].state.gpr[kRdx], imm + 1) << i;
      }
      EXPECT_GT(rate, 200.0);
    }
  }
}

}  // namespace
}  // namespace cpudiff

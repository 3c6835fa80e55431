// Tests of the comparer: hand-built cases and results. The values are about
// comparison logic (what is compared, masked, attributed), not architecture:
// no value here claims what silicon computes.
#include "harness/compare/compare.h"

#include <gtest/gtest.h>

#include "engines/x86/layout.h"

namespace cpudiff {
namespace {

TestCase MakeCase(std::vector<uint8_t> code) {
  TestCase tc;
  tc.name = "t";
  tc.code = std::move(code);
  tc.init.rip = tc.code_addr;
  MemRegion data;
  data.addr = kDefaultDataAddr;
  data.size = kDefaultDataSize;
  tc.mem.push_back(data);
  MemRegion stack;
  stack.addr = kDefaultStackAddr;
  stack.size = kDefaultStackSize;
  tc.mem.push_back(stack);
  return tc;
}

// A result that halted at the appended HLT.
RunResult Halted(const TestCase& tc) {
  RunResult r;
  r.outcome = Outcome::Halt();
  r.state = tc.init;
  r.state.rip = tc.code_addr + tc.code.size();
  return r;
}

PageImage ZeroPage(uint64_t addr) {
  PageImage p;
  p.addr = addr;
  return p;
}

const Mismatch* FindField(const std::vector<Mismatch>& ms, std::string_view field) {
  for (const Mismatch& m : ms) {
    if (m.field == field) return &m;
  }
  return nullptr;
}

std::string Fields(const std::vector<Mismatch>& ms) {
  std::string s;
  for (const Mismatch& m : ms) s += m.field + " ";
  return s;
}

CompareOptions Strict() {
  CompareOptions o;
  o.strict = true;
  return o;
}

// add rax, rbx
const std::vector<uint8_t> kAddRaxRbx = {0x48, 0x01, 0xd8};
// imul rax, rbx
const std::vector<uint8_t> kImulRaxRbx = {0x48, 0x0f, 0xaf, 0xc3};

TEST(CompareResults, EqualResultsHaveNoMismatch) {
  TestCase tc = MakeCase(kAddRaxRbx);
  RunResult a = Halted(tc), b = Halted(tc);
  a.state.gpr[kRax] = b.state.gpr[kRax] = 7;
  a.pages.push_back(ZeroPage(kDefaultDataAddr));
  a.pages[0].bytes[5] = 1;
  b.pages = a.pages;
  EXPECT_TRUE(CompareResults(tc, a, b, {}).empty());
  EXPECT_TRUE(CompareResults(tc, a, b, Strict()).empty());
}

TEST(CompareResults, RegisterMismatchIsFormattedAndAttributed) {
  TestCase tc = MakeCase(kAddRaxRbx);
  RunResult a = Halted(tc), b = Halted(tc);
  a.state.gpr[kRax] = 1;
  b.state.gpr[kRax] = 2;
  auto ms = CompareResults(tc, a, b, {});
  ASSERT_EQ(ms.size(), 1u) << Fields(ms);
  EXPECT_EQ(ms[0].kind, FieldKind::kGpr);
  EXPECT_EQ(ms[0].field, "rax");
  EXPECT_EQ(ms[0].a, "0x0000000000000001");
  EXPECT_EQ(ms[0].b, "0x0000000000000002");
  EXPECT_EQ(ms[0].insn_index, 0);
  EXPECT_EQ(ms[0].insn_form, "add r64, r64");
}

TEST(CompareResults, RegisterNotWrittenByCodeHasNoInstruction) {
  TestCase tc = MakeCase(kAddRaxRbx);
  RunResult a = Halted(tc), b = Halted(tc);
  b.state.gpr[kR12] = 1;
  auto ms = CompareResults(tc, a, b, {});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].field, "r12");
  EXPECT_EQ(ms[0].insn_index, -1);
  EXPECT_EQ(ms[0].insn_form, "");
}

TEST(CompareResults, XmmAndMxcsrAreCompared) {
  TestCase tc = MakeCase(kAddRaxRbx);
  RunResult a = Halted(tc), b = Halted(tc);
  b.state.xmm[3].hi = 0x8000000000000000ull;
  b.state.mxcsr = 0x1f81;
  auto ms = CompareResults(tc, a, b, {});
  ASSERT_EQ(ms.size(), 2u) << Fields(ms);
  EXPECT_EQ(ms[0].field, "xmm3");
  EXPECT_EQ(ms[0].kind, FieldKind::kXmm);
  EXPECT_EQ(ms[0].b, "0x80000000000000000000000000000000");
  EXPECT_EQ(ms[1].field, "mxcsr");
  EXPECT_EQ(ms[1].a, "0x00001f80");
  EXPECT_EQ(ms[1].b, "0x00001f81");
}

TEST(CompareResults, DefinedFlagMismatchIsPerFlag) {
  TestCase tc = MakeCase(kAddRaxRbx);
  RunResult a = Halted(tc), b = Halted(tc);
  a.state.rflags = 0x202 | kFlagCF | kFlagZF;
  b.state.rflags = 0x202 | kFlagZF | kFlagOF;
  auto ms = CompareResults(tc, a, b, {});
  ASSERT_EQ(ms.size(), 2u) << Fields(ms);
  EXPECT_EQ(ms[0].field, "rflags.CF");
  EXPECT_EQ(ms[0].kind, FieldKind::kFlags);
  EXPECT_EQ(ms[0].a, "1");
  EXPECT_EQ(ms[0].b, "0");
  EXPECT_EQ(ms[0].insn_form, "add r64, r64");
  EXPECT_EQ(ms[1].field, "rflags.OF");
}

TEST(CompareResults, RfAndTfAreNotCompared) {
  TestCase tc = MakeCase(kAddRaxRbx);
  RunResult a = Halted(tc), b = Halted(tc);
  b.state.rflags |= kFlagRF | kFlagTF;
  EXPECT_TRUE(CompareResults(tc, a, b, Strict()).empty());
}

TEST(CompareResults, ImulUndefinedFlagsMaskedUnlessStrict) {
  // Zydis: imul modifies CF OF, leaves SF ZF AF PF undefined.
  TestCase tc = MakeCase(kImulRaxRbx);
  RunResult a = Halted(tc), b = Halted(tc);
  a.state.rflags = 0x202 | kFlagZF | kFlagPF;
  b.state.rflags = 0x202 | kFlagSF | kFlagAF;
  EXPECT_TRUE(CompareResults(tc, a, b, {}).empty());
  auto strict = CompareResults(tc, a, b, Strict());
  EXPECT_EQ(Fields(strict), "rflags.PF rflags.AF rflags.ZF rflags.SF ");
  for (const Mismatch& m : strict) EXPECT_EQ(m.insn_form, "imul r64, r64");
  // CF and OF are defined by imul and stay compared.
  b.state.rflags = a.state.rflags | kFlagOF;
  auto ms = CompareResults(tc, a, b, {});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].field, "rflags.OF");
}

TEST(CompareResults, LaterDefinitionUnmasksFlags) {
  // imul rax, rbx / add rax, rbx: add defines every status flag again.
  std::vector<uint8_t> code = kImulRaxRbx;
  code.insert(code.end(), kAddRaxRbx.begin(), kAddRaxRbx.end());
  TestCase tc = MakeCase(code);
  RunResult a = Halted(tc), b = Halted(tc);
  b.state.rflags |= kFlagZF;
  auto ms = CompareResults(tc, a, b, {});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].field, "rflags.ZF");
  EXPECT_EQ(ms[0].insn_index, 1);
  EXPECT_EQ(ms[0].insn_form, "add r64, r64");
}

TEST(CompareResults, FaultingInstructionDoesNotCount) {
  // add rax, rbx / imul rax, rbx, faulting at the imul (not executed): its
  // undefined flags must not mask anything.
  std::vector<uint8_t> code = kAddRaxRbx;
  code.insert(code.end(), kImulRaxRbx.begin(), kImulRaxRbx.end());
  TestCase tc = MakeCase(code);
  RunResult a = Halted(tc), b = Halted(tc);
  a.outcome = b.outcome = Outcome::Fault(kVecUD);
  a.state.rip = b.state.rip = tc.code_addr + 3;
  b.state.rflags |= kFlagZF;
  auto ms = CompareResults(tc, a, b, {});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].field, "rflags.ZF");
  EXPECT_EQ(ms[0].insn_index, 0);
}

TEST(CompareResults, TaintedRegisterSkippedUnlessStrict) {
  // shl rax, cl / seto cl: Zydis leaves OF undefined after shl by cl, so the
  // byte seto writes into rcx is undefined.
  TestCase tc = MakeCase({0x48, 0xd3, 0xe0, 0x0f, 0x90, 0xc1});
  RunResult a = Halted(tc), b = Halted(tc);
  b.state.gpr[kRcx] = 1;
  EXPECT_TRUE(CompareResults(tc, a, b, {}).empty());
  auto ms = CompareResults(tc, a, b, Strict());
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].field, "rcx");
  EXPECT_EQ(ms[0].insn_index, 1);
  EXPECT_EQ(ms[0].insn_form, "seto r8");
}

TEST(CompareResults, DefinedFlagReaderIsNotTainted) {
  // bsf rax, rbx / setz cl: Zydis says bsf defines ZF, so cl is defined.
  TestCase tc = MakeCase({0x48, 0x0f, 0xbc, 0xc3, 0x0f, 0x94, 0xc1});
  RunResult a = Halted(tc), b = Halted(tc);
  b.state.gpr[kRcx] = 1;
  auto ms = CompareResults(tc, a, b, {});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].field, "rcx");
  EXPECT_EQ(ms[0].insn_form, "setz r8");
}

TEST(CompareResults, MemoryRunMismatch) {
  TestCase tc = MakeCase({0x48, 0x89, 0x07});  // mov [rdi], rax
  RunResult a = Halted(tc), b = Halted(tc);
  a.pages.push_back(ZeroPage(kDefaultDataAddr));
  a.pages[0].bytes[0x10] = 0x01;
  a.pages[0].bytes[0x11] = 0x02;
  a.pages[0].bytes[0x13] = 0xff;
  b.pages.push_back(ZeroPage(kDefaultDataAddr));
  b.pages[0].bytes[0x13] = 0xff;
  b.pages[0].bytes[0x20] = 0xaa;
  auto ms = CompareResults(tc, a, b, {});
  ASSERT_EQ(ms.size(), 2u) << Fields(ms);
  EXPECT_EQ(ms[0].kind, FieldKind::kMemory);
  EXPECT_EQ(ms[0].field, "mem[0x20000010]");
  EXPECT_EQ(ms[0].a, "0102");
  EXPECT_EQ(ms[0].b, "0000");
  EXPECT_EQ(ms[0].insn_form, "mov m64, r64");
  EXPECT_EQ(ms[1].field, "mem[0x20000020]");
  EXPECT_EQ(ms[1].a, "00");
  EXPECT_EQ(ms[1].b, "aa");
}

TEST(CompareResults, MemoryAbsentPageIsInitialContents) {
  TestCase tc = MakeCase({0x90});
  tc.mem[0].data = {0x11, 0x22};
  RunResult a = Halted(tc), b = Halted(tc);
  // a reports the page with its initial contents; b reports nothing.
  a.pages.push_back(ZeroPage(kDefaultDataAddr));
  a.pages[0].bytes[0] = 0x11;
  a.pages[0].bytes[1] = 0x22;
  EXPECT_TRUE(CompareResults(tc, a, b, {}).empty());
  a.pages[0].bytes[1] = 0x33;
  auto ms = CompareResults(tc, a, b, {});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].field, "mem[0x20000001]");
  EXPECT_EQ(ms[0].a, "33");
  EXPECT_EQ(ms[0].b, "22");
}

TEST(CompareResults, MemoryRunSpansPages) {
  TestCase tc = MakeCase({0x90});
  RunResult a = Halted(tc), b = Halted(tc);
  a.pages.push_back(ZeroPage(kDefaultDataAddr));
  a.pages.push_back(ZeroPage(kDefaultDataAddr + kPageSize));
  a.pages[0].bytes[kPageSize - 1] = 1;
  a.pages[1].bytes[0] = 2;
  auto ms = CompareResults(tc, a, b, {});
  ASSERT_EQ(ms.size(), 1u) << Fields(ms);
  EXPECT_EQ(ms[0].field, "mem[0x20000fff]");
  EXPECT_EQ(ms[0].a, "0102");
}

TEST(CompareResults, ReadOnlyRegionsAreNotCompared) {
  TestCase tc = MakeCase({0x90});
  tc.mem[0].perm = kPermR;
  RunResult a = Halted(tc), b = Halted(tc);
  a.pages.push_back(ZeroPage(kDefaultDataAddr));
  a.pages[0].bytes[0] = 1;
  EXPECT_TRUE(CompareResults(tc, a, b, {}).empty());
}

TEST(CompareResults, ObservesMasksDropFields) {
  TestCase tc = MakeCase(kAddRaxRbx);
  RunResult a = Halted(tc), b = Halted(tc);
  b.state.xmm[0].lo = 1;
  b.state.rflags |= kFlagCF;
  b.state.fs_base = 0x1000;
  b.pages.push_back(ZeroPage(kDefaultDataAddr));
  b.pages[0].bytes[0] = 1;
  CompareOptions o;
  o.observes_b = kObserveAll & ~(kObserveXmm | kObserveMemory | kObserveRflags);
  auto ms = CompareResults(tc, a, b, o);
  ASSERT_EQ(ms.size(), 1u) << Fields(ms);
  EXPECT_EQ(ms[0].field, "fs_base");
  // Either side's mask counts.
  o.observes_b = kObserveAll;
  o.observes_a = kObserveAll & ~(kObserveXmm | kObserveMemory | kObserveRflags | kObserveSegBases);
  EXPECT_TRUE(CompareResults(tc, a, b, o).empty());
}

TEST(CompareResults, OutcomeMismatchErrorCode) {
  // mov [rdi], rax faulting with different #PF error codes.
  TestCase tc = MakeCase({0x48, 0x89, 0x07});
  RunResult a = Halted(tc), b = Halted(tc);
  a.state.rip = b.state.rip = tc.code_addr;
  a.outcome = Outcome::PageFault(4, 0x40000000);
  b.outcome = Outcome::PageFault(6, 0x40000000);
  auto ms = CompareResults(tc, a, b, {});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].kind, FieldKind::kOutcome);
  EXPECT_EQ(ms[0].field, "outcome");
  EXPECT_EQ(ms[0].a, "#PF(err=0x4, addr=0x40000000)");
  EXPECT_EQ(ms[0].b, "#PF(err=0x6, addr=0x40000000)");
  EXPECT_EQ(ms[0].insn_index, 0);
  EXPECT_EQ(ms[0].insn_form, "mov m64, r64");
  // Not observed on one side: they agree.
  CompareOptions o;
  o.observes_b = kObserveAll & ~kObserveErrorCode;
  EXPECT_TRUE(CompareResults(tc, a, b, o).empty());
  // Fault address likewise.
  b.outcome = Outcome::PageFault(4, 0x40000008);
  EXPECT_EQ(CompareResults(tc, a, b, {}).size(), 1u);
  o.observes_b = kObserveAll & ~kObserveFaultAddr;
  EXPECT_TRUE(CompareResults(tc, a, b, o).empty());
}

TEST(CompareResults, OutcomeAttributedToFaultingSide) {
  // nop / mov [rdi], rax: b faults at the store, a halts.
  TestCase tc = MakeCase({0x90, 0x48, 0x89, 0x07});
  RunResult a = Halted(tc), b = Halted(tc);
  b.outcome = Outcome::PageFault(6, 0);
  b.state.rip = tc.code_addr + 1;
  auto ms = CompareResults(tc, a, b, {});
  // Only the outcome: the different rip follows from it.
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].field, "outcome");
  EXPECT_EQ(ms[0].a, "halt");
  EXPECT_EQ(ms[0].insn_index, 1);
  EXPECT_EQ(FindField(ms, "rip"), nullptr);
}

TEST(CompareResults, TimeoutVsTimeoutAgrees) {
  TestCase tc = MakeCase({0xeb, 0xfe});  // jmp .
  RunResult a = Halted(tc), b = Halted(tc);
  a.outcome = Outcome::Timeout("1000 ms");
  b.outcome = Outcome::Timeout("budget");
  b.state.gpr[kRax] = 99;
  b.state.rip = 0;
  EXPECT_TRUE(CompareResults(tc, a, b, Strict()).empty());
}

TEST(CompareResults, UnsupportedVsHaltIsOnlyOutcome) {
  TestCase tc = MakeCase(kAddRaxRbx);
  RunResult a = Halted(tc), b = Halted(tc);
  a.outcome = Outcome::Unsupported("no popcnt");
  a.state = CpuState{};
  b.state.gpr[kRax] = 5;
  auto ms = CompareResults(tc, a, b, {});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].field, "outcome");
  EXPECT_EQ(ms[0].a, "unsupported: no popcnt");
  EXPECT_EQ(ms[0].b, "halt");
  // Crash against crash agrees.
  a.outcome = Outcome::Crash("x");
  b.outcome = Outcome::Crash("y");
  EXPECT_TRUE(CompareResults(tc, a, b, {}).empty());
}

TEST(CompareResults, ControlTaintComparesOutcomeOnly) {
  // imul rax, rbx / jz +2 / mov cl, 1 / (hlt): the branch reads undefined ZF.
  TestCase tc = MakeCase({0x48, 0x0f, 0xaf, 0xc3, 0x74, 0x02, 0xb1, 0x01});
  RunResult a = Halted(tc), b = Halted(tc);
  b.state.gpr[kRcx] = 1;
  EXPECT_TRUE(CompareResults(tc, a, b, {}).empty());
  EXPECT_EQ(CompareResults(tc, a, b, Strict()).size(), 1u);
  b.outcome = Outcome::Fault(kVecUD);
  EXPECT_EQ(CompareResults(tc, a, b, {}).size(), 1u);
}

// ---- AnalyzeUndefined ----------------------------------------------------------

uint64_t EndOf(const TestCase& tc) { return tc.code_addr + tc.code.size(); }

TEST(UndefinedFlags, ImulLeavesSzapUndefined) {
  TestCase tc = MakeCase(kImulRaxRbx);
  UndefinedState u = AnalyzeUndefined(tc, EndOf(tc));
  EXPECT_EQ(u.rflags_mask, kFlagSF | kFlagZF | kFlagAF | kFlagPF);
  EXPECT_EQ(u.gpr_mask, 0u);
  EXPECT_FALSE(u.memory_tainted);
  EXPECT_FALSE(u.control_tainted);
  // Ending at the imul (it faulted): nothing executed, nothing undefined.
  EXPECT_EQ(AnalyzeUndefined(tc, tc.code_addr).rflags_mask, 0u);
}

TEST(UndefinedFlags, BsfLeavesAllButZfUndefined) {
  TestCase tc = MakeCase({0x48, 0x0f, 0xbc, 0xc3});  // bsf rax, rbx
  EXPECT_EQ(AnalyzeUndefined(tc, EndOf(tc)).rflags_mask,
            kFlagCF | kFlagPF | kFlagAF | kFlagSF | kFlagOF);
}

TEST(UndefinedFlags, ShiftByZeroKeepsEarlierUndefinedFlags) {
  // imul rdx, rdi / sar r13, 0x40: the count is 0 modulo 64, so sar changes
  // no flag and imul's undefined SF, ZF, AF and PF stay undefined. Seen on
  // this AMD host (native) against unicorn and qemu with rdx=rdi=0:
  // silicon ends with SF ZF, both emulators with PF ZF.
  TestCase tc = MakeCase({0x48, 0x0f, 0xaf, 0xd7, 0x49, 0xc1, 0xfd, 0x40});
  EXPECT_EQ(AnalyzeUndefined(tc, EndOf(tc)).rflags_mask & (kFlagSF | kFlagZF | kFlagAF | kFlagPF),
            kFlagSF | kFlagZF | kFlagAF | kFlagPF);
  // imul rdx, rdi / sar r13, 1: a real shift defines SF, ZF and PF again.
  TestCase one = MakeCase({0x48, 0x0f, 0xaf, 0xd7, 0x49, 0xc1, 0xfd, 0x01});
  EXPECT_EQ(AnalyzeUndefined(one, EndOf(one)).rflags_mask & (kFlagSF | kFlagZF | kFlagPF), 0u);
  // imul rdx, rdi / shl rax, cl: cl may be 0 at run time; nothing is made
  // defined.
  TestCase cl = MakeCase({0x48, 0x0f, 0xaf, 0xd7, 0x48, 0xd3, 0xe0});
  EXPECT_EQ(AnalyzeUndefined(cl, EndOf(cl)).rflags_mask & (kFlagSF | kFlagZF | kFlagAF | kFlagPF),
            kFlagSF | kFlagZF | kFlagAF | kFlagPF);
}

TEST(CompareResults, FlagAfterAShiftByZeroIsBlamedOnTheShift) {
  // xor [rdi+0x48], rax / rcl rdx, 0: silicon keeps OF as xor left it (0);
  // Valgrind 3.19 sets it (found on this host by a 100,000-case campaign,
  // native vs valgrind). The shift, not the xor, is the cause.
  TestCase tc = MakeCase({0x48, 0x31, 0x47, 0x48, 0x48, 0xc1, 0xd2, 0x00});
  RunResult a = Halted(tc), b = Halted(tc);
  a.state.rflags = 0x286;
  b.state.rflags = 0xa86;
  auto ms = CompareResults(tc, a, b, {});
  ASSERT_EQ(ms.size(), 1u) << Fields(ms);
  EXPECT_EQ(ms[0].field, "rflags.OF");
  EXPECT_EQ(ms[0].insn_index, 1);
  EXPECT_EQ(ms[0].insn_form, "rcl r64, imm8");
}

TEST(UndefinedFlags, TaintFlowsThroughRegistersAndMemory) {
  // shl rax, cl / seto cl / add rdx, rcx / mov [rdi], dl
  TestCase tc = MakeCase({0x48, 0xd3, 0xe0, 0x0f, 0x90, 0xc1, 0x48, 0x01, 0xca, 0x88, 0x17});
  UndefinedState u = AnalyzeUndefined(tc, EndOf(tc));
  EXPECT_EQ(u.gpr_mask, (1u << kRcx) | (1u << kRdx));
  // add reads tainted rcx: the flags it writes are undefined too.
  EXPECT_EQ(u.rflags_mask, kStatusFlags);
  EXPECT_TRUE(u.memory_tainted);
  EXPECT_FALSE(u.control_tainted);
}

TEST(UndefinedFlags, FullWriteClearsTaintPartialDoesNot) {
  // shl rax, cl / seto cl / seto dl / mov ecx, 5 / mov dl, 1
  TestCase tc = MakeCase({0x48, 0xd3, 0xe0, 0x0f, 0x90, 0xc1, 0x0f, 0x90, 0xc2, 0xb9, 0x05, 0x00,
                          0x00, 0x00, 0xb2, 0x01});
  UndefinedState u = AnalyzeUndefined(tc, EndOf(tc));
  EXPECT_EQ(u.gpr_mask, 1u << kRdx);  // 32-bit write zero-extends: rcx clean
}

TEST(UndefinedFlags, ZeroIdiomDoesNotRead) {
  // shl rax, cl / seto cl / xor ecx, ecx / setz dl (xor defines ZF)
  TestCase tc = MakeCase({0x48, 0xd3, 0xe0, 0x0f, 0x90, 0xc1, 0x31, 0xc9, 0x0f, 0x94, 0xc2});
  UndefinedState u = AnalyzeUndefined(tc, EndOf(tc));
  EXPECT_EQ(u.gpr_mask, 0u);
  EXPECT_EQ(u.rflags_mask, kFlagAF);  // xor leaves AF undefined (Zydis)
}

TEST(UndefinedFlags, AdcReadingUndefinedCarry) {
  // bsf rax, rbx / adc rdx, rsi: CF undefined after bsf, adc reads it.
  TestCase tc = MakeCase({0x48, 0x0f, 0xbc, 0xc3, 0x48, 0x11, 0xf2});
  UndefinedState u = AnalyzeUndefined(tc, EndOf(tc));
  EXPECT_EQ(u.gpr_mask, 1u << kRdx);
  EXPECT_EQ(u.rflags_mask, kStatusFlags);
}

TEST(UndefinedFlags, XmmTaint) {
  // shl rax, cl / seto cl / movq xmm2, rcx / movq xmm3, rbx
  TestCase tc = MakeCase({0x48, 0xd3, 0xe0, 0x0f, 0x90, 0xc1, 0x66, 0x48, 0x0f, 0x6e, 0xd1, 0x66,
                          0x48, 0x0f, 0x6e, 0xdb});
  UndefinedState u = AnalyzeUndefined(tc, EndOf(tc));
  EXPECT_EQ(u.xmm_mask, 1u << 2);
}

TEST(UndefinedFlags, ConditionalBranchOnUndefinedTaintsControl) {
  // imul rax, rbx / jz +0
  TestCase tc = MakeCase({0x48, 0x0f, 0xaf, 0xc3, 0x74, 0x00});
  EXPECT_TRUE(AnalyzeUndefined(tc, EndOf(tc)).control_tainted);
  // add rax, rbx / jz +0: ZF defined.
  TestCase tc2 = MakeCase({0x48, 0x01, 0xd8, 0x74, 0x00});
  EXPECT_FALSE(AnalyzeUndefined(tc2, EndOf(tc2)).control_tainted);
}

TEST(UndefinedFlags, BranchesJoinPaths) {
  // 0: test rax, rax / 3: jz +4 (to 9) / 5: imul rax, rbx / 9: (hlt)
  // The imul path leaves SZAP undefined; the joined state at the end must
  // too.
  TestCase tc = MakeCase({0x48, 0x85, 0xc0, 0x74, 0x04, 0x48, 0x0f, 0xaf, 0xc3});
  UndefinedState u = AnalyzeUndefined(tc, EndOf(tc));
  EXPECT_EQ(u.rflags_mask, kFlagSF | kFlagZF | kFlagAF | kFlagPF);
  EXPECT_FALSE(u.control_tainted);
  // A jump over an imul never runs it: 0: jmp +4 / 2: imul / 6: add rax, rbx
  TestCase tc2 = MakeCase({0xeb, 0x04, 0x48, 0x0f, 0xaf, 0xc3, 0x48, 0x01, 0xd8});
  EXPECT_EQ(AnalyzeUndefined(tc2, EndOf(tc2)).rflags_mask, 0u);
}

TEST(UndefinedFlags, LoopReachesFixpoint) {
  // 0: mov ecx, 3 / 5: imul rax, rbx / 9: add rdx, 1 / 13: loop 5 / (hlt)
  // The imul inside the loop: SF ZF AF PF defined by add at the end, but the
  // loop header sees the add of the previous iteration: nothing tainted.
  TestCase tc = MakeCase(
      {0xb9, 0x03, 0x00, 0x00, 0x00, 0x48, 0x0f, 0xaf, 0xc3, 0x48, 0x83, 0xc2, 0x01, 0xe2, 0xf6});
  UndefinedState u = AnalyzeUndefined(tc, EndOf(tc));
  EXPECT_EQ(u.rflags_mask, 0u);
  EXPECT_EQ(u.gpr_mask, 0u);
  EXPECT_FALSE(u.control_tainted);
}

TEST(UndefinedFlags, IndirectControlFlowIsConservative) {
  // imul rax, rbx / add rax, rbx / ret: with a ret the paths are unknown, so
  // imul's undefined flags stay in the union even though add follows.
  TestCase tc = MakeCase({0x48, 0x0f, 0xaf, 0xc3, 0x48, 0x01, 0xd8, 0xc3});
  UndefinedState u = AnalyzeUndefined(tc, EndOf(tc));
  EXPECT_EQ(u.rflags_mask, kFlagSF | kFlagZF | kFlagAF | kFlagPF);
}

// ---- CompareExpect --------------------------------------------------------------

TEST(CompareExpect, ChecksOnlyListedFields) {
  TestCase tc = MakeCase(kAddRaxRbx);
  tc.expect.emplace();
  tc.expect->outcome = ExpectOutcome{OutcomeKind::kHalt};
  tc.expect->regs.push_back({kRax, RegValue{0x10}});
  tc.expect->mem.push_back({kDefaultDataAddr + 4, {0xaa, 0xbb, 0xcc}});
  RunResult got = Halted(tc);
  got.state.gpr[kRax] = 0x10;
  got.state.gpr[kRbx] = 0x1234;  // not listed
  got.state.rflags |= kFlagCF;   // not listed
  got.pages.push_back(ZeroPage(kDefaultDataAddr));
  got.pages[0].bytes[4] = 0xaa;
  got.pages[0].bytes[5] = 0xbb;
  got.pages[0].bytes[6] = 0xcc;
  got.pages[0].bytes[7] = 0xdd;  // not listed
  EXPECT_TRUE(CompareExpect(tc, got, {}).empty());

  got.state.gpr[kRax] = 0x11;
  got.pages[0].bytes[5] = 0;
  auto ms = CompareExpect(tc, got, {});
  ASSERT_EQ(ms.size(), 2u) << Fields(ms);
  EXPECT_EQ(ms[0].field, "rax");
  EXPECT_EQ(ms[0].a, "0x0000000000000010");  // a is the expectation
  EXPECT_EQ(ms[0].b, "0x0000000000000011");
  EXPECT_EQ(ms[0].insn_form, "add r64, r64");
  EXPECT_EQ(ms[1].field, "mem[0x20000005]");
  EXPECT_EQ(ms[1].a, "bb");
  EXPECT_EQ(ms[1].b, "00");
}

TEST(CompareExpect, NoExpectNoMismatch) {
  TestCase tc = MakeCase(kAddRaxRbx);
  RunResult got = Halted(tc);
  got.outcome = Outcome::Fault(kVecUD);
  EXPECT_TRUE(CompareExpect(tc, got, {}).empty());
}

TEST(CompareExpect, FaultDetailsOnlyWhenGiven) {
  TestCase tc = MakeCase({0x48, 0x89, 0x07});
  tc.expect.emplace();
  tc.expect->outcome = ExpectOutcome{OutcomeKind::kFault, kVecPF};
  RunResult got = Halted(tc);
  got.state.rip = tc.code_addr;
  got.outcome = Outcome::PageFault(6, 0x40000000);
  EXPECT_TRUE(CompareExpect(tc, got, {}).empty());
  tc.expect->outcome->error_code = 4;
  auto ms = CompareExpect(tc, got, {});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].a, "#PF(err=0x4)");
  EXPECT_EQ(ms[0].b, "#PF(err=0x6, addr=0x40000000)");
  EXPECT_EQ(ms[0].insn_form, "mov m64, r64");
  CompareOptions o;
  o.observes_b = kObserveAll & ~kObserveErrorCode;
  EXPECT_TRUE(CompareExpect(tc, got, o).empty());
  tc.expect->outcome->error_code = 6;
  tc.expect->outcome->addr = 0x40000000;
  EXPECT_TRUE(CompareExpect(tc, got, {}).empty());
  got.outcome = Outcome::Fault(kVecGP);
  EXPECT_EQ(CompareExpect(tc, got, {}).size(), 1u);
}

TEST(CompareExpect, FlagsMaskedByUndefined) {
  TestCase tc = MakeCase(kImulRaxRbx);
  tc.expect.emplace();
  tc.expect->regs.push_back({kRegRflags, RegValue{0x202 | kFlagZF}});
  RunResult got = Halted(tc);
  got.state.rflags = 0x202 | kFlagCF;
  auto ms = CompareExpect(tc, got, {});
  ASSERT_EQ(ms.size(), 1u) << Fields(ms);
  EXPECT_EQ(ms[0].field, "rflags.CF");
  EXPECT_EQ(ms[0].a, "0");
  EXPECT_EQ(ms[0].b, "1");
  EXPECT_EQ(Fields(CompareExpect(tc, got, Strict())), "rflags.CF rflags.ZF ");
}

TEST(CompareExpect, IncompleteRunIsOutcomeMismatch) {
  TestCase tc = MakeCase(kAddRaxRbx);
  tc.expect.emplace();
  tc.expect->regs.push_back({kRax, RegValue{1}});
  RunResult got = Halted(tc);
  got.outcome = Outcome::Timeout();
  auto ms = CompareExpect(tc, got, {});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].field, "outcome");
  EXPECT_EQ(ms[0].a, "completed");
  EXPECT_EQ(ms[0].b, "timeout");
  tc.expect->outcome = ExpectOutcome{OutcomeKind::kTimeout};
  tc.expect->regs.clear();
  EXPECT_TRUE(CompareExpect(tc, got, {}).empty());
}

TEST(CompareExpect, UnmappedExpectedMemory) {
  TestCase tc = MakeCase({0x90});
  tc.expect.emplace();
  tc.expect->mem.push_back({0x50000000, {0x00, 0x01}});
  RunResult got = Halted(tc);
  auto ms = CompareExpect(tc, got, {});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].field, "mem[0x50000000]");
  EXPECT_EQ(ms[0].a, "0001");
  EXPECT_EQ(ms[0].b, "unmapped");
}

// ---- Disassemble and Signature ----------------------------------------------------

TEST(CompareDisassemble, IntelSyntaxWithBytes) {
  TestCase tc = MakeCase({0x48, 0x01, 0xd8, 0x0f, 0xbd, 0xc3, 0xff});
  auto lines = Disassemble(tc);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "0x10000000: 48 01 d8        add rax, rbx");
  EXPECT_EQ(lines[1], "0x10000003: 0f bd c3        bsr eax, ebx");
  // A trailing ff runs into the appended HLT: ff f4 is `push rsp`, which is
  // what executes, so the listing shows it.
  EXPECT_EQ(lines[2], "0x10000006: ff f4           push rsp");
}

TEST(Signature, UsesOperandKindsAndIsStable) {
  // bsr eax, ebx and bsr ecx, edx share a signature.
  TestCase t1 = MakeCase({0x0f, 0xbd, 0xc3});
  TestCase t2 = MakeCase({0x0f, 0xbd, 0xca});
  RunResult a1 = Halted(t1), b1 = Halted(t1);
  b1.state.gpr[kRax] = 0xffffffff00000000ull;
  RunResult a2 = Halted(t2), b2 = Halted(t2);
  b2.state.gpr[kRcx] = 0xffffffff00000000ull;
  auto m1 = CompareResults(t1, a1, b1, {});
  auto m2 = CompareResults(t2, a2, b2, {});
  ASSERT_EQ(m1.size(), 1u);
  ASSERT_EQ(m2.size(), 1u);
  EXPECT_EQ(Signature(m1[0], "native", "unicorn"), "bsr r32, r32|gpr|native~unicorn");
  EXPECT_EQ(Signature(m1[0], "native", "unicorn"), Signature(m2[0], "native", "unicorn"));
  // Engine order does not matter.
  EXPECT_EQ(Signature(m1[0], "unicorn", "native"), "bsr r32, r32|gpr|native~unicorn");
}

TEST(Signature, FormsOfCommonOperands) {
  auto form_of = [](std::vector<uint8_t> code, int reg) {
    TestCase tc = MakeCase(std::move(code));
    RunResult a = Halted(tc), b = Halted(tc);
    if (reg >= 0) {
      b.state.gpr[reg] = 1;
    } else {
      b.pages.push_back(ZeroPage(kDefaultDataAddr));
      b.pages[0].bytes[0] = 1;
    }
    auto ms = CompareResults(tc, a, b, {});
    return ms.empty() ? std::string("none") : ms[0].insn_form;
  };
  EXPECT_EQ(form_of({0x48, 0x83, 0xc0, 0x01}, kRax), "add r64, imm8");
  EXPECT_EQ(form_of({0x48, 0xd3, 0xe0}, kRax), "shl r64, cl");
  EXPECT_EQ(form_of({0xd1, 0xd0}, kRax), "rcl r32, 1");
  EXPECT_EQ(form_of({0x48, 0x8d, 0x04, 0x24}, kRax), "lea r64, m");
  EXPECT_EQ(form_of({0x83, 0x07, 0x05}, -1), "add m32, imm8");
  EXPECT_EQ(form_of({0xf0, 0x48, 0x01, 0x07}, -1), "lock add m64, r64");
  EXPECT_EQ(form_of({0x66, 0x48, 0x0f, 0x7e, 0xc0}, kRax), "movq r64, xmm");
}

TEST(Signature, FlagSignaturesNameTheFlag) {
  Mismatch m{FieldKind::kFlags, "rflags.ZF", "0", "1", 0, "imul r64, r64"};
  EXPECT_EQ(Signature(m, "native", "qemu"), "imul r64, r64|flags.ZF|native~qemu");
  Mismatch o{FieldKind::kOutcome, "outcome", "halt", "#UD"};
  EXPECT_EQ(Signature(o, "native", "unicorn"), "?|outcome.halt->#UD|native~unicorn");
}

}  // namespace
}  // namespace cpudiff

namespace cpudiff {
namespace {

// Regression: an instruction that leaves flags undefined after one that
// defines nothing undefined (the analysis once skipped nodes whose input
// stayed empty). adcx esi, r9d; andn r15, rdx, rdx: andn leaves AF and PF
// undefined (Zydis metadata).
TEST(UndefinedRegression, LaterInstructionAfterCleanOne) {
  TestCase tc;
  tc.code = {0x66, 0x41, 0x0f, 0x38, 0xf6, 0xf1, 0xc4, 0x62, 0xe8, 0xf2, 0xfa};
  tc.init.rip = tc.code_addr;
  UndefinedState u = AnalyzeUndefined(tc, tc.code_addr + tc.code.size());
  EXPECT_EQ(u.rflags_mask, kFlagPF | kFlagAF);
}

}  // namespace
}  // namespace cpudiff

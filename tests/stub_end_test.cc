// Tests of the end-stub analysis (engines/native/stub_end.h): which cases may
// end by a jump to the runner instead of their HLT. Whether the two ends give
// the same results on silicon is checked in native_test.cc
// (NativeTest.StubEndAndHltEndAgree).
#include "engines/native/stub_end.h"

#include <gtest/gtest.h>

#include <vector>

#include "engines/x86/layout.h"
#include "engines/x86/testcase.h"

namespace cpudiff {
namespace {

constexpr uint64_t kCode = kDefaultCodeAddr;
constexpr uint64_t kData = kDefaultDataAddr;

TestCase MakeCase(std::vector<uint8_t> code) {
  TestCase tc;
  tc.code = std::move(code);
  tc.init.rip = kCode;
  tc.init.gpr[kRdi] = kData;
  tc.init.gpr[kRsp] = kDefaultStackAddr + 0xff0;
  tc.mem.push_back({kData, kPageSize, kPermR | kPermW, {}});
  tc.mem.push_back({kDefaultStackAddr, kPageSize, kPermR | kPermW, {}});
  return tc;
}

bool May(const TestCase& tc) { return MayEndByStub(tc, PageCeil(tc.code.size() + 1)); }

TEST(StubEnd, RegisterOnlyCodeMay) {
  // add rax, rbx ; imul rcx, rax, 5 ; shl rdx, cl
  EXPECT_TRUE(May(MakeCase({0x48, 0x01, 0xd8, 0x48, 0x6b, 0xc8, 0x05, 0x48, 0xd3, 0xe2})));
  EXPECT_TRUE(May(MakeCase({})));
}

TEST(StubEnd, WritesMayReadsOnlyThroughUnwrittenRegistersAwayFromCode) {
  // mov [rdi+8], rax / push rax
  EXPECT_TRUE(May(MakeCase({0x48, 0x89, 0x47, 0x08, 0x50})));
  // mov rax, [rdi+8]: rdi is never written and points at data.
  EXPECT_TRUE(May(MakeCase({0x48, 0x8b, 0x47, 0x08})));
  // The same read with rdi pointing at the code's own page.
  TestCase at_code = MakeCase({0x48, 0x8b, 0x47, 0x08});
  at_code.init.gpr[kRdi] = kCode;
  EXPECT_FALSE(May(at_code));
  // add rdi, 8 ; mov rax, [rdi]: rdi is computed by the case.
  EXPECT_FALSE(May(MakeCase({0x48, 0x83, 0xc7, 0x08, 0x48, 0x8b, 0x07})));
  // mov al, [rip+0]: reads the code page.
  EXPECT_FALSE(May(MakeCase({0x8a, 0x05, 0x00, 0x00, 0x00, 0x00})));
  // pop rax: a stack read through rsp, which pop itself writes.
  EXPECT_FALSE(May(MakeCase({0x58})));
  // lodsb: rsi is advanced by the instruction.
  EXPECT_FALSE(May(MakeCase({0xac})));
  // lea rax, [rip+0]: an address, not a read.
  EXPECT_TRUE(May(MakeCase({0x48, 0x8d, 0x05, 0x00, 0x00, 0x00, 0x00})));
  // mov eax, [edi+ebx*2] with the 32-bit sum landing in the code page.
  TestCase wrap = MakeCase({0x67, 0x8b, 0x04, 0x5f});
  wrap.init.gpr[kRdi] = 0xffffffff00000000ull | kCode;
  wrap.init.gpr[kRbx] = 0;
  EXPECT_FALSE(May(wrap));
  // bt [rdi], rax: the bit offset moves the access away from [rdi].
  EXPECT_FALSE(May(MakeCase({0x48, 0x0f, 0xa3, 0x07})));
}

TEST(StubEnd, BranchesOnlyToInstructionBoundaries) {
  // jz +2 ; nop ; nop: target is the end (the HLT's address).
  EXPECT_TRUE(May(MakeCase({0x74, 0x02, 0x90, 0x90})));
  // jmp -2: a loop onto itself.
  EXPECT_TRUE(May(MakeCase({0xeb, 0xfe})));
  // jmp +2 over one nop: past the end.
  EXPECT_FALSE(May(MakeCase({0xeb, 0x02, 0x90})));
  // jmp +3 ; mov eax, imm32 (jumps into its immediate).
  EXPECT_FALSE(May(MakeCase({0xeb, 0x03, 0xb8, 0x01, 0x02, 0x03, 0x04})));
  // jmp rax / ret / call rax.
  EXPECT_FALSE(May(MakeCase({0xff, 0xe0})));
  EXPECT_FALSE(May(MakeCase({0xc3})));
  EXPECT_FALSE(May(MakeCase({0xff, 0xd0})));
  // call +0: pushes, and lands on the end.
  EXPECT_TRUE(May(MakeCase({0xe8, 0x00, 0x00, 0x00, 0x00})));
}

TEST(StubEnd, CodeMustDecodeToItsEndAndStartAtABoundary) {
  // mov eax, imm32 cut short: the HLT would complete it.
  EXPECT_FALSE(May(MakeCase({0xb8, 0x01, 0x02})));
  TestCase mid = MakeCase({0xb8, 0x01, 0x02, 0x03, 0x04});
  mid.init.rip = kCode + 1;
  EXPECT_FALSE(May(mid));
  mid.init.rip = kCode + 5;
  EXPECT_TRUE(May(mid));
}

TEST(StubEnd, NeedsRoomAndNoRegionOnTheCodePage) {
  std::vector<uint8_t> nops(kPageSize - 4, 0x90);
  EXPECT_FALSE(May(MakeCase(nops)));
  nops.resize(kPageSize - kStubMaxBytes);
  EXPECT_TRUE(May(MakeCase(nops)));
  TestCase overlap = MakeCase({0x90});
  overlap.mem.push_back({kCode + kPageSize, kPageSize, kPermR, {}});
  EXPECT_FALSE(MayEndByStub(overlap, 2 * kPageSize));
  EXPECT_TRUE(MayEndByStub(overlap, kPageSize));
}

// Which regions a case can write (bit r + 1 for tc.mem[r]; MakeCase puts
// data at mem[0] and the stack at mem[1]). A wrong bit would hide a changed
// page, so anything not computable from the case's own bytes and initial
// registers must give every bit.
uint32_t Writes(const TestCase& tc) {
  return PlanEnd(tc, PageCeil(tc.code.size() + 1)).write_regions;
}
constexpr uint32_t kDataBit = 1u << 1, kStackBit = 1u << 2;

TEST(StubEnd, WriteRegionsOnlyWhereAnOperandCanStore) {
  // add rax, rbx ; mov rcx, [rdi]: no store at all.
  EXPECT_EQ(Writes(MakeCase({0x48, 0x01, 0xd8, 0x48, 0x8b, 0x0f})), 0u);
  // mov [rdi+8], rax: rdi is never written and points at the data page.
  EXPECT_EQ(Writes(MakeCase({0x48, 0x89, 0x47, 0x08})), kDataBit);
  // The same store with rdi pointing at the stack page.
  TestCase to_stack = MakeCase({0x48, 0x89, 0x47, 0x08});
  to_stack.init.gpr[kRdi] = kDefaultStackAddr;
  EXPECT_EQ(Writes(to_stack), kStackBit);
  // ... and at no region: it faults, nothing can change.
  TestCase nowhere = MakeCase({0x48, 0x89, 0x47, 0x08});
  nowhere.init.gpr[kRdi] = 0x50000000;
  EXPECT_EQ(Writes(nowhere), 0u);
  // A store straddling the end of the data page still names the data page.
  TestCase straddle = MakeCase({0x48, 0x89, 0x07});
  straddle.init.gpr[kRdi] = kData + kPageSize - 4;
  EXPECT_EQ(Writes(straddle), kDataBit);
  // xchg [rdi], eax and cmpxchg [rdi], ecx store too.
  EXPECT_EQ(Writes(MakeCase({0x87, 0x07})), kDataBit);
  EXPECT_EQ(Writes(MakeCase({0x0f, 0xb1, 0x0f})), kDataBit);
}

TEST(StubEnd, WriteRegionsAllWhenTheAddressIsNotKnown) {
  // push rax: rsp is written by the push itself.
  EXPECT_EQ(Writes(MakeCase({0x50})), ~0u);
  // add rdi, 8 ; mov [rdi], rax: rdi is computed by the case.
  EXPECT_EQ(Writes(MakeCase({0x48, 0x83, 0xc7, 0x08, 0x48, 0x89, 0x07})), ~0u);
  // stosb: rdi advances.
  EXPECT_EQ(Writes(MakeCase({0xaa})), ~0u);
  // A case that keeps its HLT (an indirect jump) gives no bound at all.
  TestCase indirect = MakeCase({0xff, 0xe0});
  EXPECT_FALSE(PlanEnd(indirect, kPageSize).stub);
  EXPECT_EQ(Writes(indirect), ~0u);
}

// The decoded stream is reused between cases with the same code; a case
// with other code or another address must not see the last one's analysis.
TEST(StubEnd, ReusedDecodeFollowsTheCode) {
  TestCase store = MakeCase({0x48, 0x89, 0x47, 0x08});
  TestCase load = MakeCase({0x48, 0x8b, 0x47, 0x08});
  EXPECT_EQ(Writes(store), kDataBit);
  EXPECT_EQ(Writes(load), 0u);
  EXPECT_EQ(Writes(store), kDataBit);
  TestCase moved = store;
  moved.code_addr = kCode + kPageSize;
  moved.init.rip = moved.code_addr;
  moved.init.gpr[kRdi] = moved.code_addr;  // its own code page: a read would be refused
  EXPECT_EQ(Writes(moved), 0u);            // a store there is outside every region
  EXPECT_TRUE(May(store));
  TestCase cut = MakeCase({0x48, 0x89, 0x47});  // the same bytes cut short
  EXPECT_FALSE(May(cut));
  EXPECT_TRUE(May(store));
}

TEST(StubEnd, StubJumpsThroughAnAlignedQuadword) {
  std::vector<uint8_t> out(kStubMaxBytes);
  for (uint64_t end = kCode; end < kCode + 16; ++end) {
    uint64_t n = WriteStub(end, 0x7ff010001234ull, out);
    ASSERT_LE(n, kStubMaxBytes);
    EXPECT_EQ(out[0], 0xff);
    EXPECT_EQ(out[1], 0x25);
    uint32_t disp = out[2] | out[3] << 8 | out[4] << 16 | static_cast<uint32_t>(out[5]) << 24;
    uint64_t q = end + 6 + disp;
    EXPECT_EQ(q % 8, 0u);
    EXPECT_EQ(q + 8, end + n);
    uint64_t target = 0;
    for (int i = 7; i >= 0; --i) target = target << 8 | out[q - end + i];
    EXPECT_EQ(target, 0x7ff010001234ull);
  }
}

}  // namespace
}  // namespace cpudiff

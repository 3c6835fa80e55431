#include "engines/x86/state.h"

#include <gtest/gtest.h>

namespace cpudiff {
namespace {

TEST(RegisterTable, NamesRoundTrip) {
  ASSERT_EQ(Registers().size(), static_cast<size_t>(kNumRegisters));
  EXPECT_EQ(FindRegister("rax"), kRax);
  EXPECT_EQ(FindRegister("r15"), kR15);
  EXPECT_EQ(FindRegister("rip"), kRegRip);
  EXPECT_EQ(FindRegister("rflags"), kRegRflags);
  EXPECT_EQ(FindRegister("xmm0"), kRegXmm0);
  EXPECT_EQ(FindRegister("mxcsr"), kRegMxcsr);
  EXPECT_EQ(FindRegister("gs_base"), kRegGsBase);
  EXPECT_EQ(FindRegister("eax"), -1);
}

TEST(RegisterTable, ReadWriteFormat) {
  CpuState s;
  RegValue v;
  ASSERT_FALSE(ParseRegValue(kRegXmm0 + 3, "0x0123456789abcdef00112233445566ff", &v));
  WriteReg(s, kRegXmm0 + 3, v);
  EXPECT_EQ(s.xmm[3].hi, 0x0123456789abcdefull);
  EXPECT_EQ(s.xmm[3].lo, 0x00112233445566ffull);
  EXPECT_EQ(FormatReg(kRegXmm0 + 3, ReadReg(s, kRegXmm0 + 3)),
            "0x0123456789abcdef00112233445566ff");
  ASSERT_FALSE(ParseRegValue(kRegMxcsr, "0x1f80", &v));
  WriteReg(s, kRegMxcsr, v);
  EXPECT_EQ(s.mxcsr, 0x1f80u);
  EXPECT_EQ(FormatReg(kRegMxcsr, v), "0x00001f80");
  EXPECT_TRUE(ParseRegValue(kRax, "0x1ffffffffffffffff", &v).has_value());
  EXPECT_TRUE(ParseRegValue(kRax, "12", &v).has_value());
  EXPECT_TRUE(ParseRegValue(kRax, "0xfg", &v).has_value());
}

TEST(Outcome, SameAsIgnoresReason) {
  EXPECT_TRUE(Outcome::Timeout("a").SameAs(Outcome::Timeout("b")));
  EXPECT_FALSE(Outcome::PageFault(4, 0x1000).SameAs(Outcome::PageFault(6, 0x1000)));
  EXPECT_EQ(FormatOutcome(Outcome::PageFault(6, 0x40000000)), "#PF(err=0x6, addr=0x40000000)");
  EXPECT_EQ(VectorFromName("#XM"), 19);
}

}  // namespace
}  // namespace cpudiff

// Integer arithmetic: add/adc/sub/sbb/cmp, inc/dec/neg, mul/imul/div/idiv,
// adcx/adox/mulx, xadd/cmpxchg, sign extension (cbw..cqo).
#include "engines/emulator/operands.h"

namespace cpudiff::emu {

// Test-only: a deliberately planted bug (add never sets CF), switched on by
// the environment variable CPUDIFF_EMULATOR_TEST_PLANT=add-cf, so that the
// CI gate can be shown to fail on a new divergence (tests/triage_test.cc).
bool g_test_plant_add_cf = false;

namespace {

using namespace isa;

template <int kOp>
void Alu(Cpu& c, const DecodedInsn& d) {
  const IsaForm& f = d.form();
  int size = OpSize(f.operands[0], d);
  Loc dst = OpLoc(c, d, f.operands[0]);
  uint64_t b = OpRead(c, d, f.operands[1], size);
  uint64_t a = c.Read(dst, kOp != kCmp);
  uint64_t flags;
  uint64_t r = AluCompute(kOp, a, b, c.Flag(kFlagCF), size, &flags);
  if (kOp != kCmp) c.Write(dst, r);
  c.SetStatus(flags);
}

void IncDec(Cpu& c, const DecodedInsn& d, bool dec) {
  const IsaForm& f = d.form();
  int size = OpSize(f.operands[0], d);
  Loc dst = OpLoc(c, d, f.operands[0]);
  uint64_t a = c.Read(dst, true);
  uint64_t flags;
  uint64_t r = AluCompute(dec ? kSub : kAdd, a, 1, false, size, &flags);
  c.Write(dst, r);
  c.SetStatus((flags & ~kFlagCF) | (c.flags() & kFlagCF));
}
void Inc(Cpu& c, const DecodedInsn& d) { IncDec(c, d, false); }
void Dec(Cpu& c, const DecodedInsn& d) { IncDec(c, d, true); }

void Neg(Cpu& c, const DecodedInsn& d) {
  int size = OpSize(d.form().operands[0], d);
  Loc dst = OpLoc(c, d, d.form().operands[0]);
  uint64_t a = c.Read(dst, true);
  uint64_t flags;
  uint64_t r = AluCompute(kSub, 0, a, false, size, &flags);
  c.Write(dst, r);
  c.SetStatus(flags);
}

// ---- multiply ----------------------------------------------------------------

// Flags of mul/imul: CF=OF=overflow. SF, ZF, AF and PF are undefined; what
// silicon leaves there is in UndefinedMulFlags.
uint64_t MulFlags(Cpu& c, bool overflow, uint64_t low, int size) {
  uint64_t f = overflow ? (kFlagCF | kFlagOF) : 0;
  if (c.vendor == Vendor::kIntel) {
    // Intel: SF and PF from the low half of the result, ZF and AF cleared.
    if (low & SignBit(size)) f |= kFlagSF;
    if (Parity(low)) f |= kFlagPF;
  } else {
    // AMD Zen: SF, ZF, AF and PF keep their values (seed corpus mul-*/imul-*).
    f |= c.flags() & (kFlagSF | kFlagZF | kFlagAF | kFlagPF);
  }
  return f;
}

void MulOne(Cpu& c, const DecodedInsn& d, bool is_signed) {
  int size = OpSize(d.form().operands[0], d);
  uint64_t b = c.Read(OpLoc(c, d, d.form().operands[0]));
  uint64_t a = c.GetReg(kRax, size);
  uint64_t lo, hi;
  bool overflow;
  if (is_signed) {
    __int128 p = static_cast<__int128>(SignExtendTo64(a, size)) * SignExtendTo64(b, size);
    lo = static_cast<uint64_t>(p) & SizeMask(size);
    hi = static_cast<uint64_t>(p >> (size * 8)) & SizeMask(size);
    overflow = p != static_cast<__int128>(SignExtendTo64(lo, size));
  } else {
    unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
    lo = static_cast<uint64_t>(p) & SizeMask(size);
    hi = static_cast<uint64_t>(p >> (size * 8)) & SizeMask(size);
    overflow = hi != 0;
  }
  if (size == 1) {
    c.SetReg(kRax, 2, lo | (hi << 8));
  } else {
    c.SetReg(kRax, size, lo);
    c.SetReg(kRdx, size, hi);
  }
  c.SetStatus(MulFlags(c, overflow, lo, size));
}
void Mul(Cpu& c, const DecodedInsn& d) { MulOne(c, d, false); }
void Imul1(Cpu& c, const DecodedInsn& d) { MulOne(c, d, true); }

void ImulN(Cpu& c, const DecodedInsn& d) {
  const IsaForm& f = d.form();
  int size = d.opsize;
  uint64_t a, b;
  if (f.operands[2] != NA) {
    a = c.Read(OpLoc(c, d, f.operands[1]));
    b = d.imm & SizeMask(size);
  } else {
    a = c.Read(OpLoc(c, d, f.operands[1]));
    b = c.GetReg(d.reg, size);
  }
  __int128 p = static_cast<__int128>(SignExtendTo64(a, size)) * SignExtendTo64(b, size);
  uint64_t lo = static_cast<uint64_t>(p) & SizeMask(size);
  bool overflow = p != static_cast<__int128>(SignExtendTo64(lo, size));
  c.SetReg(d.reg, size, lo);
  c.SetStatus(MulFlags(c, overflow, lo, size));
}

// ---- divide ------------------------------------------------------------------

// div/idiv leave all six status flags undefined.
// AMD Zen: AF set, SF ZF PF cleared, CF OF kept (seed corpus div-*/idiv-*
// and 400 native probes of every size); Intel keeps them all.
void UndefinedDivFlags(Cpu& c, uint64_t q, uint64_t r, int size) {
  if (c.vendor == Vendor::kAmd) c.SetStatus((c.flags() & (kFlagCF | kFlagOF)) | kFlagAF);
  (void)q;
  (void)r;
  (void)size;
}

void DivOne(Cpu& c, const DecodedInsn& d, bool is_signed) {
  int size = OpSize(d.form().operands[0], d);
  uint64_t b = c.Read(OpLoc(c, d, d.form().operands[0]));
  if (b == 0) Fault(kVecDE);
  uint64_t lo, hi;
  if (size == 1) {
    lo = c.GetReg(kRax, 1);
    hi = (c.GetReg(kRax, 2) >> 8) & 0xff;
  } else {
    lo = c.GetReg(kRax, size);
    hi = c.GetReg(kRdx, size);
  }
  uint64_t q, r;
  if (is_signed) {
    __int128 n;
    if (size == 8) {
      n = static_cast<__int128>((static_cast<unsigned __int128>(hi) << 64) | lo);
    } else {
      n = SignExtendTo64((hi << (size * 8)) | lo, size * 2);
    }
    __int128 dv = SignExtendTo64(b, size);
    if (size == 8 && n == (static_cast<__int128>(1) << 127) && dv == -1) Fault(kVecDE);
    __int128 qq = n / dv, rr = n % dv;
    __int128 lim = static_cast<__int128>(1) << (size * 8 - 1);
    if (qq >= lim || qq < -lim) Fault(kVecDE);
    q = static_cast<uint64_t>(qq) & SizeMask(size);
    r = static_cast<uint64_t>(rr) & SizeMask(size);
  } else {
    unsigned __int128 n =
        size == 8 ? ((static_cast<unsigned __int128>(hi) << 64) | lo) : ((hi << (size * 8)) | lo);
    unsigned __int128 qq = n / b;
    if (qq > SizeMask(size)) Fault(kVecDE);
    q = static_cast<uint64_t>(qq);
    r = static_cast<uint64_t>(n % b);
  }
  if (size == 1) {
    c.SetReg(kRax, 2, q | (r << 8));
  } else {
    c.SetReg(kRax, size, q);
    c.SetReg(kRdx, size, r);
  }
  UndefinedDivFlags(c, q, r, size);
}
void Div(Cpu& c, const DecodedInsn& d) { DivOne(c, d, false); }
void Idiv(Cpu& c, const DecodedInsn& d) { DivOne(c, d, true); }

// ---- ADX, BMI2 mulx ---------------------------------------------------------

void AdcxAdox(Cpu& c, const DecodedInsn& d, uint64_t flag) {
  int size = d.rex_w ? 8 : 4;
  uint64_t b = c.Read(c.ELoc(d, size));
  uint64_t a = c.GetReg(d.reg, size);
  uint64_t cin = c.Flag(flag) ? 1 : 0;
  uint64_t r = (a + b + cin) & SizeMask(size);
  bool carry = size == 8 ? (r < a || (cin && r == a)) : ((a + b + cin) >> 32) != 0;
  c.SetReg(d.reg, size, r);
  c.SetFlag(flag, carry);
}
void Adcx(Cpu& c, const DecodedInsn& d) { AdcxAdox(c, d, kFlagCF); }
void Adox(Cpu& c, const DecodedInsn& d) { AdcxAdox(c, d, kFlagOF); }

void Mulx(Cpu& c, const DecodedInsn& d) {
  int size = d.rex_w ? 8 : 4;
  uint64_t b = c.Read(c.ELoc(d, size));
  uint64_t a = c.GetReg(kRdx, size);
  unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
  uint64_t lo = static_cast<uint64_t>(p) & SizeMask(size);
  uint64_t hi = static_cast<uint64_t>(p >> (size * 8)) & SizeMask(size);
  // When both destinations are the same register it gets the high half.
  c.SetReg(d.vvvv, size, lo);
  c.SetReg(d.reg, size, hi);
}

// ---- exchange-and-add, compare-and-exchange ------------------------------------

void Xadd(Cpu& c, const DecodedInsn& d) {
  int size = OpSize(d.form().operands[0], d);
  Loc dst = c.ELoc(d, size);
  Loc src = c.GLoc(d, size);
  uint64_t a = c.Read(dst, true), b = c.Read(src);
  uint64_t flags;
  uint64_t r = AluCompute(kAdd, a, b, false, size, &flags);
  c.Write(src, a);
  c.Write(dst, r);
  c.SetStatus(flags);
}

void Cmpxchg(Cpu& c, const DecodedInsn& d) {
  int size = OpSize(d.form().operands[0], d);
  Loc dst = c.ELoc(d, size);
  uint64_t a = c.GetReg(kRax, size);
  uint64_t m = c.Read(dst, true);
  uint64_t flags;
  AluCompute(kCmp, a, m, false, size, &flags);
  if (a == m) {
    c.Write(dst, c.Read(c.GLoc(d, size)));
  } else {
    // The destination is written back either way (a locked RMW); a register
    // destination keeps its value, and the accumulator gets the old value.
    if (dst.mem) c.Write(dst, m);
    c.SetReg(kRax, size, m);
  }
  c.SetStatus(flags);
}

void Cmpxchg8b16b(Cpu& c, const DecodedInsn& d) {
  bool wide = d.id == InsnId::CMPXCHG16B;
  int half = wide ? 8 : 4;
  bool stack;
  uint64_t addr = c.EffAddr(d, &stack);
  if (wide && (addr & 15) != 0) FaultCode(kVecGP, 0);
  uint64_t m[2] = {0, 0};
  c.mem.Check(addr, half * 2, Access::kWrite, stack);
  c.mem.Read(addr, &m[0], half, stack);
  c.mem.Read(addr + half, &m[1], half, stack);
  uint64_t ax = c.GetReg(kRax, half), dx = c.GetReg(kRdx, half);
  if (m[0] == ax && m[1] == dx) {
    uint64_t bx = c.GetReg(kRbx, half), cx = c.GetReg(kRcx, half);
    c.mem.Write(addr, &bx, half, stack);
    c.mem.Write(addr + half, &cx, half, stack);
    c.SetFlag(kFlagZF, true);
  } else {
    c.mem.Write(addr, &m[0], half, stack);
    c.mem.Write(addr + half, &m[1], half, stack);
    c.SetReg(kRax, half, m[0]);
    c.SetReg(kRdx, half, m[1]);
    c.SetFlag(kFlagZF, false);
  }
}

// ---- sign extension ---------------------------------------------------------------

void Cbw(Cpu& c, const DecodedInsn& d) {
  int size = d.opsize;
  uint64_t v = c.GetReg(kRax, size / 2);
  c.SetReg(kRax, size, static_cast<uint64_t>(SignExtendTo64(v, size / 2)));
}
void Cwd(Cpu& c, const DecodedInsn& d) {
  int size = d.opsize;
  bool neg = c.GetReg(kRax, size) & SignBit(size);
  c.SetReg(kRdx, size, neg ? ~0ull : 0);
}

}  // namespace

void RegisterArith(HandlerTable& t) {
#define ALU_FORMS(NAME, OP)             \
  t.Set(InsnId::NAME##_EbGb, Alu<OP>);  \
  t.Set(InsnId::NAME##_EvGv, Alu<OP>);  \
  t.Set(InsnId::NAME##_GbEb, Alu<OP>);  \
  t.Set(InsnId::NAME##_GvEv, Alu<OP>);  \
  t.Set(InsnId::NAME##_ALIb, Alu<OP>);  \
  t.Set(InsnId::NAME##_RAXIz, Alu<OP>); \
  t.Set(InsnId::NAME##_EbIb, Alu<OP>);  \
  t.Set(InsnId::NAME##_EvIz, Alu<OP>);  \
  t.Set(InsnId::NAME##_EvIbs, Alu<OP>);
  ALU_FORMS(ADD, kAdd)
  ALU_FORMS(OR, kOr)
  ALU_FORMS(ADC, kAdc)
  ALU_FORMS(SBB, kSbb)
  ALU_FORMS(AND, kAnd)
  ALU_FORMS(SUB, kSub)
  ALU_FORMS(XOR, kXor)
  ALU_FORMS(CMP, kCmp)
#undef ALU_FORMS
  t.Set(InsnId::INC_Eb, Inc);
  t.Set(InsnId::INC_Ev, Inc);
  t.Set(InsnId::DEC_Eb, Dec);
  t.Set(InsnId::DEC_Ev, Dec);
  t.Set(InsnId::NEG_Eb, Neg);
  t.Set(InsnId::NEG_Ev, Neg);
  t.Set(InsnId::MUL_Eb, Mul);
  t.Set(InsnId::MUL_Ev, Mul);
  t.Set(InsnId::IMUL_Eb, Imul1);
  t.Set(InsnId::IMUL_Ev, Imul1);
  t.Set(InsnId::IMUL_GvEv, ImulN);
  t.Set(InsnId::IMUL_GvEvIz, ImulN);
  t.Set(InsnId::IMUL_GvEvIbs, ImulN);
  t.Set(InsnId::DIV_Eb, Div);
  t.Set(InsnId::DIV_Ev, Div);
  t.Set(InsnId::IDIV_Eb, Idiv);
  t.Set(InsnId::IDIV_Ev, Idiv);
  t.Set(InsnId::ADCX_GyEy, Adcx);
  t.Set(InsnId::ADOX_GyEy, Adox);
  t.Set(InsnId::MULX_GyByEy, Mulx);
  t.Set(InsnId::XADD_EbGb, Xadd);
  t.Set(InsnId::XADD_EvGv, Xadd);
  t.Set(InsnId::CMPXCHG_EbGb, Cmpxchg);
  t.Set(InsnId::CMPXCHG_EvGv, Cmpxchg);
  t.Set(InsnId::CMPXCHG8B, Cmpxchg8b16b);
  t.Set(InsnId::CMPXCHG16B, Cmpxchg8b16b);
  t.Set(InsnId::CBW, Cbw);
  t.Set(InsnId::CWD, Cwd);
}

}  // namespace cpudiff::emu

// Shifts and rotates: rol/ror/rcl/rcr/shl/shr/sal/sar, shld/shrd, and the
// BMI2 forms sarx/shlx/shrx/rorx (which leave the flags alone).
#include "engines/emulator/operands.h"

namespace cpudiff::emu {
namespace {

using namespace isa;

enum ShiftOp { kRol, kRor, kRcl, kRcr, kShl, kShr, kSal, kSar };

// Intel computes OF for every non-zero count as the count-1 rule gives it
// from the original operands (shared silicon samples: shl/shr/rcr/ror/shld/
// shrd with counts above 1). AMD Zen applies the count-1 formula to the
// result instead (seed corpus).
bool IntelOf(int op, uint64_t a, bool cf_in, int size) {
  uint64_t sb = SignBit(size);
  bool msb = (a & sb) != 0, msb1 = (a & (sb >> 1)) != 0;
  switch (op) {
    case kRol:
    case kRcl:
    case kShl:
    case kSal:
      return msb != msb1;
    case kRor:
      return msb != ((a & 1) != 0);
    case kRcr:
      return msb != cf_in;
    case kShr:
      return msb;
    default:
      return false;  // sar
  }
}

template <int kOp>
void Shift(Cpu& c, const DecodedInsn& d) {
  const IsaForm& f = d.form();
  int size = OpSize(f.operands[0], d);
  int bits = size * 8;
  Loc dst = OpLoc(c, d, f.operands[0]);
  unsigned count = static_cast<unsigned>(OpRead(c, d, f.operands[1], 1));
  count &= size == 8 ? 63 : 31;
  uint64_t a = c.Read(dst, true);
  if (count == 0) {
    // Flags unchanged; a 32-bit register destination is still written
    // (zero-extended), as on silicon.
    if (!dst.mem && size == 4) c.Write(dst, a);
    return;
  }
  uint64_t m = SizeMask(size), sb = SignBit(size);
  uint64_t r = 0;
  uint64_t fl = c.flags();
  bool cf = fl & kFlagCF;
  bool of = fl & kFlagOF;
  bool amd = c.vendor == Vendor::kAmd;
  switch (kOp) {
    case kRol:
    case kRor: {
      unsigned n = count % bits;
      if (kOp == kRol) {
        r = n == 0 ? a : ((a << n) | (a >> (bits - n))) & m;
        cf = r & 1;
        of = ((r & sb) != 0) != cf;
      } else {
        r = n == 0 ? a : ((a >> n) | (a << (bits - n))) & m;
        cf = (r & sb) != 0;
        of = ((r & sb) != 0) != ((r & (sb >> 1)) != 0);
      }
      if (!amd) of = IntelOf(kOp, a, cf, size);
      c.Write(dst, r);
      c.SetFlag(kFlagCF, cf);
      c.SetFlag(kFlagOF, of);
      return;
    }
    case kRcl:
    case kRcr: {
      unsigned n = size < 4 ? count % (bits + 1) : count;
      // Rotate the (bits+1)-bit value CF:a one step at a time; n <= 63.
      uint64_t v = a;
      bool carry = cf;
      for (unsigned i = 0; i < n; ++i) {
        if (kOp == kRcl) {
          bool out = (v & sb) != 0;
          v = ((v << 1) | (carry ? 1 : 0)) & m;
          carry = out;
        } else {
          bool out = v & 1;
          v = (v >> 1) | (carry ? sb : 0);
          carry = out;
        }
      }
      r = v;
      if (kOp == kRcl) {
        of = ((r & sb) != 0) != carry;
      } else {
        of = ((r & sb) != 0) != ((r & (sb >> 1)) != 0);
      }
      if (!amd) of = IntelOf(kOp, a, cf, size);
      c.Write(dst, r);
      c.SetFlag(kFlagCF, carry);
      c.SetFlag(kFlagOF, of);
      return;
    }
    case kShl:
    case kSal: {
      r = count >= 64 ? 0 : (a << count) & m;
      cf = count <= static_cast<unsigned>(bits) ? ((a >> (bits - count)) & 1) : 0;
      of = ((r & sb) != 0) != cf;
      break;
    }
    case kShr: {
      r = count >= 64 ? 0 : (a >> count);
      cf = count <= 64 ? ((a >> (count - 1)) & 1) : 0;
      if (count > static_cast<unsigned>(bits)) cf = 0;
      // OF for a count above 1: Intel keeps the count-1 rule, MSB of the
      // source (sample 00600); AMD Zen: from the result's top two bits.
      of = count == 1 || !amd ? (a & sb) != 0 : ((r & sb) != 0) != ((r & (sb >> 1)) != 0);
      break;
    }
    case kSar: {
      int64_t sa = SignExtendTo64(a, size);
      unsigned n = count > 63 ? 63 : count;
      r = static_cast<uint64_t>(sa >> n) & m;
      cf = (sa >> (count - 1 > 63 ? 63 : count - 1)) & 1;
      of = false;
      break;
    }
  }
  if (!amd) of = IntelOf(kOp, a, fl & kFlagCF, size);
  c.Write(dst, r);
  uint64_t flags = ZSPFlags(r, size);
  if (cf) flags |= kFlagCF;
  if (of) flags |= kFlagOF;
  // AF is undefined for shifts with a non-zero count.
  if (amd) flags |= kFlagAF;
  c.SetStatus(flags);
}

// shld/shrd: the count is masked to 5 bits (6 with REX.W).
template <bool kLeft>
void ShiftDouble(Cpu& c, const DecodedInsn& d) {
  const IsaForm& f = d.form();
  int size = d.opsize;
  int bits = size * 8;
  Loc dst = c.ELoc(d, size);
  uint64_t src = c.GetReg(d.reg, size);
  unsigned count = static_cast<unsigned>(f.operands[2] == CL ? c.GetReg(kRcx, 1) : d.imm);
  count &= size == 8 ? 63 : 31;
  uint64_t a = c.Read(dst, true);
  if (count == 0) {
    if (!dst.mem && size == 4) c.Write(dst, a);
    return;
  }
  uint64_t m = SizeMask(size), sb = SignBit(size);
  uint64_t r;
  bool cf;
  if (size == 2) {
    // 16-bit with a count above 16: the result is undefined. Silicon shifts
    // a 48-bit value. AMD Zen repeats the source: src:src:dest for shrd and
    // dest:src:src for shld (300 native probes); Intel dest:src:dest.
    bool amd = c.vendor == Vendor::kAmd;
    if (kLeft) {
      uint64_t v = (a << 32) | (src << 16) | (amd ? src : a);
      r = (v << count >> 32) & m;
      cf = (v >> (48 - count)) & 1;
    } else {
      uint64_t v = (amd ? (src << 32) : (a << 32)) | (src << 16) | a;
      r = (v >> count) & m;
      cf = (v >> (count - 1)) & 1;
    }
  } else if (kLeft) {
    r = ((a << count) | (src >> (bits - count))) & m;
    cf = (a >> (bits - count)) & 1;
  } else {
    r = ((a >> count) | (src << (bits - count))) & m;
    cf = (a >> (count - 1)) & 1;
  }
  c.Write(dst, r);
  uint64_t flags = ZSPFlags(r, size);
  if (cf) flags |= kFlagCF;
  // OF (defined for a count of 1): shld as shl (MSB(r) ^ CF), shrd as shr
  // (the two top bits of the result); silicon applies the same formula to
  // larger counts (seed corpus shld-*/shrd-*, AMD Zen).
  bool of = kLeft ? (((r & sb) != 0) != cf) : (((r & sb) != 0) != ((r & (sb >> 1)) != 0));
  if (c.vendor == Vendor::kIntel) {
    of = kLeft ? ((a & sb) != 0) != ((a & (sb >> 1)) != 0) : ((a & sb) != 0) != ((src & 1) != 0);
  }
  // AMD Zen, 16-bit operand: CF is taken from the destination alone, so it
  // is clear once the count passes 16; shld's OF is MSB(dest << count) xor
  // CF, which is CF from a count of 16 on (1,300 native probes over register,
  // memory, imm8 and CL forms, counts 14..31 after masking; see
  // docs/undefined-behaviour.md).
  if (size == 2 && c.vendor == Vendor::kAmd) {
    if (count > 16) {
      cf = false;
      flags &= ~kFlagCF;
    }
    if (kLeft && count >= 16) of = cf;
  }
  if (of) flags |= kFlagOF;
  if (c.vendor == Vendor::kAmd) flags |= kFlagAF;
  c.SetStatus(flags);
}

template <int kOp>
void ShiftX(Cpu& c, const DecodedInsn& d) {
  int size = d.rex_w ? 8 : 4;
  uint64_t a = c.Read(c.ELoc(d, size));
  unsigned n = static_cast<unsigned>(c.GetReg(d.vvvv, size)) & (size == 8 ? 63 : 31);
  uint64_t r;
  if (kOp == kShl) {
    r = a << n;
  } else if (kOp == kShr) {
    r = a >> n;
  } else {
    r = static_cast<uint64_t>(SignExtendTo64(a, size) >> n);
  }
  c.SetReg(d.reg, size, r & SizeMask(size));
}

void Rorx(Cpu& c, const DecodedInsn& d) {
  int size = d.rex_w ? 8 : 4;
  int bits = size * 8;
  uint64_t a = c.Read(c.ELoc(d, size));
  unsigned n = static_cast<unsigned>(d.imm) & (bits - 1);
  uint64_t r = n == 0 ? a : ((a >> n) | (a << (bits - n)));
  c.SetReg(d.reg, size, r & SizeMask(size));
}

}  // namespace

void RegisterShift(HandlerTable& t) {
#define SHIFT_FORMS(NAME, OP)            \
  t.Set(InsnId::NAME##_EbIb, Shift<OP>); \
  t.Set(InsnId::NAME##_EvIb, Shift<OP>); \
  t.Set(InsnId::NAME##_Eb1, Shift<OP>);  \
  t.Set(InsnId::NAME##_Ev1, Shift<OP>);  \
  t.Set(InsnId::NAME##_EbCL, Shift<OP>); \
  t.Set(InsnId::NAME##_EvCL, Shift<OP>);
  SHIFT_FORMS(ROL, kRol)
  SHIFT_FORMS(ROR, kRor)
  SHIFT_FORMS(RCL, kRcl)
  SHIFT_FORMS(RCR, kRcr)
  SHIFT_FORMS(SHL, kShl)
  SHIFT_FORMS(SHR, kShr)
  SHIFT_FORMS(SAL, kSal)
  SHIFT_FORMS(SAR, kSar)
#undef SHIFT_FORMS
  t.Set(InsnId::SHLD_EvGvIb, ShiftDouble<true>);
  t.Set(InsnId::SHLD_EvGvCL, ShiftDouble<true>);
  t.Set(InsnId::SHRD_EvGvIb, ShiftDouble<false>);
  t.Set(InsnId::SHRD_EvGvCL, ShiftDouble<false>);
  t.Set(InsnId::SHLX_GyEyBy, ShiftX<kShl>);
  t.Set(InsnId::SHRX_GyEyBy, ShiftX<kShr>);
  t.Set(InsnId::SARX_GyEyBy, ShiftX<kSar>);
  t.Set(InsnId::RORX_GyEyIb, Rorx);
}

}  // namespace cpudiff::emu

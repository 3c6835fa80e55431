// SSE integer and data movement: moves between XMM, memory and GPRs,
// logic, packed add/sub/compare, shuffles and unpacks, pmovmskb.
#include "engines/emulator/operands.h"

namespace cpudiff::emu {
namespace {

using namespace isa;

// A 128-bit value as bytes.
union V128 {
  uint8_t b[16];
  uint16_t w[8];
  uint32_t d[4];
  uint64_t q[2];
};

V128 GetX(const Cpu& c, int r) {
  V128 v;
  v.q[0] = c.s.xmm[r].lo;
  v.q[1] = c.s.xmm[r].hi;
  return v;
}
void SetX(Cpu& c, int r, const V128& v) {
  c.s.xmm[r].lo = v.q[0];
  c.s.xmm[r].hi = v.q[1];
}

// Reads the W operand (XMM register or memory) of `bytes` bytes; a 16-byte
// memory operand of an ALIGN16 form must be aligned (#GP(0)).
V128 ReadW(Cpu& c, const DecodedInsn& d, int bytes) {
  V128 v{};
  if (d.mod == 3) return GetX(c, d.rm);
  bool stack;
  uint64_t a = c.EffAddr(d, &stack);
  if (bytes == 16 && d.form().Has(ALIGN16) && (a & 15) != 0) FaultCode(kVecGP, 0);
  c.mem.Read(a, v.b, bytes, stack);
  return v;
}

void WriteW(Cpu& c, const DecodedInsn& d, const V128& v, int bytes) {
  if (d.mod == 3) {
    SetX(c, d.rm, v);
    return;
  }
  bool stack;
  uint64_t a = c.EffAddr(d, &stack);
  if (bytes == 16 && d.form().Has(ALIGN16) && (a & 15) != 0) FaultCode(kVecGP, 0);
  c.mem.Write(a, v.b, bytes, stack);
}

void MovLoad(Cpu& c, const DecodedInsn& d) { SetX(c, d.reg, ReadW(c, d, 16)); }
void MovStore(Cpu& c, const DecodedInsn& d) { WriteW(c, d, GetX(c, d.reg), 16); }

void MovdLoad(Cpu& c, const DecodedInsn& d) {
  int size = d.rex_w ? 8 : 4;
  V128 v{};
  v.q[0] = c.Read(c.ELoc(d, size));
  SetX(c, d.reg, v);
}
void MovdStore(Cpu& c, const DecodedInsn& d) {
  int size = d.rex_w ? 8 : 4;
  Loc dst = c.ELoc(d, size);
  c.Write(dst, GetX(c, d.reg).q[0] & SizeMask(size));
}
void MovqLoad(Cpu& c, const DecodedInsn& d) {  // F3 0F 7E: zero the upper half
  V128 v = ReadW(c, d, 8);
  v.q[1] = 0;
  SetX(c, d.reg, v);
}
void MovqStore(Cpu& c, const DecodedInsn& d) {  // 66 0F D6
  V128 v = GetX(c, d.reg);
  if (d.mod == 3) {
    v.q[1] = 0;
    SetX(c, d.rm, v);
  } else {
    WriteW(c, d, v, 8);
  }
}

template <typename F>
void Binary(Cpu& c, const DecodedInsn& d, F f) {
  V128 b = ReadW(c, d, 16);
  V128 a = GetX(c, d.reg);
  V128 r = f(a, b);
  SetX(c, d.reg, r);
}

#define PBIN(NAME, EXPR)                    \
  void NAME(Cpu& c, const DecodedInsn& d) { \
    Binary(c, d, [](V128 a, V128 b) {       \
      V128 r;                               \
      EXPR;                                 \
      return r;                             \
    });                                     \
  }

PBIN(Pxor, r.q[0] = a.q[0] ^ b.q[0]; r.q[1] = a.q[1] ^ b.q[1])
PBIN(Por, r.q[0] = a.q[0] | b.q[0]; r.q[1] = a.q[1] | b.q[1])
PBIN(Pand, r.q[0] = a.q[0] & b.q[0]; r.q[1] = a.q[1] & b.q[1])
PBIN(Pandn, r.q[0] = ~a.q[0] & b.q[0]; r.q[1] = ~a.q[1] & b.q[1])
PBIN(Paddb, for (int i = 0; i < 16; ++i) r.b[i] = static_cast<uint8_t>(a.b[i] + b.b[i]))
PBIN(Paddw, for (int i = 0; i < 8; ++i) r.w[i] = static_cast<uint16_t>(a.w[i] + b.w[i]))
PBIN(Paddd, for (int i = 0; i < 4; ++i) r.d[i] = a.d[i] + b.d[i])
PBIN(Paddq, for (int i = 0; i < 2; ++i) r.q[i] = a.q[i] + b.q[i])
PBIN(Psubb, for (int i = 0; i < 16; ++i) r.b[i] = static_cast<uint8_t>(a.b[i] - b.b[i]))
PBIN(Psubw, for (int i = 0; i < 8; ++i) r.w[i] = static_cast<uint16_t>(a.w[i] - b.w[i]))
PBIN(Psubd, for (int i = 0; i < 4; ++i) r.d[i] = a.d[i] - b.d[i])
PBIN(Psubq, for (int i = 0; i < 2; ++i) r.q[i] = a.q[i] - b.q[i])
PBIN(Pcmpeqb, for (int i = 0; i < 16; ++i) r.b[i] = a.b[i] == b.b[i] ? 0xff : 0)
PBIN(Pcmpeqw, for (int i = 0; i < 8; ++i) r.w[i] = a.w[i] == b.w[i] ? 0xffff : 0)
PBIN(Pcmpeqd, for (int i = 0; i < 4; ++i) r.d[i] = a.d[i] == b.d[i] ? ~0u : 0)
PBIN(Pcmpeqq, for (int i = 0; i < 2; ++i) r.q[i] = a.q[i] == b.q[i] ? ~0ull : 0)
PBIN(Pcmpgtb, for (int i = 0; i < 16; ++i)
                  r.b[i] = static_cast<int8_t>(a.b[i]) > static_cast<int8_t>(b.b[i]) ? 0xff : 0)
PBIN(Pcmpgtw, for (int i = 0; i < 8; ++i)
                  r.w[i] = static_cast<int16_t>(a.w[i]) > static_cast<int16_t>(b.w[i]) ? 0xffff : 0)
PBIN(Pcmpgtd, for (int i = 0; i < 4; ++i)
                  r.d[i] = static_cast<int32_t>(a.d[i]) > static_cast<int32_t>(b.d[i]) ? ~0u : 0)
PBIN(Pcmpgtq, for (int i = 0; i < 2; ++i)
                  r.q[i] = static_cast<int64_t>(a.q[i]) > static_cast<int64_t>(b.q[i]) ? ~0ull : 0)
PBIN(
    Punpcklbw, for (int i = 0; i < 8; ++i) {
      r.b[2 * i] = a.b[i];
      r.b[2 * i + 1] = b.b[i];
    })
PBIN(
    Punpckhbw, for (int i = 0; i < 8; ++i) {
      r.b[2 * i] = a.b[8 + i];
      r.b[2 * i + 1] = b.b[8 + i];
    })
PBIN(
    Punpcklwd, for (int i = 0; i < 4; ++i) {
      r.w[2 * i] = a.w[i];
      r.w[2 * i + 1] = b.w[i];
    })
PBIN(
    Punpckhwd, for (int i = 0; i < 4; ++i) {
      r.w[2 * i] = a.w[4 + i];
      r.w[2 * i + 1] = b.w[4 + i];
    })
PBIN(Punpckldq, r.d[0] = a.d[0]; r.d[1] = b.d[0]; r.d[2] = a.d[1]; r.d[3] = b.d[1])
PBIN(Punpckhdq, r.d[0] = a.d[2]; r.d[1] = b.d[2]; r.d[2] = a.d[3]; r.d[3] = b.d[3])
PBIN(Punpcklqdq, r.q[0] = a.q[0]; r.q[1] = b.q[0])
PBIN(Punpckhqdq, r.q[0] = a.q[1]; r.q[1] = b.q[1])
PBIN(Pminub, for (int i = 0; i < 16; ++i) r.b[i] = a.b[i] < b.b[i] ? a.b[i] : b.b[i])
PBIN(Pmaxub, for (int i = 0; i < 16; ++i) r.b[i] = a.b[i] > b.b[i] ? a.b[i] : b.b[i])
PBIN(Pmullw,
     for (int i = 0; i < 8; ++i) r.w[i] = static_cast<uint16_t>(static_cast<int16_t>(a.w[i]) *
                                                                static_cast<int16_t>(b.w[i])))
PBIN(Pmuludq, r.q[0] = uint64_t{a.d[0]} * b.d[0]; r.q[1] = uint64_t{a.d[2]} * b.d[2])
#undef PBIN

void Pshufd(Cpu& c, const DecodedInsn& d) {
  V128 b = ReadW(c, d, 16), r;
  for (int i = 0; i < 4; ++i) r.d[i] = b.d[(d.imm >> (2 * i)) & 3];
  SetX(c, d.reg, r);
}
void Pshuflw(Cpu& c, const DecodedInsn& d) {
  V128 b = ReadW(c, d, 16), r = b;
  for (int i = 0; i < 4; ++i) r.w[i] = b.w[(d.imm >> (2 * i)) & 3];
  SetX(c, d.reg, r);
}
void Pshufhw(Cpu& c, const DecodedInsn& d) {
  V128 b = ReadW(c, d, 16), r = b;
  for (int i = 0; i < 4; ++i) r.w[4 + i] = b.w[4 + ((d.imm >> (2 * i)) & 3)];
  SetX(c, d.reg, r);
}

void Pmovmskb(Cpu& c, const DecodedInsn& d) {
  V128 v = GetX(c, d.rm);
  uint64_t m = 0;
  for (int i = 0; i < 16; ++i) m |= uint64_t{static_cast<uint8_t>(v.b[i] >> 7)} << i;
  c.SetReg(d.reg, 8, m);
}

void Pshufb(Cpu& c, const DecodedInsn& d) {
  Binary(c, d, [](V128 a, V128 b) {
    V128 r;
    for (int i = 0; i < 16; ++i) r.b[i] = (b.b[i] & 0x80) ? 0 : a.b[b.b[i] & 15];
    return r;
  });
}

void Ptest(Cpu& c, const DecodedInsn& d) {
  V128 b = ReadW(c, d, 16), a = GetX(c, d.reg);
  uint64_t f = 0;
  if (((a.q[0] & b.q[0]) | (a.q[1] & b.q[1])) == 0) f |= kFlagZF;
  if (((~a.q[0] & b.q[0]) | (~a.q[1] & b.q[1])) == 0) f |= kFlagCF;
  c.SetStatus(f);
}

}  // namespace

void RegisterSseInt(HandlerTable& t) {
  for (InsnId id : {InsnId::MOVDQA_VW, InsnId::MOVDQU_VW, InsnId::MOVAPS_VW, InsnId::MOVUPS_VW,
                    InsnId::MOVAPD_VW, InsnId::MOVUPD_VW, InsnId::LDDQU, InsnId::MOVNTDQA}) {
    t.Set(id, MovLoad);
  }
  for (InsnId id :
       {InsnId::MOVDQA_WV, InsnId::MOVDQU_WV, InsnId::MOVAPS_WV, InsnId::MOVUPS_WV,
        InsnId::MOVAPD_WV, InsnId::MOVUPD_WV, InsnId::MOVNTDQ, InsnId::MOVNTPS, InsnId::MOVNTPD}) {
    t.Set(id, MovStore);
  }
  t.Set(InsnId::MOVD_VEd, MovdLoad);
  t.Set(InsnId::MOVQ_VEq, MovdLoad);
  t.Set(InsnId::MOVD_EdV, MovdStore);
  t.Set(InsnId::MOVQ_EqV, MovdStore);
  t.Set(InsnId::MOVQ_VWq, MovqLoad);
  t.Set(InsnId::MOVQ_WqV, MovqStore);
  t.Set(InsnId::PXOR, Pxor);
  t.Set(InsnId::XORPS, Pxor);
  t.Set(InsnId::XORPD, Pxor);
  t.Set(InsnId::POR, Por);
  t.Set(InsnId::ORPS, Por);
  t.Set(InsnId::ORPD, Por);
  t.Set(InsnId::PAND, Pand);
  t.Set(InsnId::ANDPS, Pand);
  t.Set(InsnId::ANDPD, Pand);
  t.Set(InsnId::PANDN, Pandn);
  t.Set(InsnId::ANDNPS, Pandn);
  t.Set(InsnId::ANDNPD, Pandn);
  t.Set(InsnId::PADDB, Paddb);
  t.Set(InsnId::PADDW, Paddw);
  t.Set(InsnId::PADDD, Paddd);
  t.Set(InsnId::PADDQ, Paddq);
  t.Set(InsnId::PSUBB, Psubb);
  t.Set(InsnId::PSUBW, Psubw);
  t.Set(InsnId::PSUBD, Psubd);
  t.Set(InsnId::PSUBQ, Psubq);
  t.Set(InsnId::PCMPEQB, Pcmpeqb);
  t.Set(InsnId::PCMPEQW, Pcmpeqw);
  t.Set(InsnId::PCMPEQD, Pcmpeqd);
  t.Set(InsnId::PCMPEQQ, Pcmpeqq);
  t.Set(InsnId::PCMPGTB, Pcmpgtb);
  t.Set(InsnId::PCMPGTW, Pcmpgtw);
  t.Set(InsnId::PCMPGTD, Pcmpgtd);
  t.Set(InsnId::PCMPGTQ, Pcmpgtq);
  t.Set(InsnId::PUNPCKLBW, Punpcklbw);
  t.Set(InsnId::PUNPCKHBW, Punpckhbw);
  t.Set(InsnId::PUNPCKLWD, Punpcklwd);
  t.Set(InsnId::PUNPCKHWD, Punpckhwd);
  t.Set(InsnId::PUNPCKLDQ, Punpckldq);
  t.Set(InsnId::PUNPCKHDQ, Punpckhdq);
  t.Set(InsnId::PUNPCKLQDQ, Punpcklqdq);
  t.Set(InsnId::PUNPCKHQDQ, Punpckhqdq);
  t.Set(InsnId::PMINUB, Pminub);
  t.Set(InsnId::PMAXUB, Pmaxub);
  t.Set(InsnId::PMULLW, Pmullw);
  t.Set(InsnId::PMULUDQ, Pmuludq);
  t.Set(InsnId::PSHUFD, Pshufd);
  t.Set(InsnId::PSHUFLW, Pshuflw);
  t.Set(InsnId::PSHUFHW, Pshufhw);
  t.Set(InsnId::PMOVMSKB, Pmovmskb);
  t.Set(InsnId::PSHUFB, Pshufb);
  t.Set(InsnId::PTEST, Ptest);
}

}  // namespace cpudiff::emu

// The remaining SSE2 integer forms and SSE3, SSSE3, SSE4.1, SSE4.2:
// saturating and averaging arithmetic, packs, shifts, shuffles with an
// immediate, blends, rounding, dot products, pmovsx/zx, pinsr/pextr,
// pcmpXstrX.
//
// Where an instruction's result is defined bit for bit by the manual, the
// operation runs as the same instruction on the host (x86-64 only, like the
// floating-point path): the immediate forms are instantiated once per
// immediate value, so the host executes exactly the guest's encoding.
#include <immintrin.h>

#include <array>
#include <utility>

#include "engines/emulator/operands.h"
#include "engines/emulator/sse_host.h"

namespace cpudiff::emu {
namespace {

using namespace isa;

// ---- two-operand forms without an immediate -------------------------------------

#define BIN(NAME, INSN)                     \
  void NAME(Cpu& c, const DecodedInsn& d) { \
    __m128i b = ReadW(c, d, 16);            \
    __m128i a = GetX(c, d.reg);             \
    asm(INSN " %1, %0" : "+x"(a) : "x"(b)); \
    SetX(c, d.reg, a);                      \
  }
BIN(Packsswb, "packsswb")
BIN(Packuswb, "packuswb")
BIN(Packssdw, "packssdw")
BIN(Packusdw, "packusdw")
BIN(Paddsb, "paddsb") BIN(Paddsw, "paddsw") BIN(Paddusb, "paddusb") BIN(Paddusw, "paddusw")
    BIN(Psubsb, "psubsb") BIN(Psubsw, "psubsw") BIN(Psubusb, "psubusb") BIN(Psubusw, "psubusw")
        BIN(Pmaxsw, "pmaxsw") BIN(Pminsw, "pminsw") BIN(Pavgb, "pavgb") BIN(Pavgw, "pavgw") BIN(
            Pmulhw, "pmulhw") BIN(Pmulhuw, "pmulhuw") BIN(Pmaddwd, "pmaddwd") BIN(Psadbw, "psadbw")
            BIN(Psllw, "psllw") BIN(Pslld, "pslld") BIN(Psllq, "psllq") BIN(Psrlw, "psrlw")
                BIN(Psrld, "psrld") BIN(Psrlq, "psrlq") BIN(Psraw, "psraw") BIN(Psrad, "psrad") BIN(
                    Phaddw, "phaddw") BIN(Phaddd, "phaddd") BIN(Phaddsw, "phaddsw") BIN(Phsubw,
                                                                                        "phsubw")
                    BIN(Phsubd, "phsubd") BIN(Phsubsw, "phsubsw") BIN(Pmaddubsw, "pmaddubsw") BIN(
                        Psignb,
                        "psignb") BIN(Psignw,
                                      "psignw") BIN(Psignd, "psignd")
                        BIN(Pmulhrsw, "pmulhrsw") BIN(Pabsb, "pabsb") BIN(Pabsw, "pabsw") BIN(
                            Pabsd,
                            "pabsd") BIN(Pminsb,
                                         "pminsb") BIN(Pminsd,
                                                       "pminsd") BIN(Pminuw,
                                                                     "pminuw") BIN(Pminud, "pminud")
                            BIN(Pmaxsb, "pmaxsb") BIN(Pmaxsd, "pmaxsd")
                                BIN(Pmaxuw,
                                    "pmaxuw") BIN(Pmaxud,
                                                  "pmaxud") BIN(Pmulld, "pmulld")
                                    BIN(Pmuldq, "pmuldq") BIN(Phminposuw, "phminposuw") BIN(
                                        Unpcklps, "unpcklps") BIN(Unpcklpd, "unpcklpd")
                                        BIN(Unpckhps, "unpckhps") BIN(Unpckhpd, "unpckhpd") BIN(
                                            Movsldup, "movsldup") BIN(Movshdup, "movshdup")
#undef BIN

// Variable blends take the mask from xmm0.
#define BLENDV(NAME, INSN)                                     \
  void NAME(Cpu& c, const DecodedInsn& d) {                    \
    __m128i b = ReadW(c, d, 16);                               \
    __m128i a = GetX(c, d.reg);                                \
    register __m128i mask asm("xmm0") = GetX(c, 0);            \
    asm(INSN " %%xmm0, %1, %0" : "+x"(a) : "x"(b), "x"(mask)); \
    SetX(c, d.reg, a);                                         \
  }
                                            BLENDV(Pblendvb, "pblendvb") BLENDV(
                                                Blendvps, "blendvps") BLENDV(Blendvpd, "blendvpd")
#undef BLENDV

// Loads of fewer than 16 bytes (pmovsx/zx, movddup).
#define NARROW(NAME, INSN, BYTES)           \
  void NAME(Cpu& c, const DecodedInsn& d) { \
    __m128i b = ReadW(c, d, BYTES);         \
    __m128i a;                              \
    asm(INSN " %1, %0" : "=x"(a) : "x"(b)); \
    SetX(c, d.reg, a);                      \
  }
                                                NARROW(Pmovsxbw, "pmovsxbw",
                                                       8) NARROW(Pmovsxbd, "pmovsxbd",
                                                                 4) NARROW(Pmovsxbq, "pmovsxbq", 2)
                                                    NARROW(Pmovsxwd, "pmovsxwd",
                                                           8) NARROW(Pmovsxwq, "pmovsxwq", 4)
                                                        NARROW(Pmovsxdq, "pmovsxdq",
                                                               8) NARROW(Pmovzxbw, "pmovzxbw", 8)
                                                            NARROW(Pmovzxbd, "pmovzxbd", 4)
                                                                NARROW(Pmovzxbq, "pmovzxbq", 2)
                                                                    NARROW(Pmovzxwd, "pmovzxwd", 8)
                                                                        NARROW(Pmovzxwq, "pmovzxwq",
                                                                               4)
                                                                            NARROW(Pmovzxdq,
                                                                                   "pmovzxdq", 8)
                                                                                NARROW(Movddup,
                                                                                       "movddup", 8)
#undef NARROW

    // ---- forms with an immediate: one instantiation per value -----------------------

    // Wrapped so that function-pointer types carry no vector attributes.
    struct X128 {
  __m128i v;
};
using ImmOp = void (*)(X128*, const X128*);
template <template <int> class Op, size_t... I>
constexpr std::array<ImmOp, 256> MakeImmTable(std::index_sequence<I...>) {
  return {&Op<static_cast<int>(I)>::Run...};
}

#define IMM_OP(NAME, INSN)                                         \
  template <int kImm>                                              \
  struct NAME##Op {                                                \
    static void Run(X128* a, const X128* b) {                      \
      asm(INSN " %2, %1, %0" : "+x"(a->v) : "x"(b->v), "i"(kImm)); \
    }                                                              \
  };                                                               \
  const std::array<ImmOp, 256> k##NAME = MakeImmTable<NAME##Op>(std::make_index_sequence<256>());
IMM_OP(Shufps, "shufps")
IMM_OP(Shufpd, "shufpd")
IMM_OP(Pblendw, "pblendw")
IMM_OP(Blendps, "blendps")
IMM_OP(Blendpd, "blendpd") IMM_OP(Palignr, "palignr") IMM_OP(Mpsadbw, "mpsadbw")
    IMM_OP(Dpps, "dpps") IMM_OP(Dppd, "dppd") IMM_OP(Insertps, "insertps")
        IMM_OP(Roundps, "roundps") IMM_OP(Roundpd, "roundpd") IMM_OP(Roundss, "roundss")
            IMM_OP(Roundsd, "roundsd") IMM_OP(Cmpps, "cmpps") IMM_OP(Cmppd, "cmppd")
                IMM_OP(Cmpss, "cmpss") IMM_OP(Cmpsd, "cmpsd")
#undef IMM_OP

                    template <const std::array<ImmOp, 256>& kTable, int kBytes, bool kFp>
                    void ImmForm(Cpu& c, const DecodedInsn& d) {
  __m128i b = ReadW(c, d, kBytes);
  __m128i a = GetX(c, d.reg);
  uint8_t imm = static_cast<uint8_t>(d.imm);
  // insertps from memory takes the loaded dword as element 0 (count_s is
  // ignored), which the register form does with count_s = 0.
  if (d.id == InsnId::INSERTPS && d.mod != 3) imm &= 0x3f;
  ImmOp op = kTable[imm];
  X128 xa{a}, xb{b};
  if (kFp) {
    UnderMxcsr(c, [&] { op(&xa, &xb); });
  } else {
    op(&xa, &xb);
  }
  SetX(c, d.reg, xa.v);
}

// pcmpXstrX: explicit lengths in rax/rdx (64-bit with REX.W, saturating at
// 16 either way, so they are clamped before reaching the 32-bit host form),
// index in ecx or mask in xmm0, and the flags.
using StrOp = void (*)(const X128* a, const X128* b, int32_t ax, int32_t dx, uint32_t* cx, X128* m,
                       uint64_t* fl);
#define STR_OP(NAME, INSN, OUT)                                                                  \
  template <int kImm>                                                                            \
  struct NAME##Op {                                                                              \
    static void Run(const X128* a, const X128* b, int32_t ax, int32_t dx, uint32_t* cx, X128* m, \
                    uint64_t* fl) {                                                              \
      register __m128i xmm0 asm("xmm0") = m->v;                                                  \
      uint32_t ecx = *cx;                                                                        \
      asm(INSN " %[i], %[b], %[a]\n\tpushfq\n\tpopq %[f]"                                        \
          : [f] "=r"(*fl), "+c"(ecx), "+x"(xmm0)                                                 \
          : [a] "x"(a->v), [b] "x"(b->v), "a"(ax), "d"(dx), [i] "i"(kImm)                        \
          : "cc");                                                                               \
      *cx = ecx;                                                                                 \
      m->v = xmm0;                                                                               \
    }                                                                                            \
  };                                                                                             \
  template <size_t... I>                                                                         \
  constexpr std::array<StrOp, 256> Make##NAME(std::index_sequence<I...>) {                       \
    return {&NAME##Op<static_cast<int>(I)>::Run...};                                             \
  }                                                                                              \
  const std::array<StrOp, 256> k##NAME = Make##NAME(std::make_index_sequence<256>());
STR_OP(Pcmpestri, "pcmpestri", 0)
STR_OP(Pcmpestrm, "pcmpestrm", 1)
STR_OP(Pcmpistri, "pcmpistri", 0)
STR_OP(Pcmpistrm, "pcmpistrm", 1)
#undef STR_OP

int32_t ClampLen(uint64_t v, bool w) {
  int64_t s = w ? static_cast<int64_t>(v) : static_cast<int32_t>(v);
  if (s > 17) s = 17;
  if (s < -17) s = -17;
  return static_cast<int32_t>(s);
}

template <const std::array<StrOp, 256>& kTable, bool kIndex>
void PcmpStr(Cpu& c, const DecodedInsn& d) {
  __m128i b = ReadW(c, d, 16);
  __m128i a = GetX(c, d.reg);
  uint32_t cx = 0;
  X128 xa{a}, xb{b}, m{GetX(c, 0)};
  uint64_t fl = 0;
  kTable[d.imm & 0xff](&xa, &xb, ClampLen(c.Gpr(kRax), d.rex_w), ClampLen(c.Gpr(kRdx), d.rex_w),
                       &cx, &m, &fl);
  if (kIndex) {
    c.SetReg(kRcx, 4, cx);
  } else {
    SetX(c, 0, m.v);
  }
  c.SetStatus(fl & kStatusFlags);
}

// ---- shifts by an immediate, byte shifts ----------------------------------------------

template <int kKind>  // 0 psrl, 1 psra, 2 psll; width from the id
void ShiftImm(Cpu& c, const DecodedInsn& d, int width) {
  __m128i a = GetX(c, d.rm);
  __m128i cnt = _mm_cvtsi32_si128(static_cast<int>(d.imm & 0xff));
  __m128i r;
  if (kKind == 0) {
    r = width == 16   ? _mm_srl_epi16(a, cnt)
        : width == 32 ? _mm_srl_epi32(a, cnt)
                      : _mm_srl_epi64(a, cnt);
  } else if (kKind == 1) {
    r = width == 16 ? _mm_sra_epi16(a, cnt) : _mm_sra_epi32(a, cnt);
  } else {
    r = width == 16   ? _mm_sll_epi16(a, cnt)
        : width == 32 ? _mm_sll_epi32(a, cnt)
                      : _mm_sll_epi64(a, cnt);
  }
  SetX(c, d.rm, r);
}
void PsrlwI(Cpu& c, const DecodedInsn& d) { ShiftImm<0>(c, d, 16); }
void PsrldI(Cpu& c, const DecodedInsn& d) { ShiftImm<0>(c, d, 32); }
void PsrlqI(Cpu& c, const DecodedInsn& d) { ShiftImm<0>(c, d, 64); }
void PsrawI(Cpu& c, const DecodedInsn& d) { ShiftImm<1>(c, d, 16); }
void PsradI(Cpu& c, const DecodedInsn& d) { ShiftImm<1>(c, d, 32); }
void PsllwI(Cpu& c, const DecodedInsn& d) { ShiftImm<2>(c, d, 16); }
void PslldI(Cpu& c, const DecodedInsn& d) { ShiftImm<2>(c, d, 32); }
void PsllqI(Cpu& c, const DecodedInsn& d) { ShiftImm<2>(c, d, 64); }

void ByteShift(Cpu& c, const DecodedInsn& d, bool left) {
  alignas(16) uint8_t in[16], out[16] = {};
  _mm_store_si128(reinterpret_cast<__m128i*>(in), GetX(c, d.rm));
  unsigned n = static_cast<unsigned>(d.imm & 0xff);
  for (unsigned i = 0; i < 16; ++i) {
    if (left && i >= n) out[i] = in[i - n];
    if (!left && i + n < 16) out[i] = in[i + n];
  }
  SetX(c, d.rm, _mm_load_si128(reinterpret_cast<const __m128i*>(out)));
}
void Pslldq(Cpu& c, const DecodedInsn& d) { ByteShift(c, d, true); }
void Psrldq(Cpu& c, const DecodedInsn& d) { ByteShift(c, d, false); }

// ---- inserts, extracts, half moves ---------------------------------------------------------

void Pinsr(Cpu& c, const DecodedInsn& d) {
  int bytes = d.id == InsnId::PINSRB   ? 1
              : d.id == InsnId::PINSRW ? 2
              : d.id == InsnId::PINSRQ ? 8
                                       : 4;
  uint64_t v = d.mod == 3 ? c.GetReg(d.rm, 8) : c.Read(c.ELoc(d, bytes));
  alignas(16) uint8_t x[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(x), GetX(c, d.reg));
  int lanes = 16 / bytes;
  int lane = static_cast<int>(d.imm) & (lanes - 1);
  std::memcpy(x + lane * bytes, &v, bytes);
  SetX(c, d.reg, _mm_load_si128(reinterpret_cast<const __m128i*>(x)));
}

void Pextr(Cpu& c, const DecodedInsn& d) {
  bool legacy_w = d.id == InsnId::PEXTRW_GU;
  int bytes = d.id == InsnId::PEXTRB                    ? 1
              : (d.id == InsnId::PEXTRW_EV || legacy_w) ? 2
              : d.id == InsnId::PEXTRQ                  ? 8
                                                        : 4;
  alignas(16) uint8_t x[16];
  int src = legacy_w ? d.rm : d.reg;
  _mm_store_si128(reinterpret_cast<__m128i*>(x), GetX(c, src));
  int lane = static_cast<int>(d.imm) & (16 / bytes - 1);
  uint64_t v = 0;
  std::memcpy(&v, x + lane * bytes, bytes);
  if (legacy_w) {
    c.SetReg(d.reg, 8, v);
  } else if (d.mod == 3) {
    c.SetReg(d.rm, bytes == 8 ? 8 : 8, v);  // a register destination is zero-extended
  } else {
    Loc dst = c.ELoc(d, bytes);
    c.Write(dst, v);
  }
}

void Movhlps(Cpu& c, const DecodedInsn& d) { c.s.xmm[d.reg].lo = c.s.xmm[d.rm].hi; }
void Movlhps(Cpu& c, const DecodedInsn& d) { c.s.xmm[d.reg].hi = c.s.xmm[d.rm].lo; }
void MovLoLoad(Cpu& c, const DecodedInsn& d) { c.s.xmm[d.reg].lo = c.Read(c.ELoc(d, 8)); }
void MovHiLoad(Cpu& c, const DecodedInsn& d) { c.s.xmm[d.reg].hi = c.Read(c.ELoc(d, 8)); }
void MovLoStore(Cpu& c, const DecodedInsn& d) {
  Loc dst = c.ELoc(d, 8);
  c.Write(dst, c.s.xmm[d.reg].lo);
}
void MovHiStore(Cpu& c, const DecodedInsn& d) {
  Loc dst = c.ELoc(d, 8);
  c.Write(dst, c.s.xmm[d.reg].hi);
}

}  // namespace

void RegisterSseExt(HandlerTable& t) {
  t.Set(InsnId::PACKSSWB, Packsswb);
  t.Set(InsnId::PACKUSWB, Packuswb);
  t.Set(InsnId::PACKSSDW, Packssdw);
  t.Set(InsnId::PACKUSDW, Packusdw);
  t.Set(InsnId::PADDSB, Paddsb);
  t.Set(InsnId::PADDSW, Paddsw);
  t.Set(InsnId::PADDUSB, Paddusb);
  t.Set(InsnId::PADDUSW, Paddusw);
  t.Set(InsnId::PSUBSB, Psubsb);
  t.Set(InsnId::PSUBSW, Psubsw);
  t.Set(InsnId::PSUBUSB, Psubusb);
  t.Set(InsnId::PSUBUSW, Psubusw);
  t.Set(InsnId::PMAXSW, Pmaxsw);
  t.Set(InsnId::PMINSW, Pminsw);
  t.Set(InsnId::PAVGB, Pavgb);
  t.Set(InsnId::PAVGW, Pavgw);
  t.Set(InsnId::PMULHW, Pmulhw);
  t.Set(InsnId::PMULHUW, Pmulhuw);
  t.Set(InsnId::PMADDWD, Pmaddwd);
  t.Set(InsnId::PSADBW, Psadbw);
  t.Set(InsnId::PSLLW, Psllw);
  t.Set(InsnId::PSLLD, Pslld);
  t.Set(InsnId::PSLLQ, Psllq);
  t.Set(InsnId::PSRLW, Psrlw);
  t.Set(InsnId::PSRLD, Psrld);
  t.Set(InsnId::PSRLQ, Psrlq);
  t.Set(InsnId::PSRAW, Psraw);
  t.Set(InsnId::PSRAD, Psrad);
  t.Set(InsnId::PHADDW, Phaddw);
  t.Set(InsnId::PHADDD, Phaddd);
  t.Set(InsnId::PHADDSW, Phaddsw);
  t.Set(InsnId::PHSUBW, Phsubw);
  t.Set(InsnId::PHSUBD, Phsubd);
  t.Set(InsnId::PHSUBSW, Phsubsw);
  t.Set(InsnId::PMADDUBSW, Pmaddubsw);
  t.Set(InsnId::PSIGNB, Psignb);
  t.Set(InsnId::PSIGNW, Psignw);
  t.Set(InsnId::PSIGND, Psignd);
  t.Set(InsnId::PMULHRSW, Pmulhrsw);
  t.Set(InsnId::PABSB, Pabsb);
  t.Set(InsnId::PABSW, Pabsw);
  t.Set(InsnId::PABSD, Pabsd);
  t.Set(InsnId::PMINSB, Pminsb);
  t.Set(InsnId::PMINSD, Pminsd);
  t.Set(InsnId::PMINUW, Pminuw);
  t.Set(InsnId::PMINUD, Pminud);
  t.Set(InsnId::PMAXSB, Pmaxsb);
  t.Set(InsnId::PMAXSD, Pmaxsd);
  t.Set(InsnId::PMAXUW, Pmaxuw);
  t.Set(InsnId::PMAXUD, Pmaxud);
  t.Set(InsnId::PMULLD, Pmulld);
  t.Set(InsnId::PMULDQ, Pmuldq);
  t.Set(InsnId::PHMINPOSUW, Phminposuw);
  t.Set(InsnId::UNPCKLPS, Unpcklps);
  t.Set(InsnId::UNPCKLPD, Unpcklpd);
  t.Set(InsnId::UNPCKHPS, Unpckhps);
  t.Set(InsnId::UNPCKHPD, Unpckhpd);
  t.Set(InsnId::MOVSLDUP_VW, Movsldup);
  t.Set(InsnId::MOVSHDUP_VW, Movshdup);
  t.Set(InsnId::PBLENDVB, Pblendvb);
  t.Set(InsnId::BLENDVPS, Blendvps);
  t.Set(InsnId::BLENDVPD, Blendvpd);
  t.Set(InsnId::PMOVSXBW, Pmovsxbw);
  t.Set(InsnId::PMOVSXBD, Pmovsxbd);
  t.Set(InsnId::PMOVSXBQ, Pmovsxbq);
  t.Set(InsnId::PMOVSXWD, Pmovsxwd);
  t.Set(InsnId::PMOVSXWQ, Pmovsxwq);
  t.Set(InsnId::PMOVSXDQ, Pmovsxdq);
  t.Set(InsnId::PMOVZXBW, Pmovzxbw);
  t.Set(InsnId::PMOVZXBD, Pmovzxbd);
  t.Set(InsnId::PMOVZXBQ, Pmovzxbq);
  t.Set(InsnId::PMOVZXWD, Pmovzxwd);
  t.Set(InsnId::PMOVZXWQ, Pmovzxwq);
  t.Set(InsnId::PMOVZXDQ, Pmovzxdq);
  t.Set(InsnId::MOVDDUP_VW, Movddup);
  t.Set(InsnId::SHUFPS, ImmForm<kShufps, 16, false>);
  t.Set(InsnId::SHUFPD, ImmForm<kShufpd, 16, false>);
  t.Set(InsnId::PBLENDW, ImmForm<kPblendw, 16, false>);
  t.Set(InsnId::BLENDPS, ImmForm<kBlendps, 16, false>);
  t.Set(InsnId::BLENDPD, ImmForm<kBlendpd, 16, false>);
  t.Set(InsnId::PALIGNR, ImmForm<kPalignr, 16, false>);
  t.Set(InsnId::MPSADBW, ImmForm<kMpsadbw, 16, false>);
  t.Set(InsnId::INSERTPS, ImmForm<kInsertps, 4, false>);
  t.Set(InsnId::DPPS, ImmForm<kDpps, 16, true>);
  t.Set(InsnId::DPPD, ImmForm<kDppd, 16, true>);
  t.Set(InsnId::ROUNDPS, ImmForm<kRoundps, 16, true>);
  t.Set(InsnId::ROUNDPD, ImmForm<kRoundpd, 16, true>);
  t.Set(InsnId::ROUNDSS, ImmForm<kRoundss, 4, true>);
  t.Set(InsnId::ROUNDSD, ImmForm<kRoundsd, 8, true>);
  t.Set(InsnId::CMPPS, ImmForm<kCmpps, 16, true>);
  t.Set(InsnId::CMPPD, ImmForm<kCmppd, 16, true>);
  t.Set(InsnId::CMPSS, ImmForm<kCmpss, 4, true>);
  t.Set(InsnId::CMPSD, ImmForm<kCmpsd, 8, true>);
  t.Set(InsnId::PCMPESTRI, PcmpStr<kPcmpestri, true>);
  t.Set(InsnId::PCMPESTRM, PcmpStr<kPcmpestrm, false>);
  t.Set(InsnId::PCMPISTRI, PcmpStr<kPcmpistri, true>);
  t.Set(InsnId::PCMPISTRM, PcmpStr<kPcmpistrm, false>);
  t.Set(InsnId::PSRLW_UIb, PsrlwI);
  t.Set(InsnId::PSRLD_UIb, PsrldI);
  t.Set(InsnId::PSRLQ_UIb, PsrlqI);
  t.Set(InsnId::PSRAW_UIb, PsrawI);
  t.Set(InsnId::PSRAD_UIb, PsradI);
  t.Set(InsnId::PSLLW_UIb, PsllwI);
  t.Set(InsnId::PSLLD_UIb, PslldI);
  t.Set(InsnId::PSLLQ_UIb, PsllqI);
  t.Set(InsnId::PSLLDQ_UIb, Pslldq);
  t.Set(InsnId::PSRLDQ_UIb, Psrldq);
  for (InsnId id : {InsnId::PINSRB, InsnId::PINSRW, InsnId::PINSRD, InsnId::PINSRQ})
    t.Set(id, Pinsr);
  for (InsnId id : {InsnId::PEXTRB, InsnId::PEXTRW_EV, InsnId::PEXTRW_GU, InsnId::PEXTRD,
                    InsnId::PEXTRQ, InsnId::EXTRACTPS}) {
    t.Set(id, Pextr);
  }
  t.Set(InsnId::MOVHLPS_VU, Movhlps);
  t.Set(InsnId::MOVLHPS_VU, Movlhps);
  t.Set(InsnId::MOVLPS_VM, MovLoLoad);
  t.Set(InsnId::MOVLPD_VM, MovLoLoad);
  t.Set(InsnId::MOVHPS_VM, MovHiLoad);
  t.Set(InsnId::MOVHPD_VM, MovHiLoad);
  t.Set(InsnId::MOVLPS_MV, MovLoStore);
  t.Set(InsnId::MOVLPD_MV, MovLoStore);
  t.Set(InsnId::MOVHPS_MV, MovHiStore);
  t.Set(InsnId::MOVHPD_MV, MovHiStore);
}

}  // namespace cpudiff::emu

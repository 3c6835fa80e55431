// SSE/SSE2 floating point: arithmetic, comparisons into RFLAGS, conversions,
// scalar moves, ldmxcsr/stmxcsr.
//
// The arithmetic runs on the host's SSE unit under the guest's MXCSR
// (rounding, DAZ, FTZ) with every exception masked, and the flags it raises
// are merged into the guest's MXCSR; an unmasked one raises #XM. This ties
// the floating-point path to an x86-64 host (a software path for other
// hosts is not written yet) but gives silicon's exact results, NaN
// propagation and flags by construction.
#include <immintrin.h>

#include "engines/emulator/operands.h"
#include "engines/emulator/sse_host.h"

namespace cpudiff::emu {
namespace {

using namespace isa;

struct X {
  __m128i v;
};

int OperandBytes(const IsaForm& f) {
  switch (f.operands[1]) {
    case Wss:
      return 4;
    case Wsd:
    case Wq:
      return 8;
    default:
      return 16;
  }
}

#define ARITH(NAME, INSN)                                                    \
  void NAME(Cpu& c, const DecodedInsn& d) {                                  \
    __m128i b = ReadW(c, d, OperandBytes(d.form()));                         \
    __m128i a0 = GetX(c, d.reg), a;                                          \
    UnderMxcsr<true>(c, [&] {                                                \
      a = a0;                                                                \
      asm volatile(INSN " %1, %0" : "+x"(a) : "x"(b));                       \
    });                                                                      \
    SetX(c, d.reg, a);                                                       \
  }
ARITH(Addps, "addps")
ARITH(Addpd, "addpd")
ARITH(Addss, "addss")
ARITH(Addsd, "addsd")
ARITH(Subps, "subps") ARITH(Subpd, "subpd") ARITH(Subss, "subss") ARITH(Subsd, "subsd")
    ARITH(Mulps, "mulps") ARITH(Mulpd, "mulpd") ARITH(Mulss, "mulss") ARITH(Mulsd, "mulsd") ARITH(
        Divps, "divps") ARITH(Divpd, "divpd") ARITH(Divss, "divss") ARITH(Divsd, "divsd")
        ARITH(Minps, "minps") ARITH(Minpd, "minpd") ARITH(Minss, "minss") ARITH(Minsd, "minsd")
            ARITH(Maxps, "maxps") ARITH(Maxpd, "maxpd") ARITH(Maxss, "maxss") ARITH(Maxsd, "maxsd")
                ARITH(Sqrtps, "sqrtps") ARITH(Sqrtpd, "sqrtpd") ARITH(Sqrtss, "sqrtss")
                    ARITH(Sqrtsd, "sqrtsd") ARITH(Cvtss2sd, "cvtss2sd") ARITH(Cvtsd2ss, "cvtsd2ss")
                        ARITH(Cvtps2pd, "cvtps2pd") ARITH(Cvtpd2ps, "cvtpd2ps")
                            ARITH(Cvtdq2ps, "cvtdq2ps") ARITH(Cvtps2dq, "cvtps2dq")
                                ARITH(Cvttps2dq, "cvttps2dq") ARITH(Cvtdq2pd, "cvtdq2pd")
                                    ARITH(Cvtpd2dq, "cvtpd2dq") ARITH(Cvttpd2dq, "cvttpd2dq")
                                        ARITH(Haddps, "haddps") ARITH(Haddpd, "haddpd")
                                            ARITH(Hsubps, "hsubps") ARITH(Hsubpd, "hsubpd")
                                                ARITH(Addsubps, "addsubps") ARITH(Addsubpd,
                                                                                  "addsubpd")
#undef ARITH

#define COMPARE(NAME, INSN)                                                                 \
  void NAME(Cpu& c, const DecodedInsn& d) {                                                 \
    __m128i b = ReadW(c, d, OperandBytes(d.form()));                                        \
    __m128i a = GetX(c, d.reg);                                                             \
    uint64_t fl = 0;                                                                        \
    UnderMxcsr(c, [&] {                                                                     \
      asm volatile(INSN " %2, %1\n\tpushfq\n\tpopq %0" : "=r"(fl) : "x"(a), "x"(b) : "cc"); \
    });                                                                                     \
    c.SetStatus(fl&(kFlagZF | kFlagPF | kFlagCF));                                          \
  }
                                                    COMPARE(Ucomiss, "ucomiss") COMPARE(Ucomisd,
                                                                                        "ucomisd")
                                                        COMPARE(Comiss, "comiss")
                                                            COMPARE(Comisd, "comisd")
#undef COMPARE

                                                                void Cvtsi2s(Cpu& c,
                                                                             const DecodedInsn& d) {
  int size = d.rex_w ? 8 : 4;
  uint64_t v = c.Read(c.ELoc(d, size));
  __m128i a = GetX(c, d.reg);
  bool dbl = d.id == InsnId::CVTSI2SD;
  UnderMxcsr(c, [&] {
    if (dbl && size == 8) {
      asm volatile("cvtsi2sdq %1, %0" : "+x"(a) : "r"(v));
    } else if (dbl) {
      asm volatile("cvtsi2sdl %1, %0" : "+x"(a) : "r"(static_cast<uint32_t>(v)));
    } else if (size == 8) {
      asm volatile("cvtsi2ssq %1, %0" : "+x"(a) : "r"(v));
    } else {
      asm volatile("cvtsi2ssl %1, %0" : "+x"(a) : "r"(static_cast<uint32_t>(v)));
    }
  });
  SetX(c, d.reg, a);
}

#define TOINT(NAME, INSN, BYTES)                                                  \
  void NAME(Cpu& c, const DecodedInsn& d) {                                       \
    __m128i b = ReadW(c, d, BYTES);                                               \
    uint64_t r = 0;                                                               \
    if (d.rex_w) {                                                                \
      UnderMxcsr(c, [&] { asm volatile(INSN "q %1, %0" : "=r"(r) : "x"(b)); });   \
      c.SetReg(d.reg, 8, r);                                                      \
    } else {                                                                      \
      uint32_t r32 = 0;                                                           \
      UnderMxcsr(c, [&] { asm volatile(INSN "l %1, %0" : "=r"(r32) : "x"(b)); }); \
      c.SetReg(d.reg, 4, r32);                                                    \
    }                                                                             \
  }
TOINT(Cvttss2si, "cvttss2si", 4)
TOINT(Cvttsd2si, "cvttsd2si", 8)
TOINT(Cvtss2si, "cvtss2si", 4)
TOINT(Cvtsd2si, "cvtsd2si", 8)
#undef TOINT

// movss/movsd: a load from memory zeroes the rest, a register move merges.
template <int kBytes>
void MovsLoad(Cpu& c, const DecodedInsn& d) {
  if (d.mod == 3) {
    CpuState& s = c.s;
    uint64_t m = kBytes == 4 ? 0xffffffffull : ~0ull;
    s.xmm[d.reg].lo = (s.xmm[d.reg].lo & ~m) | (s.xmm[d.rm].lo & m);
    return;
  }
  bool stack;
  uint64_t a = c.EffAddr(d, &stack);
  uint64_t v = 0;
  c.mem.Read(a, &v, kBytes, stack);
  c.s.xmm[d.reg] = Xmm{v, 0};
}
template <int kBytes>
void MovsStore(Cpu& c, const DecodedInsn& d) {
  if (d.mod == 3) {
    uint64_t m = kBytes == 4 ? 0xffffffffull : ~0ull;
    c.s.xmm[d.rm].lo = (c.s.xmm[d.rm].lo & ~m) | (c.s.xmm[d.reg].lo & m);
    return;
  }
  bool stack;
  uint64_t a = c.EffAddr(d, &stack);
  uint64_t v = c.s.xmm[d.reg].lo;
  c.mem.Write(a, &v, kBytes, stack);
}

void Ldmxcsr(Cpu& c, const DecodedInsn& d) {
  uint64_t v = c.Read(c.ELoc(d, 4));
  if (v & ~uint64_t{kMxcsrValidBits}) FaultCode(kVecGP, 0);
  c.s.mxcsr = static_cast<uint32_t>(v);
}
void Stmxcsr(Cpu& c, const DecodedInsn& d) {
  Loc dst = c.ELoc(d, 4);
  c.Write(dst, c.s.mxcsr);
}

void Movmskps(Cpu& c, const DecodedInsn& d) {
  const Xmm& x = c.s.xmm[d.rm];
  uint64_t m = ((x.lo >> 31) & 1) | ((x.lo >> 62) & 2) | (((x.hi >> 31) & 1) << 2) |
               (((x.hi >> 63) & 1) << 3);
  c.SetReg(d.reg, 8, m);
}
void Movmskpd(Cpu& c, const DecodedInsn& d) {
  const Xmm& x = c.s.xmm[d.rm];
  c.SetReg(d.reg, 8, ((x.lo >> 63) & 1) | (((x.hi >> 63) & 1) << 1));
}

}  // namespace

void RegisterSseFp(HandlerTable& t) {
  t.Set(InsnId::ADDPS, Addps);
  t.Set(InsnId::ADDPD, Addpd);
  t.Set(InsnId::ADDSS, Addss);
  t.Set(InsnId::ADDSD, Addsd);
  t.Set(InsnId::SUBPS, Subps);
  t.Set(InsnId::SUBPD, Subpd);
  t.Set(InsnId::SUBSS, Subss);
  t.Set(InsnId::SUBSD, Subsd);
  t.Set(InsnId::MULPS, Mulps);
  t.Set(InsnId::MULPD, Mulpd);
  t.Set(InsnId::MULSS, Mulss);
  t.Set(InsnId::MULSD, Mulsd);
  t.Set(InsnId::DIVPS, Divps);
  t.Set(InsnId::DIVPD, Divpd);
  t.Set(InsnId::DIVSS, Divss);
  t.Set(InsnId::DIVSD, Divsd);
  t.Set(InsnId::MINPS, Minps);
  t.Set(InsnId::MINPD, Minpd);
  t.Set(InsnId::MINSS, Minss);
  t.Set(InsnId::MINSD, Minsd);
  t.Set(InsnId::MAXPS, Maxps);
  t.Set(InsnId::MAXPD, Maxpd);
  t.Set(InsnId::MAXSS, Maxss);
  t.Set(InsnId::MAXSD, Maxsd);
  t.Set(InsnId::SQRTPS, Sqrtps);
  t.Set(InsnId::SQRTPD, Sqrtpd);
  t.Set(InsnId::SQRTSS, Sqrtss);
  t.Set(InsnId::SQRTSD, Sqrtsd);
  t.Set(InsnId::CVTSS2SD, Cvtss2sd);
  t.Set(InsnId::CVTSD2SS, Cvtsd2ss);
  t.Set(InsnId::CVTPS2PD, Cvtps2pd);
  t.Set(InsnId::CVTPD2PS, Cvtpd2ps);
  t.Set(InsnId::CVTDQ2PS, Cvtdq2ps);
  t.Set(InsnId::CVTPS2DQ, Cvtps2dq);
  t.Set(InsnId::CVTTPS2DQ, Cvttps2dq);
  t.Set(InsnId::CVTDQ2PD, Cvtdq2pd);
  t.Set(InsnId::CVTPD2DQ, Cvtpd2dq);
  t.Set(InsnId::CVTTPD2DQ, Cvttpd2dq);
  t.Set(InsnId::HADDPS, Haddps);
  t.Set(InsnId::HADDPD, Haddpd);
  t.Set(InsnId::HSUBPS, Hsubps);
  t.Set(InsnId::HSUBPD, Hsubpd);
  t.Set(InsnId::ADDSUBPS, Addsubps);
  t.Set(InsnId::ADDSUBPD, Addsubpd);
  t.Set(InsnId::UCOMISS, Ucomiss);
  t.Set(InsnId::UCOMISD, Ucomisd);
  t.Set(InsnId::COMISS, Comiss);
  t.Set(InsnId::COMISD, Comisd);
  t.Set(InsnId::CVTSI2SS, Cvtsi2s);
  t.Set(InsnId::CVTSI2SD, Cvtsi2s);
  t.Set(InsnId::CVTTSS2SI, Cvttss2si);
  t.Set(InsnId::CVTTSD2SI, Cvttsd2si);
  t.Set(InsnId::CVTSS2SI, Cvtss2si);
  t.Set(InsnId::CVTSD2SI, Cvtsd2si);
  t.Set(InsnId::MOVSS_VW, MovsLoad<4>);
  t.Set(InsnId::MOVSD_VW, MovsLoad<8>);
  t.Set(InsnId::MOVSS_WV, MovsStore<4>);
  t.Set(InsnId::MOVSD_WV, MovsStore<8>);
  t.Set(InsnId::LDMXCSR, Ldmxcsr);
  t.Set(InsnId::STMXCSR, Stmxcsr);
  t.Set(InsnId::MOVMSKPS, Movmskps);
  t.Set(InsnId::MOVMSKPD, Movmskpd);
}

}  // namespace cpudiff::emu

// XMM access and MXCSR handling shared by the SSE forms that run on the
// host's SSE unit (sse_fp.cc, sse_ext.cc): the guest's XMM registers as
// __m128i, the W operand (register or memory, with the ALIGN16 check), and
// running host code under the guest's MXCSR.
#pragma once

#include <immintrin.h>

#include "engines/emulator/operands.h"

namespace cpudiff::emu {

inline __m128i GetX(const Cpu& c, int r) {
  return _mm_set_epi64x(static_cast<int64_t>(c.s.xmm[r].hi), static_cast<int64_t>(c.s.xmm[r].lo));
}

inline void SetX(Cpu& c, int r, __m128i v) {
  alignas(16) uint64_t q[2];
  _mm_store_si128(reinterpret_cast<__m128i*>(q), v);
  c.s.xmm[r].lo = q[0];
  c.s.xmm[r].hi = q[1];
}

// The W operand: a register, or `bytes` bytes of memory (16-byte operands
// of ALIGN16 forms must be aligned: #GP(0)).
inline __m128i ReadW(Cpu& c, const DecodedInsn& d, int bytes) {
  if (d.mod == 3) return GetX(c, d.rm);
  bool stack;
  uint64_t a = c.EffAddr(d, &stack);
  if (bytes == 16 && d.form().Has(isa::ALIGN16) && (a & 15) != 0) FaultCode(kVecGP, 0);
  alignas(16) uint8_t b[16] = {};
  c.mem.Read(a, b, bytes, stack);
  return _mm_load_si128(reinterpret_cast<const __m128i*>(b));
}

// Runs `f` on the host under the guest's MXCSR (rounding, DAZ, FTZ) with
// every exception masked, merges the flags it raised into the guest's MXCSR,
// and raises #XM when one of them is unmasked in the guest.
//
// With every exception masked the host flags underflow only for a tiny
// result that is also inexact; an unmasked underflow is signalled for every
// tiny result (SDM 11.5.2.5). When the guest unmasks underflow (and FTZ is
// clear), `f` is first run once with FTZ set, which flags every tiny result
// as UE: `f` must then compute from its inputs again each time it runs
// (`kIdempotent`).
template <bool kIdempotent = false, typename F>
void UnderMxcsr(Cpu& c, F f) {
  uint32_t saved = _mm_getcsr();
  uint32_t guest = c.s.mxcsr;
  uint32_t tiny = 0;
  if (kIdempotent && (guest & 0x8800u) == 0) {
    _mm_setcsr((guest & ~0x3fu) | 0x1f80u | 0x8000u);
    f();
    tiny = _mm_getcsr() & 0x10u;
  }
  _mm_setcsr((guest & ~0x3fu) | 0x1f80u);
  f();
  uint32_t raised = (_mm_getcsr() & 0x3f) | tiny;
  _mm_setcsr(saved);
  // An unmasked pre-computation exception (invalid, denormal, divide by
  // zero) stops the instruction before it computes: the post-computation
  // flags (overflow, underflow, precision) are not raised (SDM 11.5.2;
  // native, fuzz cases sqrtps with DM clear).
  uint32_t pre = raised & 0x7;
  if ((pre & ~(guest >> 7) & 0x7) != 0) raised = pre;
  c.s.mxcsr = guest | raised;
  if ((raised & ~(guest >> 7) & 0x3f) != 0) Fault(kVecXM);
}

}  // namespace cpudiff::emu

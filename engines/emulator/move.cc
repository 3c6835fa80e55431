// Data movement and flag manipulation: mov forms, movzx/movsx/movsxd, lea,
// xchg, cmovcc, setcc, xlat, lahf/sahf, clc/stc/cmc/cld/std, movnti, and
// the instructions without architectural effect (nop forms, prefetch,
// fences, pause, clflush).
#include "engines/emulator/operands.h"

namespace cpudiff::emu {
namespace {

using namespace isa;

void Mov(Cpu& c, const DecodedInsn& d) {
  const IsaForm& f = d.form();
  int size = OpSize(f.operands[0], d);
  Loc dst = OpLoc(c, d, f.operands[0]);
  uint64_t v = OpRead(c, d, f.operands[1], size);
  c.Write(dst, v);
}

void MovImm64(Cpu& c, const DecodedInsn& d) { c.SetReg(d.opreg, d.opsize, d.imm); }

template <int kFrom, bool kSigned>
void MovExt(Cpu& c, const DecodedInsn& d) {
  uint64_t v = c.Read(c.ELoc(d, kFrom));
  if (kSigned) v = static_cast<uint64_t>(SignExtendTo64(v, kFrom));
  c.SetReg(d.reg, d.opsize, v);
}

void Lea(Cpu& c, const DecodedInsn& d) {
  uint64_t a = static_cast<uint64_t>(d.disp);
  if (d.base == kRipBase) {
    a += c.next_rip;
  } else if (d.base >= 0) {
    a += c.Gpr(d.base);
  }
  if (d.index >= 0) a += c.Gpr(d.index) * d.scale;
  if (d.addrsize == 4) a &= 0xffffffffull;
  c.SetReg(d.reg, d.opsize, a);
}

void Xchg(Cpu& c, const DecodedInsn& d) {
  const IsaForm& f = d.form();
  int size = OpSize(f.operands[0], d);
  if (d.id == InsnId::XCHG_ZvRAX && d.opreg == kRax) {
    // 90 is nop, not xchg eax, eax (which would clear the upper half);
    // 66 90 is also a nop.
    return;
  }
  Loc a = OpLoc(c, d, f.operands[0]);
  Loc b = OpLoc(c, d, f.operands[1]);
  uint64_t va = c.Read(a, true), vb = c.Read(b, true);
  if (a.mem) {
    c.Write(a, vb);
    c.Write(b, va);
  } else {
    c.Write(b, va);
    c.Write(a, vb);
  }
  (void)size;
}

void Cmov(Cpu& c, const DecodedInsn& d) {
  int size = d.opsize;
  // The source is read (and may fault) whether or not the condition holds.
  uint64_t v = c.Read(c.ELoc(d, size));
  if (c.Cond(d.cond)) {
    c.SetReg(d.reg, size, v);
  } else if (size == 4) {
    c.SetReg(d.reg, 4, c.GetReg(d.reg, 4));  // a 32-bit cmov always zero-extends
  }
}

void Setcc(Cpu& c, const DecodedInsn& d) {
  Loc dst = c.ELoc(d, 1);
  c.Write(dst, c.Cond(d.cond) ? 1 : 0);
}

void Xlat(Cpu& c, const DecodedInsn& d) {
  uint64_t a = c.Gpr(kRbx) + c.GetReg(kRax, 1);
  if (d.addrsize == 4) a &= 0xffffffffull;
  if (d.seg == SegPrefix::kFs) a += c.s.fs_base;
  if (d.seg == SegPrefix::kGs) a += c.s.gs_base;
  uint64_t v = c.ReadMem(c.Linear(a, false), 1);
  c.SetReg(kRax, 1, v);
}

void Lahf(Cpu& c, const DecodedInsn&) { c.SetReg(kRax, 1, (c.flags() & 0xd5) | 2, true); }
void Sahf(Cpu& c, const DecodedInsn&) {
  uint64_t ah = c.GetReg(kRax, 1, true);
  c.flags() = (c.flags() & ~0xd5ull) | (ah & 0xd5);
}

void Clc(Cpu& c, const DecodedInsn&) { c.SetFlag(kFlagCF, false); }
void Stc(Cpu& c, const DecodedInsn&) { c.SetFlag(kFlagCF, true); }
void Cmc(Cpu& c, const DecodedInsn&) { c.SetFlag(kFlagCF, !c.Flag(kFlagCF)); }
void Cld(Cpu& c, const DecodedInsn&) { c.SetFlag(kFlagDF, false); }
void Std(Cpu& c, const DecodedInsn&) { c.SetFlag(kFlagDF, true); }

void Nop(Cpu&, const DecodedInsn&) {}

// Prefetches and cache-line flushes compute an address but never fault on
// it (prefetch) ... clflush does fault on an unmapped line.
void Clflush(Cpu& c, const DecodedInsn& d) {
  bool stack;
  uint64_t a = c.EffAddr(d, &stack);
  c.mem.Check(a, 1, Access::kRead, stack);
}

void Movnti(Cpu& c, const DecodedInsn& d) {
  int size = d.rex_w ? 8 : 4;
  Loc dst = c.ELoc(d, size);
  c.Write(dst, c.GetReg(d.reg, size));
}

}  // namespace

void RegisterMove(HandlerTable& t) {
  for (InsnId id : {InsnId::MOV_EbGb, InsnId::MOV_EvGv, InsnId::MOV_GbEb, InsnId::MOV_GvEv,
                    InsnId::MOV_ALOb, InsnId::MOV_RAXOv, InsnId::MOV_ObAL, InsnId::MOV_OvRAX,
                    InsnId::MOV_ZbIb, InsnId::MOV_EbIb, InsnId::MOV_EvIz}) {
    t.Set(id, Mov);
  }
  t.Set(InsnId::MOV_ZvIv, MovImm64);
  t.Set(InsnId::MOVZX_GvEb, MovExt<1, false>);
  t.Set(InsnId::MOVZX_GvEw, MovExt<2, false>);
  t.Set(InsnId::MOVSX_GvEb, MovExt<1, true>);
  t.Set(InsnId::MOVSX_GvEw, MovExt<2, true>);
  t.Set(InsnId::MOVSXD_GvEd, MovExt<4, true>);
  t.Set(InsnId::LEA_GvM, Lea);
  t.Set(InsnId::XCHG_EbGb, Xchg);
  t.Set(InsnId::XCHG_EvGv, Xchg);
  t.Set(InsnId::XCHG_ZvRAX, Xchg);
  t.Set(InsnId::CMOVCC_GvEv, Cmov);
  t.Set(InsnId::SETCC_Eb, Setcc);
  t.Set(InsnId::XLAT, Xlat);
  t.Set(InsnId::LAHF, Lahf);
  t.Set(InsnId::SAHF, Sahf);
  t.Set(InsnId::CLC, Clc);
  t.Set(InsnId::STC, Stc);
  t.Set(InsnId::CMC, Cmc);
  t.Set(InsnId::CLD, Cld);
  t.Set(InsnId::STD, Std);
  for (InsnId id : {InsnId::PAUSE, InsnId::NOP_Ev, InsnId::NOP_18, InsnId::NOP_19, InsnId::NOP_1A,
                    InsnId::NOP_1B, InsnId::NOP_1C, InsnId::NOP_1D, InsnId::NOP_1E,
                    InsnId::PREFETCHNTA, InsnId::PREFETCHT0, InsnId::PREFETCHT1, InsnId::PREFETCHT2,
                    InsnId::PREFETCH_0D, InsnId::LFENCE, InsnId::MFENCE, InsnId::SFENCE}) {
    t.Set(id, Nop);
  }
  t.Set(InsnId::CLFLUSH, Clflush);
  t.Set(InsnId::CLFLUSHOPT, Clflush);
  t.Set(InsnId::MOVNTI_MyGy, Movnti);
}

}  // namespace cpudiff::emu

// Stack: push/pop forms, pushf/popf, enter/leave.
#include "engines/emulator/operands.h"

namespace cpudiff::emu {
namespace {

using namespace isa;

void Push(Cpu& c, const DecodedInsn& d) {
  const IsaForm& f = d.form();
  int size = d.opsize;  // 8, or 2 with 66
  uint64_t v;
  if (IsImm(f.operands[0])) {
    v = d.imm;
  } else if (f.operands[0] == Zq) {
    v = c.GetReg(d.opreg, size);
  } else {
    v = c.Read(c.ELoc(d, size));
  }
  c.Push(v, size);
}

void Pop(Cpu& c, const DecodedInsn& d) {
  int size = d.opsize;
  if (d.form().operands[0] == Zq) {
    uint64_t v = c.PeekStack(size);
    c.s.gpr[kRsp] += size;
    c.SetReg(d.opreg, size, v);
    return;
  }
  // pop to memory: the address is computed with rsp already incremented.
  uint64_t v = c.PeekStack(size);
  uint64_t saved = c.s.gpr[kRsp];
  c.s.gpr[kRsp] += size;
  try {
    Loc dst = c.ELoc(d, size);
    c.Write(dst, v);
  } catch (...) {
    c.s.gpr[kRsp] = saved;
    throw;
  }
}

// Bits popf may change at CPL3 with IOPL 0: the status flags, TF, DF, OF,
// NT, AC, ID (IF and IOPL are kept).
constexpr uint64_t kPopfMask = kStatusFlags | kFlagTF | kFlagDF | kFlagAC | kFlagID | (1ull << 14);

void Pushf(Cpu& c, const DecodedInsn& d) {
  // RF and VM read as 0 in the pushed image.
  c.Push(c.flags() & ~(kFlagRF | (1ull << 17)), d.opsize);
}

void Popf(Cpu& c, const DecodedInsn& d) {
  int size = d.opsize;
  uint64_t v = c.PeekStack(size);
  uint64_t mask = kPopfMask & SizeMask(size);
  c.s.gpr[kRsp] += size;
  c.flags() = (c.flags() & ~mask) | (v & mask);
}

void Enter(Cpu& c, const DecodedInsn& d) {
  int size = d.opsize;
  uint64_t alloc = d.imm & 0xffff;
  unsigned level = static_cast<unsigned>(d.imm2) & 31;
  uint64_t rsp = c.s.gpr[kRsp];
  uint64_t rbp = c.s.gpr[kRbp];
  // Silicon stores the old rbp, then copies the outer frame pointers one at
  // a time (read, then store): a fault on one of those reads leaves the
  // stores before it in memory (native, AMD Zen: fuzz cases `enter` with a
  // nesting level whose outer frames run off the data region). The
  // emulator reproduces these partial effects on purpose.
  uint64_t frame = rsp - size;
  c.WriteMem(c.Linear(frame, true), rbp, size, true);
  uint64_t p = frame;
  for (unsigned i = 1; i < level; ++i) {
    uint64_t v = c.ReadMem(c.Linear(rbp - i * size, true), size, true);
    p -= size;
    c.WriteMem(c.Linear(p, true), v, size, true);
  }
  if (level > 0) {
    p -= size;
    c.WriteMem(c.Linear(p, true), frame, size, true);
  }
  // Last, ENTER checks that a write at the final stack pointer would succeed:
  // #PF there otherwise, with the frame stores already done (native, AMD
  // Zen) -- a partial effect of silicon that the emulator reproduces.
  c.mem.Check(c.Linear(p - alloc, true), size, Access::kWrite, true);
  c.SetReg(kRbp, size, frame);
  c.s.gpr[kRsp] = p - alloc;
}

void Leave(Cpu& c, const DecodedInsn& d) {
  int size = d.opsize;
  uint64_t rbp = c.s.gpr[kRbp];
  uint64_t v = c.ReadMem(c.Linear(rbp, true), size, true);
  c.s.gpr[kRsp] = rbp + size;
  c.SetReg(kRbp, size, v);
}

}  // namespace

void RegisterStack(HandlerTable& t) {
  for (InsnId id : {InsnId::PUSH_Zq, InsnId::PUSH_Iz, InsnId::PUSH_Ibs, InsnId::PUSH_Ev}) {
    t.Set(id, Push);
  }
  t.Set(InsnId::POP_Zq, Pop);
  t.Set(InsnId::POP_Ev, Pop);
  t.Set(InsnId::PUSHF, Pushf);
  t.Set(InsnId::POPF, Popf);
  t.Set(InsnId::ENTER_IwIb, Enter);
  t.Set(InsnId::LEAVE, Leave);
}

}  // namespace cpudiff::emu

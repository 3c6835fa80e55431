// Control transfer and traps: jcc, jmp, call, ret, loop/loope/loopne,
// jrcxz, int3/int n, syscall/sysenter, hlt.
#include "engines/emulator/operands.h"

namespace cpudiff::emu {
namespace {

using namespace isa;

// A 16-bit near branch (66 on AMD, see Decode) truncates the target to 16
// bits.
uint64_t Target(const DecodedInsn& d, uint64_t t) { return d.opsize == 2 ? t & 0xffff : t; }

void Jcc(Cpu& c, const DecodedInsn& d) {
  if (c.Cond(d.cond)) c.Jump(Target(d, c.next_rip + d.imm));
}
void JmpRel(Cpu& c, const DecodedInsn& d) { c.Jump(Target(d, c.next_rip + d.imm)); }
void JmpInd(Cpu& c, const DecodedInsn& d) { c.Jump(c.Read(c.ELoc(d, d.opsize == 2 ? 2 : 8))); }

// A call checks its push first (#PF/#SS on the stack win over the #GP of a
// non-canonical target). With a non-canonical target, Intel stores the
// return address before the #GP (shared samples, call r11), AMD Zen does
// not (native); rsp is unchanged on both.
void Call(Cpu& c, uint64_t target, int size) {
  uint64_t ret = c.next_rip;
  uint64_t slot = c.Linear(c.s.gpr[kRsp] - size, true);
  c.mem.Check(slot, size, Access::kWrite, true);
  bool canonical = static_cast<uint64_t>(static_cast<int64_t>(target << 16) >> 16) == target;
  if (!canonical) {
    if (c.vendor == Vendor::kIntel) c.WriteMem(slot, ret, size, true);
    FaultCode(kVecGP, 0);
  }
  c.Push(ret, size);
  c.Jump(target);
}
void CallRel(Cpu& c, const DecodedInsn& d) {
  Call(c, Target(d, c.next_rip + d.imm), d.opsize == 2 ? 2 : 8);
}
void CallInd(Cpu& c, const DecodedInsn& d) {
  int size = d.opsize == 2 ? 2 : 8;
  Call(c, c.Read(c.ELoc(d, size)), size);
}

void Ret(Cpu& c, const DecodedInsn& d) {
  int size = d.opsize == 2 ? 2 : 8;
  uint64_t target = c.PeekStack(size);
  c.Jump(target);
  c.s.gpr[kRsp] += size + (d.id == InsnId::RET_Iw ? (d.imm & 0xffff) : 0);
}

void Loop(Cpu& c, const DecodedInsn& d) {
  int as = d.addrsize;
  uint64_t cx = (c.GetReg(kRcx, as) - 1) & SizeMask(as);
  bool take = cx != 0;
  if (d.id == InsnId::LOOPE_Jb) take = take && c.Flag(kFlagZF);
  if (d.id == InsnId::LOOPNE_Jb) take = take && !c.Flag(kFlagZF);
  if (take) c.Jump(c.next_rip + d.imm);
  c.SetReg(kRcx, as, cx);
}

void Jrcxz(Cpu& c, const DecodedInsn& d) {
  if (c.GetReg(kRcx, d.addrsize) == 0) c.Jump(c.next_rip + d.imm);
}

void Int3(Cpu& c, const DecodedInsn&) {
  c.s.rip = c.next_rip;  // a trap: rip after the instruction
  Fault(kVecBP);
}

// int1 (icebp, f1): a #DB trap, rip after it (native).
void Int1(Cpu& c, const DecodedInsn&) {
  c.s.rip = c.next_rip;
  Fault(kVecDB);
}

void IntN(Cpu& c, const DecodedInsn& d) {
  uint8_t n = static_cast<uint8_t>(d.imm);
  // Linux's gates for #BP and #OF have DPL 3: int 3 and int 4 trap through
  // them, rip after the instruction (native).
  if (n == 3 || n == 4) {
    c.s.rip = c.next_rip;
    Fault(n == 3 ? kVecBP : kVecOF);
  }
  if (n == 0x80) {
    c.stop = Cpu::Stop::kSyscall;  // rip after the instruction
    return;
  }
  // Linux's other gates have DPL 0: #GP with the IDT error code.
  FaultCode(kVecGP, (uint64_t{n} << 3) | 2);
}

void Syscall(Cpu& c, const DecodedInsn& d) {
  if (d.id == InsnId::SYSCALL) {
    // syscall saves rip in rcx and rflags in r11 before entering the kernel.
    c.s.gpr[kRcx] = c.next_rip;
    c.s.gpr[kR11] = c.flags() & ~kFlagRF;
  }
  c.stop = Cpu::Stop::kSyscall;  // rip after the instruction
}

// The run reports rip at the hlt.
void Hlt(Cpu& c, const DecodedInsn&) {
  c.next_rip = c.s.rip;
  c.stop = Cpu::Stop::kHalt;
}

}  // namespace

void RegisterControl(HandlerTable& t) {
  t.Set(InsnId::JCC_Jb, Jcc);
  t.Set(InsnId::JCC_Jz, Jcc);
  t.Set(InsnId::JMP_Jb, JmpRel);
  t.Set(InsnId::JMP_Jz, JmpRel);
  t.Set(InsnId::JMP_Ev, JmpInd);
  t.Set(InsnId::CALL_Jz, CallRel);
  t.Set(InsnId::CALL_Ev, CallInd);
  t.Set(InsnId::RET, Ret);
  t.Set(InsnId::RET_Iw, Ret);
  t.Set(InsnId::LOOP_Jb, Loop);
  t.Set(InsnId::LOOPE_Jb, Loop);
  t.Set(InsnId::LOOPNE_Jb, Loop);
  t.Set(InsnId::JRCXZ_Jb, Jrcxz);
  t.Set(InsnId::INT3, Int3);
  t.Set(InsnId::INT1, Int1);
  t.Set(InsnId::INT_Ib, IntN);
  t.Set(InsnId::SYSCALL, Syscall);
  t.Set(InsnId::SYSENTER, Syscall);
  t.Set(InsnId::HLT, Hlt);
}

}  // namespace cpudiff::emu

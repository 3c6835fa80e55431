#include "engines/translator/backend.h"

#include <cstddef>

namespace cpudiff::jit {
namespace {

using namespace Xbyak::util;
using ir::Op;
using ir::Value;

constexpr int kSlotsOff = static_cast<int>(offsetof(JitContext, slots));
constexpr int kRipOff = static_cast<int>(offsetof(CpuState, rip));
constexpr int kFlagsOff = static_cast<int>(offsetof(CpuState, rflags));

Xbyak::Address Slot(Value v) { return qword[rbx + kSlotsOff + 16 * static_cast<int>(v)]; }
Xbyak::Address VSlot(Value v) { return xword[rbx + kSlotsOff + 16 * static_cast<int>(v)]; }
int RegOff(uint64_t reg) {
  if (reg == ir::kRegFsBaseIr) return static_cast<int>(offsetof(CpuState, fs_base));
  if (reg == ir::kRegGsBaseIr) return static_cast<int>(offsetof(CpuState, gs_base));
  return static_cast<int>(offsetof(CpuState, gpr) + 8 * reg);
}
int XmmOff(uint64_t reg) { return static_cast<int>(offsetof(CpuState, xmm) + 16 * reg); }

// Loads argument `a` of the current instruction into `r`.
void Arg(EmitContext& ec, const Xbyak::Reg64& r, int a) {
  Value v = ec.block.insts[ec.index].args[a];
  const ir::Inst& def = ec.block.insts[v];
  if (def.op == Op::Const || def.op == Op::Const1) {
    ec.gen.mov(r, def.imm);
  } else if (v == ec.in_rax) {
    if (r.getIdx() != rax.getIdx()) ec.gen.mov(r, rax);
    return;
  } else {
    ec.gen.mov(r, Slot(v));
  }
  if (r.getIdx() == rax.getIdx()) ec.in_rax = ir::kNoValue;
}
// Every value is stored to its slot; rax keeps it for the next op.
void Result(EmitContext& ec, const Xbyak::Reg64& r) {
  ec.gen.mov(Slot(ec.index), r);
  ec.result_in_rax = r.getIdx() == rax.getIdx();
}
void VArg(EmitContext& ec, const Xbyak::Xmm& x, int a) {
  ec.gen.movdqu(x, VSlot(ec.block.insts[ec.index].args[a]));
}
void VResult(EmitContext& ec, const Xbyak::Xmm& x) { ec.gen.movdqu(VSlot(ec.index), x); }

void CallHelper(EmitContext& ec, const void* fn) {
  ec.gen.mov(rax, reinterpret_cast<uint64_t>(fn));
  ec.gen.call(rax);
}

// Leaves the block with `code` after the current instruction's guest state
// was restored: rip = the instruction, no lifted instruction from it on
// counted as run.
void ExitAtInsn(EmitContext& ec, uint32_t code, bool include_current) {
  auto l = std::make_unique<Xbyak::Label>();
  ec.gen.jnz(*l, Xbyak::CodeGenerator::T_NEAR);
  uint64_t rip = ec.insn_rip;
  uint32_t uncount = ec.lifted_after + (include_current && ec.insn_lifted ? 1 : 0);
  const void* epi = ec.epilogue;
  Xbyak::CodeGenerator& gen = ec.gen;
  ec.stubs->push_back({std::move(l), [&gen, rip, uncount, code, epi] {
                         if (code != kExitLookup) {
                           gen.mov(rax, rip);
                           gen.mov(qword[r12 + kRipOff], rax);
                         }
                         if (uncount != 0)
                           gen.sub(qword[rbx + offsetof(JitContext, translated)], uncount);
                         gen.mov(eax, code);
                         gen.jmp(epi, Xbyak::CodeGenerator::T_NEAR);
                       }});
}

void CheckFault(EmitContext& ec) {
  ec.gen.cmp(byte[rbx + offsetof(JitContext, faulted)], 0);
  ExitAtInsn(ec, kExitStop, true);
}

// A direct exit to `target`: a jmp rel32 that the dispatcher patches to the
// target's code once it is translated (block chaining), then the way out.
void ChainExit(EmitContext& ec, uint64_t target) {
  Xbyak::CodeGenerator& g = ec.gen;
  Xbyak::Label site;
  g.L(site);
  g.db(0xe9);
  g.dd(0);
  g.mov(rax, target);
  g.mov(qword[r12 + kRipOff], rax);
  g.lea(rax, ptr[rip + site]);
  g.mov(qword[rbx + offsetof(JitContext, chain_site)], rax);
  g.mov(eax, kExitLookup);
  g.jmp(ec.epilogue, Xbyak::CodeGenerator::T_NEAR);
}

// Shifts bit (size*8-1) of rax down to bit 0.
void MsbOfRax(EmitContext& ec) {
  ec.gen.shr(rax, static_cast<int>(ec.block.insts[ec.index].imm * 8 - 1));
  ec.gen.and_(eax, 1);
}

void Binary(EmitContext& ec,
            void (Xbyak::CodeGenerator::*op)(const Xbyak::Operand&, const Xbyak::Operand&)) {
  Arg(ec, rax, 0);
  Arg(ec, rcx, 1);
  (ec.gen.*op)(rax, rcx);
  Result(ec, rax);
}

// `op` is an SSE2 instruction (declared by Xbyak with an Mmx or an Xmm
// destination).
template <typename Dst>
void Vector(EmitContext& ec, void (Xbyak::CodeGenerator::*op)(const Dst&, const Xbyak::Operand&)) {
  VArg(ec, xmm0, 0);
  VArg(ec, xmm1, 1);
  (ec.gen.*op)(xmm0, xmm1);
  VResult(ec, xmm0);
}

}  // namespace

void EmitInsnStart(EmitContext&, const ir::Inst&) {}
void EmitConst(EmitContext&, const ir::Inst&) {}
void EmitConst1(EmitContext&, const ir::Inst&) {}

void EmitGetReg(EmitContext& ec, const ir::Inst& in) {
  ec.gen.mov(rax, qword[r12 + RegOff(in.imm)]);
  Result(ec, rax);
}
void EmitSetReg(EmitContext& ec, const ir::Inst& in) {
  Arg(ec, rax, 0);
  ec.gen.mov(qword[r12 + RegOff(in.imm)], rax);
}
void EmitGetFlag(EmitContext& ec, const ir::Inst& in) {
  ec.gen.mov(rax, qword[r12 + kFlagsOff]);
  ec.gen.shr(rax, static_cast<int>(in.imm));
  ec.gen.and_(eax, 1);
  Result(ec, rax);
}
void EmitSetFlag(EmitContext& ec, const ir::Inst& in) {
  const ir::Inst& def = ec.block.insts[in.args[0]];
  int bit = static_cast<int>(in.imm);
  if (def.op == Op::Const1) {
    if (def.imm) {
      ec.gen.bts(qword[r12 + kFlagsOff], bit);
    } else {
      ec.gen.btr(qword[r12 + kFlagsOff], bit);
    }
    return;
  }
  Arg(ec, rax, 0);
  ec.gen.mov(rcx, qword[r12 + kFlagsOff]);
  ec.gen.btr(rcx, bit);
  ec.gen.shl(rax, bit);
  ec.gen.or_(rcx, rax);
  ec.gen.mov(qword[r12 + kFlagsOff], rcx);
}
void EmitGetXmm(EmitContext& ec, const ir::Inst& in) {
  ec.gen.movdqu(xmm0, xword[r12 + XmmOff(in.imm)]);
  VResult(ec, xmm0);
}
void EmitSetXmm(EmitContext& ec, const ir::Inst& in) {
  VArg(ec, xmm0, 0);
  ec.gen.movdqu(xword[r12 + XmmOff(in.imm)], xmm0);
}

void EmitAdd(EmitContext& ec, const ir::Inst&) { Binary(ec, &Xbyak::CodeGenerator::add); }
void EmitSub(EmitContext& ec, const ir::Inst&) { Binary(ec, &Xbyak::CodeGenerator::sub); }
void EmitAnd(EmitContext& ec, const ir::Inst&) { Binary(ec, &Xbyak::CodeGenerator::and_); }
void EmitOr(EmitContext& ec, const ir::Inst&) { Binary(ec, &Xbyak::CodeGenerator::or_); }
void EmitXor(EmitContext& ec, const ir::Inst&) { Binary(ec, &Xbyak::CodeGenerator::xor_); }
void EmitShl(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rax, 0);
  Arg(ec, rcx, 1);
  ec.gen.shl(rax, cl);
  Result(ec, rax);
}
void EmitShr(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rax, 0);
  Arg(ec, rcx, 1);
  ec.gen.shr(rax, cl);
  Result(ec, rax);
}
void EmitSar(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rax, 0);
  Arg(ec, rcx, 1);
  ec.gen.sar(rax, cl);
  Result(ec, rax);
}
void EmitMul(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rax, 0);
  Arg(ec, rcx, 1);
  ec.gen.imul(rax, rcx);
  Result(ec, rax);
}
void EmitByteSwap(EmitContext& ec, const ir::Inst& in) {
  Arg(ec, rax, 0);
  if (in.imm == 8) {
    ec.gen.bswap(rax);
  } else {
    ec.gen.bswap(eax);
  }
  Result(ec, rax);
}
void EmitTestBit(EmitContext& ec, const ir::Inst& in) {
  Arg(ec, rax, 0);
  ec.gen.shr(rax, static_cast<int>(in.imm));
  ec.gen.and_(eax, 1);
  Result(ec, rax);
}
void EmitMulOverflow(EmitContext& ec, const ir::Inst& in) {
  Arg(ec, rax, 0);
  Arg(ec, rcx, 1);
  if (in.imm == 8) {
    ec.gen.imul(rax, rcx);
    ec.gen.seto(al);
  } else {
    // Sign-extend both, multiply in 64 bits, and compare with the
    // sign-extended low part.
    if (in.imm == 4) {
      ec.gen.movsxd(rax, eax);
      ec.gen.movsxd(rcx, ecx);
      ec.gen.imul(rax, rcx);
      ec.gen.movsxd(rdx, eax);
    } else {
      ec.gen.movsx(rax, ax);
      ec.gen.movsx(rcx, cx);
      ec.gen.imul(rax, rcx);
      ec.gen.movsx(rdx, ax);
    }
    ec.gen.cmp(rax, rdx);
    ec.gen.setne(al);
  }
  ec.gen.movzx(eax, al);
  Result(ec, rax);
}
void EmitNot(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rax, 0);
  ec.gen.not_(rax);
  Result(ec, rax);
}
void EmitZeroExt(EmitContext& ec, const ir::Inst& in) {
  Arg(ec, rax, 0);
  switch (in.imm) {
    case 1:
      ec.gen.movzx(eax, al);
      break;
    case 2:
      ec.gen.movzx(eax, ax);
      break;
    case 4:
      ec.gen.mov(eax, eax);
      break;
    default:
      break;
  }
  Result(ec, rax);
}
void EmitSignExt(EmitContext& ec, const ir::Inst& in) {
  Arg(ec, rax, 0);
  switch (in.imm) {
    case 1:
      ec.gen.movsx(rax, al);
      break;
    case 2:
      ec.gen.movsx(rax, ax);
      break;
    case 4:
      ec.gen.movsxd(rax, eax);
      break;
    default:
      break;
  }
  Result(ec, rax);
}
void EmitSelect(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rcx, 0);
  Arg(ec, rax, 1);
  Arg(ec, rdx, 2);
  ec.gen.test(ecx, ecx);
  ec.gen.cmovz(rax, rdx);
  Result(ec, rax);
}

void EmitIsZero(EmitContext& ec, const ir::Inst& in) {
  Arg(ec, rax, 0);
  switch (in.imm) {
    case 1:
      ec.gen.test(al, al);
      break;
    case 2:
      ec.gen.test(ax, ax);
      break;
    case 4:
      ec.gen.test(eax, eax);
      break;
    default:
      ec.gen.test(rax, rax);
      break;
  }
  ec.gen.setz(al);
  ec.gen.movzx(eax, al);
  Result(ec, rax);
}
void EmitSignOf(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rax, 0);
  MsbOfRax(ec);
  Result(ec, rax);
}
void EmitParityOf(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rax, 0);
  ec.gen.test(al, al);
  ec.gen.setp(al);
  ec.gen.movzx(eax, al);
  Result(ec, rax);
}
// The carry/borrow and overflow of a, b -> r from the bits of the three
// values (so that adc/sbb with a carry-in come out right too).
void EmitCarryAdd(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rax, 0);
  Arg(ec, rcx, 1);
  Arg(ec, rdx, 2);
  ec.gen.mov(rsi, rax);
  ec.gen.and_(rsi, rcx);  // a & b
  ec.gen.or_(rax, rcx);   // a | b
  ec.gen.not_(rdx);
  ec.gen.and_(rax, rdx);  // (a | b) & ~r
  ec.gen.or_(rax, rsi);
  MsbOfRax(ec);
  Result(ec, rax);
}
void EmitCarrySub(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rax, 0);
  Arg(ec, rcx, 1);
  Arg(ec, rdx, 2);
  ec.gen.mov(rsi, rax);
  ec.gen.not_(rsi);
  ec.gen.and_(rsi, rcx);  // ~a & b
  ec.gen.xor_(rax, rcx);
  ec.gen.not_(rax);
  ec.gen.and_(rax, rdx);  // ~(a ^ b) & r
  ec.gen.or_(rax, rsi);
  MsbOfRax(ec);
  Result(ec, rax);
}
void EmitOverflowAdd(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rax, 0);
  Arg(ec, rcx, 1);
  Arg(ec, rdx, 2);
  ec.gen.xor_(rax, rdx);
  ec.gen.xor_(rcx, rdx);
  ec.gen.and_(rax, rcx);  // (a ^ r) & (b ^ r)
  MsbOfRax(ec);
  Result(ec, rax);
}
void EmitOverflowSub(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rax, 0);
  Arg(ec, rcx, 1);
  Arg(ec, rdx, 2);
  ec.gen.mov(rsi, rax);
  ec.gen.xor_(rsi, rcx);
  ec.gen.xor_(rax, rdx);
  ec.gen.and_(rax, rsi);  // (a ^ b) & (a ^ r)
  MsbOfRax(ec);
  Result(ec, rax);
}
void EmitAuxCarry(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rax, 0);
  Arg(ec, rcx, 1);
  Arg(ec, rdx, 2);
  ec.gen.xor_(rax, rcx);
  ec.gen.xor_(rax, rdx);
  ec.gen.shr(eax, 4);
  ec.gen.and_(eax, 1);
  Result(ec, rax);
}

void EmitBoolNot(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rax, 0);
  ec.gen.xor_(eax, 1);
  Result(ec, rax);
}
void EmitBoolAnd(EmitContext& ec, const ir::Inst&) { Binary(ec, &Xbyak::CodeGenerator::and_); }
void EmitBoolOr(EmitContext& ec, const ir::Inst&) { Binary(ec, &Xbyak::CodeGenerator::or_); }
void EmitBoolXor(EmitContext& ec, const ir::Inst&) { Binary(ec, &Xbyak::CodeGenerator::xor_); }
void EmitBoolToU64(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rax, 0);
  Result(ec, rax);
}

void EmitVAnd(EmitContext& ec, const ir::Inst&) { Vector(ec, &Xbyak::CodeGenerator::pand); }
void EmitVAndNot(EmitContext& ec, const ir::Inst&) { Vector(ec, &Xbyak::CodeGenerator::pandn); }
void EmitVOr(EmitContext& ec, const ir::Inst&) { Vector(ec, &Xbyak::CodeGenerator::por); }
void EmitVXor(EmitContext& ec, const ir::Inst&) { Vector(ec, &Xbyak::CodeGenerator::pxor); }
void EmitVAdd(EmitContext& ec, const ir::Inst& in) {
  switch (in.imm) {
    case 1:
      Vector(ec, &Xbyak::CodeGenerator::paddb);
      break;
    case 2:
      Vector(ec, &Xbyak::CodeGenerator::paddw);
      break;
    case 4:
      Vector(ec, &Xbyak::CodeGenerator::paddd);
      break;
    default:
      Vector(ec, &Xbyak::CodeGenerator::paddq);
      break;
  }
}
void EmitVSub(EmitContext& ec, const ir::Inst& in) {
  switch (in.imm) {
    case 1:
      Vector(ec, &Xbyak::CodeGenerator::psubb);
      break;
    case 2:
      Vector(ec, &Xbyak::CodeGenerator::psubw);
      break;
    case 4:
      Vector(ec, &Xbyak::CodeGenerator::psubd);
      break;
    default:
      Vector(ec, &Xbyak::CodeGenerator::psubq);
      break;
  }
}
void EmitVCmpEq(EmitContext& ec, const ir::Inst& in) {
  switch (in.imm) {
    case 1:
      Vector(ec, &Xbyak::CodeGenerator::pcmpeqb);
      break;
    case 2:
      Vector(ec, &Xbyak::CodeGenerator::pcmpeqw);
      break;
    case 4:
      Vector(ec, &Xbyak::CodeGenerator::pcmpeqd);
      break;
    default:
      Vector(ec, &Xbyak::CodeGenerator::pcmpeqq);
      break;
  }
}

void EmitLoad(EmitContext& ec, const ir::Inst& in) {
  ec.gen.mov(rdi, rbx);
  Arg(ec, rsi, 0);
  ec.gen.mov(edx, static_cast<uint32_t>(in.imm));
  CallHelper(ec, reinterpret_cast<const void*>(&HelperLoad));
  ec.gen.mov(Slot(ec.index), rax);
  CheckFault(ec);
}
void EmitStore(EmitContext& ec, const ir::Inst& in) {
  ec.gen.mov(rdi, rbx);
  Arg(ec, rsi, 0);
  Arg(ec, rdx, 1);
  ec.gen.mov(ecx, static_cast<uint32_t>(in.imm));
  CallHelper(ec, reinterpret_cast<const void*>(&HelperStore));
  CheckFault(ec);
}
void EmitLoadV128(EmitContext& ec, const ir::Inst& in) {
  ec.gen.mov(rdi, rbx);
  Arg(ec, rsi, 0);
  ec.gen.mov(edx, static_cast<uint32_t>(in.imm));
  ec.gen.lea(rcx, VSlot(ec.index));
  CallHelper(ec, reinterpret_cast<const void*>(&HelperLoad128));
  CheckFault(ec);
}
void EmitStoreV128(EmitContext& ec, const ir::Inst& in) {
  ec.gen.mov(rdi, rbx);
  Arg(ec, rsi, 0);
  ec.gen.mov(edx, static_cast<uint32_t>(in.imm));
  ec.gen.lea(rcx, VSlot(in.args[1]));
  CallHelper(ec, reinterpret_cast<const void*>(&HelperStore128));
  CheckFault(ec);
}
void EmitCheckCanonical(EmitContext& ec, const ir::Inst&) {
  ec.gen.mov(rdi, rbx);
  Arg(ec, rsi, 0);
  CallHelper(ec, reinterpret_cast<const void*>(&HelperCheckCanonical));
  CheckFault(ec);
}
void EmitCheckCodeWrite(EmitContext& ec, const ir::Inst& in) {
  ec.gen.cmp(byte[rbx + offsetof(JitContext, code_written)], 0);
  // The instruction is complete: continue at the next one after a flush.
  uint64_t saved = ec.insn_rip;
  ec.insn_rip = in.imm;
  ExitAtInsn(ec, kExitFlush, false);
  ec.insn_rip = saved;
}
void EmitInterpret(EmitContext& ec, const ir::Inst& in) {
  ec.gen.mov(rdi, rbx);
  ec.gen.mov(rsi, in.imm2);
  ec.gen.mov(rdx, in.imm);
  CallHelper(ec, reinterpret_cast<const void*>(&HelperInterpret));
  ec.gen.test(eax, eax);
  // The helper set rip and returns the exit code; keep eax.
  auto l = std::make_unique<Xbyak::Label>();
  ec.gen.jnz(*l, Xbyak::CodeGenerator::T_NEAR);
  uint32_t uncount = ec.lifted_after;
  const void* epi = ec.epilogue;
  Xbyak::CodeGenerator& gen = ec.gen;
  ec.stubs->push_back({std::move(l), [&gen, uncount, epi] {
                         if (uncount != 0) {
                           gen.sub(qword[rbx + offsetof(JitContext, translated)], uncount);
                         }
                         gen.jmp(epi, Xbyak::CodeGenerator::T_NEAR);
                       }});
}

void EmitExitJump(EmitContext& ec, const ir::Inst& in) { ChainExit(ec, in.imm); }
void EmitExitCond(EmitContext& ec, const ir::Inst& in) {
  Xbyak::Label not_taken;
  Arg(ec, rax, 0);
  ec.gen.test(eax, eax);
  ec.gen.jz(not_taken, Xbyak::CodeGenerator::T_NEAR);
  ChainExit(ec, in.imm);
  ec.gen.L(not_taken);
  ChainExit(ec, in.imm2);
}
void EmitExitIndirect(EmitContext& ec, const ir::Inst&) {
  Arg(ec, rax, 0);
  ec.gen.mov(qword[r12 + kRipOff], rax);
  ec.gen.mov(eax, kExitLookup);
  ec.gen.jmp(ec.epilogue, Xbyak::CodeGenerator::T_NEAR);
}
void EmitExitState(EmitContext& ec, const ir::Inst&) {
  ec.gen.mov(eax, kExitLookup);
  ec.gen.jmp(ec.epilogue, Xbyak::CodeGenerator::T_NEAR);
}
void EmitExitHalt(EmitContext& ec, const ir::Inst& in) {
  ec.gen.mov(rax, in.imm);
  ec.gen.mov(qword[r12 + kRipOff], rax);
  ec.gen.mov(eax, kExitHalt);
  ec.gen.jmp(ec.epilogue, Xbyak::CodeGenerator::T_NEAR);
}

namespace {

using EmitFn = void (*)(EmitContext&, const ir::Inst&);
constexpr EmitFn kEmitters[] = {
#define OPCODE(name, ret, a1, a2, a3) &Emit##name,
#include "engines/translator/ir/opcodes.inc"
#undef OPCODE
};

}  // namespace

const uint8_t* EmitBlock(Xbyak::CodeGenerator& gen, const ir::Block& block, const void* epilogue) {
  std::vector<std::pair<std::unique_ptr<Xbyak::Label>, std::function<void()>>> stubs;
  const uint8_t* entry = gen.getCurr();
  EmitContext ec{gen, block, epilogue};
  ec.stubs = &stubs;
  // Prologue: the block budget, then count the lifted instructions as run
  // (stubs that leave early take back what did not run).
  Xbyak::Label out_of_budget;
  gen.sub(qword[rbx + offsetof(JitContext, budget)], 1);
  gen.jc(out_of_budget, Xbyak::CodeGenerator::T_NEAR);
  if (block.lifted_insns != 0) {
    gen.add(qword[rbx + offsetof(JitContext, translated)], block.lifted_insns);
  }
  uint32_t lifted_seen = 0;
  for (size_t i = 0; i < block.insts.size(); ++i) {
    const ir::Inst& in = block.insts[i];
    ec.index = i;
    if (in.op == Op::InsnStart) {
      ec.insn_rip = in.imm;
      // Lifted unless the next op of this instruction is Interpret.
      ec.insn_lifted = !(i + 1 < block.insts.size() && block.insts[i + 1].op == Op::Interpret);
      if (ec.insn_lifted) ++lifted_seen;
      ec.lifted_after = block.lifted_insns - lifted_seen;
    }
    size_t before = gen.getSize();
    ec.result_in_rax = false;
    kEmitters[static_cast<int>(in.op)](ec, in);
    if (ec.result_in_rax) {
      ec.in_rax = static_cast<ir::Value>(i);
    } else if (gen.getSize() != before) {
      ec.in_rax = ir::kNoValue;  // code that may have changed rax
    }
  }
  gen.L(out_of_budget);
  gen.add(qword[rbx + offsetof(JitContext, budget)], 1);
  gen.mov(rax, block.guest_addr);
  gen.mov(qword[r12 + kRipOff], rax);
  gen.mov(eax, kExitBudget);
  gen.jmp(epilogue, Xbyak::CodeGenerator::T_NEAR);
  for (auto& [label, emit] : stubs) {
    gen.L(*label);
    emit();
  }
  return entry;
}

void EmitTrampoline(Xbyak::CodeGenerator& gen, const void** enter, const void** epilogue) {
  *enter = gen.getCurr();
  gen.push(rbx);
  gen.push(rbp);
  gen.push(r12);
  gen.push(r13);
  gen.push(r14);
  gen.push(r15);
  gen.sub(rsp, 8);  // 16-byte alignment at helper calls
  gen.mov(rbx, rdi);
  gen.mov(r12, qword[rdi + offsetof(JitContext, state)]);
  gen.jmp(rsi);
  *epilogue = gen.getCurr();
  gen.add(rsp, 8);
  gen.pop(r15);
  gen.pop(r14);
  gen.pop(r13);
  gen.pop(r12);
  gen.pop(rbp);
  gen.pop(rbx);
  gen.ret();
}

}  // namespace cpudiff::jit

#include "engines/translator/backend.h"

#include <algorithm>
#include <climits>
#include <cstddef>
#include <stdexcept>
#include <vector>

namespace cpudiff::jit {
namespace {

using namespace Xbyak::util;
using ir::Op;
using ir::Value;
using Xbyak::Reg64;

constexpr int kSlotsOff = static_cast<int>(offsetof(JitContext, slots));
constexpr int kRipOff = static_cast<int>(offsetof(CpuState, rip));
constexpr int kFlagsOff = static_cast<int>(offsetof(CpuState, rflags));
constexpr int kBudgetOff = static_cast<int>(offsetof(JitContext, budget));
constexpr int kTranslatedOff = static_cast<int>(offsetof(JitContext, translated));
constexpr int kGuestRegs = 18;  // 16 GPRs, fs base, gs base
constexpr int kGuestFlags = 64;

// Host registers that hold IR values. rax, rcx and rdx are every emitter's
// scratch (shift counts want cl, and the op kernels take their arguments
// there); r15 collects flags while they are written back. The first six are
// caller-saved: they are pushed around helper calls while they hold values.
const Reg64 kPool[] = {rsi, rdi, r8, r9, r10, r11, rbp};
constexpr int kPoolSize = 7;
constexpr int kCallerSaved = 6;
// Guest registers a self-looping block keeps in host registers at most (the
// rest of the pool stays free for the values of one iteration).
constexpr int kMaxLoopRegs = 4;

struct Loc {
  // kFused: a condition computed by the conditional exit that reads it.
  enum Kind : uint8_t { kNone, kReg, kSlot, kDeferred, kFused };
  Kind kind = kNone;
  uint8_t reg = 0;  // pool index for kReg
};

// Scratch register of a kernel argument.
const Reg64& Scratch(int k) { return k == 0 ? rax : k == 1 ? rcx : rdx; }

Xbyak::Address Slot(Value v) { return qword[rbx + kSlotsOff + 16 * static_cast<int>(v)]; }
Xbyak::Address VSlot(Value v) { return xword[rbx + kSlotsOff + 16 * static_cast<int>(v)]; }
int RegOff(uint64_t reg) {
  if (reg == ir::kRegFsBaseIr) return static_cast<int>(offsetof(CpuState, fs_base));
  if (reg == ir::kRegGsBaseIr) return static_cast<int>(offsetof(CpuState, gs_base));
  return static_cast<int>(offsetof(CpuState, gpr) + 8 * reg);
}
int XmmOff(uint64_t reg) { return static_cast<int>(offsetof(CpuState, xmm) + 16 * reg); }

bool FitsImm32(uint64_t v) {
  return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(v))) == v;
}

bool IsConstOp(Op op) { return op == Op::Const || op == Op::Const1; }

// Pure integer ops: computed by a kernel, and candidates for deferral.
bool IsPure(Op op) {
  const ir::OpInfo& info = ir::Info(op);
  if (info.ret != ir::Type::U64 && info.ret != ir::Type::U1) return false;
  if (ir::HasSideEffect(op)) return false;
  return !(IsConstOp(op) || op == Op::GetReg || op == Op::GetFlag || op == Op::Load);
}

}  // namespace

struct EmitContext {
  Xbyak::CodeGenerator& gen;
  const ir::Block& block;
  const void* epilogue;
  std::vector<Loc>& loc;
  // The last instruction index at which each value is read (directly, or
  // as guest state written back there, or through a deferred value).
  std::vector<int32_t>& need;
  std::vector<uint8_t>& hoisted;  // GetReg ops emitted before a loop header
  size_t index = 0;               // the instruction being emitted
  uint64_t insn_rip = 0;          // guest address of the current instruction
  bool insn_lifted = false;       // whether the current instruction is lifted
  uint32_t lifted_after = 0;      // lifted instructions after the current one
  Value pool_value[kPoolSize];
  bool pinned[kPoolSize] = {};
  // Guest state written by the block and not yet stored: the value of each
  // guest register (kNoValue: the state holds it) and each pending flag.
  Value cur_reg[kGuestRegs];
  bool dirty[kGuestRegs] = {};  // cur_reg not in the state yet
  Value pending_flag[kGuestFlags];
  uint64_t pending_mask = 0;
  // A block whose exit leads back to its start.
  bool self_loop = false;
  Xbyak::Label header;
  int loop_reg[kGuestRegs];  // pool index of a guest register kept across iterations
  uint64_t drop_flags = 0;   // pending flags the next iteration overwrites before any use
  // Values defined straight into a loop register (the register's last
  // value in the block, defined when its value at the start is dead).
  Value coalesce_value[kMaxLoopRegs];
  int coalesce_reg[kMaxLoopRegs];
  int num_coalesced = 0;
};

namespace {

bool IsConst(const EmitContext& ec, Value v) { return IsConstOp(ec.block.insts[v].op); }
uint64_t ConstOf(const EmitContext& ec, Value v) { return ec.block.insts[v].imm; }

void Kernel(EmitContext& ec, const ir::Inst& in);
void EvalToRax(EmitContext& ec, Value v);

// Loads value `v` into `r` (a deferred value is computed, using the
// scratch registers).
void LoadTo(EmitContext& ec, const Reg64& r, Value v) {
  if (IsConst(ec, v)) {
    ec.gen.mov(r, ConstOf(ec, v));
    return;
  }
  const Loc& l = ec.loc[v];
  switch (l.kind) {
    case Loc::kReg:
      if (kPool[l.reg].getIdx() != r.getIdx()) ec.gen.mov(r, kPool[l.reg]);
      return;
    case Loc::kSlot:
      ec.gen.mov(r, Slot(v));
      return;
    case Loc::kDeferred:
      EvalToRax(ec, v);
      if (r.getIdx() != rax.getIdx()) ec.gen.mov(r, rax);
      return;
    case Loc::kNone:
    case Loc::kFused:
      break;
  }
  throw std::logic_error("translator backend: %" + std::to_string(v) +
                         " used where it is not live");
}

// Computes a deferred value into rax: deferred arguments first (kept on the
// host stack), then the op's kernel.
void EvalToRax(EmitContext& ec, Value v) {
  if (ec.loc[v].kind != Loc::kDeferred) {
    LoadTo(ec, rax, v);
    return;
  }
  const ir::Inst& in = ec.block.insts[v];
  int n = ir::Info(in.op).num_args;
  for (int k = 0; k < n; ++k) {
    if (ec.loc[in.args[k]].kind == Loc::kDeferred && !IsConst(ec, in.args[k])) {
      EvalToRax(ec, in.args[k]);
      ec.gen.push(rax);
    }
  }
  for (int k = n - 1; k >= 0; --k) {
    if (ec.loc[in.args[k]].kind == Loc::kDeferred && !IsConst(ec, in.args[k])) {
      ec.gen.pop(Scratch(k));
    }
  }
  for (int k = 0; k < n; ++k) {
    if (ec.loc[in.args[k]].kind != Loc::kDeferred || IsConst(ec, in.args[k])) {
      LoadTo(ec, Scratch(k), in.args[k]);
    }
  }
  Kernel(ec, in);
}

// A free pool register; spills the value read last when none is free.
int AllocReg(EmitContext& ec) {
  for (int i = 0; i < kPoolSize; ++i) {
    if (ec.pool_value[i] == ir::kNoValue) return i;
  }
  int best = -1;
  int32_t far = -1;
  for (int i = 0; i < kPoolSize; ++i) {
    if (!ec.pinned[i] && ec.need[ec.pool_value[i]] > far) {
      far = ec.need[ec.pool_value[i]];
      best = i;
    }
  }
  if (best < 0) throw std::logic_error("translator backend: out of registers");
  Value v = ec.pool_value[best];
  ec.gen.mov(Slot(v), kPool[best]);
  ec.loc[v] = Loc{Loc::kSlot, 0};
  ec.pool_value[best] = ir::kNoValue;
  return best;
}

// The register of the current instruction's value. Arguments of the
// instruction stay where they are (read them through ec.loc afterwards:
// a spill may have moved one).
Reg64 Def(EmitContext& ec) {
  Value v = static_cast<Value>(ec.index);
  for (int i = 0; i < ec.num_coalesced; ++i) {
    if (ec.coalesce_value[i] != v) continue;
    // The register's value at the start is not read after this
    // instruction (which may still read it: it is in the same register).
    int r = ec.coalesce_reg[i];
    ec.pool_value[r] = v;
    ec.loc[v] = Loc{Loc::kReg, static_cast<uint8_t>(r)};
    return kPool[r];
  }
  int r = AllocReg(ec);
  ec.pool_value[r] = v;
  ec.loc[v] = Loc{Loc::kReg, static_cast<uint8_t>(r)};
  return kPool[r];
}

void StoreValue(EmitContext& ec, const Xbyak::Address& dst, Value v) {
  if (IsConst(ec, v) && FitsImm32(ConstOf(ec, v))) {
    ec.gen.mov(dst, ConstOf(ec, v));
  } else if (!IsConst(ec, v) && ec.loc[v].kind == Loc::kReg) {
    ec.gen.mov(dst, kPool[ec.loc[v].reg]);
  } else {
    LoadTo(ec, rax, v);
    ec.gen.mov(dst, rax);
  }
}

void StoreImm64(EmitContext& ec, const Xbyak::Address& dst, uint64_t imm) {
  if (FitsImm32(imm)) {
    ec.gen.mov(dst, imm);
  } else {
    ec.gen.mov(rax, imm);
    ec.gen.mov(dst, rax);
  }
}

// Writes the guest state the block holds in registers back to the
// CpuState. `skip_flags` and `skip_loop_regs` leave out what a loop's back
// edge carries in registers or overwrites. Emits code only: the tracking
// stays as it is (the caller decides whether the state is clean after).
// A flag value that the host's own flags give: those of a host add, sub or
// test of the same operands at the same operand size (host and guest flags
// sit at the same bit positions). kind 0: none.
struct HostFlagSource {
  int kind = 0;  // 1 add, 2 sub, 3 test
  Value a = ir::kNoValue, b = ir::kNoValue;
  int size = 0;  // 0: any (AF and PF do not depend on it)
};

// The RFLAGS bit where the host puts each flag op's value.
int HostBit(Op op) {
  switch (op) {
    case Op::CarryAdd:
    case Op::CarrySub:
      return 0;
    case Op::ParityOf:
      return 2;
    case Op::AuxCarry:
      return 4;
    case Op::IsZero:
      return 6;
    case Op::SignOf:
      return 7;
    case Op::OverflowAdd:
    case Op::OverflowSub:
      return 11;
    default:
      return -1;
  }
}

// The host source of the value `v` of flag `bit` (a flag op written to
// another flag, as shr's OF from the operand's sign, has none).
HostFlagSource FlagSource(const EmitContext& ec, int bit, Value v) {
  HostFlagSource h;
  if (IsConst(ec, v) || ec.loc[v].kind != Loc::kDeferred) return h;
  const ir::Inst& in = ec.block.insts[v];
  if (HostBit(in.op) != bit) return h;
  // r = a + b or a - b (so that the host op computes r itself).
  auto arith = [&](Value r, Value a, Value b) {
    const ir::Inst& d = ec.block.insts[r];
    if ((d.op != Op::Add && d.op != Op::Sub) || d.args[0] != a || d.args[1] != b) return false;
    h.kind = d.op == Op::Add ? 1 : 2;
    h.a = a;
    h.b = b;
    return true;
  };
  auto result = [&](Value r) {
    const ir::Inst& d = ec.block.insts[r];
    if (!((d.op == Op::Add || d.op == Op::Sub) && arith(r, d.args[0], d.args[1]))) {
      h.kind = 3;
      h.a = r;
    }
  };
  switch (in.op) {
    case Op::CarryAdd:
    case Op::OverflowAdd:
    case Op::CarrySub:
    case Op::OverflowSub: {
      bool add = in.op == Op::CarryAdd || in.op == Op::OverflowAdd;
      if (!arith(in.args[2], in.args[0], in.args[1]) || (h.kind == 1) != add) return {};
      h.size = static_cast<int>(in.imm);
      break;
    }
    case Op::AuxCarry:
      if (!arith(in.args[2], in.args[0], in.args[1])) return {};
      break;
    case Op::IsZero:
    case Op::SignOf:
      result(in.args[0]);
      h.size = static_cast<int>(in.imm);
      break;
    case Op::ParityOf:
      result(in.args[0]);
      break;
    default:
      return {};
  }
  // The operands are loaded into rax and rcx: they must be live here (IsZero
  // keeps its argument live, not the operands of the add that computed it)
  // and not computed on the way.
  for (Value x : {h.a, h.b}) {
    if (x == ir::kNoValue || IsConst(ec, x)) continue;
    const Loc& l = ec.loc[x];
    bool live = l.kind == Loc::kSlot || (l.kind == Loc::kReg && ec.pool_value[l.reg] == x);
    if (!live) return {};
  }
  return h;
}

const Xbyak::Reg& SizedReg(const Reg64& r, int size) {
  static const Xbyak::Reg8 b[] = {al, cl};
  static const Xbyak::Reg16 w[] = {ax, cx};
  static const Xbyak::Reg32 d[] = {eax, ecx};
  int i = r.getIdx() == rax.getIdx() ? 0 : 1;
  if (size == 1) return b[i];
  if (size == 2) return w[i];
  if (size == 4) return d[i];
  return r;
}

// Writes the guest state the block holds in registers back to the
// CpuState. `skip_flags` and `skip_loop_regs` leave out what a loop's back
// edge carries in registers or overwrites. Emits code only: the tracking
// stays as it is (the caller decides whether the state is clean after).
void FlushState(EmitContext& ec, uint64_t skip_flags = 0, bool skip_loop_regs = false) {
  for (int r = 0; r < kGuestRegs; ++r) {
    if (!ec.dirty[r]) continue;
    if (skip_loop_regs && ec.loop_reg[r] >= 0) continue;
    StoreValue(ec, qword[r12 + RegOff(r)], ec.cur_reg[r]);
  }
  uint64_t m = ec.pending_mask & ~skip_flags;
  if (m == 0) return;
  Xbyak::CodeGenerator& g = ec.gen;
  g.mov(r15, qword[r12 + kFlagsOff]);
  g.and_(r15, static_cast<uint32_t>(~m));  // the pending bits are all below bit 31
  uint32_t ones = 0;
  for (uint64_t bits = m; bits != 0; bits &= bits - 1) {
    int bit = __builtin_ctzll(bits);
    Value v = ec.pending_flag[bit];
    if (IsConst(ec, v)) {
      if (ConstOf(ec, v)) ones |= 1u << bit;
      m &= ~(1ull << bit);
    }
  }
  if (ones != 0) g.or_(r15, ones);
  // Flags from one host op each: the status flags of an add, say, cost the
  // op, pushfq and a mask instead of six computations.
  uint64_t todo = m;
  for (uint64_t bits = m; bits != 0; bits &= bits - 1) {
    int bit = __builtin_ctzll(bits);
    if (!(todo & (1ull << bit))) continue;
    HostFlagSource h = FlagSource(ec, bit, ec.pending_flag[bit]);
    if (h.kind == 0) continue;
    uint32_t group = 0;
    int size = h.size;
    for (uint64_t rest = todo; rest != 0; rest &= rest - 1) {
      int b2 = __builtin_ctzll(rest);
      HostFlagSource o = FlagSource(ec, b2, ec.pending_flag[b2]);
      if (o.kind != h.kind || o.a != h.a || o.b != h.b) continue;
      if (o.size != 0 && size != 0 && o.size != size) continue;
      if (size == 0) size = o.size;
      group |= 1u << b2;
    }
    if (size == 0) size = 8;
    LoadTo(ec, rax, h.a);
    if (h.kind == 3) {
      g.test(SizedReg(rax, size), SizedReg(rax, size));
    } else {
      LoadTo(ec, rcx, h.b);
      if (h.kind == 1) {
        g.add(SizedReg(rax, size), SizedReg(rcx, size));
      } else {
        g.sub(SizedReg(rax, size), SizedReg(rcx, size));
      }
    }
    g.pushf();
    g.pop(rax);
    g.and_(eax, group);
    g.or_(r15, rax);
    todo &= ~static_cast<uint64_t>(group);
  }
  for (uint64_t bits = todo; bits != 0; bits &= bits - 1) {
    int bit = __builtin_ctzll(bits);
    EvalToRax(ec, ec.pending_flag[bit]);
    if (bit != 0) g.shl(eax, bit);
    g.or_(r15, rax);
  }
  g.mov(qword[r12 + kFlagsOff], r15);
}

// After the state was written back: a loop register keeps its value (the
// back edge moves it), the others are read from the state again.
void MarkStateClean(EmitContext& ec) {
  for (int r = 0; r < kGuestRegs; ++r) {
    ec.dirty[r] = false;
    if (ec.loop_reg[r] < 0) ec.cur_reg[r] = ir::kNoValue;
  }
  ec.pending_mask = 0;
}

// Before an op that may fault: the guest state written back (so that the
// way out of a fault only sets rip).
void FlushForBarrier(EmitContext& ec) {
  FlushState(ec);
  MarkStateClean(ec);
}

// Leaves to the dispatcher with `code`, the guest rip set to `rip` (unless
// kExitLookup with no rip), after taking back `uncount` instructions
// counted as translated that did not run.
void Leave(EmitContext& ec, uint32_t code, bool set_rip, uint64_t rip, uint32_t uncount) {
  if (set_rip) StoreImm64(ec, qword[r12 + kRipOff], rip);
  if (uncount != 0) ec.gen.sub(r14, uncount);
  ec.gen.mov(eax, code);
  ec.gen.jmp(ec.epilogue, Xbyak::CodeGenerator::T_NEAR);
}

// A forward jcc rel32 whose target is set by Land (the common short
// forward jumps of a block without Xbyak labels, which cost a hash table
// entry each). `cc`: the second opcode byte (0x84 jz, 0x82 jc).
size_t JccForward(EmitContext& ec, uint8_t cc) {
  ec.gen.db(0x0f);
  ec.gen.db(cc);
  size_t at = ec.gen.getSize();
  ec.gen.dd(0);
  return at;
}
void Land(EmitContext& ec, size_t at) {
  ec.gen.rewrite(at, static_cast<uint32_t>(ec.gen.getSize() - (at + 4)), 4);
}

// After a helper call: when it faulted, leave with the state exactly at the
// start of the current instruction.
void CheckFault(EmitContext& ec) {
  ec.gen.cmp(byte[rbx + offsetof(JitContext, faulted)], 0);
  size_t ok = JccForward(ec, 0x84);  // jz
  Leave(ec, kExitStop, true, ec.insn_rip, ec.lifted_after + (ec.insn_lifted ? 1 : 0));
  Land(ec, ok);
}

// Pushes the caller-saved pool registers that hold values (keeping the
// stack 16-byte aligned for the call); returns what PopLive needs.
uint32_t PushLive(EmitContext& ec) {
  uint32_t mask = 0;
  int n = 0;
  for (int i = 0; i < kCallerSaved; ++i) {
    if (ec.pool_value[i] != ir::kNoValue) {
      ec.gen.push(kPool[i]);
      mask |= 1u << i;
      ++n;
    }
  }
  if (n & 1) ec.gen.sub(rsp, 8);
  return mask;
}
void PopLive(EmitContext& ec, uint32_t mask) {
  if (__builtin_popcount(mask) & 1) ec.gen.add(rsp, 8);
  for (int i = kCallerSaved - 1; i >= 0; --i) {
    if (mask & (1u << i)) ec.gen.pop(kPool[i]);
  }
}

void CallHelper(EmitContext& ec, const void* fn) {
  ec.gen.mov(rax, reinterpret_cast<uint64_t>(fn));
  ec.gen.call(rax);
}

// A direct exit to `target`: a jmp rel32 that the dispatcher patches to the
// target's code once it is translated (block chaining), then the way out.
void ChainExit(EmitContext& ec, uint64_t target) {
  Xbyak::CodeGenerator& g = ec.gen;
  const uint8_t* site = g.getCurr();  // the buffer does not move
  g.db(0xe9);
  g.dd(0);
  StoreImm64(ec, qword[r12 + kRipOff], target);
  g.mov(rax, reinterpret_cast<uint64_t>(site));
  g.mov(qword[rbx + offsetof(JitContext, chain_site)], rax);
  g.mov(eax, kExitLookup);
  g.jmp(ec.epilogue, Xbyak::CodeGenerator::T_NEAR);
}

// Moves the values the loop's next iteration starts with into the
// registers its guest registers live in (a parallel move).
void LoopMoves(EmitContext& ec) {
  struct Move {
    int dst;      // pool index
    int src_reg;  // pool index, -1 (not a register) or -2 (rax)
    Value src;
  };
  Move moves[kGuestRegs];
  int n = 0;
  for (int r = 0; r < kGuestRegs; ++r) {
    int dst = ec.loop_reg[r];
    if (dst < 0) continue;
    Value v = ec.cur_reg[r];
    if (v == ec.pool_value[dst]) continue;
    int src_reg = !IsConst(ec, v) && ec.loc[v].kind == Loc::kReg ? ec.loc[v].reg : -1;
    if (src_reg == dst) continue;
    moves[n++] = Move{dst, src_reg, v};
  }
  while (n > 0) {
    bool progress = false;
    for (int i = 0; i < n; ++i) {
      bool read_later = false;
      for (int j = 0; j < n; ++j) read_later |= j != i && moves[j].src_reg == moves[i].dst;
      if (read_later) continue;
      const Move& m = moves[i];
      if (m.src_reg == -2) {
        ec.gen.mov(kPool[m.dst], rax);
      } else if (m.src_reg >= 0) {
        ec.gen.mov(kPool[m.dst], kPool[m.src_reg]);
      } else {
        LoadTo(ec, kPool[m.dst], m.src);
      }
      moves[i] = moves[--n];
      progress = true;
      break;
    }
    if (progress) continue;
    // Only cycles are left: keep one destination's old value in rax.
    int d = moves[0].dst;
    ec.gen.mov(rax, kPool[d]);
    for (int j = 0; j < n; ++j) {
      if (moves[j].src_reg == d) moves[j].src_reg = -2;
    }
  }
}

// The way back to the start of a self-looping block.
void BackEdge(EmitContext& ec) {
  Xbyak::CodeGenerator& g = ec.gen;
  Xbyak::Label go_on;
  g.sub(r13, 1);
  g.jnc(go_on, Xbyak::CodeGenerator::T_NEAR);
  g.add(r13, 1);
  FlushState(ec);
  Leave(ec, kExitBudget, true, ec.block.guest_addr, 0);
  g.L(go_on);
  FlushState(ec, ec.drop_flags, true);
  LoopMoves(ec);
  if (ec.block.lifted_insns != 0) g.add(r14, ec.block.lifted_insns);
  g.jmp(ec.header, Xbyak::CodeGenerator::T_NEAR);
}

// Shifts bit (size*8-1) of rax down to bit 0.
void MsbOfRax(EmitContext& ec, uint64_t size) {
  ec.gen.shr(rax, static_cast<int>(size * 8 - 1));
  ec.gen.and_(eax, 1);
}

// The op on its arguments in rax, rcx, rdx; the result in rax. May clobber
// rcx and rdx.
void Kernel(EmitContext& ec, const ir::Inst& in) {
  Xbyak::CodeGenerator& g = ec.gen;
  switch (in.op) {
    case Op::Add:
      g.add(rax, rcx);
      break;
    case Op::Sub:
      g.sub(rax, rcx);
      break;
    case Op::And:
    case Op::BoolAnd:
      g.and_(rax, rcx);
      break;
    case Op::Or:
    case Op::BoolOr:
      g.or_(rax, rcx);
      break;
    case Op::Xor:
    case Op::BoolXor:
      g.xor_(rax, rcx);
      break;
    case Op::Shl:
      g.shl(rax, cl);
      break;
    case Op::Shr:
      g.shr(rax, cl);
      break;
    case Op::Sar:
      g.sar(rax, cl);
      break;
    case Op::Mul:
      g.imul(rax, rcx);
      break;
    case Op::MulHiU:
    case Op::MulHiS:
      if (in.op == Op::MulHiU) {
        g.mul(rcx);  // rdx:rax = rax * rcx
      } else {
        g.imul(rcx);
      }
      g.mov(rax, rdx);
      break;
    case Op::Not:
      g.not_(rax);
      break;
    case Op::ByteSwap:
      if (in.imm == 8) {
        g.bswap(rax);
      } else {
        g.bswap(eax);
      }
      break;
    case Op::ZeroExt:
      if (in.imm == 1) g.movzx(eax, al);
      if (in.imm == 2) g.movzx(eax, ax);
      if (in.imm == 4) g.mov(eax, eax);
      break;
    case Op::SignExt:
      if (in.imm == 1) g.movsx(rax, al);
      if (in.imm == 2) g.movsx(rax, ax);
      if (in.imm == 4) g.movsxd(rax, eax);
      break;
    case Op::Select:  // rax ? rcx : rdx
      g.test(eax, eax);
      g.mov(rax, rdx);
      g.cmovnz(rax, rcx);
      break;
    case Op::IsZero:
      switch (in.imm) {
        case 1:
          g.test(al, al);
          break;
        case 2:
          g.test(ax, ax);
          break;
        case 4:
          g.test(eax, eax);
          break;
        default:
          g.test(rax, rax);
          break;
      }
      g.setz(al);
      g.movzx(eax, al);
      break;
    case Op::SignOf:
      MsbOfRax(ec, in.imm);
      break;
    case Op::ParityOf:
      g.test(al, al);
      g.setp(al);
      g.movzx(eax, al);
      break;
    // Carry and overflow of a, b -> r from the bits of the three values
    // (so that adc/sbb with a carry-in come out right too). With c the
    // carry into each bit (a ^ b ^ r), the carry out is the majority of
    // a, b and c: ((a ^ r) & (b ^ r)) ^ (a ^ b ^ r); the borrow out of a
    // subtraction is the majority of ~a, b and c: (~(b ^ r) & (a ^ r)) ^
    // (a ^ b ^ r).
    case Op::CarryAdd:
    case Op::CarrySub:
      g.xor_(rax, rdx);  // a ^ r
      g.xor_(rcx, rdx);  // b ^ r
      g.xor_(rdx, rax);
      g.xor_(rdx, rcx);  // a ^ b ^ r
      if (in.op == Op::CarrySub) g.not_(rcx);
      g.and_(rax, rcx);
      g.xor_(rax, rdx);
      MsbOfRax(ec, in.imm);
      break;
    case Op::OverflowAdd:
      g.xor_(rax, rdx);
      g.xor_(rcx, rdx);
      g.and_(rax, rcx);  // (a ^ r) & (b ^ r)
      MsbOfRax(ec, in.imm);
      break;
    case Op::OverflowSub:
      g.xor_(rdx, rax);  // a ^ r
      g.xor_(rax, rcx);  // a ^ b
      g.and_(rax, rdx);
      MsbOfRax(ec, in.imm);
      break;
    case Op::AuxCarry:
      g.xor_(rax, rcx);
      g.xor_(rax, rdx);
      g.shr(eax, 4);
      g.and_(eax, 1);
      break;
    case Op::TestBit:
      if (in.imm != 0) g.shr(rax, static_cast<int>(in.imm));
      g.and_(eax, 1);
      break;
    case Op::MulOverflow:
      if (in.imm == 8) {
        g.imul(rax, rcx);
        g.seto(al);
      } else {
        // Sign-extend both, multiply in 64 bits, and compare with the
        // sign-extended low part.
        if (in.imm == 4) {
          g.movsxd(rax, eax);
          g.movsxd(rcx, ecx);
          g.imul(rax, rcx);
          g.movsxd(rdx, eax);
        } else {
          g.movsx(rax, ax);
          g.movsx(rcx, cx);
          g.imul(rax, rcx);
          g.movsx(rdx, ax);
        }
        g.cmp(rax, rdx);
        g.setne(al);
      }
      g.movzx(eax, al);
      break;
    case Op::BoolNot:
      g.xor_(eax, 1);
      break;
    case Op::BoolToU64:
      break;
    default:
      throw std::logic_error("translator backend: no kernel for " +
                             std::string(ir::Info(in.op).name));
  }
}

// A pure op: nothing here when it is deferred, else its kernel.
void Pure(EmitContext& ec, const ir::Inst& in) {
  if (ec.loc[ec.index].kind == Loc::kDeferred || ec.loc[ec.index].kind == Loc::kFused) return;
  int n = ir::Info(in.op).num_args;
  for (int k = 0; k < n; ++k) LoadTo(ec, Scratch(k), in.args[k]);
  Kernel(ec, in);
  Reg64 d = Def(ec);
  ec.gen.mov(d, rax);
}

using RegRegFn = void (Xbyak::CodeGenerator::*)(const Xbyak::Operand&, const Xbyak::Operand&);
using RegImmFn = void (Xbyak::CodeGenerator::*)(const Xbyak::Operand&, uint32_t);

// d = a op b straight into the value's register.
void Binary(EmitContext& ec, const ir::Inst& in, RegRegFn rr, RegImmFn ri) {
  if (ec.loc[ec.index].kind == Loc::kDeferred) return;
  Reg64 d = Def(ec);
  LoadTo(ec, d, in.args[0]);
  Value b = in.args[1];
  if (IsConst(ec, b) && FitsImm32(ConstOf(ec, b))) {
    (ec.gen.*ri)(d, static_cast<uint32_t>(ConstOf(ec, b)));
  } else if (!IsConst(ec, b) && ec.loc[b].kind == Loc::kReg) {
    (ec.gen.*rr)(d, kPool[ec.loc[b].reg]);
  } else if (!IsConst(ec, b) && ec.loc[b].kind == Loc::kSlot) {
    (ec.gen.*rr)(d, Slot(b));
  } else {
    LoadTo(ec, rcx, b);
    (ec.gen.*rr)(d, rcx);
  }
}

// A shift by a constant count straight into the value's register.
void Shift(EmitContext& ec, const ir::Inst& in,
           void (Xbyak::CodeGenerator::*shift)(const Xbyak::Operand&, int)) {
  if (ec.loc[ec.index].kind == Loc::kDeferred) return;
  if (!IsConst(ec, in.args[1])) {
    Pure(ec, in);
    return;
  }
  Reg64 d = Def(ec);
  LoadTo(ec, d, in.args[0]);
  int count = static_cast<int>(ConstOf(ec, in.args[1]) & 63);
  if (count != 0) (ec.gen.*shift)(d, count);
}

void VArg(EmitContext& ec, const Xbyak::Xmm& x, int a) {
  ec.gen.movdqu(x, VSlot(ec.block.insts[ec.index].args[a]));
}
void VResult(EmitContext& ec, const Xbyak::Xmm& x) {
  ec.gen.movdqu(VSlot(ec.index), x);
  ec.loc[ec.index] = Loc{Loc::kSlot, 0};
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
  if (ec.hoisted[ec.index]) return;  // loaded before the loop header
  Reg64 d = Def(ec);
  Value cur = ec.cur_reg[in.imm];
  if (ec.dirty[in.imm]) {
    LoadTo(ec, d, cur);
  } else {
    ec.gen.mov(d, qword[r12 + RegOff(in.imm)]);
  }
}
void EmitSetReg(EmitContext& ec, const ir::Inst& in) {
  ec.cur_reg[in.imm] = in.args[0];
  ec.dirty[in.imm] = true;
}
void EmitGetFlag(EmitContext& ec, const ir::Inst& in) {
  int bit = static_cast<int>(in.imm);
  if (ec.pending_mask & (1ull << bit)) {
    EvalToRax(ec, ec.pending_flag[bit]);
    Reg64 d = Def(ec);
    ec.gen.mov(d, rax);
    return;
  }
  Reg64 d = Def(ec);
  ec.gen.mov(d, qword[r12 + kFlagsOff]);
  if (bit != 0) ec.gen.shr(d, bit);
  ec.gen.and_(d.cvt32(), 1);
}
void EmitSetFlag(EmitContext& ec, const ir::Inst& in) {
  ec.pending_flag[in.imm] = in.args[0];
  ec.pending_mask |= 1ull << in.imm;
}
void EmitGetXmm(EmitContext& ec, const ir::Inst& in) {
  ec.gen.movdqu(xmm0, xword[r12 + XmmOff(in.imm)]);
  VResult(ec, xmm0);
}
void EmitSetXmm(EmitContext& ec, const ir::Inst& in) {
  VArg(ec, xmm0, 0);
  ec.gen.movdqu(xword[r12 + XmmOff(in.imm)], xmm0);
}

void EmitAdd(EmitContext& ec, const ir::Inst& in) {
  Binary(ec, in, &Xbyak::CodeGenerator::add, &Xbyak::CodeGenerator::add);
}
void EmitSub(EmitContext& ec, const ir::Inst& in) {
  Binary(ec, in, &Xbyak::CodeGenerator::sub, &Xbyak::CodeGenerator::sub);
}
void EmitAnd(EmitContext& ec, const ir::Inst& in) {
  Binary(ec, in, &Xbyak::CodeGenerator::and_, &Xbyak::CodeGenerator::and_);
}
void EmitOr(EmitContext& ec, const ir::Inst& in) {
  Binary(ec, in, &Xbyak::CodeGenerator::or_, &Xbyak::CodeGenerator::or_);
}
void EmitXor(EmitContext& ec, const ir::Inst& in) {
  Binary(ec, in, &Xbyak::CodeGenerator::xor_, &Xbyak::CodeGenerator::xor_);
}
void EmitShl(EmitContext& ec, const ir::Inst& in) { Shift(ec, in, &Xbyak::CodeGenerator::shl); }
void EmitShr(EmitContext& ec, const ir::Inst& in) { Shift(ec, in, &Xbyak::CodeGenerator::shr); }
void EmitSar(EmitContext& ec, const ir::Inst& in) { Shift(ec, in, &Xbyak::CodeGenerator::sar); }
void EmitMul(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitMulHiU(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitMulHiS(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitNot(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitByteSwap(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitZeroExt(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitSignExt(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitSelect(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitIsZero(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitSignOf(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitParityOf(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitCarryAdd(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitCarrySub(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitOverflowAdd(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitOverflowSub(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitAuxCarry(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitTestBit(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitMulOverflow(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitBoolNot(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitBoolAnd(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitBoolOr(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitBoolXor(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }
void EmitBoolToU64(EmitContext& ec, const ir::Inst& in) { Pure(ec, in); }

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
  FlushForBarrier(ec);
  LoadTo(ec, rax, in.args[0]);
  uint32_t saved = PushLive(ec);
  ec.gen.mov(rdi, rbx);
  ec.gen.mov(rsi, rax);
  ec.gen.mov(edx, static_cast<uint32_t>(in.imm));
  CallHelper(ec, reinterpret_cast<const void*>(&HelperLoad));
  PopLive(ec, saved);
  CheckFault(ec);
  Reg64 d = Def(ec);
  ec.gen.mov(d, rax);
}
void EmitStore(EmitContext& ec, const ir::Inst& in) {
  FlushForBarrier(ec);
  LoadTo(ec, rax, in.args[0]);
  LoadTo(ec, rdx, in.args[1]);
  uint32_t saved = PushLive(ec);
  ec.gen.mov(rdi, rbx);
  ec.gen.mov(rsi, rax);
  ec.gen.mov(ecx, static_cast<uint32_t>(in.imm));
  CallHelper(ec, reinterpret_cast<const void*>(&HelperStore));
  PopLive(ec, saved);
  CheckFault(ec);
}
void EmitLoadV128(EmitContext& ec, const ir::Inst& in) {
  FlushForBarrier(ec);
  LoadTo(ec, rax, in.args[0]);
  uint32_t saved = PushLive(ec);
  ec.gen.mov(rdi, rbx);
  ec.gen.mov(rsi, rax);
  ec.gen.mov(edx, static_cast<uint32_t>(in.imm));
  ec.gen.lea(rcx, VSlot(ec.index));
  CallHelper(ec, reinterpret_cast<const void*>(&HelperLoad128));
  PopLive(ec, saved);
  ec.loc[ec.index] = Loc{Loc::kSlot, 0};
  CheckFault(ec);
}
void EmitStoreV128(EmitContext& ec, const ir::Inst& in) {
  FlushForBarrier(ec);
  LoadTo(ec, rax, in.args[0]);
  uint32_t saved = PushLive(ec);
  ec.gen.mov(rdi, rbx);
  ec.gen.mov(rsi, rax);
  ec.gen.mov(edx, static_cast<uint32_t>(in.imm));
  ec.gen.lea(rcx, VSlot(in.args[1]));
  CallHelper(ec, reinterpret_cast<const void*>(&HelperStore128));
  PopLive(ec, saved);
  CheckFault(ec);
}
void EmitCheckCanonical(EmitContext& ec, const ir::Inst& in) {
  Xbyak::CodeGenerator& g = ec.gen;
  Xbyak::Label ok;
  FlushForBarrier(ec);
  LoadTo(ec, rax, in.args[0]);
  g.mov(rcx, rax);
  g.shl(rcx, 16);
  g.sar(rcx, 16);
  g.cmp(rcx, rax);
  g.je(ok, Xbyak::CodeGenerator::T_NEAR);
  // Not canonical: the helper records the fault.
  LoadTo(ec, rsi, in.args[0]);
  g.mov(rdi, rbx);
  CallHelper(ec, reinterpret_cast<const void*>(&HelperCheckCanonical));
  Leave(ec, kExitStop, true, ec.insn_rip, ec.lifted_after + (ec.insn_lifted ? 1 : 0));
  g.L(ok);
}
void EmitCheckCodeWrite(EmitContext& ec, const ir::Inst& in) {
  // The instruction is complete: continue at the next one after a flush.
  Xbyak::Label ok;
  ec.gen.cmp(byte[rbx + offsetof(JitContext, code_written)], 0);
  ec.gen.jz(ok, Xbyak::CodeGenerator::T_NEAR);
  FlushState(ec);
  Leave(ec, kExitFlush, true, in.imm, ec.lifted_after);
  ec.gen.L(ok);
}
void EmitInterpret(EmitContext& ec, const ir::Inst& in) {
  // The interpreter reads and writes the guest state in memory.
  FlushForBarrier(ec);
  uint32_t saved = PushLive(ec);
  ec.gen.mov(rdi, rbx);
  ec.gen.mov(rsi, in.imm2);
  ec.gen.mov(rdx, in.imm);
  CallHelper(ec, reinterpret_cast<const void*>(&HelperInterpret));
  PopLive(ec, saved);
  // The helper set rip and returns the exit code; keep eax.
  Xbyak::Label ok;
  ec.gen.test(eax, eax);
  ec.gen.jz(ok, Xbyak::CodeGenerator::T_NEAR);
  if (ec.lifted_after != 0) ec.gen.sub(r14, ec.lifted_after);
  ec.gen.jmp(ec.epilogue, Xbyak::CodeGenerator::T_NEAR);
  ec.gen.L(ok);
}

void EmitExitJump(EmitContext& ec, const ir::Inst& in) {
  if (ec.self_loop && in.imm == ec.block.guest_addr) {
    BackEdge(ec);
    return;
  }
  FlushState(ec);
  ChainExit(ec, in.imm);
}
// Sets the host ZF from condition `c` and returns whether ZF=1 means the
// condition holds (fused BoolNot and IsZero ops are folded into the test).
bool TestCondition(EmitContext& ec, Value c) {
  Xbyak::CodeGenerator& g = ec.gen;
  bool zf_true = false;
  while (!IsConst(ec, c) && ec.loc[c].kind == Loc::kFused && ec.block.insts[c].op == Op::BoolNot) {
    zf_true = !zf_true;
    c = ec.block.insts[c].args[0];
  }
  if (!IsConst(ec, c) && ec.block.insts[c].op == Op::IsZero &&
      (ec.loc[c].kind == Loc::kFused || ec.loc[c].kind == Loc::kDeferred)) {
    const ir::Inst& z = ec.block.insts[c];
    Value y = z.args[0];
    Reg64 r = rax;
    if (!IsConst(ec, y) && ec.loc[y].kind == Loc::kReg) {
      r = kPool[ec.loc[y].reg];
    } else {
      LoadTo(ec, rax, y);
    }
    switch (z.imm) {
      case 1:
        g.test(r.cvt8(), r.cvt8());
        break;
      case 2:
        g.test(r.cvt16(), r.cvt16());
        break;
      case 4:
        g.test(r.cvt32(), r.cvt32());
        break;
      default:
        g.test(r, r);
        break;
    }
    return !zf_true;
  }
  if (!IsConst(ec, c) && ec.loc[c].kind == Loc::kReg) {
    g.test(kPool[ec.loc[c].reg].cvt32(), kPool[ec.loc[c].reg].cvt32());
  } else {
    LoadTo(ec, rax, c);
    g.test(eax, eax);
  }
  return zf_true;
}

void EmitExitCond(EmitContext& ec, const ir::Inst& in) {
  Xbyak::CodeGenerator& g = ec.gen;
  bool loop_taken = ec.self_loop && in.imm == ec.block.guest_addr;
  bool loop_not_taken = ec.self_loop && !loop_taken && in.imm2 == ec.block.guest_addr;
  if (!loop_taken && !loop_not_taken) FlushState(ec);
  bool zf_true = TestCondition(ec, in.args[0]);
  Xbyak::Label other;
  if (loop_taken || loop_not_taken) {
    // Jump to `other` (the exit that leaves) unless the loop goes on.
    if (loop_taken == zf_true) {
      g.jnz(other, Xbyak::CodeGenerator::T_NEAR);
    } else {
      g.jz(other, Xbyak::CodeGenerator::T_NEAR);
    }
    BackEdge(ec);
    g.L(other);
    FlushState(ec);
    ChainExit(ec, loop_taken ? in.imm2 : in.imm);
    return;
  }
  if (zf_true) {
    g.jnz(other, Xbyak::CodeGenerator::T_NEAR);
  } else {
    g.jz(other, Xbyak::CodeGenerator::T_NEAR);
  }
  ChainExit(ec, in.imm);
  g.L(other);
  ChainExit(ec, in.imm2);
}
void EmitExitIndirect(EmitContext& ec, const ir::Inst& in) {
  FlushState(ec);
  LoadTo(ec, rax, in.args[0]);
  ec.gen.mov(qword[r12 + kRipOff], rax);
  ec.gen.mov(eax, kExitLookup);
  ec.gen.jmp(ec.epilogue, Xbyak::CodeGenerator::T_NEAR);
}
void EmitExitState(EmitContext& ec, const ir::Inst&) {
  FlushState(ec);
  ec.gen.mov(eax, kExitLookup);
  ec.gen.jmp(ec.epilogue, Xbyak::CodeGenerator::T_NEAR);
}
void EmitExitHalt(EmitContext& ec, const ir::Inst& in) {
  FlushState(ec);
  Leave(ec, kExitHalt, true, in.imm, 0);
}

namespace {

using EmitFn = void (*)(EmitContext&, const ir::Inst&);
constexpr EmitFn kEmitters[] = {
#define OPCODE(name, ret, a1, a2, a3) &Emit##name,
#include "engines/translator/ir/opcodes.inc"
#undef OPCODE
};

// Per-block analysis buffers, kept between blocks so that translating a
// block does not allocate.
struct Scratchpad {
  std::vector<Loc> loc;
  std::vector<int32_t> need;
  std::vector<uint8_t> hoisted;
  std::vector<uint8_t> deferred;
  std::vector<uint8_t> nondeferred_user;
  std::vector<uint32_t> users;
  std::vector<uint32_t> flag_users;  // of which SetFlag
};

// Decides which GetReg ops a self-looping block loads before its header
// (every read of a register's value at the block's start) and which flags
// its next iteration overwrites before any read or barrier. Returns false
// when the block is not a loop the backend keeps in registers.
bool PlanLoop(const ir::Block& b, std::vector<uint8_t>* hoisted, uint64_t* drop_flags) {
  const ir::Inst& last = b.insts.back();
  bool loops = (last.op == Op::ExitJump && last.imm == b.guest_addr) ||
               (last.op == Op::ExitCond && (last.imm == b.guest_addr || last.imm2 == b.guest_addr));
  if (!loops) return false;
  bool set[kGuestRegs] = {};
  bool read[kGuestRegs] = {};
  int regs = 0;
  uint64_t flags_set = 0, flags_used = 0;
  bool barrier_seen = false;
  for (size_t i = 0; i < b.insts.size(); ++i) {
    const ir::Inst& in = b.insts[i];
    if (in.op == Op::Interpret) return false;
    if (in.op == Op::GetReg && !set[in.imm]) {
      if (read[in.imm]) return false;  // read twice (unoptimized IR)
      read[in.imm] = true;
      (*hoisted)[i] = 1;
      if (++regs > kMaxLoopRegs) return false;
    }
    if (in.op == Op::SetReg) set[in.imm] = true;
    uint64_t bit = 1ull << (in.imm & 63);
    if (in.op == Op::GetFlag && !(flags_set & bit)) flags_used |= bit;
    if (in.op == Op::SetFlag && !(flags_used & bit) && !barrier_seen) flags_set |= bit;
    if (ir::IsBarrier(in.op) && !ir::IsTerminator(in.op)) barrier_seen = true;
  }
  *drop_flags = flags_set;
  return true;
}

// Liveness: `need` of every value, and which pure values are deferred
// (computed only where the guest state is written back).
void Analyze(const ir::Block& b, const bool* loop_regs, Scratchpad& sp) {
  size_t n = b.insts.size();
  // Guest state reads of values written by the block: at every barrier and
  // exit, and at GetReg/GetFlag of written state (unoptimized IR).
  Value cur_reg[kGuestRegs];
  Value cur_flag[kGuestFlags];
  uint64_t flags_set = 0;  // the entries of cur_flag that hold a value
  std::fill(std::begin(cur_reg), std::end(cur_reg), ir::kNoValue);
  auto use = [&](Value v, size_t i) {
    if (v != ir::kNoValue) sp.need[v] = std::max(sp.need[v], static_cast<int32_t>(i));
  };
  for (size_t i = 0; i < n; ++i) {
    const ir::Inst& in = b.insts[i];
    switch (in.op) {
      case Op::SetReg:
        cur_reg[in.imm] = in.args[0];
        break;
      case Op::SetFlag:
        cur_flag[in.imm] = in.args[0];
        flags_set |= 1ull << in.imm;
        break;
      case Op::GetReg:
        use(cur_reg[in.imm], i);
        break;
      case Op::GetFlag:
        if (flags_set & (1ull << in.imm)) use(cur_flag[in.imm], i);
        break;
      default:
        if (ir::IsBarrier(in.op)) {
          for (Value v : cur_reg) use(v, i);
          for (uint64_t m = flags_set; m != 0; m &= m - 1) use(cur_flag[__builtin_ctzll(m)], i);
          // Written back there (a loop register's value is still read by
          // the back edge).
          if (in.op != Op::CheckCodeWrite && !ir::IsTerminator(in.op)) {
            for (int r = 0; r < kGuestRegs; ++r) {
              if (!loop_regs[r]) cur_reg[r] = ir::kNoValue;
            }
            flags_set = 0;
          }
        }
        break;
    }
  }
  for (size_t k = n; k-- > 0;) {
    const ir::Inst& in = b.insts[k];
    if (IsPure(in.op) && sp.users[k] > 0 && !sp.nondeferred_user[k]) sp.deferred[k] = 1;
    bool state_write = in.op == Op::SetReg || in.op == Op::SetFlag;
    int nargs = ir::Info(in.op).num_args;
    for (int a = 0; a < nargs; ++a) {
      Value v = in.args[a];
      ++sp.users[v];
      if (in.op == Op::SetFlag) ++sp.flag_users[v];
      if (in.op != Op::SetFlag && !sp.deferred[k]) sp.nondeferred_user[v] = 1;
      if (sp.deferred[k]) {
        sp.need[v] = std::max(sp.need[v], sp.need[k]);
      } else if (!state_write) {
        sp.need[v] = std::max(sp.need[v], static_cast<int32_t>(k));
      }
    }
  }
}

// Picks the loop registers whose last value in the block is computed
// straight into the register: when the register's value at the start is no
// longer read where that value is defined, and no barrier (which writes
// the state back) lies between the definition and the register write.
void PlanCoalescing(EmitContext& ec, const ir::Block& b, const int32_t* entry_need) {
  size_t n = b.insts.size();
  for (int r = 0; r < kGuestRegs; ++r) {
    if (ec.loop_reg[r] < 0) continue;
    size_t s = n;
    for (size_t i = n; i-- > 0;) {
      if (b.insts[i].op == Op::SetReg && b.insts[i].imm == static_cast<uint64_t>(r)) {
        s = i;
        break;
      }
    }
    if (s == n) continue;
    Value v = b.insts[s].args[0];
    const ir::Inst& def = b.insts[v];
    if (IsConstOp(def.op) || def.op == Op::GetReg || ec.loc[v].kind == Loc::kDeferred) continue;
    Value entry = ec.pool_value[ec.loop_reg[r]];
    int32_t d = static_cast<int32_t>(v);
    // d = a op b is written as "mov d, a; op d, b": b must not be the entry
    // value there.
    bool binary = def.op == Op::Add || def.op == Op::Sub || def.op == Op::And || def.op == Op::Or ||
                  def.op == Op::Xor;
    bool ok = entry_need[r] < d || (entry_need[r] == d && !(binary && def.args[1] == entry));
    for (size_t i = v + 1; ok && i < s; ++i) ok = !ir::IsBarrier(b.insts[i].op);
    for (int k = 0; ok && k < ec.num_coalesced; ++k) ok = ec.coalesce_value[k] != v;
    if (!ok) continue;
    ec.coalesce_value[ec.num_coalesced] = v;
    ec.coalesce_reg[ec.num_coalesced] = ec.loop_reg[r];
    ++ec.num_coalesced;
  }
}

}  // namespace

const uint8_t* EmitBlock(Xbyak::CodeGenerator& gen, const ir::Block& block, const void* epilogue) {
  static thread_local Scratchpad sp;
  size_t n = block.insts.size();
  sp.loc.assign(n, Loc{});
  sp.need.assign(n, -1);
  sp.hoisted.assign(n, 0);
  sp.deferred.assign(n, 0);
  sp.nondeferred_user.assign(n, 0);
  sp.users.assign(n, 0);
  sp.flag_users.assign(n, 0);
  EmitContext ec{gen, block, epilogue, sp.loc, sp.need, sp.hoisted};
  std::fill(std::begin(ec.pool_value), std::end(ec.pool_value), ir::kNoValue);
  std::fill(std::begin(ec.cur_reg), std::end(ec.cur_reg), ir::kNoValue);
  std::fill(std::begin(ec.loop_reg), std::end(ec.loop_reg), -1);
  ec.self_loop = PlanLoop(block, &sp.hoisted, &ec.drop_flags);
  if (!ec.self_loop) std::fill(sp.hoisted.begin(), sp.hoisted.end(), 0);
  bool loop_regs[kGuestRegs] = {};
  for (size_t i = 0; i < n; ++i) {
    if (sp.hoisted[i]) loop_regs[block.insts[i].imm] = true;
  }
  Analyze(block, loop_regs, sp);
  for (size_t i = 0; i < n; ++i) {
    if (sp.deferred[i]) sp.loc[i].kind = Loc::kDeferred;
  }
  // A conditional exit's condition made of BoolNot and IsZero ops read by
  // nothing else becomes the exit's test.
  if (block.insts.back().op == Op::ExitCond) {
    int32_t last = static_cast<int32_t>(n - 1);
    Value c = block.insts.back().args[0];
    while (block.insts[c].op == Op::BoolNot && sp.users[c] == 1) {
      sp.loc[c].kind = Loc::kFused;
      c = block.insts[c].args[0];
    }
    if (block.insts[c].op == Op::IsZero && sp.users[c] - sp.flag_users[c] == 1) {
      // Also written to ZF (the usual case: jnz after dec): computed from
      // its argument where the flags are written back too.
      sp.loc[c].kind = sp.flag_users[c] != 0 ? Loc::kDeferred : Loc::kFused;
      last = std::max(last, sp.need[c]);
      c = block.insts[c].args[0];
    }
    sp.need[c] = std::max(sp.need[c], last);
  }

  const uint8_t* entry = gen.getCurr();
  // Prologue: the block budget, then count the lifted instructions as run
  // (ways out that leave early take back what did not run).
  gen.sub(r13, 1);
  size_t out_of_budget = JccForward(ec, 0x82);  // jc
  if (block.lifted_insns != 0) gen.add(r14, block.lifted_insns);
  if (ec.self_loop) {
    // The registers the loop reads, in pinned host registers; from the
    // header on they hold the guest registers (newer than the state).
    int32_t entry_need[kGuestRegs];
    for (size_t i = 0; i < n; ++i) {
      if (!sp.hoisted[i]) continue;
      entry_need[block.insts[i].imm] = sp.need[i];
      ec.index = i;
      Reg64 d = Def(ec);
      gen.mov(d, qword[r12 + RegOff(block.insts[i].imm)]);
      int r = sp.loc[i].reg;
      ec.pinned[r] = true;
      sp.need[i] = INT32_MAX;
      ec.loop_reg[block.insts[i].imm] = r;
      ec.cur_reg[block.insts[i].imm] = static_cast<Value>(i);
      ec.dirty[block.insts[i].imm] = true;
    }
    gen.L(ec.header);
    PlanCoalescing(ec, block, entry_need);
  }
  uint32_t lifted_seen = 0;
  for (size_t i = 0; i < n; ++i) {
    const ir::Inst& in = block.insts[i];
    ec.index = i;
    if (in.op == Op::InsnStart) {
      ec.insn_rip = in.imm;
      // Lifted unless the next op of this instruction is Interpret.
      ec.insn_lifted = !(i + 1 < n && block.insts[i + 1].op == Op::Interpret);
      if (ec.insn_lifted) ++lifted_seen;
      ec.lifted_after = block.lifted_insns - lifted_seen;
    }
    kEmitters[static_cast<int>(in.op)](ec, in);
    // Free the registers of values not read after this instruction. Only a
    // barrier or a state read is the last read of a value that is not one
    // of its arguments (guest state written back, deferred flags); other
    // ops end at most their arguments and their own (unread) value.
    auto free_if_dead = [&](Value v) {
      const Loc& l = sp.loc[v];
      if (l.kind != Loc::kReg || ec.pool_value[l.reg] != v || ec.pinned[l.reg]) return;
      if (sp.need[v] > static_cast<int32_t>(i)) return;
      ec.pool_value[l.reg] = ir::kNoValue;
      sp.loc[v] = Loc{};
    };
    if (ir::IsBarrier(in.op) || in.op == Op::GetReg || in.op == Op::GetFlag) {
      for (int r = 0; r < kPoolSize; ++r) {
        if (ec.pool_value[r] != ir::kNoValue) free_if_dead(ec.pool_value[r]);
      }
    } else {
      for (Value a : in.args) {
        if (a != ir::kNoValue) free_if_dead(a);
      }
      free_if_dead(static_cast<Value>(i));
    }
  }
  Land(ec, out_of_budget);
  gen.add(r13, 1);
  StoreImm64(ec, qword[r12 + kRipOff], block.guest_addr);
  gen.mov(eax, kExitBudget);
  gen.jmp(epilogue, Xbyak::CodeGenerator::T_NEAR);
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
  gen.mov(r13, qword[rdi + kBudgetOff]);
  gen.mov(r14, qword[rdi + kTranslatedOff]);
  gen.jmp(rsi);
  *epilogue = gen.getCurr();
  gen.mov(qword[rbx + kBudgetOff], r13);
  gen.mov(qword[rbx + kTranslatedOff], r14);
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

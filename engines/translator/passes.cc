#include "engines/translator/passes.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <vector>

namespace cpudiff::jit {
namespace {

using ir::Inst;
using ir::Op;
using ir::Value;

uint64_t Mask(uint64_t size) { return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1; }
uint64_t Msb(uint64_t v, uint64_t size) { return (v >> (size * 8 - 1)) & 1; }

// Keeps the instructions whose `keep` is set, in order, and renumbers the
// arguments (in place: translating a block does not allocate once the
// buffers have grown).
void Compact(ir::Block& b, const std::vector<uint8_t>& keep) {
  static thread_local std::vector<Value> repl;
  repl.assign(b.insts.size(), ir::kNoValue);
  size_t out = 0;
  for (size_t i = 0; i < b.insts.size(); ++i) {
    if (!keep[i]) continue;
    repl[i] = static_cast<Value>(out);
    Inst in = b.insts[i];
    for (Value& a : in.args) {
      if (a != ir::kNoValue) a = repl[a];
    }
    b.insts[out++] = in;
  }
  b.insts.resize(out);
}

bool IsConst(const ir::Block& b, Value v) {
  Op op = b.insts[v].op;
  return op == Op::Const || op == Op::Const1;
}

}  // namespace

void ForwardState(ir::Block& b) {
  static thread_local std::vector<Value> repl;
  repl.resize(b.insts.size());
  // Key: kind * 64 + number (0: GPR, 1: flag, 2: XMM).
  Value known[192];
  std::fill(std::begin(known), std::end(known), ir::kNoValue);
  for (size_t i = 0; i < b.insts.size(); ++i) {
    repl[i] = static_cast<Value>(i);
    Inst& in = b.insts[i];
    for (Value& a : in.args) {
      if (a != ir::kNoValue) a = repl[a];
    }
    uint32_t key;
    switch (in.op) {
      case Op::GetReg:
      case Op::GetFlag:
      case Op::GetXmm: {
        uint32_t kind = in.op == Op::GetReg ? 0 : in.op == Op::GetFlag ? 1 : 2;
        key = kind * 64 + static_cast<uint32_t>(in.imm);
        if (known[key] != ir::kNoValue) {
          repl[i] = known[key];
        } else {
          known[key] = static_cast<Value>(i);
        }
        break;
      }
      case Op::SetReg:
        known[static_cast<uint32_t>(in.imm)] = in.args[0];
        break;
      case Op::SetFlag:
        known[64 + static_cast<uint32_t>(in.imm)] = in.args[0];
        break;
      case Op::SetXmm:
        known[128 + static_cast<uint32_t>(in.imm)] = in.args[0];
        break;
      case Op::Interpret:
        std::fill(std::begin(known), std::end(known), ir::kNoValue);
        break;
      default:
        break;
    }
  }
}

void FoldConstants(ir::Block& b) {
  for (size_t i = 0; i < b.insts.size(); ++i) {
    Inst& in = b.insts[i];
    const ir::OpInfo& info = ir::Info(in.op);
    if (info.num_args == 0) continue;
    if (in.op == Op::ExitCond) {
      if (IsConst(b, in.args[0])) {
        uint64_t target = b.insts[in.args[0]].imm ? in.imm : in.imm2;
        in = Inst{Op::ExitJump, {ir::kNoValue, ir::kNoValue, ir::kNoValue}, target, 0};
      }
      continue;
    }
    if (in.op == Op::Select && IsConst(b, in.args[0])) {
      // A known condition with a constant chosen value is that constant (a
      // non-constant choice stays a Select: the backend handles it).
      Value chosen = b.insts[in.args[0]].imm ? in.args[1] : in.args[2];
      if (IsConst(b, chosen)) {
        in = Inst{Op::Const, {ir::kNoValue, ir::kNoValue, ir::kNoValue}, b.insts[chosen].imm, 0};
      }
      continue;
    }
    if (ir::HasSideEffect(in.op) || info.ret == ir::Type::V128) continue;
    bool all_const = true;
    uint64_t v[3] = {0, 0, 0};
    for (int a = 0; a < info.num_args; ++a) {
      if (!IsConst(b, in.args[a])) {
        all_const = false;
        break;
      }
      v[a] = b.insts[in.args[a]].imm;
    }
    if (!all_const) continue;
    uint64_t r = 0, s = in.imm;
    switch (in.op) {
      case Op::Add:
        r = v[0] + v[1];
        break;
      case Op::Sub:
        r = v[0] - v[1];
        break;
      case Op::And:
        r = v[0] & v[1];
        break;
      case Op::Or:
        r = v[0] | v[1];
        break;
      case Op::Xor:
        r = v[0] ^ v[1];
        break;
      case Op::Shl:
        r = v[0] << (v[1] & 63);
        break;
      case Op::Shr:
        r = v[0] >> (v[1] & 63);
        break;
      case Op::Not:
        r = ~v[0];
        break;
      case Op::ZeroExt:
        r = v[0] & Mask(s);
        break;
      case Op::SignExt: {
        int shift = 64 - static_cast<int>(s) * 8;
        r = static_cast<uint64_t>(static_cast<int64_t>(v[0] << shift) >> shift);
        break;
      }
      case Op::IsZero:
        r = (v[0] & Mask(s)) == 0;
        break;
      case Op::SignOf:
        r = Msb(v[0], s);
        break;
      case Op::ParityOf:
        r = !__builtin_parity(static_cast<uint8_t>(v[0]));
        break;
      case Op::CarryAdd:
        r = Msb((v[0] & v[1]) | ((v[0] | v[1]) & ~v[2]), s);
        break;
      case Op::CarrySub:
        r = Msb((~v[0] & v[1]) | (~(v[0] ^ v[1]) & v[2]), s);
        break;
      case Op::OverflowAdd:
        r = Msb((v[0] ^ v[2]) & (v[1] ^ v[2]), s);
        break;
      case Op::OverflowSub:
        r = Msb((v[0] ^ v[1]) & (v[0] ^ v[2]), s);
        break;
      case Op::AuxCarry:
        r = ((v[0] ^ v[1] ^ v[2]) >> 4) & 1;
        break;
      case Op::BoolNot:
        r = !v[0];
        break;
      case Op::BoolAnd:
        r = v[0] & v[1];
        break;
      case Op::BoolOr:
        r = v[0] | v[1];
        break;
      case Op::BoolXor:
        r = v[0] ^ v[1];
        break;
      case Op::BoolToU64:
        r = v[0];
        break;
      case Op::Select:
        r = v[0] ? v[1] : v[2];
        break;
      default:
        continue;
    }
    bool is_bool = info.ret == ir::Type::U1;
    in = Inst{is_bool ? Op::Const1 : Op::Const,
              {ir::kNoValue, ir::kNoValue, ir::kNoValue},
              is_bool ? (r & 1) : r,
              0};
  }
}

void EliminateDeadStateWrites(ir::Block& b) {
  // Walking backwards: `overwritten` holds the state written later with no
  // read or barrier in between.
  bool overwritten[192] = {};
  static thread_local std::vector<uint8_t> keep;
  keep.assign(b.insts.size(), 1);
  for (size_t k = b.insts.size(); k-- > 0;) {
    const Inst& in = b.insts[k];
    if (ir::IsBarrier(in.op)) {
      std::fill(std::begin(overwritten), std::end(overwritten), false);
      continue;
    }
    uint32_t kind;
    switch (in.op) {
      case Op::SetReg:
      case Op::SetFlag:
      case Op::SetXmm: {
        kind = in.op == Op::SetReg ? 0 : in.op == Op::SetFlag ? 1 : 2;
        uint32_t key = kind * 64 + static_cast<uint32_t>(in.imm);
        if (overwritten[key]) keep[k] = 0;
        overwritten[key] = true;
        break;
      }
      case Op::GetReg:
      case Op::GetFlag:
      case Op::GetXmm: {
        kind = in.op == Op::GetReg ? 0 : in.op == Op::GetFlag ? 1 : 2;
        overwritten[kind * 64 + static_cast<uint32_t>(in.imm)] = false;
        break;
      }
      default:
        break;
    }
  }
  Compact(b, keep);
}

void EliminateDeadCode(ir::Block& b) {
  static thread_local std::vector<uint8_t> live;
  live.assign(b.insts.size(), 0);
  for (size_t k = b.insts.size(); k-- > 0;) {
    const Inst& in = b.insts[k];
    if (ir::HasSideEffect(in.op) || live[k]) {
      live[k] = 1;
      for (Value a : in.args) {
        if (a != ir::kNoValue) live[a] = 1;
      }
    }
  }
  Compact(b, live);
}

namespace {

// EliminateDeadStateWrites and EliminateDeadCode in one backward walk and
// one compaction (both walk backwards; a dropped write keeps no value live).
void EliminateDeadWritesAndCode(ir::Block& b) {
  bool overwritten[192] = {};
  static thread_local std::vector<uint8_t> live;
  live.assign(b.insts.size(), 0);
  for (size_t k = b.insts.size(); k-- > 0;) {
    const Inst& in = b.insts[k];
    bool keep = true;
    if (ir::IsBarrier(in.op)) {
      std::fill(std::begin(overwritten), std::end(overwritten), false);
    } else {
      switch (in.op) {
        case Op::SetReg:
        case Op::SetFlag:
        case Op::SetXmm: {
          uint32_t kind = in.op == Op::SetReg ? 0 : in.op == Op::SetFlag ? 1 : 2;
          uint32_t key = kind * 64 + static_cast<uint32_t>(in.imm);
          keep = !overwritten[key];
          overwritten[key] = true;
          break;
        }
        case Op::GetReg:
        case Op::GetFlag:
        case Op::GetXmm: {
          uint32_t kind = in.op == Op::GetReg ? 0 : in.op == Op::GetFlag ? 1 : 2;
          overwritten[kind * 64 + static_cast<uint32_t>(in.imm)] = false;
          break;
        }
        default:
          break;
      }
    }
    if (keep && (ir::HasSideEffect(in.op) || live[k])) {
      live[k] = 1;
      for (Value a : in.args) {
        if (a != ir::kNoValue) live[a] = 1;
      }
    } else {
      live[k] = 0;
    }
  }
  Compact(b, live);
}

}  // namespace

void Optimize(ir::Block& b) {
  ForwardState(b);
  FoldConstants(b);
  EliminateDeadWritesAndCode(b);
}

}  // namespace cpudiff::jit

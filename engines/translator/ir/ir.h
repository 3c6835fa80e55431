// The translator's intermediate representation.
//
// A Block is one guest basic block as a list of instructions in SSA form:
// every instruction defines at most one value, named by its index, and its
// arguments name earlier instructions. Guest registers, flags and XMM
// registers live in the guest state and are read and written with explicit
// ops, so flags are ordinary IR values (each one a U1) and the passes can
// see which are dead. The opcode list is engines/translator/ir/opcodes.inc.
// Plain data; not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cpudiff::ir {

enum class Type : uint8_t { Void, U1, U64, V128 };
std::string_view TypeName(Type t);

enum class Op : uint8_t {
#define OPCODE(name, ret, a1, a2, a3) name,
#include "engines/translator/ir/opcodes.inc"
#undef OPCODE
  kCount
};
inline constexpr int kNumOps = static_cast<int>(Op::kCount);

struct OpInfo {
  std::string_view name;
  Type ret;
  Type args[3];
  int num_args;
};
const OpInfo& Info(Op op);

// Memory-access flags in Load/Store immediates (the low byte is the size).
inline constexpr uint64_t kMemWrite = 1 << 8;
inline constexpr uint64_t kMemStack = 1 << 9;
inline constexpr uint64_t kMemAlign16 = 1 << 10;
// GetReg/SetReg numbers beyond the 16 GPRs.
inline constexpr uint64_t kRegFsBaseIr = 16;
inline constexpr uint64_t kRegGsBaseIr = 17;

using Value = uint32_t;
inline constexpr Value kNoValue = ~0u;

struct Inst {
  Op op;
  Value args[3] = {kNoValue, kNoValue, kNoValue};
  uint64_t imm = 0;
  uint64_t imm2 = 0;
};

// True for ops that may leave the block before its end (faults, the
// interpreter, exits): state is written back before them.
bool IsBarrier(Op op);
bool IsTerminator(Op op);
// True for ops with an effect besides their value (never removed as dead).
bool HasSideEffect(Op op);

struct Block {
  uint64_t guest_addr = 0;
  std::vector<Inst> insts;
  // Guest instructions in the block, and how many of them are lifted (not
  // run by the interpreter).
  uint32_t guest_insns = 0;
  uint32_t lifted_insns = 0;

  Value Emit(Op op, Value a = kNoValue, Value b = kNoValue, Value c = kNoValue, uint64_t imm = 0,
             uint64_t imm2 = 0) {
    insts.push_back(Inst{op, {a, b, c}, imm, imm2});
    return static_cast<Value>(insts.size() - 1);
  }
  Type TypeOf(Value v) const { return Info(insts[v].op).ret; }
};

// Checks types, argument order (SSA), immediates and the terminator.
// Returns "" when valid, else what is wrong and where.
std::string Validate(const Block& b);

// One instruction a line: "%3 = Add %1, %2" with immediates in hex.
std::string Print(const Block& b);

}  // namespace cpudiff::ir

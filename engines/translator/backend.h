// The translator's backend: IR -> host x86-64 code with Xbyak.
//
// It sees only the IR (never guest bytes). The emitted code keeps the
// JitContext in rbx and the guest CpuState in r12; every IR value has a
// 16-byte slot in the context, constants are materialized where they are
// used. Guest memory is reached through helper calls that check the case's
// regions and permissions; a fault leaves the block through a stub that
// sets the guest rip to the faulting instruction (its InsnStart), so the
// guest state is exactly the one before it.
#pragma once

#include <xbyak/xbyak.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "engines/emulator/cpu.h"
#include "engines/translator/ir/ir.h"

namespace cpudiff::jit {

class Translator;

// Exit codes a block returns to the dispatcher.
enum ExitCode : uint32_t {
  kExitLookup = 0,  // continue at the guest rip in the state
  kExitStop = 1,    // fault or stop: the outcome is in the translator
  kExitFlush = 2,   // code was written: flush the cache, continue at rip
  kExitHalt = 3,    // hlt: rip is its address
  kExitBudget = 4,  // the block budget ran out
};

inline constexpr size_t kMaxValues = 4096;

// Shared between the dispatcher, the helpers and the generated code.
struct JitContext {
  CpuState* state = nullptr;
  Translator* owner = nullptr;
  uint64_t budget = 0;       // blocks left to enter
  uint64_t translated = 0;   // guest instructions run as translated code
  uint64_t interpreted = 0;  // guest instructions run by the interpreter
  uint64_t chain_site = 0;   // the jmp rel32 of the last direct exit taken
  uint8_t faulted = 0;
  uint8_t code_written = 0;
  alignas(16) uint8_t slots[kMaxValues * 16];
};

// Per-block emission state.
struct EmitContext {
  Xbyak::CodeGenerator& gen;
  const ir::Block& block;
  const void* epilogue;
  size_t index = 0;           // the instruction being emitted
  uint64_t insn_rip = 0;      // guest address of the current instruction
  bool insn_lifted = false;   // whether the current instruction is lifted
  uint32_t lifted_after = 0;  // lifted instructions after the current one
  // The IR value rax holds at this point of the straight-line code (so that
  // a value computed by one op and used by the next is not reloaded), and
  // whether the current op left its result in rax.
  ir::Value in_rax = ir::kNoValue;
  bool result_in_rax = false;
  // Out-of-line exits, emitted after the block body: a label and its code.
  std::vector<std::pair<std::unique_ptr<Xbyak::Label>, std::function<void()>>>* stubs = nullptr;
};

// Helpers called from generated code (defined in translator.cc). They never
// throw: a fault sets JitContext::faulted and the outcome in the owner.
uint64_t HelperLoad(JitContext* ctx, uint64_t addr, uint64_t info);
void HelperStore(JitContext* ctx, uint64_t addr, uint64_t value, uint64_t info);
void HelperLoad128(JitContext* ctx, uint64_t addr, uint64_t info, void* out);
void HelperStore128(JitContext* ctx, uint64_t addr, uint64_t info, const void* in);
void HelperCheckCanonical(JitContext* ctx, uint64_t value);
// Runs one instruction in the interpreter; returns an ExitCode (kExitLookup
// when execution goes on in the block).
uint32_t HelperInterpret(JitContext* ctx, const DecodedInsn* d, uint64_t rip);

// One emitter per IR op (opcodes.inc); a missing one fails to link.
#define OPCODE(name, ret, a1, a2, a3) void Emit##name(EmitContext& ec, const ir::Inst& in);
#include "engines/translator/ir/opcodes.inc"
#undef OPCODE

// Emits `block` at the generator's current position and returns its entry.
// Throws Xbyak::Error when the buffer is full.
const uint8_t* EmitBlock(Xbyak::CodeGenerator& gen, const ir::Block& block, const void* epilogue);

// Emits the entry trampoline `uint32_t enter(JitContext*, const void* code)`
// and its epilogue (the address blocks jump to when they exit).
void EmitTrampoline(Xbyak::CodeGenerator& gen, const void** enter, const void** epilogue);

}  // namespace cpudiff::jit

// The translator's backend: IR -> host x86-64 code with Xbyak.
//
// It sees only the IR (never guest bytes). The emitted code keeps the
// JitContext in rbx, the guest CpuState in r12, the blocks left to enter in
// r13 and the count of translated guest instructions in r14 (both written
// back to the context when generated code returns to the dispatcher).
//
// IR values live in host registers (a linear-scan allocation over the
// block, spilling to a 16-byte slot per value in the context when the
// registers run out); 128-bit values live in their slots. Guest registers
// and flags written by the block stay in host registers until a point where
// the guest state must be exact: an exit, the interpreter, or the way out
// of a faulting access (each fault check leaves through code that writes
// the state as it was at the start of the faulting instruction). Flag
// values only written to the state are computed on those ways out only.
// A block whose exit jumps back to its own start keeps the guest registers
// it reads in host registers from one iteration to the next.
//
// Guest memory is reached through helper calls that check the case's
// regions and permissions.
#pragma once

#include <xbyak/xbyak.h>

#include <cstdint>

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

// Per-block emission state (backend.cc).
struct EmitContext;

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

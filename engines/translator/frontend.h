// The translator's frontend: one guest basic block -> IR.
//
// Instructions are decoded with the shared ISA-table decoder
// (engines/x86/decoder.h) and lifted into IR ops; a form the frontend does
// not lift becomes an Interpret op that runs it with the emulator's
// semantics. A block ends after a branch, a halt, an interpreted
// instruction that may branch or stop, `max_insns` instructions, or before
// bytes that do not decode (the next block starts there and reports the
// fault precisely).
#pragma once

#include <cstdint>
#include <deque>

#include "engines/emulator/cpu.h"
#include "engines/translator/ir/ir.h"
#include "engines/x86/decoder.h"

namespace cpudiff::jit {

struct GuestBlock {
  ir::Block ir;
  // The decoded instructions (Interpret ops point into this deque, whose
  // elements never move).
  std::deque<DecodedInsn> decoded;
};

// Fetches and decodes the instruction at `rip` from the executable regions
// of `mem` with the emulator's fetch faults (#PF on fetch, #UD, #GP for a
// non-canonical rip or more than 15 bytes). Returns false and sets `*fault`
// when it cannot run; `*fault` may also be an unsupported outcome (AVX).
bool FetchDecode(emu::Memory& mem, uint64_t rip, emu::Vendor vendor, DecodedInsn* d,
                 Outcome* fault);

// True when the frontend lifts `id` into IR (rather than interpreting it).
bool IsLifted(const DecodedInsn& d);

// Lifts the block at `addr`. Returns false with `*fault` set when its first
// instruction cannot be fetched or decoded.
// `vendor` selects the undefined flags of lifted forms, as in the emulator.
bool LiftBlock(emu::Memory& mem, uint64_t addr, uint32_t max_insns, emu::Vendor vendor,
               GuestBlock* out, Outcome* fault);

}  // namespace cpudiff::jit

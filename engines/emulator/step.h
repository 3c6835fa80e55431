// One instruction through the emulator's semantics, for callers that run
// their own loop (the translator's interpreter fallback).
#pragma once

#include "engines/emulator/cpu.h"

namespace cpudiff::emu {

enum class StepStatus : uint8_t {
  kOk,           // executed; s.rip is the next instruction
  kStopped,      // a fault or stop: *outcome says which, state unchanged
  kCodeWritten,  // executed, and it wrote to executable memory
};

// Executes the decoded instruction `d` at c.s.rip. Never throws: faults and
// stops become `*outcome`.
StepStatus Step(Cpu& c, const DecodedInsn& d, Outcome* outcome);

// The outcome of a fault raised with GuestFault.
Outcome FaultOutcome(const GuestFault& f);

}  // namespace cpudiff::emu

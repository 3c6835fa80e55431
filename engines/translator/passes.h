// Optimization passes over one IR block. Each keeps the block valid
// (ir::Validate) and the guest state at every barrier exactly as the
// unoptimized block leaves it, so faults stay precise.
#pragma once

#include "engines/translator/ir/ir.h"

namespace cpudiff::jit {

// Replaces reads of guest registers and flags by the value last written or
// read in the block when no barrier (the interpreter) lies in between.
void ForwardState(ir::Block& b);
// Evaluates ops whose arguments are all constants; a conditional exit on a
// constant becomes a jump.
void FoldConstants(ir::Block& b);
// Removes writes of flags (and registers) that a later write of the same
// flag (register) overwrites before any read or barrier: flags are then
// computed only where they are read or live at a barrier or the exit.
void EliminateDeadStateWrites(ir::Block& b);
// Removes ops without side effects whose values are unused, and renumbers.
void EliminateDeadCode(ir::Block& b);

// All of the above, in order.
void Optimize(ir::Block& b);

}  // namespace cpudiff::jit

// Deciding whether a case may end by a jump to the runner instead of HLT.
//
// Corpus v1 appends one HLT byte (f4) to every case's code, so a stream that
// runs off its end halts. At CPL3 HLT is a #GP, i.e. a kernel exception and
// a signal per case: on a PVM guest that round trip alone costs ~10 us. The
// runner can instead place a jump to its own exit routine at the HLT's
// address; the case then ends without entering the kernel, with exactly the
// state it would have had at the HLT.
//
// The one difference is the bytes after the code: the stub is there instead
// of f4 and zeros. A case can observe them only by reading its own code
// region or by jumping past its end, so the stub is used only when neither
// can happen, which this analysis shows statically over the case's own
// bytes and initial state:
//   - the code decodes (Zydis) into instructions that end exactly at its end,
//     and execution starts at one of their boundaries;
//   - every instruction that changes RIP other than by falling through is a
//     direct relative branch to a boundary (the end itself included);
//   - every memory read has an address computed from registers that no
//     instruction of the case writes (so their initial values hold
//     throughout), and that address range does not touch the code region;
//   - no data region overlaps the code region's pages.
// Anything else (indirect branches, stack reads, string instructions, reads
// through a register the case computes) keeps the HLT.
//
// The same pass also bounds which data regions a case can write: after a
// case the runner compares every page it may have changed with the initial
// image, and for a register-only case (most generated ones) that compare of
// untouched 4 KiB pages was the larger part of the runner's work.
#pragma once

#include <cstdint>
#include <span>

#include "engines/x86/testcase.h"

namespace cpudiff {

// Bytes of the stub placed at the code's end (engines/native/runner_host.cc
// writes it): `jmp [rip+disp32]` and an 8-byte aligned absolute target.
inline constexpr uint64_t kStubMaxBytes = 6 + 7 + 8;

// Writes the stub for a code region whose code ends at `end_addr` into
// `out` (at least kStubMaxBytes long) and returns its length. `target` is
// the runner's exit routine. The target quadword is 8-byte aligned so that
// the jump's memory read never raises #AC when the case left AC set.
uint64_t WriteStub(uint64_t end_addr, uint64_t target, std::span<uint8_t> out);

struct EndPlan {
  // The case may end by the stub (see the top of the file).
  bool stub = false;
  // Bit r + 1 set: tc.mem[r] may be written (bit 0 is the code region).
  // Exact bits only when `stub` holds, i.e. every instruction the case can
  // run is known; otherwise every bit is set.
  uint32_t write_regions = ~0u;
};

// Plans the end of `tc`. The code region spans `region_size` bytes from
// tc.code_addr; the stub must fit in it after the code.
EndPlan PlanEnd(const TestCase& tc, uint64_t region_size);

inline bool MayEndByStub(const TestCase& tc, uint64_t region_size) {
  return PlanEnd(tc, region_size).stub;
}

}  // namespace cpudiff

// Small deterministic generators of straight-line cases, used by
// `cpudiff bench` and the tests. (The ISA-table-driven generator of the
// fuzzing campaigns grows from here.)
#pragma once

#include <cstdint>
#include <vector>

#include "engines/x86/testcase.h"

namespace cpudiff {

// splitmix64: tiny, fast and good enough to spread seeds; byte-identical
// output for a seed on every host.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return Next() % n; }
  // A value biased to edges: 0, 1, -1, sign boundaries, powers of two.
  uint64_t EdgeValue();

 private:
  uint64_t state_;
};

struct GenOptions {
  int min_insns = 1;
  int max_insns = 8;
  bool memory_ops = true;  // loads and stores through rdi into the data page
};

// A layout of two 4 KiB pages: data (rw) at kDefaultDataAddr and stack (rw)
// at kDefaultStackAddr, rsp near the top of the stack page.
std::vector<MemRegion> SmallLayout();

// One random straight-line case of general-purpose ALU, shift, move and
// memory instructions that never faults. Deterministic from `rng`.
TestCase GenerateAluCase(Rng& rng, const GenOptions& opts);

// New random initial registers for an existing case (same code): the
// "many initial states per code stream" shape.
void RandomizeRegisters(Rng& rng, TestCase* tc);

}  // namespace cpudiff

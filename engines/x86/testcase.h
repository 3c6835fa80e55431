// A test case (corpus format v1, see corpus/FORMAT.md) and the result of
// running one on an engine.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engines/x86/layout.h"
#include "engines/x86/state.h"

namespace cpudiff {

enum Perm : uint8_t { kPermR = 1, kPermW = 2, kPermX = 4 };
std::string PermString(uint8_t perm);

// A mapped region. `data` holds the first bytes of the region; the rest of
// the region (up to `size`) is zero.
struct MemRegion {
  uint64_t addr = 0;
  uint64_t size = 0;
  uint8_t perm = kPermR | kPermW;
  std::vector<uint8_t> data;

  bool Contains(uint64_t a) const { return a >= addr && a - addr < size; }
  uint8_t InitialByte(uint64_t a) const {
    uint64_t off = a - addr;
    return off < data.size() ? data[off] : 0;
  }
};

// Expected bytes at an address (any alignment).
struct MemBytes {
  uint64_t addr = 0;
  std::vector<uint8_t> data;
};

// The golden outcome of a case. Fields that are absent are not checked.
struct ExpectOutcome {
  OutcomeKind kind = OutcomeKind::kHalt;
  uint8_t vector = 0;
  std::optional<uint64_t> error_code;
  std::optional<uint64_t> addr;

  // As an Outcome (fields not given are absent), e.g. for printing.
  Outcome ToOutcome() const;
};

struct Expect {
  std::optional<ExpectOutcome> outcome;
  std::vector<std::pair<int, RegValue>> regs;  // register table index, value
  std::vector<MemBytes> mem;
};

struct TestCase {
  std::string name;
  uint64_t code_addr = kDefaultCodeAddr;
  std::vector<uint8_t> code;  // as in the corpus, without the appended HLT
  CpuState init;              // rip defaults to code_addr
  std::vector<MemRegion> mem; // data regions (never the code region)
  std::optional<Expect> expect;
  std::vector<std::string> tags;
  // Where the case came from, for messages: "file:line" or a generator name.
  std::string source;
  std::string generator;
  uint64_t seed = 0;

  // The code region as mapped: code, one HLT, zero padding to a page.
  MemRegion CodeRegion() const;
  // All mapped regions: the code region first, then `mem`.
  std::vector<MemRegion> AllRegions() const;
  // A stable 64-bit identity of what is executed: code address and bytes,
  // initial state and memory. Name, tags and expect do not take part.
  uint64_t Hash() const;
};

// One 4 KiB page of memory at the end of a run.
struct PageImage {
  uint64_t addr = 0;  // page aligned
  std::array<uint8_t, kPageSize> bytes{};
};

// What an engine returns for one case.
struct RunResult {
  Outcome outcome;
  // End state. At a fault: the state before the faulting instruction, rip at
  // it (after it for the traps #BP and syscall).
  CpuState state;
  // Final contents of every page of a writable region whose contents differ
  // from the initial contents, sorted by address. Pages absent here are
  // taken to hold their initial contents.
  std::vector<PageImage> pages;
  // Nanoseconds this case took on the engine, when the engine measures it
  // (0 when it does not; batched engines report batch time / batch size).
  uint64_t ns = 0;
  // Observe bits (engines/engine.h) this result could not observe beyond
  // what its engine declares, e.g. RFLAGS at a fault under valgrind.
  uint32_t unobserved = 0;
  // Guest instructions executed, and how many of them ran as translated
  // code, for engines that count them (the translator; 0 otherwise).
  uint64_t insns_executed = 0;
  uint64_t insns_translated = 0;
};

// Reads a byte of the end-of-run memory: from `pages` when that page is
// there, else the initial contents. Returns false for unmapped addresses.
bool FinalByte(const TestCase& tc, const RunResult& r, uint64_t addr, uint8_t* out);

// Builds `pages` from full final images of the writable regions: keeps only
// pages that differ from the initial contents. `final_region_bytes[i]` is
// the final contents of `tc.mem[i]` (ignored for read-only regions).
void CollectChangedPages(const TestCase& tc,
                         const std::vector<const uint8_t*>& final_region_bytes,
                         std::vector<PageImage>* pages);

}  // namespace cpudiff

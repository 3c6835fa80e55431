// The emulator's CPU: architectural state, guest memory and the helpers the
// semantic handlers (arith.cc, logic.cc, ...) are written with.
//
// A handler executes one decoded instruction. It reads every operand first,
// computes, and writes memory before registers, so that a fault (thrown as
// GuestFault) leaves no partial effect: the state stays the one before the
// instruction, as silicon reports it. Not thread-safe; one Cpu per thread.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engines/x86/decoder.h"
#include "engines/x86/state.h"
#include "engines/x86/testcase.h"

namespace cpudiff::emu {

// Whose undefined-flag and undefined-result behaviour to reproduce.
enum class Vendor : uint8_t { kIntel, kAmd };

// A fault raised by an instruction (thrown; caught by the run loop).
struct GuestFault {
  uint8_t vector;
  bool has_code = false;
  uint64_t code = 0;
  bool has_addr = false;
  uint64_t addr = 0;
};

// A way the run ends other than a fault.
struct GuestStop {
  enum Kind { kHalt, kSyscall, kUnsupported } kind;
  std::string reason;
};

[[noreturn]] void Fault(uint8_t vector);
[[noreturn]] void FaultCode(uint8_t vector, uint64_t code);
[[noreturn]] void Unsupported(std::string reason);

enum class Access : uint8_t { kRead, kWrite, kFetch };

// Guest memory: the case's regions with their permissions.
class Memory {
 public:
  struct Region {
    uint64_t addr = 0;
    uint64_t size = 0;
    uint8_t perm = 0;
    std::vector<uint8_t> bytes;
    // Per page: the byte range [lo, hi) written since the last reset (empty
    // when lo >= hi). Only those bytes can differ from the initial contents.
    struct Dirty {
      uint16_t lo = kPageSize, hi = 0;
    };
    std::vector<Dirty> dirty;
    size_t data_len = 0;  // initial bytes copied in at the last reset
  };
  // Loads a case's regions. When the layout is the one of the previous case
  // only the pages that were written or hold initial data are rewritten.
  void Reset(const TestCase& tc);
  // The pages of writable data regions (tc.mem) whose contents differ from
  // their initial contents, sorted by address.
  void ChangedPages(const TestCase& tc, std::vector<PageImage>* pages) const;
  std::vector<Region>& regions() { return regions_; }

  // Host pointer to [addr, addr+size) for `kind`, or throws #PF. `size`
  // may cross pages and regions; then the bytes are checked one region at
  // a time and `*contiguous` tells whether one pointer covers them.
  Region* Find(uint64_t addr) {
    if (last_ != nullptr && addr - last_->addr < last_->size) return last_;
    for (Region& r : regions_) {
      if (addr - r.addr < r.size) return last_ = &r;
    }
    return nullptr;
  }
  // Checks access to every byte, then returns true when one region holds
  // them all (`*p` points at them).
  void Check(uint64_t addr, size_t size, Access kind, bool stack);
  void Read(uint64_t addr, void* out, size_t size, bool stack = false);
  void Write(uint64_t addr, const void* in, size_t size, bool stack = false);
  // Bytes written into executable regions since the last call.
  bool TakeCodeWritten() {
    if (!code_written_) return false;
    code_written_ = false;
    return true;
  }
  // True when the last Reset left every executable byte as the one before
  // it (same layout, same code, nothing written into executable memory):
  // instructions decoded for the previous case are still valid.
  bool ExecUnchanged() const { return exec_unchanged_; }
  bool ac_check = false;  // RFLAGS.AC: misaligned accesses raise #AC

 private:
  uint8_t* Ptr(uint64_t addr) {
    Region* r = Find(addr);
    return r->bytes.data() + (addr - r->addr);
  }
  static void MarkDirty(Region* r, uint64_t addr, size_t size) {
    uint64_t off = addr - r->addr, end = off + size;
    Region::Dirty* dirty = r->dirty.data();
    for (uint64_t p = off / kPageSize; p * kPageSize < end && p < r->dirty.size(); ++p) {
      uint64_t base = p * kPageSize;
      auto lo = static_cast<uint16_t>(off > base ? off - base : 0);
      auto hi = static_cast<uint16_t>(std::min<uint64_t>(end - base, kPageSize));
      if (lo < dirty[p].lo) dirty[p].lo = lo;
      if (hi > dirty[p].hi) dirty[p].hi = hi;
    }
  }
  std::vector<Region> regions_;
  Region* last_ = nullptr;
  bool code_written_ = false;
  bool exec_written_ = false;  // since the last Reset
  bool exec_unchanged_ = false;
};

// Bit helpers.
// Whether a non-canonical address through the ModRM memory operand of `d`
// raises #SS rather than #GP. The manual: memory through SS (an SS
// override, or an rsp/rbp base without override). AMD Zen: exactly an
// rsp/rbp base without an FS/GS override, whatever the other prefixes say
// (an SS override on another base gives #GP, a DS override on rbp #SS;
// native probes, fuzz cases). The emulator and the translator share it.
inline bool StackSegmentFault(const DecodedInsn& d, Vendor vendor) {
  const bool stack_base = d.base == kRsp || d.base == kRbp;
  if (vendor == Vendor::kAmd) {
    return stack_base && d.seg != SegPrefix::kFs && d.seg != SegPrefix::kGs;
  }
  return d.seg == SegPrefix::kSs || (d.seg == SegPrefix::kNone && stack_base);
}

inline uint64_t SizeMask(int size) { return size == 8 ? ~0ull : (1ull << (size * 8)) - 1; }
inline uint64_t SignBit(int size) { return 1ull << (size * 8 - 1); }
inline int64_t SignExtendTo64(uint64_t v, int size) {
  int shift = 64 - size * 8;
  return static_cast<int64_t>(v << shift) >> shift;
}
inline bool Parity(uint64_t v) { return !__builtin_parity(static_cast<uint8_t>(v)); }

// An operand location: a register (with the AH..BH forms) or memory.
struct Loc {
  bool mem = false;
  bool stack = false;  // memory through SS (rsp/rbp base): #SS on non-canonical
  uint8_t reg = 0;
  bool high8 = false;
  int size = 8;
  uint64_t addr = 0;
};

class Cpu;
using Handler = void (*)(Cpu&, const DecodedInsn&);

// The dispatch table, indexed by InsnId; null for forms not implemented.
struct HandlerTable {
  std::array<Handler, kNumInsnIds> h{};
  void Set(InsnId id, Handler f) { h[static_cast<int>(id)] = f; }
};

// Each semantics file fills its part of the table.
void RegisterArith(HandlerTable& t);
void RegisterLogic(HandlerTable& t);
void RegisterShift(HandlerTable& t);
void RegisterBitops(HandlerTable& t);
void RegisterMove(HandlerTable& t);
void RegisterString(HandlerTable& t);
void RegisterStack(HandlerTable& t);
void RegisterControl(HandlerTable& t);
void RegisterSseInt(HandlerTable& t);
void RegisterSseFp(HandlerTable& t);
void RegisterSseExt(HandlerTable& t);
const HandlerTable& Handlers();
// A specialised handler for `d` (register forms of hot instructions, with
// the operand size fixed), or null: same semantics as the table's.
Handler FastHandler(const DecodedInsn& d);
// A variant of FastHandler(d) that leaves alone the flags that `next`, the
// instruction that always runs right after `d`, overwrites without reading;
// null when there is none. Only for forms that can neither branch nor
// fault, followed by such a form.
Handler FastHandlerBefore(const DecodedInsn& d, const DecodedInsn& next);
// The handler for `d`: FastHandler, the table's, or one that raises what a
// form without semantics raises (#UD, #GP, unsupported).
Handler ResolveHandler(const DecodedInsn& d);

class Cpu {
 public:
  CpuState s;
  Memory mem;
  Vendor vendor = Vendor::kIntel;
  uint64_t next_rip = 0;  // address of the next instruction
  // Set by hlt and syscall: the run ends after the instruction. A flag, not
  // an exception, because every case ends with a hlt and throwing costs
  // more than the rest of a short case.
  enum class Stop : uint8_t { kNone, kHalt, kSyscall };
  Stop stop = Stop::kNone;

  // ---- registers ----
  uint64_t Gpr(int r) const { return s.gpr[r]; }
  uint64_t GetReg(int r, int size, bool high8 = false) const {
    if (high8) return (s.gpr[r] >> 8) & 0xff;
    return s.gpr[r] & SizeMask(size);
  }
  [[gnu::always_inline]] void SetReg(int r, int size, uint64_t v, bool high8 = false) {
    if (high8) {
      s.gpr[r] = (s.gpr[r] & ~0xff00ull) | ((v & 0xff) << 8);
    } else if (size == 8) {
      s.gpr[r] = v;
    } else if (size == 4) {
      s.gpr[r] = v & 0xffffffffull;
    } else {
      uint64_t m = SizeMask(size);
      s.gpr[r] = (s.gpr[r] & ~m) | (v & m);
    }
  }
  // Register operand `r` of a byte form: AH..BH when there is no REX.
  Loc RegLoc(int r, int size, const DecodedInsn& d) const {
    Loc l;
    l.size = size;
    if (size == 1 && !d.has_rex && r >= 4 && r < 8) {
      l.reg = static_cast<uint8_t>(r - 4);
      l.high8 = true;
    } else {
      l.reg = static_cast<uint8_t>(r);
    }
    return l;
  }

  // ---- flags ----
  uint64_t& flags() { return s.rflags; }
  bool Flag(uint64_t f) const { return (s.rflags & f) != 0; }
  void SetFlag(uint64_t f, bool on) { s.rflags = on ? (s.rflags | f) : (s.rflags & ~f); }
  // Replaces the six status flags with `f`.
  [[gnu::always_inline]] void SetStatus(uint64_t f) {
    s.rflags = (s.rflags & ~kStatusFlags) | (f & kStatusFlags);
  }
  bool Cond(int cc) const;

  // ---- memory ----
  // Effective address of the ModRM / moffs memory operand (segment base
  // added); raises #GP/#SS when it is not canonical.
  uint64_t EffAddr(const DecodedInsn& d, bool* stack = nullptr);
  uint64_t Linear(uint64_t addr, bool stack) const;  // canonical check only
  Loc ELoc(const DecodedInsn& d, int size) {
    if (d.mod == 3) return RegLoc(d.rm, size, d);
    Loc l;
    l.mem = true;
    l.size = size;
    l.addr = EffAddr(d, &l.stack);
    return l;
  }
  Loc GLoc(const DecodedInsn& d, int size) const { return RegLoc(d.reg, size, d); }
  // Reads a location; with `for_write` the access is checked for writing
  // too (read-modify-write: a read-only page faults as a write).
  uint64_t Read(const Loc& l, bool for_write = false) {
    if (!l.mem) return GetReg(l.reg, l.size, l.high8);
    if (for_write) mem.Check(l.addr, l.size, Access::kWrite, l.stack);
    uint64_t v = 0;
    mem.Read(l.addr, &v, l.size, l.stack);
    return v;
  }
  void Write(const Loc& l, uint64_t v) {
    if (!l.mem) {
      SetReg(l.reg, l.size, v, l.high8);
      return;
    }
    mem.Write(l.addr, &v, l.size, l.stack);
  }
  uint64_t ReadMem(uint64_t addr, int size, bool stack = false) {
    uint64_t v = 0;
    mem.Read(addr, &v, size, stack);
    return v;
  }
  void WriteMem(uint64_t addr, uint64_t v, int size, bool stack = false) {
    mem.Write(addr, &v, size, stack);
  }

  // ---- stack ----
  void Push(uint64_t v, int size);                    // checks, writes, then moves rsp
  uint64_t Pop(int size);                             // reads, then moves rsp
  uint64_t PeekStack(int size, uint64_t offset = 0);  // no rsp change

  // ---- control ----
  void Jump(uint64_t target) {
    // A non-canonical target faults at the branch (#GP(0)), not at fetch.
    if (static_cast<uint64_t>(static_cast<int64_t>(target << 16) >> 16) != target) {
      FaultCode(kVecGP, 0);
    }
    next_rip = target;
  }

  // ---- run ----
  // Runs from s.rip until a stop, a fault or `budget` instructions.
  Outcome Run(uint64_t budget);

 private:
  // Decoded instructions by address: direct-mapped, invalidated as a whole
  // by bumping the generation (a case with other code, or a write into
  // executable memory). Each entry holds the handler to call, resolved at
  // decode time (a specialised one for hot register forms, see fast.cc).
  struct CacheEntry {
    uint64_t rip = 0;
    uint32_t gen = 0;
    Handler h = nullptr;      // what runs (may skip flags the next one overwrites)
    Handler exact = nullptr;  // computes every flag (the last instruction of a run)
    DecodedInsn insn;
  };
  CacheEntry& FetchDecode(uint64_t rip);
  static constexpr size_t kCacheSize = 4096;
  std::vector<CacheEntry> cache_ = std::vector<CacheEntry>(kCacheSize);
  uint32_t cache_gen_ = 1;
};

// Test-only planted bug (engines/emulator/arith.cc): add never sets CF.
extern bool g_test_plant_add_cf;

}  // namespace cpudiff::emu

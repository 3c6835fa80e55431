#include "engines/emulator/cpu.h"

#include <algorithm>

namespace cpudiff::emu {

void Fault(uint8_t vector) { throw GuestFault{vector}; }
void FaultCode(uint8_t vector, uint64_t code) { throw GuestFault{vector, true, code}; }
void Unsupported(std::string reason) {
  throw GuestStop{GuestStop::kUnsupported, std::move(reason)};
}

namespace {

// #PF error-code bits.
constexpr uint64_t kPfPresent = 1, kPfWrite = 2, kPfUser = 4, kPfFetch = 16;
constexpr uint64_t kLinuxProtectionFaultStart = 0x7ffffffff000ull;

bool Canonical(uint64_t a) {
  return static_cast<uint64_t>(static_cast<int64_t>(a << 16) >> 16) == a;
}

}  // namespace

// ---- memory -------------------------------------------------------------------

void Memory::Reset(const TestCase& tc) {
  // Region 0 is the code (read+execute, one HLT appended), then tc.mem.
  size_t n = tc.mem.size() + 1;
  uint64_t code_size = PageCeil(tc.code.size() + 1);
  bool same_layout = regions_.size() == n && regions_[0].addr == tc.code_addr &&
                     regions_[0].size == code_size && regions_[0].perm == (kPermR | kPermX);
  bool exec_in_data = false;
  for (size_t i = 1; i < n && same_layout; ++i) {
    const MemRegion& m = tc.mem[i - 1];
    same_layout =
        regions_[i].addr == m.addr && regions_[i].size == m.size && regions_[i].perm == m.perm;
  }
  for (const MemRegion& m : tc.mem) exec_in_data |= (m.perm & kPermX) != 0;
  if (!same_layout) {
    regions_.assign(n, Region{});
    regions_[0].addr = tc.code_addr;
    regions_[0].size = code_size;
    regions_[0].perm = kPermR | kPermX;
    for (size_t i = 1; i < n; ++i) {
      regions_[i].addr = tc.mem[i - 1].addr;
      regions_[i].size = tc.mem[i - 1].size;
      regions_[i].perm = tc.mem[i - 1].perm;
    }
    for (Region& r : regions_) {
      r.bytes.assign(r.size, 0);
      r.dirty.assign(r.size / kPageSize, Region::Dirty{});
    }
  }
  // The code region is never writable: it holds the previous case's code
  // and nothing else.
  Region& code = regions_[0];
  uint8_t* cb = code.bytes.data();
  bool same_code = same_layout && code.data_len == tc.code.size() + 1 &&
                   (tc.code.empty() || std::memcmp(cb, tc.code.data(), tc.code.size()) == 0);
  if (!same_code) {
    std::memset(cb, 0, code.data_len);
    if (!tc.code.empty()) std::memcpy(cb, tc.code.data(), tc.code.size());
    cb[tc.code.size()] = kHltByte;
    code.data_len = tc.code.size() + 1;
  }
  for (size_t i = 1; i < n; ++i) {
    Region& r = regions_[i];
    const std::vector<uint8_t>& data = tc.mem[i - 1].data;
    if (same_layout) {
      // Clear what the last case wrote or loaded, then load this case's data.
      size_t pages = r.dirty.size();
      size_t data_pages = (r.data_len + kPageSize - 1) / kPageSize;
      Region::Dirty* dirty = r.dirty.data();
      for (size_t p = 0; p < pages; ++p) {
        // Outside the loaded data and the written range the page still
        // holds zeros.
        uint8_t* page = r.bytes.data() + p * kPageSize;
        if (p < data_pages) std::memset(page, 0, std::min(kPageSize, r.data_len - p * kPageSize));
        if (dirty[p].lo < dirty[p].hi) {
          std::memset(page + dirty[p].lo, 0, dirty[p].hi - dirty[p].lo);
        }
        dirty[p] = Region::Dirty{};
      }
    }
    if (!data.empty()) std::memcpy(r.bytes.data(), data.data(), data.size());
    r.data_len = data.size();
  }
  exec_unchanged_ = same_code && !exec_written_ && !exec_in_data;
  exec_written_ = false;
  last_ = nullptr;
  code_written_ = false;
}

void Memory::ChangedPages(const TestCase& tc, std::vector<PageImage>* pages) const {
  pages->clear();
  for (size_t i = 0; i < tc.mem.size(); ++i) {
    const MemRegion& m = tc.mem[i];
    const Region& r = regions_[i + 1];
    if (!(m.perm & kPermW)) continue;
    for (size_t p = 0; p < r.dirty.size(); ++p) {
      size_t lo = r.dirty[p].lo, hi = r.dirty[p].hi;
      if (lo >= hi) continue;
      const uint8_t* now = r.bytes.data() + p * kPageSize;
      // Compare the written bytes with the initial contents: the case's
      // data, then zeros. The other bytes were not written.
      size_t off = p * kPageSize;
      size_t data_end = off < m.data.size() ? std::min<size_t>(kPageSize, m.data.size() - off) : 0;
      size_t mid = std::clamp(data_end, lo, hi);
      static const uint8_t kZeros[kPageSize] = {};
      bool same = (mid == lo || std::memcmp(now + lo, m.data.data() + off + lo, mid - lo) == 0) &&
                  std::memcmp(now + mid, kZeros, hi - mid) == 0;
      if (same) continue;
      PageImage& img = pages->emplace_back();
      img.addr = m.addr + p * kPageSize;
      std::memcpy(img.bytes.data(), now, kPageSize);
    }
  }
  std::sort(pages->begin(), pages->end(),
            [](const PageImage& a, const PageImage& b) { return a.addr < b.addr; });
}

void Memory::Check(uint64_t addr, size_t size, Access kind, bool stack) {
  (void)stack;
  // Alignment checking (CR0.AM is set by Linux; RFLAGS.AC enables it at
  // CPL3). It comes before the page checks: a misaligned access to an
  // unmapped page is #AC (native, AMD Zen; fuzz cases).
  if (ac_check && kind != Access::kFetch && (size == 2 || size == 4 || size == 8) &&
      (addr & (size - 1)) != 0) {
    FaultCode(kVecAC, 0);
  }
  // Walk by remaining length, not by end address: the range may wrap.
  uint64_t a = addr, left = size;
  while (left != 0) {
    Region* r = Find(a);
    uint64_t code =
        kPfUser | (kind == Access::kWrite ? kPfWrite : 0) | (kind == Access::kFetch ? kPfFetch : 0);
    // Linux reports user faults at or above the top user page as protection
    // faults (PLATFORM-NOTES.md); that is what a user-mode case observes.
    if (a >= kLinuxProtectionFaultStart) code |= kPfPresent;
    if (r == nullptr) throw GuestFault{kVecPF, true, code, true, a};
    bool ok = kind == Access::kWrite   ? (r->perm & kPermW) != 0
              : kind == Access::kFetch ? (r->perm & kPermX) != 0
                                       : (r->perm & kPermR) != 0;
    if (!ok) throw GuestFault{kVecPF, true, code | kPfPresent, true, a};
    uint64_t in_region = r->addr + r->size - a;
    uint64_t step = std::min(left, in_region);
    a += step;
    left -= step;
  }
}

void Memory::Read(uint64_t addr, void* out, size_t size, bool stack) {
  Region* r = Find(addr);
  if (r != nullptr && addr - r->addr + size <= r->size && !ac_check) {
    std::memcpy(out, r->bytes.data() + (addr - r->addr), size);
    return;
  }
  Check(addr, size, Access::kRead, stack);
  auto* o = static_cast<uint8_t*>(out);
  for (size_t i = 0; i < size; ++i) o[i] = *Ptr(addr + i);
}

void Memory::Write(uint64_t addr, const void* in, size_t size, bool stack) {
  Region* r = Find(addr);
  if (r != nullptr && addr - r->addr + size <= r->size && (r->perm & kPermW) && !ac_check) {
    std::memcpy(r->bytes.data() + (addr - r->addr), in, size);
    MarkDirty(r, addr, size);
    if (r->perm & kPermX) code_written_ = exec_written_ = true;
    return;
  }
  Check(addr, size, Access::kWrite, stack);
  auto* p = static_cast<const uint8_t*>(in);
  for (size_t i = 0; i < size; ++i) {
    *Ptr(addr + i) = p[i];
    Region* ri = Find(addr + i);
    MarkDirty(ri, addr + i, 1);
    if (ri->perm & kPermX) code_written_ = exec_written_ = true;
  }
}

// ---- addressing -----------------------------------------------------------------

uint64_t Cpu::Linear(uint64_t a, bool stack) const {
  if (!Canonical(a)) FaultCode(stack ? kVecSS : kVecGP, 0);
  return a;
}

uint64_t Cpu::EffAddr(const DecodedInsn& d, bool* stack) {
  uint64_t a = static_cast<uint64_t>(d.disp);
  if (d.base == kRipBase) {
    a += next_rip;
  } else if (d.base >= 0) {
    a += s.gpr[d.base];
  }
  if (d.index >= 0) a += s.gpr[d.index] * d.scale;
  if (d.addrsize == 4) a &= 0xffffffffull;
  const bool ss = StackSegmentFault(d, vendor);
  if (d.seg == SegPrefix::kFs) a += s.fs_base;
  if (d.seg == SegPrefix::kGs) a += s.gs_base;
  if (stack != nullptr) *stack = ss;
  return Linear(a, ss);
}

// ---- stack ----------------------------------------------------------------------

void Cpu::Push(uint64_t v, int size) {
  uint64_t a = Linear(s.gpr[kRsp] - size, true);
  mem.Write(a, &v, size, true);
  s.gpr[kRsp] -= size;
}

uint64_t Cpu::Pop(int size) {
  uint64_t v = PeekStack(size);
  s.gpr[kRsp] += size;
  return v;
}

uint64_t Cpu::PeekStack(int size, uint64_t offset) {
  uint64_t a = Linear(s.gpr[kRsp] + offset, true);
  uint64_t v = 0;
  mem.Read(a, &v, size, true);
  return v;
}

bool Cpu::Cond(int cc) const {
  bool r;
  switch (cc >> 1) {
    case 0:
      r = Flag(kFlagOF);
      break;
    case 1:
      r = Flag(kFlagCF);
      break;
    case 2:
      r = Flag(kFlagZF);
      break;
    case 3:
      r = Flag(kFlagCF) || Flag(kFlagZF);
      break;
    case 4:
      r = Flag(kFlagSF);
      break;
    case 5:
      r = Flag(kFlagPF);
      break;
    case 6:
      r = Flag(kFlagSF) != Flag(kFlagOF);
      break;
    default:
      r = Flag(kFlagZF) || (Flag(kFlagSF) != Flag(kFlagOF));
      break;
  }
  return (cc & 1) ? !r : r;
}

// ---- run --------------------------------------------------------------------------

const HandlerTable& Handlers() {
  static const HandlerTable table = [] {
    HandlerTable t;
    RegisterArith(t);
    RegisterLogic(t);
    RegisterShift(t);
    RegisterBitops(t);
    RegisterMove(t);
    RegisterString(t);
    RegisterStack(t);
    RegisterControl(t);
    RegisterSseInt(t);
    RegisterSseFp(t);
    RegisterSseExt(t);
    return t;
  }();
  return table;
}

namespace {

// The handler of a form without semantics: what silicon raises for it, or
// `unsupported` with the reason.
void Missing(Cpu& c, const DecodedInsn& d) {
  const IsaForm& f = d.form();
  if (f.Has(isa::UD)) Fault(kVecUD);
  // AMD CPUs do not support sysexit in long mode: #UD before the privilege
  // check (native, AMD Zen; Intel raises #GP(0) at CPL 3).
  if (d.id == InsnId::SYSEXIT && c.vendor == Vendor::kAmd) Fault(kVecUD);
  if (f.Has(isa::PRIV)) FaultCode(kVecGP, 0);
  if (f.Has(isa::NONDET)) Unsupported(std::string(f.mnemonic) + " is not deterministic");
  Unsupported("emulator does not implement " + std::string(f.name));
}

}  // namespace

Handler ResolveHandler(const DecodedInsn& d) {
  if (Handler h = FastHandler(d)) return h;
  Handler h = Handlers().h[static_cast<int>(d.id)];
  return h != nullptr ? h : Missing;
}

Cpu::CacheEntry& Cpu::FetchDecode(uint64_t rip) {
  CacheEntry& e = cache_.data()[rip & (kCacheSize - 1)];
  if (!Canonical(rip)) FaultCode(kVecGP, 0);
  uint8_t buf[15];
  size_t n = 0;
  while (n < sizeof buf) {
    Memory::Region* r = mem.Find(rip + n);
    if (r == nullptr || !(r->perm & kPermX)) break;
    // Copy the rest of the region's bytes at once (up to 15).
    uint64_t off = rip + n - r->addr;
    size_t k = static_cast<size_t>(std::min<uint64_t>(sizeof buf - n, r->size - off));
    std::memcpy(buf + n, r->bytes.data() + off, k);
    n += k;
  }
  switch (Decode(buf, n, &e.insn, vendor == Vendor::kAmd)) {
    case DecodeStatus::kOk:
      break;
    case DecodeStatus::kInvalid:
      e.gen = 0;
      Fault(kVecUD);
    case DecodeStatus::kTooLong:
      e.gen = 0;
      FaultCode(kVecGP, 0);
    case DecodeStatus::kNeedMore: {
      e.gen = 0;
      uint64_t a = rip + n;
      Memory::Region* r = mem.Find(a);
      bool p = r != nullptr || a >= kLinuxProtectionFaultStart;
      throw GuestFault{kVecPF, true, kPfUser | kPfFetch | (p ? kPfPresent : 0), true, a};
    }
    case DecodeStatus::kUnknown:
      e.gen = 0;
      Unsupported("AVX/AVX-512 instructions are not modelled");
  }
  e.rip = rip;
  e.gen = cache_gen_;
  e.h = e.exact = ResolveHandler(e.insn);
  return e;
}

Outcome Cpu::Run(uint64_t budget) {
  // Decoded instructions stay valid across cases with the same code.
  if (!mem.ExecUnchanged()) ++cache_gen_;
  stop = Stop::kNone;
  CacheEntry* const cache = cache_.data();
  CacheEntry* prev = nullptr;
  try {
    for (uint64_t n = 0; n < budget; ++n) {
      uint64_t rip = s.rip;
      CacheEntry* e = &cache[rip & (kCacheSize - 1)];
      if (e->gen != cache_gen_ || e->rip != rip) [[unlikely]] {
        e = &FetchDecode(rip);
        // The instruction before, when it always falls through to this
        // one, can skip the flags this one overwrites. Every later pass
        // through this code uses the variant (until the cache is
        // invalidated).
        if (prev != nullptr && prev != e && prev->gen == cache_gen_ &&
            prev->rip + prev->insn.length == rip) {
          if (Handler v = FastHandlerBefore(prev->insn, e->insn)) prev->h = v;
        }
      }
      prev = e;
      next_rip = rip + e->insn.length;
      mem.ac_check = (s.rflags & kFlagAC) != 0;
      // TF at the start of an instruction: a single-step trap (#DB) once it
      // completes (a fault comes first; popf setting TF traps only after
      // the next instruction). The exact handler: the run ends after it.
      const bool single_step = (s.rflags & kFlagTF) != 0;
      // The last instruction of the budget computes every flag: the run
      // ends after it, so nothing overwrites them.
      (n + 1 < budget && !single_step ? e->h : e->exact)(*this, e->insn);
      s.rip = next_rip;
      if (stop != Stop::kNone) [[unlikely]] {
        return stop == Stop::kHalt ? Outcome::Halt() : Outcome::Syscall();
      }
      if (single_step) [[unlikely]] {
        return Outcome::Fault(kVecDB);
      }
      if (mem.TakeCodeWritten()) [[unlikely]] {
        ++cache_gen_;
        prev = nullptr;
      }
    }
  } catch (const GuestFault& f) {
    Outcome o = Outcome::Fault(f.vector);
    if (f.vector == kVecPF) {
      o = Outcome::PageFault(f.code, f.addr);
    } else if (f.has_code || VectorHasErrorCode(f.vector)) {
      o = Outcome::FaultWithCode(f.vector, f.code);
    }
    return o;
  } catch (const GuestStop& st) {
    switch (st.kind) {
      case GuestStop::kHalt:
        return Outcome::Halt();
      case GuestStop::kSyscall:
        return Outcome::Syscall();
      case GuestStop::kUnsupported:
        return Outcome::Unsupported(st.reason);
    }
  }
  return Outcome::Timeout("instruction budget exhausted");
}

}  // namespace cpudiff::emu

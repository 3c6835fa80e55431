#include "engines/x86/testcase.h"

#include <algorithm>
#include <cstring>

namespace cpudiff {

std::string PermString(uint8_t perm) {
  std::string s;
  if (perm & kPermR) s += 'r';
  if (perm & kPermW) s += 'w';
  if (perm & kPermX) s += 'x';
  return s;
}

Outcome ExpectOutcome::ToOutcome() const {
  Outcome o;
  o.kind = kind;
  o.vector = vector;
  o.has_error_code = error_code.has_value();
  o.error_code = error_code.value_or(0);
  o.has_addr = addr.has_value();
  o.addr = addr.value_or(0);
  return o;
}

MemRegion TestCase::CodeRegion() const {
  MemRegion r;
  r.addr = code_addr;
  r.size = PageCeil(code.size() + 1);
  r.perm = kPermR | kPermX;
  r.data = code;
  r.data.push_back(kHltByte);
  return r;
}

std::vector<MemRegion> TestCase::AllRegions() const {
  std::vector<MemRegion> all;
  all.reserve(mem.size() + 1);
  all.push_back(CodeRegion());
  all.insert(all.end(), mem.begin(), mem.end());
  return all;
}

namespace {
// FNV-1a, 64-bit: the hash only has to be stable and spread well; it is not
// a security boundary.
struct Fnv {
  uint64_t h = 0xcbf29ce484222325ull;
  void Bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 0x100000001b3ull;
    }
  }
  void U64(uint64_t v) { Bytes(&v, 8); }
};
}  // namespace

uint64_t TestCase::Hash() const {
  Fnv f;
  f.U64(code_addr);
  f.U64(code.size());
  f.Bytes(code.data(), code.size());
  for (int i = 0; i < kNumRegisters; ++i) {
    RegValue v = ReadReg(init, i);
    f.U64(v.lo);
    f.U64(v.hi);
  }
  f.U64(mem.size());
  for (const MemRegion& r : mem) {
    f.U64(r.addr);
    f.U64(r.size);
    f.U64(r.perm);
    // Trailing zeros of data are the same as absent data.
    size_t n = r.data.size();
    while (n > 0 && r.data[n - 1] == 0) --n;
    f.U64(n);
    f.Bytes(r.data.data(), n);
  }
  return f.h;
}

bool FinalByte(const TestCase& tc, const RunResult& r, uint64_t addr, uint8_t* out) {
  uint64_t page = PageFloor(addr);
  auto it = std::lower_bound(r.pages.begin(), r.pages.end(), page,
                             [](const PageImage& p, uint64_t a) { return p.addr < a; });
  if (it != r.pages.end() && it->addr == page) {
    *out = it->bytes[addr - page];
    return true;
  }
  for (const MemRegion& m : tc.mem) {
    if (m.Contains(addr)) {
      *out = m.InitialByte(addr);
      return true;
    }
  }
  MemRegion code = tc.CodeRegion();
  if (code.Contains(addr)) {
    *out = code.InitialByte(addr);
    return true;
  }
  return false;
}

void CollectChangedPages(const TestCase& tc, const std::vector<const uint8_t*>& final_region_bytes,
                         std::vector<PageImage>* pages) {
  pages->clear();
  for (size_t i = 0; i < tc.mem.size(); ++i) {
    const MemRegion& m = tc.mem[i];
    if (!(m.perm & kPermW) || final_region_bytes[i] == nullptr) continue;
    const uint8_t* fin = final_region_bytes[i];
    for (uint64_t off = 0; off < m.size; off += kPageSize) {
      const uint8_t* page = fin + off;
      bool same;
      if (off >= m.data.size()) {
        same = page[0] == 0 && std::memcmp(page, page + 1, kPageSize - 1) == 0;
      } else if (off + kPageSize <= m.data.size()) {
        same = std::memcmp(page, m.data.data() + off, kPageSize) == 0;
      } else {
        size_t n = m.data.size() - off;
        same = std::memcmp(page, m.data.data() + off, n) == 0 &&
               (page[n] == 0 && std::memcmp(page + n, page + n + 1, kPageSize - n - 1) == 0);
      }
      if (same) continue;
      PageImage& p = pages->emplace_back();
      p.addr = m.addr + off;
      std::memcpy(p.bytes.data(), page, kPageSize);
    }
  }
  std::sort(pages->begin(), pages->end(),
            [](const PageImage& a, const PageImage& b) { return a.addr < b.addr; });
}

}  // namespace cpudiff

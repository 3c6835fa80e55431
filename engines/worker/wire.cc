#include "engines/worker/wire.h"

#include <algorithm>
#include <type_traits>

namespace cpudiff {

static_assert(std::is_trivially_copyable_v<CpuState>);
static_assert(std::is_trivially_copyable_v<PageImage>);

namespace {
// Limits that keep a corrupt message from asking for absurd allocations.
constexpr size_t kMaxName = 1 << 16;
constexpr size_t kMaxRegions = 1 << 16;
constexpr size_t kMaxPages = 1 << 24;
}  // namespace

uint8_t* VectorSink::Grow(size_t used, size_t min_capacity, size_t* capacity) {
  (void)used;
  size_t cap = std::max<size_t>(min_capacity, v_->size() * 2);
  cap = std::max<size_t>(cap, 256);
  v_->resize(cap);
  *capacity = cap;
  return v_->data();
}

void WriteCpuState(WireWriter& w, const CpuState& s) { w.Bytes(&s, sizeof(s)); }
bool ReadCpuState(WireReader& r, CpuState* s) { return r.Bytes(s, sizeof(*s)); }

void WriteOutcome(WireWriter& w, const Outcome& o) {
  w.U8(static_cast<uint8_t>(o.kind));
  w.U8(o.vector);
  w.U8((o.has_error_code ? 1 : 0) | (o.has_addr ? 2 : 0));
  w.U64(o.error_code);
  w.U64(o.addr);
  w.Blob(o.reason.data(), o.reason.size());
}

bool ReadOutcome(WireReader& r, Outcome* o) {
  uint8_t kind = r.U8();
  if (kind > static_cast<uint8_t>(OutcomeKind::kCrash)) return false;
  o->kind = static_cast<OutcomeKind>(kind);
  o->vector = r.U8();
  uint8_t bits = r.U8();
  o->has_error_code = bits & 1;
  o->has_addr = bits & 2;
  o->error_code = r.U64();
  o->addr = r.U64();
  r.Blob(&o->reason, kMaxName);
  return r.ok();
}

void WriteTestCase(WireWriter& w, const TestCase& tc) {
  w.Blob(tc.name.data(), tc.name.size());
  w.U64(tc.code_addr);
  w.Blob(tc.code.data(), tc.code.size());
  WriteCpuState(w, tc.init);
  w.U32(static_cast<uint32_t>(tc.mem.size()));
  for (const MemRegion& m : tc.mem) {
    w.U64(m.addr);
    w.U64(m.size);
    w.U8(m.perm);
    w.Blob(m.data.data(), m.data.size());
  }
}

bool ReadTestCase(WireReader& r, TestCase* tc) {
  r.Blob(&tc->name, kMaxName);
  tc->code_addr = r.U64();
  r.Blob(&tc->code, kMaxCodeBytes);
  ReadCpuState(r, &tc->init);
  uint32_t n = r.U32();
  if (!r.ok() || n > kMaxRegions) return false;
  tc->mem.resize(n);
  for (MemRegion& m : tc->mem) {
    m.addr = r.U64();
    m.size = r.U64();
    m.perm = r.U8();
    r.Blob(&m.data, kMaxRegionBytes);
  }
  return r.ok();
}

void WriteRunResult(WireWriter& w, const RunResult& res) {
  WriteOutcome(w, res.outcome);
  WriteCpuState(w, res.state);
  w.U64(res.ns);
  w.U32(res.unobserved);
  w.U64(res.insns_executed);
  w.U64(res.insns_translated);
  w.U32(static_cast<uint32_t>(res.pages.size()));
  for (const PageImage& p : res.pages) w.Bytes(&p, sizeof(p));
}

bool ReadRunResult(WireReader& r, RunResult* res) {
  if (!ReadOutcome(r, &res->outcome)) return false;
  ReadCpuState(r, &res->state);
  res->ns = r.U64();
  res->unobserved = r.U32();
  res->insns_executed = r.U64();
  res->insns_translated = r.U64();
  uint32_t n = r.U32();
  if (!r.ok() || n > kMaxPages || n * sizeof(PageImage) > r.remaining()) return false;
  res->pages.resize(n);
  for (PageImage& p : res->pages) r.Bytes(&p, sizeof(p));
  return r.ok();
}

}  // namespace cpudiff

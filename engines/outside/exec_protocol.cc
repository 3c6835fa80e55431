#include "engines/outside/exec_protocol.h"

#include <algorithm>
#include <cstring>

#include "engines/engine.h"

namespace cpudiff {
namespace {

// Little-endian writers and a bounds-checked reader. The host is x86-64
// (little-endian), so fixed-width fields are copied as they are.
void Put(std::vector<uint8_t>* out, const void* p, size_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  out->insert(out->end(), b, b + n);
}
void U32(std::vector<uint8_t>* out, uint32_t v) { Put(out, &v, 4); }
void U64(std::vector<uint8_t>* out, uint64_t v) { Put(out, &v, 8); }
void Blob(std::vector<uint8_t>* out, const void* p, size_t n) {
  U32(out, static_cast<uint32_t>(n));
  Put(out, p, n);
}
void Str(std::vector<uint8_t>* out, const std::string& s) { Blob(out, s.data(), s.size()); }

// Starts a frame; EndFrame patches its length.
size_t BeginFrame(std::vector<uint8_t>* out, uint32_t type) {
  U32(out, type);
  U32(out, 0);
  return out->size();
}
void EndFrame(std::vector<uint8_t>* out, size_t start) {
  uint32_t len = static_cast<uint32_t>(out->size() - start);
  std::memcpy(out->data() + start - 4, &len, 4);
}

class Reader {
 public:
  Reader(const ExecFrame& f, const char* what)
      : p_(f.payload.data()), end_(p_ + f.payload.size()), what_(what) {}
  void Get(void* out, size_t n) {
    if (n > static_cast<size_t>(end_ - p_)) {
      throw ExecProtocolError{std::string(what_) + " frame too short"};
    }
    std::memcpy(out, p_, n);
    p_ += n;
  }
  uint32_t U32() {
    uint32_t v;
    Get(&v, 4);
    return v;
  }
  uint64_t U64() {
    uint64_t v;
    Get(&v, 8);
    return v;
  }
  std::string Str(size_t max) {
    uint32_t n = U32();
    if (n > max) throw ExecProtocolError{std::string(what_) + " frame: string too long"};
    std::string s(n, '\0');
    Get(s.data(), n);
    return s;
  }
  bool done() const { return p_ == end_; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  const char* what_;
};

}  // namespace

void AppendHelloFrame(uint32_t timeout_ms, uint64_t max_instructions, std::vector<uint8_t>* out) {
  size_t s = BeginFrame(out, kExecHello);
  Put(out, kExecMagic, sizeof(kExecMagic));
  U32(out, kExecProtocolVersion);
  U32(out, timeout_ms);
  U64(out, max_instructions);
  EndFrame(out, s);
}

void AppendBatchFrame(std::span<const TestCase* const> cases, std::vector<uint8_t>* out) {
  size_t s = BeginFrame(out, kExecBatch);
  U32(out, static_cast<uint32_t>(cases.size()));
  for (const TestCase* tc : cases) {
    Str(out, tc->name);
    U64(out, tc->code_addr);
    Blob(out, tc->code.data(), tc->code.size());
    Put(out, &tc->init, sizeof(CpuState));
    U32(out, static_cast<uint32_t>(tc->mem.size() + 1));
    // Region 0: the code region as mapped (code, HLT, zeros to a page).
    U64(out, tc->code_addr);
    U64(out, PageCeil(tc->code.size() + 1));
    U32(out, kPermR | kPermX);
    U32(out, static_cast<uint32_t>(tc->code.size() + 1));
    Put(out, tc->code.data(), tc->code.size());
    out->push_back(kHltByte);
    for (const MemRegion& m : tc->mem) {
      U64(out, m.addr);
      U64(out, m.size);
      U32(out, m.perm);
      Blob(out, m.data.data(), m.data.size());
    }
  }
  EndFrame(out, s);
}

bool TakeFrame(std::vector<uint8_t>* buf, ExecFrame* frame) {
  if (buf->size() < 8) return false;
  uint32_t type, len;
  std::memcpy(&type, buf->data(), 4);
  std::memcpy(&len, buf->data() + 4, 4);
  if (type < kExecHello || type > kExecError) {
    char hex[64];
    std::snprintf(hex, sizeof hex, "%02x %02x %02x %02x", (*buf)[0], (*buf)[1], (*buf)[2],
                  (*buf)[3]);
    throw ExecProtocolError{"not a frame: type " + std::to_string(type) + " (bytes " + hex + ")"};
  }
  if (len > kExecMaxFrame) {
    throw ExecProtocolError{"frame of " + std::to_string(len) + " bytes (at most " +
                            std::to_string(kExecMaxFrame) + ")"};
  }
  if (buf->size() < 8 + size_t{len}) return false;
  frame->type = type;
  frame->payload.assign(buf->begin() + 8, buf->begin() + 8 + len);
  buf->erase(buf->begin(), buf->begin() + 8 + len);
  return true;
}

ExecHello ParseHelloReply(const ExecFrame& f) {
  Reader r(f, "HELLO reply");
  ExecHello h;
  h.version = r.U32();
  // An engine of another version may lay out the rest differently.
  if (h.version != kExecProtocolVersion) return h;
  h.kind = r.U32();
  h.observes = r.U32();
  h.name = r.Str(256);
  h.version_text = r.Str(256);
  if (!r.done()) throw ExecProtocolError{"HELLO reply frame longer than its fields"};
  return h;
}

std::string ReadErrorFrame(const ExecFrame& f) {
  Reader r(f, "ERROR");
  try {
    return r.Str(4096);
  } catch (const ExecProtocolError&) {
    return "(unreadable ERROR frame)";
  }
}

void ParseResultFrame(const ExecFrame& f, const TestCase& tc, uint32_t* index, RunResult* res) {
  Reader r(f, "RESULT");
  *index = r.U32();
  uint32_t kind = r.U32();
  uint32_t vector = r.U32();
  uint32_t flags = r.U32();
  uint64_t error_code = r.U64();
  uint64_t addr = r.U64();
  std::string reason = r.Str(4096);
  r.Get(static_cast<void*>(&res->state), sizeof(CpuState));
  res->unobserved = r.U32() & kObserveAll;
  uint32_t npages = r.U32();
  switch (kind) {
    case CPUDIFF_OUTCOME_HALT:
      res->outcome = Outcome::Halt();
      break;
    case CPUDIFF_OUTCOME_SYSCALL:
      res->outcome = Outcome::Syscall();
      break;
    case CPUDIFF_OUTCOME_TIMEOUT:
      res->outcome = Outcome::Timeout(reason);
      break;
    case CPUDIFF_OUTCOME_UNSUPPORTED:
      res->outcome = Outcome::Unsupported(reason);
      break;
    case CPUDIFF_OUTCOME_CRASH:
      res->outcome = Outcome::Crash(reason);
      break;
    case CPUDIFF_OUTCOME_FAULT:
      if (vector > 31) throw ExecProtocolError{"fault vector " + std::to_string(vector)};
      res->outcome = Outcome::Fault(static_cast<uint8_t>(vector));
      res->outcome.has_error_code = flags & 1;
      res->outcome.error_code = error_code;
      res->outcome.has_addr = flags & 2;
      res->outcome.addr = addr;
      break;
    default:
      throw ExecProtocolError{"outcome kind " + std::to_string(kind)};
  }
  res->pages.clear();
  for (uint32_t k = 0; k < npages; ++k) {
    PageImage p;
    p.addr = r.U64();
    r.Get(p.bytes.data(), kPageSize);
    bool inside = false;
    for (const MemRegion& m : tc.mem) {
      inside |= (m.perm & kPermW) && m.Contains(p.addr);
    }
    if (p.addr % kPageSize != 0 || !inside) {
      throw ExecProtocolError{"page " + Hex64(p.addr) +
                              " is not a page of a writable region of the case"};
    }
    // A page that holds its initial contents is the same as no page.
    bool same = true;
    for (uint64_t a = 0; a < kPageSize && same; ++a) {
      uint8_t init = 0;
      for (const MemRegion& m : tc.mem) {
        if (m.Contains(p.addr + a)) init = m.InitialByte(p.addr + a);
      }
      same = p.bytes[a] == init;
    }
    if (!same) res->pages.push_back(p);
  }
  if (!r.done()) throw ExecProtocolError{"RESULT frame longer than its fields"};
  std::sort(res->pages.begin(), res->pages.end(),
            [](const PageImage& a, const PageImage& b) { return a.addr < b.addr; });
  for (size_t k = 1; k < res->pages.size(); ++k) {
    if (res->pages[k].addr == res->pages[k - 1].addr) {
      throw ExecProtocolError{"page " + Hex64(res->pages[k].addr) + " sent twice"};
    }
  }
}

void AppendHelloReplyFrame(const ExecHello& h, std::vector<uint8_t>* out) {
  size_t s = BeginFrame(out, kExecHelloReply);
  U32(out, h.version);
  U32(out, h.kind);
  U32(out, h.observes);
  Str(out, h.name);
  Str(out, h.version_text);
  EndFrame(out, s);
}

void AppendResultFrame(uint32_t index, const RunResult& r, std::vector<uint8_t>* out) {
  size_t s = BeginFrame(out, kExecResult);
  U32(out, index);
  U32(out, static_cast<uint32_t>(r.outcome.kind));
  U32(out, r.outcome.vector);
  U32(out, (r.outcome.has_error_code ? 1u : 0u) | (r.outcome.has_addr ? 2u : 0u));
  U64(out, r.outcome.error_code);
  U64(out, r.outcome.addr);
  Str(out, r.outcome.reason);
  Put(out, &r.state, sizeof(CpuState));
  U32(out, r.unobserved);
  U32(out, static_cast<uint32_t>(r.pages.size()));
  for (const PageImage& p : r.pages) {
    U64(out, p.addr);
    Put(out, p.bytes.data(), kPageSize);
  }
  EndFrame(out, s);
}

}  // namespace cpudiff

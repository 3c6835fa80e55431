// Compact binary serialization of TestCase and RunResult.
//
// Used by the worker wrapper (engines/worker/worker_engine.h) to move batches
// through shared memory, and meant to be reused by any process protocol that
// needs the same data. Little-endian host layout, no versioning inside a
// message: both ends are always the same binary (a forked child). CpuState is
// copied byte for byte, which state.h guarantees is safe (standard layout).
//
// Only what an engine needs to execute a case travels: name, code address,
// code, initial state and regions. expect/tags/source stay in the harness.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engines/x86/testcase.h"

namespace cpudiff {

// Where a WireWriter puts its bytes. Grow() is called only when the current
// capacity is exhausted, so the common path is a bounds check and a memcpy.
class WireSink {
 public:
  virtual ~WireSink() = default;
  // Makes room for at least `min_capacity` bytes in total, keeping the first
  // `used` bytes; returns the (possibly moved) base and sets *capacity.
  virtual uint8_t* Grow(size_t used, size_t min_capacity, size_t* capacity) = 0;
};

// A WireSink over a std::vector, for tests and in-process use.
class VectorSink : public WireSink {
 public:
  explicit VectorSink(std::vector<uint8_t>* v) : v_(v) {}
  uint8_t* Grow(size_t used, size_t min_capacity, size_t* capacity) override;

 private:
  std::vector<uint8_t>* v_;
};

class WireWriter {
 public:
  // Starts writing at offset `start` of the sink's buffer (`base`, `capacity`).
  WireWriter(WireSink* sink, uint8_t* base, size_t capacity, size_t start = 0)
      : sink_(sink), base_(base), cap_(capacity), pos_(start) {}
  explicit WireWriter(VectorSink* sink) : WireWriter(sink, nullptr, 0, 0) {}

  void Bytes(const void* p, size_t n) {
    if (n > cap_ - pos_) base_ = sink_->Grow(pos_, pos_ + n, &cap_);
    if (n != 0) std::memcpy(base_ + pos_, p, n);
    pos_ += n;
  }
  void U8(uint8_t v) { Bytes(&v, 1); }
  void U32(uint32_t v) { Bytes(&v, 4); }
  void U64(uint64_t v) { Bytes(&v, 8); }
  void Blob(const void* p, size_t n) {
    U64(n);
    Bytes(p, n);
  }
  size_t size() const { return pos_; }
  uint8_t* base() const { return base_; }

 private:
  WireSink* sink_;
  uint8_t* base_;
  size_t cap_;
  size_t pos_;
};

// Reads what WireWriter wrote. Every read is bounds checked; after a short
// read ok() is false and every further read returns zeros.
class WireReader {
 public:
  WireReader(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}
  bool Bytes(void* out, size_t n) {
    if (!ok_ || n > static_cast<size_t>(end_ - p_)) {
      ok_ = false;
      std::memset(out, 0, n);
      return false;
    }
    if (n != 0) std::memcpy(out, p_, n);
    p_ += n;
    return true;
  }
  uint8_t U8() {
    uint8_t v;
    Bytes(&v, 1);
    return v;
  }
  uint32_t U32() {
    uint32_t v;
    Bytes(&v, 4);
    return v;
  }
  uint64_t U64() {
    uint64_t v;
    Bytes(&v, 8);
    return v;
  }
  // Reads a length-prefixed blob into `out`, refusing lengths over `max`.
  template <typename Container>
  bool Blob(Container* out, size_t max) {
    uint64_t n = U64();
    if (!ok_ || n > max || n > static_cast<size_t>(end_ - p_)) {
      ok_ = false;
      out->clear();
      return false;
    }
    out->assign(reinterpret_cast<const typename Container::value_type*>(p_),
                reinterpret_cast<const typename Container::value_type*>(p_ + n));
    p_ += n;
    return true;
  }
  bool ok() const { return ok_; }
  size_t remaining() const { return end_ - p_; }
  const uint8_t* pos() const { return p_; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  bool ok_ = true;
};

void WriteCpuState(WireWriter& w, const CpuState& s);
bool ReadCpuState(WireReader& r, CpuState* s);
void WriteOutcome(WireWriter& w, const Outcome& o);
bool ReadOutcome(WireReader& r, Outcome* o);

// Name, code address, code, initial state, regions. `ReadTestCase` reuses the
// capacity of `tc`'s vectors, so a reader that keeps one TestCase around does
// not allocate per case in the steady state.
void WriteTestCase(WireWriter& w, const TestCase& tc);
bool ReadTestCase(WireReader& r, TestCase* tc);

// Outcome, end state, ns, unobserved bits, instruction counters, changed pages.
void WriteRunResult(WireWriter& w, const RunResult& res);
bool ReadRunResult(WireReader& r, RunResult* res);

}  // namespace cpudiff

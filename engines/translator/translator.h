// The translator's runtime: code cache, dispatcher and block chaining.
//
// Runs a case (an emu::Cpu with its state and memory set up) by translating
// guest blocks on first use (frontend -> passes -> backend) into a code
// buffer, keyed by guest address. A direct exit is patched to jump straight
// to its target's code once the target is translated; indirect exits come
// back to the dispatcher, which finds the target in a hash map. A write to
// executable memory flushes the whole cache (the written block is
// translated again from its new bytes).
//
// Generated code runs in this process: use it inside the worker process
// (translator_engine.cc). Not thread-safe; one Translator per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engines/emulator/cpu.h"
#include "engines/translator/backend.h"
#include "engines/translator/frontend.h"

namespace cpudiff::jit {

struct TranslatorOptions {
  // Guest instructions per block at most; 1 ends every block after one
  // instruction (for lockstep comparison).
  uint32_t max_block_insns = 64;
  bool optimize = true;
};

// Counters over the translator's life.
struct TranslatorStats {
  uint64_t translated_insns = 0;   // guest instructions run as translated code
  uint64_t interpreted_insns = 0;  // guest instructions run by the interpreter
  uint64_t blocks_translated = 0;
  uint64_t flushes = 0;
};

class Translator {
 public:
  explicit Translator(const TranslatorOptions& options);
  ~Translator();
  Translator(const Translator&) = delete;
  Translator& operator=(const Translator&) = delete;

  // Starts a case: keeps the code cache when the executable bytes are the
  // same as the last case's and no code was written since.
  void BeginCase(emu::Cpu& cpu);
  // Runs from cpu.s.rip until a stop, a fault or `max_blocks` blocks.
  Outcome Run(emu::Cpu& cpu, uint64_t max_blocks);

  const TranslatorStats& stats() const { return stats_; }

  // Called by the helpers.
  void SetOutcome(const Outcome& o) { outcome_ = o; }
  emu::Cpu* cpu() { return cpu_; }

 private:
  struct CachedBlock {
    GuestBlock guest;
    const uint8_t* code = nullptr;
  };
  const uint8_t* Lookup(uint64_t rip, Outcome* fault);
  void Flush();

  TranslatorOptions options_;
  uint8_t* buffer_ = nullptr;
  size_t buffer_size_ = 0;
  std::unique_ptr<Xbyak::CodeGenerator> tramp_gen_;
  std::unique_ptr<Xbyak::CodeGenerator> gen_;
  const void* enter_ = nullptr;
  const void* epilogue_ = nullptr;
  std::unordered_map<uint64_t, CachedBlock*> cache_;
  std::vector<std::unique_ptr<CachedBlock>> blocks_;  // the first blocks_used_ are in the cache
  size_t blocks_used_ = 0;
  std::unique_ptr<JitContext> ctx_;
  emu::Cpu* cpu_ = nullptr;
  Outcome outcome_;
  TranslatorStats stats_;
  bool code_dirty_ = true;
  // Executable regions of the last case: bytes and addresses.
  std::vector<std::vector<uint8_t>> last_code_;
  std::vector<uint64_t> last_code_addr_;
};

// Lifts (and optionally optimizes) the blocks reachable from the case's
// start through direct exits, at most `max_blocks`, without running them:
// what `cpudiff show --ir` prints.
std::string DescribeCaseIr(const TestCase& tc, uint32_t max_block_insns, size_t max_blocks,
                           emu::Vendor vendor);

}  // namespace cpudiff::jit

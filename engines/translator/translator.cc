#include "engines/translator/translator.h"

#include <sys/mman.h>

#include <cstring>
#include <deque>
#include <set>
#include <stdexcept>

#include "engines/emulator/step.h"
#include "engines/translator/passes.h"

namespace cpudiff::jit {
namespace {

constexpr size_t kTrampolineBytes = 4096;
constexpr size_t kCodeBytes = 32u << 20;
// A block is emitted only with this much room left (else the cache is
// flushed first); the largest block stays well below it.
constexpr size_t kBlockRoom = 1u << 20;

bool Canonical(uint64_t a) {
  return static_cast<uint64_t>(static_cast<int64_t>(a << 16) >> 16) == a;
}

// Runs a memory access of the emulator's Memory, turning its exceptions
// into a recorded fault.
template <typename F>
bool Guard(JitContext* ctx, F&& f) {
  try {
    f();
    return true;
  } catch (const emu::GuestFault& fault) {
    ctx->owner->SetOutcome(emu::FaultOutcome(fault));
  } catch (const emu::GuestStop& st) {
    ctx->owner->SetOutcome(Outcome::Unsupported(st.reason));
  }
  ctx->faulted = 1;
  return false;
}

void CheckAddr(emu::Cpu& cpu, uint64_t addr, uint64_t info) {
  if (!Canonical(addr)) emu::FaultCode((info & ir::kMemStack) ? kVecSS : kVecGP, 0);
  if ((info & ir::kMemAlign16) && (addr & 15) != 0) emu::FaultCode(kVecGP, 0);
  cpu.mem.ac_check = cpu.Flag(kFlagAC);
}

}  // namespace

uint64_t HelperLoad(JitContext* ctx, uint64_t addr, uint64_t info) {
  emu::Cpu& cpu = *ctx->owner->cpu();
  uint64_t v = 0;
  size_t size = info & 0xff;
  Guard(ctx, [&] {
    CheckAddr(cpu, addr, info);
    if (info & ir::kMemWrite) cpu.mem.Check(addr, size, emu::Access::kWrite, false);
    cpu.mem.Read(addr, &v, size);
  });
  return v;
}

void HelperStore(JitContext* ctx, uint64_t addr, uint64_t value, uint64_t info) {
  emu::Cpu& cpu = *ctx->owner->cpu();
  Guard(ctx, [&] {
    CheckAddr(cpu, addr, info);
    cpu.mem.Write(addr, &value, info & 0xff);
  });
  if (cpu.mem.TakeCodeWritten()) ctx->code_written = 1;
}

void HelperLoad128(JitContext* ctx, uint64_t addr, uint64_t info, void* out) {
  emu::Cpu& cpu = *ctx->owner->cpu();
  Guard(ctx, [&] {
    CheckAddr(cpu, addr, info);
    cpu.mem.Read(addr, out, 16);
  });
}

void HelperStore128(JitContext* ctx, uint64_t addr, uint64_t info, const void* in) {
  emu::Cpu& cpu = *ctx->owner->cpu();
  Guard(ctx, [&] {
    CheckAddr(cpu, addr, info);
    cpu.mem.Write(addr, in, 16);
  });
  if (cpu.mem.TakeCodeWritten()) ctx->code_written = 1;
}

void HelperCheckCanonical(JitContext* ctx, uint64_t value) {
  if (Canonical(value)) return;
  ctx->owner->SetOutcome(Outcome::FaultWithCode(kVecGP, 0));
  ctx->faulted = 1;
}

// An interpreted instruction that stopped the run but completed first: a
// trap (int3, int 4, int1, syscall, the single-step #DB), not a fault.
static bool CompletedByTrap(const Outcome& o) {
  return o.kind == OutcomeKind::kSyscall ||
         (o.kind == OutcomeKind::kFault &&
          (o.vector == kVecBP || o.vector == kVecOF || o.vector == kVecDB));
}

uint32_t HelperInterpret(JitContext* ctx, const DecodedInsn* d, uint64_t rip) {
  emu::Cpu& cpu = *ctx->owner->cpu();
  cpu.s.rip = rip;
  Outcome o;
  emu::StepStatus st = emu::Step(cpu, *d, &o);
  switch (st) {
    case emu::StepStatus::kOk:
      ++ctx->interpreted;
      return kExitLookup;
    case emu::StepStatus::kCodeWritten:
      ++ctx->interpreted;
      return kExitFlush;
    case emu::StepStatus::kStopped:
      if (CompletedByTrap(o)) ++ctx->interpreted;
      ctx->owner->SetOutcome(o);
      return kExitStop;
  }
  return kExitStop;
}

Translator::Translator(const TranslatorOptions& options) : options_(options) {
  if (options_.max_block_insns == 0) options_.max_block_insns = 1;
  buffer_size_ = kTrampolineBytes + kCodeBytes;
  void* p = mmap(nullptr, buffer_size_, PROT_READ | PROT_WRITE | PROT_EXEC,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("translator: cannot map the code buffer");
  buffer_ = static_cast<uint8_t*>(p);
  tramp_gen_ = std::make_unique<Xbyak::CodeGenerator>(kTrampolineBytes, buffer_);
  EmitTrampoline(*tramp_gen_, &enter_, &epilogue_);
  gen_ = std::make_unique<Xbyak::CodeGenerator>(kCodeBytes, buffer_ + kTrampolineBytes);
  ctx_ = std::make_unique<JitContext>();
  ctx_->owner = this;
}

Translator::~Translator() {
  gen_.reset();
  tramp_gen_.reset();
  if (buffer_ != nullptr) munmap(buffer_, buffer_size_);
}

void Translator::Flush() {
  cache_.clear();
  blocks_used_ = 0;
  gen_->reset();
  ctx_->chain_site = 0;  // it pointed into the old code
  ++stats_.flushes;
}

void Translator::BeginCase(emu::Cpu& cpu) {
  // The executable regions (address and bytes) compared in place with the
  // last case's, so that a case with the same code costs no copy.
  bool same = !code_dirty_;
  size_t k = 0;
  for (const emu::Memory::Region& r : cpu.mem.regions()) {
    if (!same) break;
    if (!(r.perm & kPermX)) continue;
    same = k < last_code_.size() && last_code_addr_[k] == r.addr && last_code_[k] == r.bytes;
    ++k;
  }
  if (same && k == last_code_.size()) return;
  Flush();
  k = 0;
  for (const emu::Memory::Region& r : cpu.mem.regions()) {
    if (!(r.perm & kPermX)) continue;
    if (k == last_code_.size()) {
      last_code_.emplace_back();
      last_code_addr_.push_back(0);
    }
    last_code_[k].assign(r.bytes.begin(), r.bytes.end());
    last_code_addr_[k] = r.addr;
    ++k;
  }
  last_code_.resize(k);
  last_code_addr_.resize(k);
  code_dirty_ = false;
}

const uint8_t* Translator::Lookup(uint64_t rip, Outcome* fault) {
  auto it = cache_.find(rip);
  if (it != cache_.end()) return it->second->code;
  if (gen_->getSize() + kBlockRoom > kCodeBytes) Flush();
  // Blocks are reused after a flush (their buffers keep their capacity).
  if (blocks_used_ == blocks_.size()) blocks_.push_back(std::make_unique<CachedBlock>());
  CachedBlock* cb = blocks_[blocks_used_].get();
  uint32_t max_insns = options_.max_block_insns;
  for (;;) {
    if (!LiftBlock(cpu_->mem, rip, max_insns, cpu_->vendor, &cb->guest, fault)) return nullptr;
    if (options_.optimize) Optimize(cb->guest.ir);
    if (cb->guest.ir.insts.size() <= kMaxValues || max_insns == 1) break;
    max_insns /= 2;
  }
  ++blocks_used_;
  cb->code = EmitBlock(*gen_, cb->guest.ir, epilogue_);
  ++stats_.blocks_translated;
  cache_[rip] = cb;
  return cb->code;
}

Outcome Translator::Run(emu::Cpu& cpu, uint64_t max_blocks) {
  cpu_ = &cpu;
  JitContext& ctx = *ctx_;
  ctx.state = &cpu.s;
  ctx.budget = max_blocks;
  ctx.translated = 0;
  ctx.interpreted = 0;
  ctx.chain_site = 0;
  ctx.faulted = 0;
  ctx.code_written = 0;
  auto enter = reinterpret_cast<uint32_t (*)(JitContext*, const void*)>(const_cast<void*>(enter_));
  Outcome result;
  for (;;) {
    Outcome fault;
    if (cpu.s.rflags & kFlagTF) [[unlikely]] {
      // Single-step (TF, set by an interpreted popf): the trap after the
      // next instruction needs the interpreter, which raises it.
      ctx.chain_site = 0;
      if (ctx.budget == 0) {
        result = Outcome::Timeout("block budget exhausted");
        break;
      }
      --ctx.budget;
      DecodedInsn d;
      if (!FetchDecode(cpu.mem, cpu.s.rip, cpu.vendor, &d, &fault)) {
        result = fault;
        break;
      }
      Outcome o;
      emu::StepStatus st = emu::Step(cpu, d, &o);
      if (st == emu::StepStatus::kStopped) {
        if (CompletedByTrap(o)) ++ctx.interpreted;
        // The instruction may have written code before its trap.
        if (cpu.mem.TakeCodeWritten()) code_dirty_ = true;
        result = o;
        break;
      }
      ++ctx.interpreted;
      if (st == emu::StepStatus::kCodeWritten) {
        code_dirty_ = true;
        Flush();
      }
      continue;
    }
    const uint8_t* code = Lookup(cpu.s.rip, &fault);
    if (code == nullptr) {
      ctx.chain_site = 0;
      result = fault;
      break;
    }
    if (ctx.chain_site != 0) {
      // Patch the direct exit that led here to jump to this block's code.
      auto* site = reinterpret_cast<uint8_t*>(ctx.chain_site);
      int32_t rel = static_cast<int32_t>(code - (site + 5));
      std::memcpy(site + 1, &rel, 4);
      ctx.chain_site = 0;
    }
    uint32_t exit = enter(&ctx, code);
    if (exit == kExitLookup) continue;
    if (exit == kExitFlush) {
      ctx.code_written = 0;
      ctx.chain_site = 0;
      code_dirty_ = true;
      Flush();
      continue;
    }
    ctx.chain_site = 0;
    if (exit == kExitHalt) {
      result = Outcome::Halt();
    } else if (exit == kExitBudget) {
      result = Outcome::Timeout("block budget exhausted");
    } else {
      result = outcome_;
    }
    break;
  }
  if (ctx.code_written) code_dirty_ = true;
  stats_.translated_insns += ctx.translated;
  stats_.interpreted_insns += ctx.interpreted;
  return result;
}

std::string DescribeCaseIr(const TestCase& tc, uint32_t max_block_insns, size_t max_blocks,
                           emu::Vendor vendor) {
  emu::Memory mem;
  mem.Reset(tc);
  std::string out;
  std::deque<uint64_t> todo{tc.init.rip};
  std::set<uint64_t> seen;
  while (!todo.empty() && seen.size() < max_blocks) {
    uint64_t addr = todo.front();
    todo.pop_front();
    if (!seen.insert(addr).second) continue;
    GuestBlock gb;
    Outcome fault;
    char head[64];
    std::snprintf(head, sizeof head, "block 0x%llx", static_cast<unsigned long long>(addr));
    if (!LiftBlock(mem, addr, max_block_insns, vendor, &gb, &fault)) {
      out += std::string(head) + ": " + FormatOutcome(fault) + " at fetch\n";
      continue;
    }
    std::string err = ir::Validate(gb.ir);
    out += std::string(head) + " (" + std::to_string(gb.ir.guest_insns) + " guest instructions, " +
           std::to_string(gb.ir.lifted_insns) + " lifted)\n-- IR --\n" + ir::Print(gb.ir);
    if (!err.empty()) out += "INVALID: " + err + "\n";
    Optimize(gb.ir);
    err = ir::Validate(gb.ir);
    out += "-- optimized --\n" + ir::Print(gb.ir);
    if (!err.empty()) out += "INVALID: " + err + "\n";
    const ir::Inst& last = gb.ir.insts.back();
    if (last.op == ir::Op::ExitJump) todo.push_back(last.imm);
    if (last.op == ir::Op::ExitCond) {
      todo.push_back(last.imm);
      todo.push_back(last.imm2);
    }
  }
  return out;
}

}  // namespace cpudiff::jit

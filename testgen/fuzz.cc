#include "testgen/fuzz.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "engines/x86/zydis_decoder.h"

namespace cpudiff {
namespace {

// ---- Layout: the memory map of every generated case (one place) ----------

constexpr uint64_t kDataAddr = kDefaultDataAddr;  // 2 pages rw
constexpr uint64_t kDataSize = 2 * kPageSize;
constexpr uint64_t kGapAddr = kDataAddr + kDataSize;        // 1 page unmapped
constexpr uint64_t kRoAddr = kGapAddr + kPageSize;          // 1 page read-only
constexpr uint64_t kStackAddr = kDefaultStackAddr;          // 1 page rw
constexpr uint64_t kStackTop = kStackAddr + kPageSize / 2;  // room to push and to pop
constexpr size_t kDataBytes = 256;  // initialized bytes at the start of the data and ro pages

// Registers that hold addresses, and registers that hold small indexes: the
// memory operands of rewritten instructions use them as base and index, so
// that most accesses land in the data pages.
constexpr int kPointerRegs[] = {kRbx, kRsi, kRdi, kRbp};
constexpr int kIndexRegs[] = {kR12, kR13};
constexpr uint32_t kAddressRegMask =
    1u << kRsp | 1u << kRbx | 1u << kRsi | 1u << kRdi | 1u << kRbp | 1u << kR12 | 1u << kR13;
// The counter of bounded loops: never an explicit operand inside the loop,
// and no instruction uses it implicitly.
constexpr int kLoopReg = kR14;

void Layout(TestCase* tc) {
  tc->mem.clear();
  tc->mem.push_back(MemRegion{kDataAddr, kDataSize, kPermR | kPermW, {}});
  tc->mem.push_back(MemRegion{kRoAddr, kPageSize, kPermR, {}});
  tc->mem.push_back(MemRegion{kStackAddr, kPageSize, kPermR | kPermW, {}});
}

// ---- Values ------------------------------------------------------------

uint64_t GprValue(Rng& rng) {
  static constexpr uint64_t kEdges[] = {0,
                                        1,
                                        ~0ull,
                                        2,
                                        0x7f,
                                        0x80,
                                        0xff,
                                        0x100,
                                        0x7fff,
                                        0x8000,
                                        0xffff,
                                        0x10000,
                                        0x7fffffff,
                                        0x80000000,
                                        0xffffffff,
                                        0x100000000,
                                        0x7fffffffffffffff,
                                        0x8000000000000000,
                                        0xffffffffffffff80,
                                        0xffffffff80000000,
                                        0xffffffffffff8000};
  switch (rng.Below(8)) {
    case 0:
    case 1:
    case 2:
      return kEdges[rng.Below(std::size(kEdges))];
    case 3:
      return 1ull << rng.Below(64);
    case 4:
      return (1ull << rng.Below(64)) - 1;
    case 5:
      return rng.Below(66);  // shift and rotate counts, small loop counts
    default:
      return rng.Next();
  }
}

uint64_t F64Value(Rng& rng) {
  static constexpr uint64_t kEdges[] = {
      0x0000000000000000, 0x8000000000000000,  // +-0
      0x7ff0000000000000, 0xfff0000000000000,  // +-inf
      0x7ff8000000000000, 0xfff8000000000000,  // QNaN
      0x7ff0000000000001, 0x7ff4000000000000,  // SNaN
      0x0000000000000001, 0x800fffffffffffff,  // denormals
      0x7fefffffffffffff, 0xffefffffffffffff,  // largest normals
      0x0010000000000000, 0x8010000000000000,  // smallest normals
      0x3ff0000000000000, 0xbff0000000000000,  // +-1
      0x43e0000000000000, 0xc3e0000000000000,  // +-2^63: conversion limits
  };
  return rng.Below(4) ? kEdges[rng.Below(std::size(kEdges))] : rng.Next();
}

uint32_t F32Value(Rng& rng) {
  static constexpr uint32_t kEdges[] = {
      0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000,
      0x7f800001, 0x7fa00000, 0x00000001, 0x807fffff, 0x7f7fffff, 0xff7fffff,
      0x00800000, 0x80800000, 0x3f800000, 0xbf800000, 0x4f000000, 0xcf000000,
  };
  return rng.Below(4) ? kEdges[rng.Below(std::size(kEdges))] : static_cast<uint32_t>(rng.Next());
}

Xmm XmmValue(Rng& rng) {
  switch (rng.Below(4)) {
    case 0:
      return {F64Value(rng), F64Value(rng)};
    case 1:
      return {F32Value(rng) | uint64_t{F32Value(rng)} << 32,
              F32Value(rng) | uint64_t{F32Value(rng)} << 32};
    case 2:
      return {GprValue(rng), GprValue(rng)};
    default:
      return {rng.Next(), rng.Next()};
  }
}

uint32_t MxcsrValue(Rng& rng, bool unmask) {
  if (!unmask && rng.Below(2)) return kMxcsrDefault;
  uint32_t m = kMxcsrDefault;
  m = (m & ~(3u << 13)) | static_cast<uint32_t>(rng.Below(4)) << 13;  // rounding mode
  if (rng.Below(4) == 0) m |= 1u << 6;                                // DAZ
  if (rng.Below(4) == 0) m |= 1u << 15;                               // FTZ
  // Some exceptions unmasked, always precision (inexact): almost every
  // floating-point instruction raises it.
  if (unmask) m &= ~((static_cast<uint32_t>(rng.Next()) & 0x1f80) | 1u << 12);
  if (rng.Below(8) == 0) m |= static_cast<uint32_t>(rng.Next()) & 0x3f;  // sticky flags
  return m;
}

// The one deliberate fault of a case, if any. A stream ends at its first
// fault, so the generator provokes at most one per case and keeps every
// other operand valid: the rest of the stream still runs.
enum class Fault : uint8_t {
  kNone,
  kUnmapped,      // a pointer register into the unmapped page: #PF read or write
  kWild,          // a wild 32-bit displacement: #PF far from the mapped pages
  kReadOnly,      // a write through a pointer into the read-only page: #PF
  kPageCross,     // an access that starts at the end of the data pages: #PF
  kNonCanonical,  // a non-canonical pointer: #GP, #SS when it is rbp
  kMisaligned,    // a misaligned 128-bit SSE operand: #GP (aligned forms)
  kAlignCheck,    // RFLAGS.AC and a misaligned operand: #AC
  kDivide,        // div/idiv without the guard: #DE (zero or overflow)
  kLock,          // lock on a form without memory: #UD
  kFaulting,      // a form that faults by itself (cli, sti, ldmxcsr, ...)
  kSimd,          // unmasked SIMD floating-point exceptions in MXCSR: #XM
};

// The case tag of a planned fault ("fault-unmapped", ...): a report can
// tell planned faults from the others.
const char* FaultTag(Fault f) {
  switch (f) {
    case Fault::kUnmapped:
      return "fault-unmapped";
    case Fault::kWild:
      return "fault-wild";
    case Fault::kReadOnly:
      return "fault-read-only";
    case Fault::kPageCross:
      return "fault-page-end";
    case Fault::kNonCanonical:
      return "fault-non-canonical";
    case Fault::kMisaligned:
      return "fault-misaligned";
    case Fault::kAlignCheck:
      return "fault-alignment-check";
    case Fault::kDivide:
      return "fault-divide";
    case Fault::kLock:
      return "fault-lock";
    case Fault::kFaulting:
      return "fault-form";
    case Fault::kSimd:
      return "fault-simd";
    default:
      return nullptr;
  }
}

// Percent of cases with a deliberate fault. With raw-byte cases (which
// fault on their own often) this leaves about three cases in four running
// to their end on silicon (docs/fuzzing.md has the measured shares).
constexpr uint64_t kFaultPercent = 15;

// The registers a planned fault goes through hold a bad address from the
// start; nothing else uses them as base.
bool FaultUsesRegister(Fault f) {
  return f == Fault::kUnmapped || f == Fault::kReadOnly || f == Fault::kPageCross ||
         f == Fault::kNonCanonical;
}

// 16-byte aligned addresses in the data page (aligned SSE accesses need
// them); displacements and indexes keep every access inside the two pages.
uint64_t PointerValue(Rng& rng) { return kDataAddr + 16 * rng.Below(16); }

uint64_t BadPointerValue(Rng& rng, Fault f) {
  switch (f) {
    case Fault::kUnmapped:
      return kGapAddr + 16 * rng.Below(16);
    case Fault::kReadOnly:
      return kRoAddr + 16 * rng.Below(kDataBytes / 16);
    case Fault::kPageCross:
      return kGapAddr - 1 - rng.Below(7);  // with displacement 0
    default:                               // non-canonical, both sides of the hole
      return (rng.Below(2) ? 0x8000000000000000ull : 0x0000800000000000ull) |
             16 * rng.Below(1 << 16);
  }
}

void FillBytes(Rng& rng, std::vector<uint8_t>* data) {
  data->resize(kDataBytes);
  for (size_t i = 0; i < kDataBytes; i += 8) {
    uint64_t v;
    switch (rng.Below(3)) {
      case 0:
        v = GprValue(rng);
        break;
      case 1:
        v = F64Value(rng);
        break;
      default:
        v = F32Value(rng) | uint64_t{F32Value(rng)} << 32;
        break;
    }
    for (int k = 0; k < 8; ++k) (*data)[i + k] = static_cast<uint8_t>(v >> (8 * k));
  }
}

// Encodes `req` at `rip` (absolute branch targets); false when Zydis refuses.
bool Encode(ZydisEncoderRequest& req, uint64_t rip, std::vector<uint8_t>* out) {
  uint8_t buf[ZYDIS_MAX_INSTRUCTION_LENGTH];
  ZyanUSize len = sizeof buf;
  if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstructionAbsolute(&req, buf, &len, rip))) return false;
  out->insert(out->end(), buf, buf + len);
  return true;
}

ZydisEncoderRequest Request(ZydisMnemonic m) {
  ZydisEncoderRequest req{};
  req.machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
  req.mnemonic = m;
  return req;
}

// The guard in front of a div/idiv (`req`, operand 0 its divisor, never in
// rax/rdx): `or divisor, 1` (never zero), then the high half of the
// dividend cleared (div) or sign-extended (idiv), so that the quotient
// fits. Only idiv of the most negative value by -1 can still trap. The
// flags the guard writes do not matter: the division leaves them all
// undefined.
bool EmitDivideGuard(const InsnForm& f, const ZydisEncoderRequest& req, uint64_t code_addr,
                     std::vector<uint8_t>* code) {
  ZydisEncoderRequest orr = Request(ZYDIS_MNEMONIC_OR);
  orr.operand_count = 2;
  orr.operands[0] = req.operands[0];
  orr.operands[1].type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
  orr.operands[1].imm.u = 1;
  if (!Encode(orr, code_addr + code->size(), code)) return false;
  const bool sign = f.mnemonic == ZYDIS_MNEMONIC_IDIV;
  ZydisEncoderRequest high;
  switch (f.operand_width) {
    case 8:
      high = Request(sign ? ZYDIS_MNEMONIC_CBW : ZYDIS_MNEMONIC_MOV);
      break;
    case 16:
      high = Request(sign ? ZYDIS_MNEMONIC_CWD : ZYDIS_MNEMONIC_MOV);
      break;
    case 32:
      high = Request(sign ? ZYDIS_MNEMONIC_CDQ : ZYDIS_MNEMONIC_MOV);
      break;
    default:
      high = Request(sign ? ZYDIS_MNEMONIC_CQO : ZYDIS_MNEMONIC_MOV);
      break;
  }
  if (!sign) {
    high.operand_count = 2;
    high.operands[0].type = ZYDIS_OPERAND_TYPE_REGISTER;
    high.operands[0].reg.value = f.operand_width == 8    ? ZYDIS_REGISTER_AH
                                 : f.operand_width == 16 ? ZYDIS_REGISTER_DX
                                                         : ZYDIS_REGISTER_EDX;
    high.operands[1].type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
    high.operands[1].imm.u = 0;
  }
  return Encode(high, code_addr + code->size(), code);
}

// Every general-purpose register an encoded instruction writes (bit =
// register number); for the rare form emitted as found.
uint32_t BytesWrittenGprs(const std::vector<uint8_t>& bytes) {
  const ZydisDecoder& d = LongModeDecoder();
  ZydisDecodedInstruction in;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&d, bytes.data(), bytes.size(), &in, ops))) {
    return ~0u;
  }
  uint32_t mask = 0;
  for (uint8_t i = 0; i < in.operand_count; ++i) {
    if (ops[i].type != ZYDIS_OPERAND_TYPE_REGISTER ||
        !(ops[i].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)) {
      continue;
    }
    const ZydisRegister full =
        ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, ops[i].reg.value);
    if (full >= ZYDIS_REGISTER_RAX && full <= ZYDIS_REGISTER_R15) {
      mask |= 1u << (full - ZYDIS_REGISTER_RAX);
    }
  }
  // Pushes and pops keep rsp in the stack page.
  if (in.meta.category == ZYDIS_CATEGORY_PUSH || in.meta.category == ZYDIS_CATEGORY_POP) {
    mask &= ~(1u << kRsp);
  }
  return mask;
}

uint64_t ShiftCount(Rng& rng, int width) {
  const uint64_t w = width ? width : 64;
  static constexpr uint64_t kFixed[] = {0, 1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 255};
  switch (rng.Below(4)) {
    case 0:
      return w - 1;
    case 1:
      return w;
    case 2:
      return w + 1;
    default:
      return kFixed[rng.Below(std::size(kFixed))];
  }
}

// Flags each condition code of jcc reads (Zydis's metadata gives the same;
// the list is the condition encoding, needed to emit the branch at all).
struct Cond {
  ZydisMnemonic mnemonic;
  uint32_t tested;
};
constexpr uint32_t kCF = 1u << 0, kPF = 1u << 2, kZF = 1u << 6, kSF = 1u << 7, kOF = 1u << 11;
constexpr Cond kConds[] = {
    {ZYDIS_MNEMONIC_JO, kOF},
    {ZYDIS_MNEMONIC_JNO, kOF},
    {ZYDIS_MNEMONIC_JB, kCF},
    {ZYDIS_MNEMONIC_JNB, kCF},
    {ZYDIS_MNEMONIC_JZ, kZF},
    {ZYDIS_MNEMONIC_JNZ, kZF},
    {ZYDIS_MNEMONIC_JBE, kCF | kZF},
    {ZYDIS_MNEMONIC_JNBE, kCF | kZF},
    {ZYDIS_MNEMONIC_JS, kSF},
    {ZYDIS_MNEMONIC_JNS, kSF},
    {ZYDIS_MNEMONIC_JP, kPF},
    {ZYDIS_MNEMONIC_JNP, kPF},
    {ZYDIS_MNEMONIC_JL, kSF | kOF},
    {ZYDIS_MNEMONIC_JNL, kSF | kOF},
    {ZYDIS_MNEMONIC_JLE, kZF | kSF | kOF},
    {ZYDIS_MNEMONIC_JNLE, kZF | kSF | kOF},
};

}  // namespace

std::string_view ShapeName(Shape s) {
  switch (s) {
    case Shape::kSingle:
      return "single";
    case Shape::kRandom:
      return "random";
    case Shape::kBranch:
      return "branch";
    case Shape::kMemory:
      return "memory";
    case Shape::kRaw:
      return "raw";
    case Shape::kMutate:
      return "mutate";
  }
  return "?";
}

bool ParseShape(std::string_view name, Shape* out) {
  for (Shape s : {Shape::kSingle, Shape::kRandom, Shape::kBranch, Shape::kMemory, Shape::kRaw,
                  Shape::kMutate}) {
    if (ShapeName(s) == name) {
      *out = s;
      return true;
    }
  }
  return false;
}

// The code being built and what the undefined-flag check knows about it.
struct FuzzGenerator::Stream {
  uint64_t code_addr = kDefaultCodeAddr;
  std::vector<uint8_t> code;
  uint32_t undef = 0;  // flags undefined at the end of `code`
  bool check = true;
  // General-purpose registers that no longer hold the address or index
  // Values gave them: not used as base or index any more.
  uint32_t dirty = 0;
  uint32_t stepped = 0;  // still addresses, maybe not 16-byte aligned
  int insn = 0;          // instructions emitted so far
  Fault fault = Fault::kNone;
  int fault_at = 0;    // the instruction that gets the fault
  int fault_reg = -1;  // the pointer register holding the bad address
  bool fault_done = false;
};

struct FuzzGenerator::Plan {
  Fault fault = Fault::kNone;
  int at = 0;
  int reg = -1;
};

FuzzGenerator::FuzzGenerator(FuzzOptions opts) : opts_(std::move(opts)) {
  opts_.max_length = std::clamp(opts_.max_length, 1, 64);
  forms_ = FormSet::Build(opts_.forms);
  shapes_ = opts_.shapes;
  if (shapes_.empty()) {
    // Weights by repetition: random streams are the workhorse.
    shapes_ = {Shape::kSingle, Shape::kRandom, Shape::kRandom, Shape::kRandom,
               Shape::kBranch, Shape::kMemory, Shape::kRaw};
    if (!opts_.corpus.empty()) shapes_.push_back(Shape::kMutate);
  }
  for (Shape s : shapes_) {
    if (s == Shape::kMutate && opts_.corpus.empty()) {
      throw std::invalid_argument("the mutate shape needs corpus cases (--mutate FILE)");
    }
  }
  const auto& forms = forms_->forms();
  fault_only_.assign(forms.size(), false);
  for (uint32_t i = 0; i < forms.size(); ++i) {
    const InsnForm& f = forms[i];
    if (f.mnemonic == ZYDIS_MNEMONIC_CLI || f.mnemonic == ZYDIS_MNEMONIC_STI ||
        f.mnemonic == ZYDIS_MNEMONIC_LDMXCSR ||
        (f.mnemonic == ZYDIS_MNEMONIC_NOP && !f.has_memory && f.operands.size() >= 2)) {
      fault_only_[i] = true;
      faulting_forms_.push_back(i);
      continue;
    }
    if (f.mnemonic == ZYDIS_MNEMONIC_DIV || f.mnemonic == ZYDIS_MNEMONIC_IDIV) {
      divide_forms_.push_back(i);
    }
    // Packed and scalar floating-point arithmetic: add, sub, mul, div, sqrt
    // on ps/pd/ss/sd (results mostly inexact).
    const std::string_view m = ZydisMnemonicGetString(f.mnemonic);
    if (f.has_xmm && m.size() >= 5 &&
        (m.starts_with("add") || m.starts_with("sub") || m.starts_with("mul") ||
         m.starts_with("div") || m.starts_with("sqrt")) &&
        (m.ends_with("ps") || m.ends_with("pd") || m.ends_with("ss") || m.ends_with("sd"))) {
      float_forms_.push_back(i);
    }
    if (!f.has_memory) {
      register_forms_.push_back(i);
      continue;
    }
    if (f.memory_written) write_forms_.push_back(i);
    if (f.has_xmm && f.mem_bits == 128) m128_forms_.push_back(i);
    if (f.mem_bits >= 16 && f.mem_bits <= 64) narrow_forms_.push_back(i);
  }
}

void FuzzGenerator::PlanFault(Rng& rng, int len, Plan* plan) const {
  *plan = Plan{};
  if (rng.Below(100) >= kFaultPercent) return;
  // Weights by repetition: page faults and non-canonical addresses are the
  // most varied (read, write, every addressing form).
  static constexpr Fault kKinds[] = {
      Fault::kUnmapped,   Fault::kUnmapped,   Fault::kWild,         Fault::kReadOnly,
      Fault::kReadOnly,   Fault::kPageCross,  Fault::kNonCanonical, Fault::kNonCanonical,
      Fault::kMisaligned, Fault::kMisaligned, Fault::kAlignCheck,   Fault::kDivide,
      Fault::kLock,       Fault::kFaulting,   Fault::kSimd,
  };
  plan->fault = kKinds[rng.Below(std::size(kKinds))];
  plan->at = static_cast<int>(rng.Below(static_cast<uint64_t>(len)));
  if (FaultUsesRegister(plan->fault)) {
    plan->reg = kPointerRegs[rng.Below(std::size(kPointerRegs))];
  }
}

const InsnForm* FuzzGenerator::FaultForm(Rng& rng, const Stream& s) const {
  const std::vector<uint32_t>* from = &forms_->memory_forms();
  switch (s.fault) {
    case Fault::kReadOnly:
      from = &write_forms_;
      break;
    case Fault::kMisaligned:
      from = &m128_forms_;
      break;
    case Fault::kAlignCheck:
      from = &narrow_forms_;
      break;
    case Fault::kDivide:
      from = &divide_forms_;
      break;
    case Fault::kLock:
      from = &register_forms_;
      break;
    case Fault::kFaulting:
      from = &faulting_forms_;
      break;
    case Fault::kSimd:
      from = &float_forms_;
      break;
    default:
      break;
  }
  // An --isa without such forms: any form, and the fault may not happen.
  if (from->empty()) return nullptr;
  return &forms_->forms()[(*from)[rng.Below(from->size())]];
}

uint64_t FuzzGenerator::CaseSeed(uint64_t seed, uint64_t index) {
  Rng r(seed * 0xd1b54a32d192ed03ull + index);
  return r.Next();
}

std::string FuzzGenerator::ConfigJson() const {
  std::string isa, shapes;
  for (const std::string& s : opts_.forms.isa) isa += (isa.empty() ? "\"" : ",\"") + s + "\"";
  for (Shape s : shapes_) {
    shapes += (shapes.empty() ? "\"" : ",\"") + std::string(ShapeName(s)) + "\"";
  }
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "\"max_length\":%d,\"include_nondeterministic\":%s,"
                "\"include_undefined_flag_reads\":%s,\"mutate_cases\":%zu,\"forms\":%zu",
                opts_.max_length, opts_.forms.include_nondeterministic ? "true" : "false",
                opts_.include_undefined_flag_reads ? "true" : "false", opts_.corpus.size(),
                forms_->forms().size());
  return "{\"generator\":\"fuzz\",\"isa\":[" + isa + "],\"shapes\":[" + shapes + "]," + buf + "}";
}

void FuzzGenerator::Values(Rng& rng, const Plan& plan, TestCase* tc) const {
  CpuState& s = tc->init;
  for (int r = 0; r < 16; ++r) s.gpr[r] = GprValue(rng);
  for (int r : kPointerRegs) s.gpr[r] = PointerValue(rng);
  if (plan.reg >= 0) s.gpr[plan.reg] = BadPointerValue(rng, plan.fault);
  for (int r : kIndexRegs) s.gpr[r] = 16 * rng.Below(4);
  s.gpr[kRsp] = kStackTop;
  s.rip = tc->code_addr;
  for (Xmm& x : s.xmm) x = XmmValue(rng);
  s.mxcsr = MxcsrValue(rng, plan.fault == Fault::kSimd);
  s.rflags = 0x202 | (rng.Next() & kStatusFlags);
  if (rng.Below(8) == 0) s.rflags |= kFlagDF;
  // AC makes silicon raise #AC on misaligned accesses (Linux sets CR0.AM):
  // only with the planned #AC, so that it does not end other streams.
  if (plan.fault == Fault::kAlignCheck) s.rflags |= kFlagAC;
  FillBytes(rng, &tc->mem[0].data);
  FillBytes(rng, &tc->mem[1].data);
}

bool FuzzGenerator::EmitForm(Rng& rng, const InsnForm& f, Stream& s, uint32_t avoid_regs,
                             bool target) const {
  if (s.check && (f.flags_tested & s.undef)) return false;
  // Which flags are undefined after the instruction. A shift or rotate by
  // a count that is 0 modulo 32 (64 for 64-bit operands) writes no flag;
  // one whose count is not known here (in CL, or in the form's own bytes)
  // may write none, so it makes no undefined flag defined: the same rule
  // as the comparer's (harness/compare/compare.cc).
  constexpr uint64_t kUnknownCount = ~0ull;
  auto TrackFlags = [&](const InsnForm& form, uint64_t count, Stream& st) {
    uint32_t written = form.flags_written;
    uint32_t undefined = form.flags_undefined;
    if (form.is_shift) {
      const uint64_t mask = form.operand_width == 64 ? 63 : 31;
      if (count == kUnknownCount) {
        written = 0;
      } else if ((count & mask) == 0) {
        written = undefined = 0;
      }
    }
    st.undef = (st.undef & ~written) | undefined;
  };
  const bool clean_case = s.fault == Fault::kNone;
  // A division is guarded (divisor made odd, high half of the dividend
  // cleared or sign-extended) unless it is the planned #DE.
  const bool divide = f.mnemonic == ZYDIS_MNEMONIC_DIV || f.mnemonic == ZYDIS_MNEMONIC_IDIV;
  const bool guard = divide && !(target && s.fault == Fault::kDivide);
  if (guard) avoid_regs |= 1u << kRax | 1u << kRdx;
  const bool fault_memory = target && s.fault != Fault::kNone && s.fault != Fault::kDivide &&
                            s.fault != Fault::kLock && s.fault != Fault::kFaulting &&
                            s.fault != Fault::kSimd;
  // bt/bts/btr/btc with a memory operand and a register bit offset address
  // up to 2^60 bytes away: the offset register is masked to 0..127 first.
  const bool bit_test = (f.mnemonic == ZYDIS_MNEMONIC_BT || f.mnemonic == ZYDIS_MNEMONIC_BTS ||
                         f.mnemonic == ZYDIS_MNEMONIC_BTR || f.mnemonic == ZYDIS_MNEMONIC_BTC) &&
                        f.has_memory && f.operands.size() == 2 &&
                        f.operands[1].type == ZYDIS_OPERAND_TYPE_REGISTER;
  // enter allocates its first immediate below rsp and copies `level` frame
  // pointers from below rbp: both kept small enough to stay mapped.
  const bool enter = f.mnemonic == ZYDIS_MNEMONIC_ENTER;
  for (int attempt = 0; attempt < 3; ++attempt) {
    ZydisEncoderRequest req = f.request;
    uint64_t shift_count = kUnknownCount;
    bool fault_placed = false;
    uint32_t written_regs = f.implicit_gpr_written;
    for (size_t i = 0; i < f.operands.size(); ++i) {
      const FormOperand& fo = f.operands[i];
      ZydisEncoderOperand& op = req.operands[i];
      switch (fo.type) {
        case ZYDIS_OPERAND_TYPE_REGISTER: {
          int id = 0;
          bool avoided = false;
          for (int tries = 0; tries < 8; ++tries) {
            id = static_cast<int>(rng.Below(fo.reg_class == ZYDIS_REGCLASS_GPR8 ? 20 : 16));
            bool gpr = fo.reg_class != ZYDIS_REGCLASS_XMM;
            // ah and dh are halves of the dividend.
            avoided = guard && fo.reg_class == ZYDIS_REGCLASS_GPR8 && (id == 4 || id == 6);
            if (avoided) continue;
            int gpr_id = fo.reg_class == ZYDIS_REGCLASS_GPR8 && id >= 4 && id < 8 ? -1
                         : fo.reg_class == ZYDIS_REGCLASS_GPR8 && id >= 8         ? id - 4
                                                                                  : id;
            if (!gpr || gpr_id < 0) break;
            avoided = gpr_id < 16 && (avoid_regs >> gpr_id & 1);
            if (avoided) continue;
            // Overwriting an address or index register takes it out of
            // addressing for the rest of the stream: rare. The stack
            // pointer is left alone in cases meant to run to their end
            // (pushes and pops need it).
            if (fo.written && gpr_id == kRsp && clean_case) continue;
            if (fo.written && (kAddressRegMask >> gpr_id & 1) && rng.Below(16)) continue;
            break;
          }
          // A register to avoid (a loop counter, a dividend) is never used,
          // even when every draw hit one: then the first register of the
          // class that is not avoided.
          const int fallback = (avoid_regs & 1) ? 1 : 0;
          if (avoided) id = fallback;
          ZydisRegister r = ZydisRegisterEncode(fo.reg_class, static_cast<ZyanU8>(id));
          if (r == ZYDIS_REGISTER_NONE) r = op.reg.value;
          ZydisRegister full = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r);
          if (full >= ZYDIS_REGISTER_RAX && full <= ZYDIS_REGISTER_R15 &&
              (avoid_regs >> (full - ZYDIS_REGISTER_RAX) & 1)) {
            r = ZydisRegisterEncode(fo.reg_class, static_cast<ZyanU8>(fallback));
            full = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r);
          }
          if (fo.written && full >= ZYDIS_REGISTER_RAX && full <= ZYDIS_REGISTER_R15) {
            written_regs |= 1u << (full - ZYDIS_REGISTER_RAX);
          }
          op.reg.value = r;
          break;
        }
        case ZYDIS_OPERAND_TYPE_MEMORY: {
          ZydisRegisterClass cls = op.mem.base != ZYDIS_REGISTER_NONE
                                       ? ZydisRegisterGetClass(op.mem.base)
                                       : ZydisRegisterGetClass(op.mem.index);
          if (cls != ZYDIS_REGCLASS_GPR32) cls = ZYDIS_REGCLASS_GPR64;
          auto Reg = [&](int gpr) { return ZydisRegisterEncode(cls, static_cast<ZyanU8>(gpr)); };
          const int64_t size = op.mem.size;
          // Clean pointer and index registers.
          // 128-bit operands (aligned SSE forms) only through registers
          // known to be 16-byte aligned: not rsp (pushes move it by 8),
          // nor one a string instruction or enter stepped.
          const bool wide = size >= 16;
          int ptrs[std::size(kPointerRegs)], nptrs = 0;
          for (int r : kPointerRegs) {
            if (!(s.dirty >> r & 1) && r != s.fault_reg && !(wide && (s.stepped >> r & 1))) {
              ptrs[nptrs++] = r;
            }
          }
          int idxs[std::size(kIndexRegs)], nidxs = 0;
          for (int r : kIndexRegs) {
            if (!(s.dirty >> r & 1)) idxs[nidxs++] = r;
          }
          op.mem.index = ZYDIS_REGISTER_NONE;
          op.mem.scale = 0;
          int64_t disp = 0;
          bool align = true;
          if (fault_memory && !fault_placed) {
            fault_placed = true;
            if (FaultUsesRegister(s.fault)) {
              op.mem.base = Reg(s.fault_reg);
              disp = s.fault == Fault::kPageCross ? 0 : 16 * rng.Below(kDataBytes / 16);
            } else {
              op.mem.base = nptrs ? Reg(ptrs[rng.Below(nptrs)]) : ZYDIS_REGISTER_NONE;
              disp = op.mem.base == ZYDIS_REGISTER_NONE ? static_cast<int64_t>(kDataAddr) : 0;
              if (s.fault == Fault::kWild) {
                // Far from every mapped page (they are all within 0x1000_0000
                // to 0x3000_1000).
                disp = static_cast<int64_t>(0x40000000 + 16 * rng.Below(1 << 20)) *
                       (rng.Below(2) ? 1 : -1);
                op.mem.base = ZYDIS_REGISTER_NONE;
              } else {  // misaligned: odd
                disp +=
                    static_cast<int64_t>(16 * rng.Below(kDataBytes / 16) + 1 + 2 * rng.Below(8));
              }
            }
            align = false;
          } else {
            const uint64_t pick = rng.Below(20);
            const bool rsp_ok = !(s.dirty >> kRsp & 1) && !wide;
            if (pick < 17 && nptrs) {
              op.mem.base = Reg(ptrs[rng.Below(nptrs)]);
              if (nidxs && rng.Below(4) == 0) {
                op.mem.index = Reg(idxs[rng.Below(nidxs)]);
                op.mem.scale = static_cast<ZyanU8>(1u << rng.Below(4));
              }
              // Sometimes across the boundary of the two data pages.
              disp = rng.Below(48) == 0 ? static_cast<int64_t>(kPageSize - rng.Below(16))
                                        : static_cast<int64_t>(rng.Below(kDataBytes));
            } else if (pick <= 17 && rsp_ok) {
              op.mem.base = cls == ZYDIS_REGCLASS_GPR32 ? ZYDIS_REGISTER_ESP : ZYDIS_REGISTER_RSP;
              disp = static_cast<int64_t>(rng.Below(kDataBytes)) - 64;
            } else if (pick == 18 && cls == ZYDIS_REGCLASS_GPR64 && !fo.written && !guard) {
              // The encoder takes the absolute target: the case's first
              // code bytes (read-only, so only for operands read).
              op.mem.base = ZYDIS_REGISTER_RIP;
              disp = static_cast<int64_t>(kDefaultCodeAddr + rng.Below(64));
            } else {
              op.mem.base = ZYDIS_REGISTER_NONE;  // absolute: disp32 into the data page
              disp = static_cast<int64_t>(kDataAddr + rng.Below(kDataBytes));
            }
            // Misaligned only where that cannot fault: never for 128-bit
            // operands (aligned SSE forms), never under the planned #AC.
            align = size >= 16 || s.fault == Fault::kAlignCheck || rng.Below(8);
          }
          if (align && size) disp &= ~static_cast<int64_t>(std::min<int64_t>(size, 16) - 1);
          op.mem.displacement = disp;
          break;
        }
        case ZYDIS_OPERAND_TYPE_IMMEDIATE: {
          uint64_t v = f.is_shift ? ShiftCount(rng, f.operand_width) : GprValue(rng);
          if (f.is_shift) shift_count = v;
          if (enter) v = i == 0 ? 8 * rng.Below(64) : rng.Below(2);
          int bits = fo.imm_bits ? fo.imm_bits : 64;
          if (bits < 64) {
            v &= (1ull << bits) - 1;
            if (fo.imm_signed && (v >> (bits - 1) & 1)) v |= ~0ull << bits;
          }
          op.imm.u = v;
          break;
        }
        default:
          break;
      }
    }
    // The encoder refuses lock where it is not allowed, which is the
    // point: the prefix byte goes in front by hand.
    if (target && s.fault == Fault::kLock) s.code.push_back(0xf0);
    const size_t before = s.code.size() - (target && s.fault == Fault::kLock ? 1 : 0);
    const uint32_t undef_before = s.undef;
    if (guard && !EmitDivideGuard(f, req, s.code_addr, &s.code)) {
      s.code.resize(before);
      continue;
    }
    if (bit_test) {
      ZydisEncoderRequest mask = Request(ZYDIS_MNEMONIC_AND);
      mask.operand_count = 2;
      mask.operands[0] = req.operands[1];
      mask.operands[1].type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
      mask.operands[1].imm.u = 127;
      // Its flags: and leaves AF undefined, the bit test all but CF.
      if (!Encode(mask, s.code_addr + s.code.size(), &s.code)) {
        s.code.resize(before);
        continue;
      }
      s.undef = (s.undef & ~(kOF | kSF | kZF | kPF | kCF)) | (1u << 4);
    }
    if (Encode(req, s.code_addr + s.code.size(), &s.code)) {
      TrackFlags(f, shift_count, s);
      s.dirty |= written_regs;
      s.stepped |= f.implicit_gpr_stepped;
      return true;
    }
    s.code.resize(before);
    s.undef = undef_before;
  }
  // Rewriting failed to encode: the form's own bytes are a valid encoding,
  // but they name whatever registers they were found with, and address
  // whatever their memory operand does: only register forms, and only
  // where nothing is avoided.
  if (avoid_regs != 0 || f.has_memory || guard) return false;
  if (target && s.fault == Fault::kLock) s.code.push_back(0xf0);
  const uint32_t written = BytesWrittenGprs(f.bytes);
  if (clean_case && (written >> kRsp & 1)) return false;
  s.code.insert(s.code.end(), f.bytes.begin(), f.bytes.end());
  TrackFlags(f, kUnknownCount, s);
  s.dirty |= written;
  return true;
}

void FuzzGenerator::EmitInstructions(Rng& rng, int n, bool memory_only, uint32_t avoid_regs,
                                     Stream& s) const {
  const auto& forms = forms_->forms();
  const auto& mem = forms_->memory_forms();
  for (int k = 0; k < n; ++k) {
    // The planned fault goes on its instruction, or on the next one when
    // no form fitted there.
    const bool target = s.fault != Fault::kNone && !s.fault_done && s.insn >= s.fault_at;
    for (int tries = 0; tries < 8; ++tries) {
      const InsnForm* f = target ? FaultForm(rng, s) : nullptr;
      if (!f) {
        const uint32_t i = memory_only && !mem.empty()
                               ? mem[rng.Below(mem.size())]
                               : static_cast<uint32_t>(rng.Below(forms.size()));
        if (fault_only_[i]) continue;
        f = &forms[i];
      }
      if (EmitForm(rng, *f, s, avoid_regs, target)) {
        s.fault_done |= target;
        break;
      }
    }
    ++s.insn;
  }
}

void FuzzGenerator::Straight(Rng& rng, int n, bool memory_only, Stream& s) const {
  EmitInstructions(rng, n, memory_only, 0, s);
}

void FuzzGenerator::Branches(Rng& rng, int n, Stream& s) const {
  int left = n;
  while (left > 0) {
    int part = 1 + static_cast<int>(rng.Below(static_cast<uint64_t>(std::min(left, 8))));
    switch (rng.Below(3)) {
      case 0: {
        // Forward branch over `part` instructions: jcc on a defined flag, or
        // jmp. The flags after the block are the union of both paths.
        Stream block = s;
        block.code.clear();
        block.code_addr = 0;  // re-based below: only relative forms inside
        const uint32_t before = s.undef;
        std::vector<const Cond*> ok;
        for (const Cond& c : kConds) {
          if (!s.check || !(c.tested & before)) ok.push_back(&c);
        }
        ZydisEncoderRequest jcc =
            Request(ok.empty() ? ZYDIS_MNEMONIC_JMP : ok[rng.Below(ok.size())]->mnemonic);
        jcc.operand_count = 1;
        jcc.operands[0].type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
        // Block first (its length is the displacement); its RIP-relative
        // operands are encoded for its final address, which needs the
        // branch length: a short branch (2 bytes) when the block is short.
        block.code_addr = s.code_addr + s.code.size() + 2;
        const Stream entry = block;
        EmitInstructions(rng, part, false, 0, block);
        if (block.code.size() > 127) {
          block = entry;
          EmitInstructions(rng, 1, false, 0, block);
          block.insn = entry.insn + part;
        }
        jcc.branch_type = ZYDIS_BRANCH_TYPE_SHORT;
        uint64_t here = s.code_addr + s.code.size();
        jcc.operands[0].imm.u = here + 2 + block.code.size();
        if (!Encode(jcc, here, &s.code)) return;
        s.code.insert(s.code.end(), block.code.begin(), block.code.end());
        s.undef = before | block.undef;
        // Registers dirty on either path are dirty after the join.
        s.dirty = block.dirty;
        s.stepped = block.stepped;
        s.insn = block.insn;
        s.fault_done = block.fault_done;
        break;
      }
      case 1: {
        // Bounded loop: mov r14d, 1..4; body; dec r14d; jnz body. The body
        // never names r14. The flags at the body's start are the union of
        // the entry's and the back edge's: regenerate the body until that
        // union reads nothing undefined.
        ZydisEncoderRequest mov = Request(ZYDIS_MNEMONIC_MOV);
        mov.operand_count = 2;
        mov.operands[0].type = ZYDIS_OPERAND_TYPE_REGISTER;
        mov.operands[0].reg.value = ZYDIS_REGISTER_R14D;
        mov.operands[1].type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
        mov.operands[1].imm.u = 1 + rng.Below(4);
        if (!Encode(mov, s.code_addr + s.code.size(), &s.code)) return;
        const size_t body_start = s.code.size();
        const uint32_t entry = s.undef;
        uint32_t head = entry;
        // Likewise the registers dirty at the body's start: a base register
        // the body overwrites is dirty on the second iteration.
        uint32_t head_dirty = s.dirty;
        uint32_t head_stepped = s.stepped;
        const int insn = s.insn;
        const bool fault_done = s.fault_done;
        for (int round = 0; round < 4; ++round) {
          s.code.resize(body_start);
          s.undef = head;
          s.dirty = head_dirty;
          s.stepped = head_stepped;
          s.insn = insn;
          s.fault_done = fault_done;
          EmitInstructions(rng, part, false, 1u << kLoopReg, s);
          // dec writes OF SF ZF AF PF and keeps CF.
          uint32_t exit = s.undef & ~(kOF | kSF | kZF | kPF | (1u << 4));
          const bool flags_ok = !s.check || (exit & ~head) == 0;
          if (flags_ok && (s.dirty & ~head_dirty) == 0 && (s.stepped & ~head_stepped) == 0) break;
          if (s.check) head |= exit;
          head_dirty |= s.dirty;
          head_stepped |= s.stepped;
        }
        ZydisEncoderRequest dec = Request(ZYDIS_MNEMONIC_DEC);
        dec.operand_count = 1;
        dec.operands[0].type = ZYDIS_OPERAND_TYPE_REGISTER;
        dec.operands[0].reg.value = ZYDIS_REGISTER_R14D;
        if (!Encode(dec, s.code_addr + s.code.size(), &s.code)) return;
        s.undef &= ~(kOF | kSF | kZF | kPF | (1u << 4));
        ZydisEncoderRequest jnz = Request(ZYDIS_MNEMONIC_JNZ);
        jnz.operand_count = 1;
        jnz.operands[0].type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
        jnz.operands[0].imm.u = s.code_addr + body_start;
        if (!Encode(jnz, s.code_addr + s.code.size(), &s.code)) return;
        s.undef |= head;
        break;
      }
      default:
        EmitInstructions(rng, part, false, 0, s);
        break;
    }
    left -= part;
  }
}

void FuzzGenerator::Raw(Rng& rng, TestCase* tc) const {
  const ZydisDecoder& decoder = LongModeDecoder();
  for (int tries = 0; tries < 16; ++tries) {
    tc->code.resize(1 + rng.Below(15));
    for (uint8_t& b : tc->code) b = static_cast<uint8_t>(rng.Next());
    // Whatever decodes at any offset may run (a jump can land mid-stream):
    // refuse the bytes when any of those is non-deterministic, or a
    // backward relative jump or loop. Those spin until the wall-time limit
    // (`eb fe`, `e2 fe` with a large rcx): every one costs the whole limit
    // on every engine and tells nothing about decoding. Forward jumps end
    // in the HLT, the zero padding or a fetch fault.
    bool bad = false;
    for (size_t off = 0; off < tc->code.size() && !bad; ++off) {
      ZydisDecodedInstruction in;
      if (ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&decoder, nullptr, tc->code.data() + off,
                                                     tc->code.size() - off, &in))) {
        bad = !opts_.forms.include_nondeterministic && IsNondeterministic(in.mnemonic);
        bad |= (in.meta.category == ZYDIS_CATEGORY_COND_BR ||
                in.meta.category == ZYDIS_CATEGORY_UNCOND_BR) &&
               in.raw.imm[0].is_relative && in.raw.imm[0].value.s < 0;
      }
    }
    if (!bad) return;
  }
  tc->code.assign(1, 0x90);
}

void FuzzGenerator::Mutate(Rng& rng, TestCase* tc) const {
  const uint64_t seed = tc->seed;
  *tc = opts_.corpus[rng.Below(opts_.corpus.size())];
  tc->seed = seed;
  tc->expect.reset();
  int n = 1 + static_cast<int>(rng.Below(3));
  for (int i = 0; i < n; ++i) {
    std::vector<uint8_t>& code = tc->code;
    switch (rng.Below(8)) {
      case 0:
        if (!code.empty()) code[rng.Below(code.size())] ^= static_cast<uint8_t>(1u << rng.Below(8));
        break;
      case 1:
        if (!code.empty()) code[rng.Below(code.size())] = static_cast<uint8_t>(rng.Next());
        break;
      case 2:
        code.insert(code.begin() + static_cast<long>(rng.Below(code.size() + 1)),
                    static_cast<uint8_t>(rng.Next()));
        break;
      case 3:
        if (code.size() > 1) code.erase(code.begin() + static_cast<long>(rng.Below(code.size())));
        break;
      case 4:
        tc->init.gpr[rng.Below(16)] = GprValue(rng);
        break;
      case 5:
        tc->init.xmm[rng.Below(16)] = XmmValue(rng);
        break;
      case 6:
        tc->init.mxcsr = MxcsrValue(rng, rng.Below(4) == 0);
        break;
      default:
        tc->init.rflags = 0x202 | (rng.Next() & kStatusFlags);
        break;
    }
  }
  if (tc->code.empty()) tc->code.push_back(0x90);
}

void FuzzGenerator::Generate(uint64_t case_seed, TestCase* out) const {
  Rng rng(case_seed);
  *out = TestCase{};
  out->seed = case_seed;
  const Shape shape = shapes_[rng.Below(shapes_.size())];
  Fault planned = Fault::kNone;
  if (shape == Shape::kMutate) {
    Mutate(rng, out);
  } else {
    Layout(out);
    const int len = shape == Shape::kSingle
                        ? 1
                        : 1 + static_cast<int>(rng.Below(static_cast<uint64_t>(opts_.max_length)));
    Plan plan;
    if (shape != Shape::kRaw) PlanFault(rng, len, &plan);
    planned = plan.fault;
    Values(rng, plan, out);
    Stream s;
    s.code_addr = out->code_addr;
    s.check = !opts_.include_undefined_flag_reads;
    s.fault = plan.fault;
    s.fault_at = plan.at;
    s.fault_reg = plan.reg;
    switch (shape) {
      case Shape::kSingle:
        Straight(rng, 1, false, s);
        break;
      case Shape::kRandom:
        Straight(rng, len, false, s);
        break;
      case Shape::kMemory:
        Straight(rng, len, true, s);
        break;
      case Shape::kBranch:
        Branches(rng, len, s);
        break;
      default:
        break;
    }
    out->code = std::move(s.code);
    if (shape == Shape::kRaw) Raw(rng, out);
    if (out->code.empty()) out->code.push_back(0x90);
  }
  char name[40];
  std::snprintf(name, sizeof name, "fuzz-%016llx", static_cast<unsigned long long>(case_seed));
  out->name = name;
  out->generator = "fuzz";
  out->source = "fuzz";
  out->tags = {"fuzz", std::string(ShapeName(shape))};
  if (const char* tag = FaultTag(planned)) out->tags.push_back(tag);
}

}  // namespace cpudiff

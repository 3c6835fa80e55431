#include "testgen/fuzz.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

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

uint32_t MxcsrValue(Rng& rng) {
  if (rng.Below(2)) return kMxcsrDefault;
  uint32_t m = kMxcsrDefault;
  m = (m & ~(3u << 13)) | static_cast<uint32_t>(rng.Below(4)) << 13;          // rounding mode
  if (rng.Below(4) == 0) m |= 1u << 6;                                        // DAZ
  if (rng.Below(4) == 0) m |= 1u << 15;                                       // FTZ
  if (rng.Below(4) == 0) m &= ~(static_cast<uint32_t>(rng.Next()) & 0x1f80);  // unmask some
  if (rng.Below(8) == 0) m |= static_cast<uint32_t>(rng.Next()) & 0x3f;       // sticky flags
  return m;
}

// Mostly 16-byte aligned addresses in the data page (aligned SSE accesses
// need them); one in eight is unmapped, non-canonical, read-only, at a page
// boundary or misaligned. A stream ends at its first fault, so faults are
// kept rare enough that most streams run to their end.
uint64_t PointerValue(Rng& rng) {
  switch (rng.Below(40)) {
    case 0:
      return kGapAddr + rng.Below(kPageSize);  // unmapped
    case 1:
      return 0x8000000000000000ull | rng.Below(1 << 20);  // non-canonical
    case 2:
      return kRoAddr + 16 * rng.Below(kDataBytes / 16);  // read-only
    case 3:
      return kDataAddr + kPageSize - rng.Below(8);  // page crossing
    case 4:
      return kDataAddr + 1 + 2 * rng.Below(64);  // misaligned
    default:
      return kDataAddr + 16 * rng.Below(16);
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

void FuzzGenerator::Values(Rng& rng, TestCase* tc) const {
  CpuState& s = tc->init;
  for (int r = 0; r < 16; ++r) s.gpr[r] = GprValue(rng);
  for (int r : kPointerRegs) s.gpr[r] = PointerValue(rng);
  for (int r : kIndexRegs) s.gpr[r] = rng.Below(8) ? 16 * rng.Below(4) : GprValue(rng);
  s.gpr[kRsp] = kStackTop;
  s.rip = tc->code_addr;
  for (Xmm& x : s.xmm) x = XmmValue(rng);
  s.mxcsr = MxcsrValue(rng);
  s.rflags = 0x202 | (rng.Next() & kStatusFlags);
  if (rng.Below(8) == 0) s.rflags |= kFlagDF;
  // AC makes silicon raise #AC on misaligned accesses (Linux sets CR0.AM):
  // rare, so that it does not hide everything else.
  if (rng.Below(32) == 0) s.rflags |= kFlagAC;
  FillBytes(rng, &tc->mem[0].data);
  FillBytes(rng, &tc->mem[1].data);
}

bool FuzzGenerator::EmitForm(Rng& rng, const InsnForm& f, Stream& s, uint32_t avoid_regs) const {
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
  for (int attempt = 0; attempt < 3; ++attempt) {
    ZydisEncoderRequest req = f.request;
    uint64_t shift_count = kUnknownCount;
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
            int gpr_id = fo.reg_class == ZYDIS_REGCLASS_GPR8 && id >= 4 && id < 8 ? -1
                         : fo.reg_class == ZYDIS_REGCLASS_GPR8 && id >= 8         ? id - 4
                                                                                  : id;
            if (!gpr || gpr_id < 0) break;
            avoided = gpr_id < 16 && (avoid_regs >> gpr_id & 1);
            if (avoided) continue;
            // Overwriting the stack pointer, an address or an index
            // register sends the rest of the stream's memory accesses to
            // wild addresses: rare.
            if (fo.written && (kAddressRegMask >> gpr_id & 1) && rng.Below(16)) continue;
            break;
          }
          // A register to avoid (a loop counter) is never used, even when
          // every draw hit one: then the first register of the class.
          if (avoided) id = 0;
          ZydisRegister r = ZydisRegisterEncode(fo.reg_class, static_cast<ZyanU8>(id));
          if (r == ZYDIS_REGISTER_NONE) r = op.reg.value;
          const ZydisRegister full =
              ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r);
          if (full >= ZYDIS_REGISTER_RAX && full <= ZYDIS_REGISTER_R15 &&
              (avoid_regs >> (full - ZYDIS_REGISTER_RAX) & 1)) {
            r = ZydisRegisterEncode(fo.reg_class, 0);
          }
          op.reg.value = r;
          break;
        }
        case ZYDIS_OPERAND_TYPE_MEMORY: {
          ZydisRegisterClass cls = op.mem.base != ZYDIS_REGISTER_NONE
                                       ? ZydisRegisterGetClass(op.mem.base)
                                       : ZydisRegisterGetClass(op.mem.index);
          if (cls != ZYDIS_REGCLASS_GPR32) cls = ZYDIS_REGCLASS_GPR64;
          uint64_t pick = rng.Below(20);
          op.mem.index = ZYDIS_REGISTER_NONE;
          op.mem.scale = 0;
          if (pick < 17) {
            op.mem.base = ZydisRegisterEncode(
                cls, static_cast<ZyanU8>(kPointerRegs[rng.Below(std::size(kPointerRegs))]));
            if (rng.Below(4) == 0) {
              op.mem.index = ZydisRegisterEncode(
                  cls, static_cast<ZyanU8>(kIndexRegs[rng.Below(std::size(kIndexRegs))]));
              op.mem.scale = static_cast<ZyanU8>(1u << rng.Below(4));
            }
          } else if (pick == 17) {
            op.mem.base = cls == ZYDIS_REGCLASS_GPR32 ? ZYDIS_REGISTER_ESP : ZYDIS_REGISTER_RSP;
          } else if (pick == 18 && cls == ZYDIS_REGCLASS_GPR64) {
            op.mem.base = ZYDIS_REGISTER_RIP;
          } else {
            op.mem.base = ZYDIS_REGISTER_NONE;  // absolute: disp32 into the data page
          }
          int64_t disp;
          switch (rng.Below(48)) {
            case 0:
              disp = static_cast<int64_t>(kPageSize - rng.Below(16));
              break;  // crosses a page
            case 1:
              disp = static_cast<int64_t>(kDataSize - rng.Below(16));
              break;  // into the gap
            case 2:
              disp = static_cast<int32_t>(rng.Next());
              break;  // wild
            case 3:
              disp = -static_cast<int64_t>(rng.Below(64));
              break;
            default:
              disp = static_cast<int64_t>(rng.Below(kDataBytes));
              break;
          }
          if (op.mem.base == ZYDIS_REGISTER_NONE) {
            disp = static_cast<int64_t>(kDataAddr) + static_cast<int64_t>(rng.Below(kDataBytes));
          } else if (op.mem.base == ZYDIS_REGISTER_RIP) {
            disp = static_cast<int64_t>(rng.Below(64)) - 32;  // into the code page
          }
          if (rng.Below(8) && op.mem.size) {
            disp &= ~static_cast<int64_t>(std::min<int>(op.mem.size, 16) - 1);
          }
          op.mem.displacement = disp;
          break;
        }
        case ZYDIS_OPERAND_TYPE_IMMEDIATE: {
          uint64_t v = f.is_shift ? ShiftCount(rng, f.operand_width) : GprValue(rng);
          if (f.is_shift) shift_count = v;
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
    if (rng.Below(256) == 0) req.prefixes |= ZYDIS_ATTRIB_HAS_LOCK;  // #UD unless a locked RMW
    if (Encode(req, s.code_addr + s.code.size(), &s.code)) {
      TrackFlags(f, shift_count, s);
      return true;
    }
  }
  // Rewriting failed to encode: the form's own bytes are a valid encoding,
  // but they name whatever registers they were found with.
  if (avoid_regs != 0) return false;
  s.code.insert(s.code.end(), f.bytes.begin(), f.bytes.end());
  TrackFlags(f, kUnknownCount, s);
  return true;
}

void FuzzGenerator::EmitInstructions(Rng& rng, int n, bool memory_only, uint32_t avoid_regs,
                                     Stream& s) const {
  const auto& forms = forms_->forms();
  const auto& mem = forms_->memory_forms();
  for (int k = 0; k < n; ++k) {
    for (int tries = 0; tries < 8; ++tries) {
      const InsnForm& f = memory_only && !mem.empty() ? forms[mem[rng.Below(mem.size())]]
                                                      : forms[rng.Below(forms.size())];
      if (EmitForm(rng, f, s, avoid_regs)) break;
    }
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
        EmitInstructions(rng, part, false, 0, block);
        if (block.code.size() > 127) {
          block.code.clear();
          block.undef = before;
          block.code_addr = s.code_addr + s.code.size() + 2;
          EmitInstructions(rng, 1, false, 0, block);
        }
        jcc.branch_type = ZYDIS_BRANCH_TYPE_SHORT;
        uint64_t here = s.code_addr + s.code.size();
        jcc.operands[0].imm.u = here + 2 + block.code.size();
        if (!Encode(jcc, here, &s.code)) return;
        s.code.insert(s.code.end(), block.code.begin(), block.code.end());
        s.undef = before | block.undef;
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
        for (int round = 0; round < 4; ++round) {
          s.code.resize(body_start);
          s.undef = head;
          EmitInstructions(rng, part, false, 1u << kLoopReg, s);
          // dec writes OF SF ZF AF PF and keeps CF.
          uint32_t exit = s.undef & ~(kOF | kSF | kZF | kPF | (1u << 4));
          if (!s.check || (exit & ~head) == 0) break;
          head |= exit;
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
  static thread_local ZydisDecoder decoder = [] {
    ZydisDecoder d;
    ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    return d;
  }();
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
        tc->init.mxcsr = MxcsrValue(rng);
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
  if (shape == Shape::kMutate) {
    Mutate(rng, out);
  } else {
    Layout(out);
    Values(rng, out);
    Stream s;
    s.code_addr = out->code_addr;
    s.check = !opts_.include_undefined_flag_reads;
    const int len = 1 + static_cast<int>(rng.Below(static_cast<uint64_t>(opts_.max_length)));
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
}

}  // namespace cpudiff

#include "engines/translator/frontend.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <string>

#include "engines/emulator/operands.h"
#include "engines/emulator/step.h"

namespace cpudiff::jit {
namespace {

using ir::Op;
using ir::Value;
using namespace isa;

// How the frontend lifts a form (kInterpret: not lifted).
enum class Kind : uint8_t {
  kInterpret,
  kAlu,
  kTest,
  kInc,
  kDec,
  kNeg,
  kNot,
  kMov,
  kMovExt,
  kLea,
  kPush,
  kPop,
  kJcc,
  kJmp,
  kCall,
  kRet,
  kNop,
  kHlt,
  kCmov,
  kSetcc,
  kClc,
  kStc,
  kCmc,
  kShift,
  kImul,
  kBswap,
  kSseLoad,    // movaps/movups/movdqa/movdqu... xmm, xmm/m128
  kSseStore,   // the same, xmm/m128, xmm
  kSseBinary,  // xmm op= xmm/m128: alu = ir::Op, lane = lane size
  kCld,
  kStd,
  kLahf,
  kSahf,
  kXchg,
  kMulOne,   // mul/imul r/m (rdx:rax = rax * r/m): alu = 1 when signed
  kShiftCl,  // rol/ror/shl/shr/sal/sar r, cl (register destinations)
};

enum AluOp : uint8_t { kAdd, kOr, kAdc, kSbb, kAnd, kSub, kXor, kCmp };
enum ShiftOp : uint8_t { kRol, kRor, kRcl, kRcr, kShl, kShr, kSal, kSar };

struct LiftInfo {
  Kind kind = Kind::kInterpret;
  uint8_t alu = 0;   // AluOp, ShiftOp or (SSE) ir::Op
  uint8_t lane = 0;  // SSE lane size in bytes
};

// Register, immediate and r/m operand forms the generic operand access
// handles (moffs, string and segment forms are interpreted).
bool PlainOperand(Opnd o) {
  switch (o) {
    case NA:
    case Eb:
    case Ew:
    case Ed:
    case Eq:
    case Ev:
    case Ey:
    case Gb:
    case Gw:
    case Gd:
    case Gq:
    case Gv:
    case Gy:
    case Ib:
    case Ibs:
    case Iw:
    case Iz:
    case Iv:
    case ONE:
    case AL:
    case RAX:
    case Zb:
    case Zv:
    case Zq:
      return true;
    default:
      return false;
  }
}

bool PlainForm(const IsaForm& f) {
  for (Opnd o : f.operands) {
    if (!PlainOperand(o)) return false;
  }
  return true;
}

// The lift table, indexed by InsnId, built from the ISA table's mnemonics
// and operand forms.
const std::array<LiftInfo, kNumInsnIds>& LiftTable() {
  static const std::array<LiftInfo, kNumInsnIds> table = [] {
    std::array<LiftInfo, kNumInsnIds> t{};
    static constexpr std::string_view kAluNames[] = {"add", "or",  "adc", "sbb",
                                                     "and", "sub", "xor", "cmp"};
    for (const IsaForm& f : IsaForms()) {
      LiftInfo& li = t[static_cast<int>(f.id)];
      if (f.enc != LEG || f.Has(UD | PRIV | NONDET | SEG | TRAP | NO64)) continue;
      // Some rows of the table spell the mnemonic in upper case (the
      // macro-generated ALU and shift rows): compare in lower case.
      std::string lower(f.mnemonic);
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      std::string_view m = lower;
      bool plain = PlainForm(f);
      for (int i = 0; i < 8; ++i) {
        if (m == kAluNames[i] && plain) li = {Kind::kAlu, static_cast<uint8_t>(i)};
      }
      if (m == "test" && plain) li.kind = Kind::kTest;
      // Shifts and rotates by a constant (counts in CL are interpreted:
      // a zero count leaves the flags alone, decided at run time).
      static constexpr std::string_view kShiftNames[] = {"rol", "ror", "rcl", "rcr",
                                                         "shl", "shr", "sal", "sar"};
      for (int i = 0; i < 8; ++i) {
        if (m == kShiftNames[i] && (f.operands[1] == Ib || f.operands[1] == ONE)) {
          li = {Kind::kShift, static_cast<uint8_t>(i)};
        }
        if (m == kShiftNames[i] && f.operands[1] == CL && i != kRcl && i != kRcr) {
          li = {Kind::kShiftCl, static_cast<uint8_t>(i)};
        }
      }
      if (m == "inc" && plain) li.kind = Kind::kInc;
      if (m == "dec" && plain) li.kind = Kind::kDec;
      if (m == "neg" && plain) li.kind = Kind::kNeg;
      if (m == "not" && plain) li.kind = Kind::kNot;
      if (m == "mov" && plain && f.map == MAP1) li.kind = Kind::kMov;
      if ((m == "movzx" || m == "movsx" || m == "movsxd") && plain) li.kind = Kind::kMovExt;
    }
    auto set = [&](InsnId id, Kind k, uint8_t alu = 0) { t[static_cast<int>(id)] = {k, alu}; };
    set(InsnId::LEA_GvM, Kind::kLea);
    set(InsnId::PUSH_Zq, Kind::kPush);
    set(InsnId::PUSH_Iz, Kind::kPush);
    set(InsnId::PUSH_Ibs, Kind::kPush);
    set(InsnId::POP_Zq, Kind::kPop);
    set(InsnId::JCC_Jb, Kind::kJcc);
    set(InsnId::JCC_Jz, Kind::kJcc);
    set(InsnId::JMP_Jb, Kind::kJmp);
    set(InsnId::JMP_Jz, Kind::kJmp);
    set(InsnId::CALL_Jz, Kind::kCall);
    set(InsnId::RET, Kind::kRet);
    set(InsnId::HLT, Kind::kHlt);
    set(InsnId::CMOVCC_GvEv, Kind::kCmov);
    set(InsnId::SETCC_Eb, Kind::kSetcc);
    set(InsnId::IMUL_GvEv, Kind::kImul);
    set(InsnId::IMUL_GvEvIz, Kind::kImul);
    set(InsnId::IMUL_GvEvIbs, Kind::kImul);
    set(InsnId::BSWAP_Zv, Kind::kBswap);
    set(InsnId::CLC, Kind::kClc);
    set(InsnId::STC, Kind::kStc);
    set(InsnId::CMC, Kind::kCmc);
    set(InsnId::CLD, Kind::kCld);
    set(InsnId::STD, Kind::kStd);
    set(InsnId::LAHF, Kind::kLahf);
    set(InsnId::SAHF, Kind::kSahf);
    set(InsnId::XCHG_ZvRAX, Kind::kXchg);
    set(InsnId::XCHG_EvGv, Kind::kXchg);
    set(InsnId::XCHG_EbGb, Kind::kXchg);
    set(InsnId::MUL_Ev, Kind::kMulOne, 0);
    set(InsnId::IMUL_Ev, Kind::kMulOne, 1);
    for (InsnId id : {InsnId::MOVDQA_VW, InsnId::MOVDQU_VW, InsnId::MOVAPS_VW, InsnId::MOVUPS_VW,
                      InsnId::MOVAPD_VW, InsnId::MOVUPD_VW}) {
      set(id, Kind::kSseLoad);
    }
    for (InsnId id : {InsnId::MOVDQA_WV, InsnId::MOVDQU_WV, InsnId::MOVAPS_WV, InsnId::MOVUPS_WV,
                      InsnId::MOVAPD_WV, InsnId::MOVUPD_WV}) {
      set(id, Kind::kSseStore);
    }
    auto sse = [&](InsnId id, Op op, uint8_t lane) {
      t[static_cast<int>(id)] = {Kind::kSseBinary, static_cast<uint8_t>(op), lane};
    };
    for (InsnId id : {InsnId::PXOR, InsnId::XORPS, InsnId::XORPD}) sse(id, Op::VXor, 16);
    for (InsnId id : {InsnId::POR, InsnId::ORPS, InsnId::ORPD}) sse(id, Op::VOr, 16);
    for (InsnId id : {InsnId::PAND, InsnId::ANDPS, InsnId::ANDPD}) sse(id, Op::VAnd, 16);
    for (InsnId id : {InsnId::PANDN, InsnId::ANDNPS, InsnId::ANDNPD}) sse(id, Op::VAndNot, 16);
    sse(InsnId::PADDB, Op::VAdd, 1);
    sse(InsnId::PADDW, Op::VAdd, 2);
    sse(InsnId::PADDD, Op::VAdd, 4);
    sse(InsnId::PADDQ, Op::VAdd, 8);
    sse(InsnId::PSUBB, Op::VSub, 1);
    sse(InsnId::PSUBW, Op::VSub, 2);
    sse(InsnId::PSUBD, Op::VSub, 4);
    sse(InsnId::PSUBQ, Op::VSub, 8);
    sse(InsnId::PCMPEQB, Op::VCmpEq, 1);
    sse(InsnId::PCMPEQW, Op::VCmpEq, 2);
    sse(InsnId::PCMPEQD, Op::VCmpEq, 4);
    for (InsnId id :
         {InsnId::PAUSE, InsnId::NOP_Ev, InsnId::NOP_18, InsnId::NOP_19, InsnId::NOP_1A,
          InsnId::NOP_1B, InsnId::NOP_1C, InsnId::NOP_1D, InsnId::NOP_1E, InsnId::PREFETCHNTA,
          InsnId::PREFETCHT0, InsnId::PREFETCHT1, InsnId::PREFETCHT2, InsnId::PREFETCH_0D,
          InsnId::LFENCE, InsnId::MFENCE, InsnId::SFENCE}) {
      set(id, Kind::kNop);
    }
    return t;
  }();
  return table;
}

uint64_t SizeMask(int size) { return size == 8 ? ~0ull : (1ull << (size * 8)) - 1; }

// An operand location: a register (AH..BH with high8) or memory.
struct Loc {
  bool mem = false;
  uint8_t reg = 0;
  bool high8 = false;
  int size = 8;
  Value addr = ir::kNoValue;
  uint64_t mem_flags = 0;  // kMemStack
};

class Lifter {
 public:
  Lifter(ir::Block& b, const DecodedInsn& d, uint64_t rip, emu::Vendor vendor)
      : b_(b), d_(d), rip_(rip), next_(rip + d.length), amd_(vendor == emu::Vendor::kAmd) {}

  // Lifts the instruction; returns true when it ends the block.
  bool Lift(const LiftInfo& li);

 private:
  Value C(uint64_t v) { return b_.Emit(Op::Const, ir::kNoValue, ir::kNoValue, ir::kNoValue, v); }
  Value C1(bool v) { return b_.Emit(Op::Const1, ir::kNoValue, ir::kNoValue, ir::kNoValue, v); }
  Value E(Op op, Value a = ir::kNoValue, Value b = ir::kNoValue, Value c = ir::kNoValue,
          uint64_t imm = 0) {
    return b_.Emit(op, a, b, c, imm);
  }

  Value GetGpr(int reg, int size, bool high8 = false) {
    Value full = E(Op::GetReg, ir::kNoValue, ir::kNoValue, ir::kNoValue, reg);
    if (high8) return E(Op::ZeroExt, E(Op::Shr, full, C(8)), ir::kNoValue, ir::kNoValue, 1);
    if (size == 8) return full;
    return E(Op::ZeroExt, full, ir::kNoValue, ir::kNoValue, size);
  }
  void SetGpr(int reg, int size, Value v, bool high8 = false) {
    Value nv;
    if (size == 8 && !high8) {
      nv = v;
    } else if (size == 4 && !high8) {
      nv = E(Op::ZeroExt, v, ir::kNoValue, ir::kNoValue, 4);
    } else {
      uint64_t mask = high8 ? 0xff00 : SizeMask(size);
      Value full = E(Op::GetReg, ir::kNoValue, ir::kNoValue, ir::kNoValue, reg);
      Value part = high8 ? E(Op::Shl, v, C(8)) : v;
      nv = E(Op::Or, E(Op::And, full, C(~mask)), E(Op::And, part, C(mask)));
    }
    E(Op::SetReg, nv, ir::kNoValue, ir::kNoValue, reg);
  }
  void SetFlag(uint64_t flag_bit_mask, Value v) {
    E(Op::SetFlag, v, ir::kNoValue, ir::kNoValue, __builtin_ctzll(flag_bit_mask));
  }
  Value GetFlag(uint64_t flag_bit_mask) {
    return E(Op::GetFlag, ir::kNoValue, ir::kNoValue, ir::kNoValue, __builtin_ctzll(flag_bit_mask));
  }

  Loc RegLoc(int r, int size) const {
    Loc l;
    l.size = size;
    if (size == 1 && !d_.has_rex && r >= 4 && r < 8) {
      l.reg = static_cast<uint8_t>(r - 4);
      l.high8 = true;
    } else {
      l.reg = static_cast<uint8_t>(r);
    }
    return l;
  }
  // Effective address of the ModRM memory operand, segment base added.
  Value EffAddr(uint64_t* mem_flags) {
    Value a;
    if (d_.base == kRipBase) {
      a = C(next_ + static_cast<uint64_t>(d_.disp));
    } else {
      a = C(static_cast<uint64_t>(d_.disp));
      if (d_.base >= 0) a = E(Op::Add, GetGpr(d_.base, 8), a);
    }
    if (d_.index >= 0) {
      a = E(Op::Add, a, E(Op::Shl, GetGpr(d_.index, 8), C(__builtin_ctz(d_.scale))));
    }
    if (d_.addrsize == 4) a = E(Op::ZeroExt, a, ir::kNoValue, ir::kNoValue, 4);
    const bool ss = emu::StackSegmentFault(d_, amd_ ? emu::Vendor::kAmd : emu::Vendor::kIntel);
    if (d_.seg == SegPrefix::kFs) a = E(Op::Add, a, GetGpr(ir::kRegFsBaseIr, 8));
    if (d_.seg == SegPrefix::kGs) a = E(Op::Add, a, GetGpr(ir::kRegGsBaseIr, 8));
    *mem_flags = ss ? ir::kMemStack : 0;
    return a;
  }
  Loc ELoc(int size) {
    if (d_.mod == 3) return RegLoc(d_.rm, size);
    Loc l;
    l.mem = true;
    l.size = size;
    l.addr = EffAddr(&l.mem_flags);
    return l;
  }
  Loc OpLoc(Opnd o) {
    int size = emu::OpSize(o, d_);
    switch (o) {
      case Gb:
      case Gw:
      case Gd:
      case Gq:
      case Gv:
      case Gy:
        return RegLoc(d_.reg, size);
      case AL:
      case RAX:
        return RegLoc(kRax, size);
      case Zb:
      case Zv:
      case Zq:
        return RegLoc(d_.opreg, size);
      default:
        return ELoc(size);
    }
  }
  Value Read(const Loc& l, bool for_write = false) {
    if (!l.mem) return GetGpr(l.reg, l.size, l.high8);
    return E(Op::Load, l.addr, ir::kNoValue, ir::kNoValue,
             l.size | l.mem_flags | (for_write ? ir::kMemWrite : 0));
  }
  void Write(const Loc& l, Value v) {
    if (!l.mem) {
      SetGpr(l.reg, l.size, v, l.high8);
      return;
    }
    E(Op::Store, l.addr, v, ir::kNoValue, l.size | l.mem_flags);
    wrote_memory_ = true;
  }
  Value Src(Opnd o, int size) {
    if (o == ONE) return C(1);
    if (emu::IsImm(o)) return C(d_.imm & SizeMask(size));
    return Read(OpLoc(o));
  }

  // ZF, SF and PF of a result.
  void SetZsp(Value r, int size) {
    SetFlag(kFlagZF, E(Op::IsZero, r, ir::kNoValue, ir::kNoValue, size));
    SetFlag(kFlagSF, E(Op::SignOf, r, ir::kNoValue, ir::kNoValue, size));
    SetFlag(kFlagPF, E(Op::ParityOf, r));
  }
  // The six status flags of an add (sub: is_sub) of a and b giving r.
  void SetArithFlags(Value a, Value b, Value r, int size, bool is_sub, bool set_cf = true) {
    if (set_cf) SetFlag(kFlagCF, E(is_sub ? Op::CarrySub : Op::CarryAdd, a, b, r, size));
    SetFlag(kFlagOF, E(is_sub ? Op::OverflowSub : Op::OverflowAdd, a, b, r, size));
    SetFlag(kFlagAF, E(Op::AuxCarry, a, b, r));
    SetZsp(r, size);
  }
  void SetLogicFlags(Value r, int size) {
    // AF is undefined after logic ops; Intel and AMD Zen both clear it.
    SetFlag(kFlagCF, C1(false));
    SetFlag(kFlagOF, C1(false));
    SetFlag(kFlagAF, C1(false));
    SetZsp(r, size);
  }
  // A condition code (the low 4 bits of jcc/setcc/cmovcc).
  Value Cond(int cc) {
    Value r;
    switch (cc >> 1) {
      case 0:
        r = GetFlag(kFlagOF);
        break;
      case 1:
        r = GetFlag(kFlagCF);
        break;
      case 2:
        r = GetFlag(kFlagZF);
        break;
      case 3:
        r = E(Op::BoolOr, GetFlag(kFlagCF), GetFlag(kFlagZF));
        break;
      case 4:
        r = GetFlag(kFlagSF);
        break;
      case 5:
        r = GetFlag(kFlagPF);
        break;
      case 6:
        r = E(Op::BoolXor, GetFlag(kFlagSF), GetFlag(kFlagOF));
        break;
      default:
        r = E(Op::BoolOr, GetFlag(kFlagZF), E(Op::BoolXor, GetFlag(kFlagSF), GetFlag(kFlagOF)));
        break;
    }
    return (cc & 1) ? E(Op::BoolNot, r) : r;
  }

  // The W operand (XMM register or m128) of an SSE form.
  Value ReadW() {
    if (d_.mod == 3) return E(Op::GetXmm, ir::kNoValue, ir::kNoValue, ir::kNoValue, d_.rm);
    uint64_t flags;
    Value a = EffAddr(&flags);
    if (d_.form().Has(ALIGN16)) flags |= ir::kMemAlign16;
    return E(Op::LoadV128, a, ir::kNoValue, ir::kNoValue, 16 | flags);
  }
  void WriteW(Value v) {
    if (d_.mod == 3) {
      E(Op::SetXmm, v, ir::kNoValue, ir::kNoValue, d_.rm);
      return;
    }
    uint64_t flags;
    Value a = EffAddr(&flags);
    if (d_.form().Has(ALIGN16)) flags |= ir::kMemAlign16;
    E(Op::StoreV128, a, v, ir::kNoValue, 16 | flags);
    wrote_memory_ = true;
  }

  void Alu(int op);
  void MulOne(bool is_signed);
  void Push();
  void Shift(int op);
  void ShiftCl(int op);
  Value IntelOf(int op, Value a, int bits, Value cf_in);
  void Imul();

  ir::Block& b_;
  const DecodedInsn& d_;
  uint64_t rip_, next_;
  bool amd_;
  bool wrote_memory_ = false;
};

// Shifts and rotates by an immediate count, with the emulator's flags
// (engines/emulator/shift.cc): a zero count changes nothing but still
// writes a 32-bit register destination.
void Lifter::Shift(int op) {
  const IsaForm& f = d_.form();
  int size = emu::OpSize(f.operands[0], d_);
  int bits = size * 8;
  unsigned count = f.operands[1] == ONE ? 1 : static_cast<unsigned>(d_.imm & 0xff);
  count &= size == 8 ? 63 : 31;
  Loc dst = OpLoc(f.operands[0]);
  Value a = Read(dst, true);
  if (count == 0) {
    if (!dst.mem && size == 4) Write(dst, a);
    return;
  }
  // Intel computes OF for every non-zero count with the count-1 rule on the
  // original operand (engines/emulator/shift.cc); AMD Zen from the result.
  Value cf_in = (op == kRcr && !amd_) ? GetFlag(kFlagCF) : ir::kNoValue;
  auto intel_of = [&]() { return IntelOf(op, a, bits, cf_in); };
  Value r, cf, of;
  switch (op) {
    case kRol:
    case kRor: {
      unsigned n = count % bits;
      if (n == 0) {
        r = a;
      } else if (op == kRol) {
        r = E(Op::Or, E(Op::Shl, a, C(n)), E(Op::Shr, a, C(bits - n)));
      } else {
        r = E(Op::Or, E(Op::Shr, a, C(n)), E(Op::Shl, a, C(bits - n)));
      }
      r = E(Op::ZeroExt, r, ir::kNoValue, ir::kNoValue, size);
      if (op == kRol) {
        cf = E(Op::TestBit, r, ir::kNoValue, ir::kNoValue, 0);
        of = E(Op::BoolXor, E(Op::TestBit, r, ir::kNoValue, ir::kNoValue, bits - 1), cf);
      } else {
        cf = E(Op::TestBit, r, ir::kNoValue, ir::kNoValue, bits - 1);
        of = E(Op::BoolXor, cf, E(Op::TestBit, r, ir::kNoValue, ir::kNoValue, bits - 2));
      }
      if (!amd_) of = intel_of();
      Write(dst, r);
      SetFlag(kFlagCF, cf);
      SetFlag(kFlagOF, of);
      return;
    }
    case kRcl:
    case kRcr: {
      // Only 32- and 64-bit forms are lifted (Liftable), where the count is
      // below the width: a rotate of the (bits+1)-bit value CF:a.
      Value cin = E(Op::BoolToU64, GetFlag(kFlagCF));
      if (op == kRcl) {
        r = E(Op::Or, E(Op::Shl, a, C(count)), E(Op::Shl, cin, C(count - 1)));
        if (count > 1) r = E(Op::Or, r, E(Op::Shr, a, C(bits + 1 - count)));
        r = E(Op::ZeroExt, r, ir::kNoValue, ir::kNoValue, size);
        cf = E(Op::TestBit, a, ir::kNoValue, ir::kNoValue, bits - count);
        of = E(Op::BoolXor, E(Op::TestBit, r, ir::kNoValue, ir::kNoValue, bits - 1), cf);
      } else {
        r = E(Op::Or, E(Op::Shr, a, C(count)), E(Op::Shl, cin, C(bits - count)));
        if (count > 1) r = E(Op::Or, r, E(Op::Shl, a, C(bits + 1 - count)));
        r = E(Op::ZeroExt, r, ir::kNoValue, ir::kNoValue, size);
        cf = E(Op::TestBit, a, ir::kNoValue, ir::kNoValue, count - 1);
        of = E(Op::BoolXor, E(Op::TestBit, r, ir::kNoValue, ir::kNoValue, bits - 1),
               E(Op::TestBit, r, ir::kNoValue, ir::kNoValue, bits - 2));
      }
      if (!amd_) of = intel_of();
      Write(dst, r);
      SetFlag(kFlagCF, cf);
      SetFlag(kFlagOF, of);
      return;
    }
    case kShl:
    case kSal:
      r = E(Op::ZeroExt, E(Op::Shl, a, C(count)), ir::kNoValue, ir::kNoValue, size);
      // Byte and word shifts may shift everything out (counts up to 31).
      cf = count > static_cast<unsigned>(bits)
               ? C1(false)
               : E(Op::TestBit, a, ir::kNoValue, ir::kNoValue, bits - count);
      of = E(Op::BoolXor, E(Op::SignOf, r, ir::kNoValue, ir::kNoValue, size), cf);
      break;
    case kShr:
      r = E(Op::Shr, a, C(count));
      cf = count > static_cast<unsigned>(bits)
               ? C1(false)
               : E(Op::TestBit, a, ir::kNoValue, ir::kNoValue, count - 1);
      of = count == 1 ? E(Op::SignOf, a, ir::kNoValue, ir::kNoValue, size)
                      : E(Op::BoolXor, E(Op::TestBit, r, ir::kNoValue, ir::kNoValue, bits - 1),
                          E(Op::TestBit, r, ir::kNoValue, ir::kNoValue, bits - 2));
      break;
    default: {  // sar
      Value sa = E(Op::SignExt, a, ir::kNoValue, ir::kNoValue, size);
      r = E(Op::ZeroExt, E(Op::Sar, sa, C(count)), ir::kNoValue, ir::kNoValue, size);
      cf = E(Op::TestBit, sa, ir::kNoValue, ir::kNoValue, count - 1);
      of = C1(false);
      break;
    }
  }
  if (!amd_) of = intel_of();
  Write(dst, r);
  SetFlag(kFlagCF, cf);
  SetFlag(kFlagOF, of);
  // AF is undefined for shifts with a non-zero count: AMD Zen sets it.
  SetFlag(kFlagAF, C1(amd_));
  SetZsp(r, size);
}

// Intel's OF of a shift or rotate: the count-1 rule on the original
// operand `a` (cf_in: CF before a rcr).
Value Lifter::IntelOf(int op, Value a, int bits, Value cf_in) {
  Value msb = E(Op::TestBit, a, ir::kNoValue, ir::kNoValue, bits - 1);
  switch (op) {
    case kRol:
    case kRcl:
    case kShl:
    case kSal:
      return E(Op::BoolXor, msb, E(Op::TestBit, a, ir::kNoValue, ir::kNoValue, bits - 2));
    case kRor:
      return E(Op::BoolXor, msb, E(Op::TestBit, a, ir::kNoValue, ir::kNoValue, 0));
    case kRcr:
      return E(Op::BoolXor, msb, cf_in);
    case kShr:
      return msb;
    default:
      return C1(false);
  }
}

// Shifts and rotates of a register by CL, as Shift with the count known
// only at run time: a zero count (after masking) changes no flag and
// writes the register back unchanged (a 32-bit one zero-extended), so every
// result is a Select on the count being zero.
void Lifter::ShiftCl(int op) {
  const IsaForm& f = d_.form();
  int size = emu::OpSize(f.operands[0], d_);
  int bits = size * 8;
  Loc dst = OpLoc(f.operands[0]);
  Value a = Read(dst, true);
  Value count = E(Op::And, GetGpr(kRcx, 1), C(size == 8 ? 63 : 31));
  Value zero = E(Op::IsZero, count, ir::kNoValue, ir::kNoValue, 8);
  auto u1_select = [&](Value c, Value t, Value e) {
    return E(Op::TestBit, E(Op::Select, c, E(Op::BoolToU64, t), E(Op::BoolToU64, e)), ir::kNoValue,
             ir::kNoValue, 0);
  };
  auto set_unless_zero = [&](uint64_t flag, Value v) {
    SetFlag(flag, u1_select(zero, GetFlag(flag), v));
  };
  auto msb = [&](Value v) { return E(Op::TestBit, v, ir::kNoValue, ir::kNoValue, bits - 1); };
  Value r, cf, of;
  switch (op) {
    case kRol:
    case kRor: {
      Value n = E(Op::And, count, C(bits - 1));
      Value back = E(Op::Sub, C(bits), n);
      r = op == kRol ? E(Op::Or, E(Op::Shl, a, n), E(Op::Shr, a, back))
                     : E(Op::Or, E(Op::Shr, a, n), E(Op::Shl, a, back));
      r = E(Op::ZeroExt, r, ir::kNoValue, ir::kNoValue, size);
      if (op == kRol) {
        cf = E(Op::TestBit, r, ir::kNoValue, ir::kNoValue, 0);
        of = E(Op::BoolXor, msb(r), cf);
      } else {
        cf = msb(r);
        of = E(Op::BoolXor, cf, E(Op::TestBit, r, ir::kNoValue, ir::kNoValue, bits - 2));
      }
      if (!amd_) of = IntelOf(op, a, bits, ir::kNoValue);
      Write(dst, E(Op::Select, zero, a, r));
      set_unless_zero(kFlagCF, cf);
      set_unless_zero(kFlagOF, of);
      return;
    }
    case kShl:
    case kSal: {
      r = E(Op::ZeroExt, E(Op::Shl, a, count), ir::kNoValue, ir::kNoValue, size);
      // Byte and word shifts may shift everything out (counts up to 31).
      Value left = E(Op::Sub, C(bits), count);
      Value over = E(Op::SignOf, left, ir::kNoValue, ir::kNoValue, 8);
      cf = E(Op::BoolAnd, E(Op::BoolNot, over),
             E(Op::TestBit, E(Op::Shr, a, left), ir::kNoValue, ir::kNoValue, 0));
      of = E(Op::BoolXor, E(Op::SignOf, r, ir::kNoValue, ir::kNoValue, size), cf);
      break;
    }
    case kShr: {
      r = E(Op::Shr, a, count);
      // `a` is zero-extended: counts above the width shift CF out as 0.
      cf = E(Op::TestBit, E(Op::Shr, a, E(Op::Sub, count, C(1))), ir::kNoValue, ir::kNoValue, 0);
      Value one = E(Op::IsZero, E(Op::Sub, count, C(1)), ir::kNoValue, ir::kNoValue, 8);
      of = u1_select(
          one, msb(a),
          E(Op::BoolXor, msb(r), E(Op::TestBit, r, ir::kNoValue, ir::kNoValue, bits - 2)));
      break;
    }
    default: {  // sar
      Value sa = E(Op::SignExt, a, ir::kNoValue, ir::kNoValue, size);
      r = E(Op::ZeroExt, E(Op::Sar, sa, count), ir::kNoValue, ir::kNoValue, size);
      cf = E(Op::TestBit, E(Op::Sar, sa, E(Op::Sub, count, C(1))), ir::kNoValue, ir::kNoValue, 0);
      of = C1(false);
      break;
    }
  }
  if (!amd_) of = IntelOf(op, a, bits, ir::kNoValue);
  Write(dst, E(Op::Select, zero, a, r));
  set_unless_zero(kFlagCF, cf);
  set_unless_zero(kFlagOF, of);
  // AF is undefined for shifts with a non-zero count: AMD Zen sets it.
  set_unless_zero(kFlagAF, C1(amd_));
  set_unless_zero(kFlagZF, E(Op::IsZero, r, ir::kNoValue, ir::kNoValue, size));
  set_unless_zero(kFlagSF, E(Op::SignOf, r, ir::kNoValue, ir::kNoValue, size));
  set_unless_zero(kFlagPF, E(Op::ParityOf, r));
}

// imul r, r/m (, imm): CF = OF = the signed product overflows. SF, ZF, AF
// and PF are undefined: AMD Zen keeps them, Intel sets SF and PF from the
// result and clears ZF and AF (engines/emulator/arith.cc).
void Lifter::Imul() {
  const IsaForm& f = d_.form();
  int size = d_.opsize;
  Value a = Read(ELoc(size));
  Value bv = f.operands[2] == NA ? GetGpr(d_.reg, size) : C(d_.imm & SizeMask(size));
  Value r = E(Op::ZeroExt, E(Op::Mul, a, bv), ir::kNoValue, ir::kNoValue, size);
  Value ovf = E(Op::MulOverflow, a, bv, ir::kNoValue, size);
  SetGpr(d_.reg, size, r);
  SetFlag(kFlagCF, ovf);
  SetFlag(kFlagOF, ovf);
  if (!amd_) {
    SetFlag(kFlagSF, E(Op::SignOf, r, ir::kNoValue, ir::kNoValue, size));
    SetFlag(kFlagPF, E(Op::ParityOf, r));
    SetFlag(kFlagZF, C1(false));
    SetFlag(kFlagAF, C1(false));
  }
}

// mul/imul r/m16/32/64: rdx:rax = rax * r/m. CF = OF = the high half is
// not the extension of the low half. SF, ZF, AF and PF are undefined: AMD
// Zen keeps them, Intel sets SF and PF from the low half and clears ZF and
// AF (engines/emulator/arith.cc).
void Lifter::MulOne(bool is_signed) {
  int size = d_.opsize;
  Value b = Read(ELoc(size));
  Value a = GetGpr(kRax, size);
  Value lo, hi, ovf;
  if (size == 8) {
    lo = E(Op::Mul, a, b);
    hi = E(is_signed ? Op::MulHiS : Op::MulHiU, a, b);
    Value ext = is_signed ? E(Op::Sar, lo, C(63)) : C(0);
    ovf = E(Op::BoolNot, E(Op::IsZero, E(Op::Xor, hi, ext), ir::kNoValue, ir::kNoValue, 8));
  } else {
    // The product of 16- or 32-bit operands fits in 64 bits.
    Value p = is_signed ? E(Op::Mul, E(Op::SignExt, a, ir::kNoValue, ir::kNoValue, size),
                            E(Op::SignExt, b, ir::kNoValue, ir::kNoValue, size))
                        : E(Op::Mul, a, b);
    lo = E(Op::ZeroExt, p, ir::kNoValue, ir::kNoValue, size);
    hi = E(Op::ZeroExt, E(Op::Shr, p, C(size * 8)), ir::kNoValue, ir::kNoValue, size);
    Value ext = is_signed ? E(Op::SignExt, lo, ir::kNoValue, ir::kNoValue, size) : lo;
    ovf = E(Op::BoolNot, E(Op::IsZero, E(Op::Xor, p, ext), ir::kNoValue, ir::kNoValue, 8));
  }
  SetGpr(kRax, size, lo);
  SetGpr(kRdx, size, hi);
  SetFlag(kFlagCF, ovf);
  SetFlag(kFlagOF, ovf);
  if (!amd_) {
    Value low = E(Op::ZeroExt, lo, ir::kNoValue, ir::kNoValue, size);
    SetFlag(kFlagSF, E(Op::SignOf, low, ir::kNoValue, ir::kNoValue, size));
    SetFlag(kFlagPF, E(Op::ParityOf, low));
    SetFlag(kFlagZF, C1(false));
    SetFlag(kFlagAF, C1(false));
  }
}

void Lifter::Alu(int op) {
  const IsaForm& f = d_.form();
  int size = emu::OpSize(f.operands[0], d_);
  Loc dst = OpLoc(f.operands[0]);
  Value bv = Src(f.operands[1], size);
  Value a = Read(dst, op != kCmp);
  Value r;
  switch (op) {
    case kAdd:
    case kAdc: {
      r = E(Op::Add, a, bv);
      if (op == kAdc) r = E(Op::Add, r, E(Op::BoolToU64, GetFlag(kFlagCF)));
      Write(dst, r);
      SetArithFlags(a, bv, r, size, false);
      return;
    }
    case kSub:
    case kSbb:
    case kCmp: {
      r = E(Op::Sub, a, bv);
      if (op == kSbb) r = E(Op::Sub, r, E(Op::BoolToU64, GetFlag(kFlagCF)));
      if (op != kCmp) Write(dst, r);
      SetArithFlags(a, bv, r, size, true);
      return;
    }
    case kOr:
      r = E(Op::Or, a, bv);
      break;
    case kAnd:
      r = E(Op::And, a, bv);
      break;
    default:
      r = E(Op::Xor, a, bv);
      break;
  }
  Write(dst, r);
  SetLogicFlags(r, size);
}

void Lifter::Push() {
  const IsaForm& f = d_.form();
  int size = d_.opsize;
  Value v = f.operands[0] == Zq ? GetGpr(d_.opreg, size) : C(d_.imm & SizeMask(size));
  Value addr = E(Op::Sub, GetGpr(kRsp, 8), C(size));
  E(Op::Store, addr, v, ir::kNoValue, size | ir::kMemStack);
  wrote_memory_ = true;
  SetGpr(kRsp, 8, addr);
}

bool Lifter::Lift(const LiftInfo& li) {
  const IsaForm& f = d_.form();
  bool ends = false;
  switch (li.kind) {
    case Kind::kAlu:
      Alu(li.alu);
      break;
    case Kind::kTest: {
      int size = emu::OpSize(f.operands[0], d_);
      Value a = Read(OpLoc(f.operands[0]));
      Value bv = Src(f.operands[1], size);
      SetLogicFlags(E(Op::And, a, bv), size);
      break;
    }
    case Kind::kInc:
    case Kind::kDec: {
      int size = emu::OpSize(f.operands[0], d_);
      Loc dst = OpLoc(f.operands[0]);
      Value a = Read(dst, true);
      Value one = C(1);
      Value r = E(li.kind == Kind::kInc ? Op::Add : Op::Sub, a, one);
      Write(dst, r);
      SetArithFlags(a, one, r, size, li.kind == Kind::kDec, false);
      break;
    }
    case Kind::kNeg: {
      int size = emu::OpSize(f.operands[0], d_);
      Loc dst = OpLoc(f.operands[0]);
      Value a = Read(dst, true);
      Value zero = C(0);
      Value r = E(Op::Sub, zero, a);
      Write(dst, r);
      SetArithFlags(zero, a, r, size, true);
      break;
    }
    case Kind::kNot: {
      Loc dst = OpLoc(f.operands[0]);
      Write(dst, E(Op::Not, Read(dst, true)));
      break;
    }
    case Kind::kMov: {
      if (d_.id == InsnId::MOV_ZvIv) {
        SetGpr(d_.opreg, d_.opsize, C(d_.imm & SizeMask(d_.opsize)));
        break;
      }
      int size = emu::OpSize(f.operands[0], d_);
      Loc dst = OpLoc(f.operands[0]);
      Write(dst, Src(f.operands[1], size));
      break;
    }
    case Kind::kMovExt: {
      int from = emu::OpSize(f.operands[1], d_);
      if (d_.id == InsnId::MOVSXD_GvEd) from = 4;
      Value v = Read(ELoc(from));
      if (d_.id != InsnId::MOVZX_GvEb && d_.id != InsnId::MOVZX_GvEw)
        v = E(Op::SignExt, v, ir::kNoValue, ir::kNoValue, from);
      SetGpr(d_.reg, d_.opsize, v);
      break;
    }
    case Kind::kLea: {
      // The effective address without a segment base, at the address size.
      Value a = C(static_cast<uint64_t>(d_.disp));
      if (d_.base == kRipBase) {
        a = C(next_ + static_cast<uint64_t>(d_.disp));
      } else if (d_.base >= 0) {
        a = E(Op::Add, GetGpr(d_.base, 8), a);
      }
      if (d_.index >= 0) {
        a = E(Op::Add, a, E(Op::Shl, GetGpr(d_.index, 8), C(__builtin_ctz(d_.scale))));
      }
      if (d_.addrsize == 4) a = E(Op::ZeroExt, a, ir::kNoValue, ir::kNoValue, 4);
      SetGpr(d_.reg, d_.opsize, a);
      break;
    }
    case Kind::kPush:
      Push();
      break;
    case Kind::kPop: {
      int size = d_.opsize;
      Value rsp = GetGpr(kRsp, 8);
      Value v = E(Op::Load, rsp, ir::kNoValue, ir::kNoValue, size | ir::kMemStack);
      SetGpr(kRsp, 8, E(Op::Add, rsp, C(size)));
      SetGpr(d_.opreg, size, v);
      break;
    }
    case Kind::kJcc:
      b_.Emit(Op::ExitCond, Cond(d_.cond), ir::kNoValue, ir::kNoValue, next_ + d_.imm, next_);
      ends = true;
      break;
    case Kind::kJmp:
      b_.Emit(Op::ExitJump, ir::kNoValue, ir::kNoValue, ir::kNoValue, next_ + d_.imm);
      ends = true;
      break;
    case Kind::kCall: {
      Value addr = E(Op::Sub, GetGpr(kRsp, 8), C(8));
      E(Op::Store, addr, C(next_), ir::kNoValue, 8 | ir::kMemStack);
      SetGpr(kRsp, 8, addr);
      E(Op::CheckCodeWrite, ir::kNoValue, ir::kNoValue, ir::kNoValue, next_ + d_.imm);
      b_.Emit(Op::ExitJump, ir::kNoValue, ir::kNoValue, ir::kNoValue, next_ + d_.imm);
      return true;
    }
    case Kind::kRet: {
      Value rsp = GetGpr(kRsp, 8);
      Value target = E(Op::Load, rsp, ir::kNoValue, ir::kNoValue, 8 | ir::kMemStack);
      E(Op::CheckCanonical, target);
      SetGpr(kRsp, 8, E(Op::Add, rsp, C(8)));
      b_.Emit(Op::ExitIndirect, target);
      return true;
    }
    case Kind::kNop:
      break;
    case Kind::kHlt:
      b_.Emit(Op::ExitHalt, ir::kNoValue, ir::kNoValue, ir::kNoValue, rip_);
      return true;
    case Kind::kCmov: {
      int size = d_.opsize;
      Value v = Read(ELoc(size));
      Value old = GetGpr(d_.reg, size);
      SetGpr(d_.reg, size, E(Op::Select, Cond(d_.cond), v, old));
      break;
    }
    case Kind::kSetcc: {
      Loc dst = ELoc(1);
      Write(dst, E(Op::BoolToU64, Cond(d_.cond)));
      break;
    }
    case Kind::kShift:
      Shift(li.alu);
      break;
    case Kind::kImul:
      Imul();
      break;
    case Kind::kBswap: {
      int size = d_.opsize;
      Value v = GetGpr(d_.opreg, size);
      // bswap r16 is undefined; Intel and AMD Zen both clear the low 16 bits.
      SetGpr(d_.opreg, size,
             size == 2 ? C(0) : E(Op::ByteSwap, v, ir::kNoValue, ir::kNoValue, size));
      break;
    }
    case Kind::kSseLoad:
      E(Op::SetXmm, ReadW(), ir::kNoValue, ir::kNoValue, d_.reg);
      break;
    case Kind::kSseStore:
      WriteW(E(Op::GetXmm, ir::kNoValue, ir::kNoValue, ir::kNoValue, d_.reg));
      break;
    case Kind::kSseBinary: {
      Value b = ReadW();
      Value a = E(Op::GetXmm, ir::kNoValue, ir::kNoValue, ir::kNoValue, d_.reg);
      E(Op::SetXmm, E(static_cast<Op>(li.alu), a, b, ir::kNoValue, li.lane), ir::kNoValue,
        ir::kNoValue, d_.reg);
      break;
    }
    case Kind::kClc:
      SetFlag(kFlagCF, C1(false));
      break;
    case Kind::kStc:
      SetFlag(kFlagCF, C1(true));
      break;
    case Kind::kCmc:
      SetFlag(kFlagCF, E(Op::BoolNot, GetFlag(kFlagCF)));
      break;
    case Kind::kCld:
    case Kind::kStd:
      SetFlag(kFlagDF, C1(li.kind == Kind::kStd));
      break;
    case Kind::kLahf: {
      // AH = SF:ZF:0:AF:0:PF:1:CF.
      Value ah = C(2);
      for (uint64_t flag : {kFlagSF, kFlagZF, kFlagAF, kFlagPF, kFlagCF}) {
        ah = E(Op::Or, ah, E(Op::Shl, E(Op::BoolToU64, GetFlag(flag)), C(__builtin_ctzll(flag))));
      }
      SetGpr(kRax, 1, ah, true);
      break;
    }
    case Kind::kSahf: {
      Value ah = GetGpr(kRax, 1, true);
      for (uint64_t flag : {kFlagSF, kFlagZF, kFlagAF, kFlagPF, kFlagCF}) {
        SetFlag(flag, E(Op::TestBit, ah, ir::kNoValue, ir::kNoValue, __builtin_ctzll(flag)));
      }
      break;
    }
    case Kind::kXchg: {
      // 90 (and 66 90) is nop, not xchg eax, eax (which would clear the
      // upper half of rax).
      if (d_.id == InsnId::XCHG_ZvRAX && d_.opreg == kRax) break;
      Loc a = OpLoc(f.operands[0]);
      Loc b = OpLoc(f.operands[1]);
      Value va = Read(a, true);
      Value vb = Read(b, true);
      if (a.mem) {  // the store first: a fault leaves the register alone
        Write(a, vb);
        Write(b, va);
      } else {
        Write(b, va);
        Write(a, vb);
      }
      break;
    }
    case Kind::kMulOne:
      MulOne(li.alu != 0);
      break;
    case Kind::kShiftCl:
      ShiftCl(li.alu);
      break;
    default:
      break;
  }
  if (wrote_memory_) {
    E(Op::CheckCodeWrite, ir::kNoValue, ir::kNoValue, ir::kNoValue, next_);
  }
  return ends;
}

bool Canonical(uint64_t a) {
  return static_cast<uint64_t>(static_cast<int64_t>(a << 16) >> 16) == a;
}

}  // namespace

bool FetchDecode(emu::Memory& mem, uint64_t rip, emu::Vendor vendor, DecodedInsn* d,
                 Outcome* fault) {
  if (!Canonical(rip)) {
    *fault = Outcome::FaultWithCode(kVecGP, 0);
    return false;
  }
  uint8_t buf[15];
  size_t n = 0;
  while (n < sizeof buf) {
    emu::Memory::Region* r = mem.Find(rip + n);
    if (r == nullptr || !(r->perm & kPermX)) break;
    // As many bytes as this region holds at once (a region lookup per
    // region, not per byte).
    uint64_t off = rip + n - r->addr;
    size_t take = std::min<uint64_t>(sizeof buf - n, r->bytes.size() - off);
    std::memcpy(buf + n, r->bytes.data() + off, take);
    n += take;
  }
  // AMD honours an operand-size prefix on near branches (as the emulator).
  switch (Decode(buf, n, d, vendor == emu::Vendor::kAmd)) {
    case DecodeStatus::kOk:
      return true;
    case DecodeStatus::kInvalid:
      *fault = Outcome::Fault(kVecUD);
      return false;
    case DecodeStatus::kTooLong:
      *fault = Outcome::FaultWithCode(kVecGP, 0);
      return false;
    case DecodeStatus::kNeedMore:
      // The emulator's memory check gives the fetch fault (its error code
      // and address) for the first byte that cannot be fetched.
      try {
        mem.Check(rip + n, 1, emu::Access::kFetch, false);
      } catch (const emu::GuestFault& f) {
        *fault = emu::FaultOutcome(f);
        return false;
      }
      *fault = Outcome::Fault(kVecUD);  // not reached: that byte cannot be fetched
      return false;
    case DecodeStatus::kUnknown:
      *fault = Outcome::Unsupported("AVX/AVX-512 instructions are not modelled");
      return false;
  }
  return false;
}

bool IsLifted(const DecodedInsn& d) {
  const LiftInfo& li = LiftTable()[static_cast<int>(d.id)];
  if (li.kind == Kind::kShift && (li.alu == kRcl || li.alu == kRcr)) {
    // Byte and word rotates through carry take the count modulo 9 or 17.
    return emu::OpSize(d.form().operands[0], d) >= 4;
  }
  // By CL: register destinations only (a zero count must not touch memory).
  if (li.kind == Kind::kShiftCl) return d.mod == 3;
  return li.kind != Kind::kInterpret;
}

bool LiftBlock(emu::Memory& mem, uint64_t addr, uint32_t max_insns, emu::Vendor vendor,
               GuestBlock* out, Outcome* fault) {
  // Cleared, not replaced: the buffers keep their capacity from block to
  // block.
  out->ir.insts.clear();
  out->ir.guest_insns = 0;
  out->ir.lifted_insns = 0;
  out->ir.guest_addr = addr;
  out->decoded.clear();
  uint64_t rip = addr;
  ir::Block& b = out->ir;
  for (;;) {
    DecodedInsn d;
    Outcome f;
    if (!FetchDecode(mem, rip, vendor, &d, &f)) {
      if (b.guest_insns == 0) {
        *fault = f;
        return false;
      }
      // The next block starts at the undecodable bytes and faults there.
      b.Emit(Op::ExitJump, ir::kNoValue, ir::kNoValue, ir::kNoValue, rip);
      return true;
    }
    const DecodedInsn& dd = out->decoded.emplace_back(d);
    b.Emit(Op::InsnStart, ir::kNoValue, ir::kNoValue, ir::kNoValue, rip, d.length);
    ++b.guest_insns;
    const LiftInfo& li = LiftTable()[static_cast<int>(d.id)];
    uint64_t next = rip + d.length;
    bool ends;
    // A relative branch to a non-canonical address faults at the branch
    // (#GP(0)): the interpreter raises it there.
    // Branches with a 16-bit operand size (an operand-size prefix on AMD)
    // truncate the target and push or pop 2 bytes: interpreted.
    bool lift = IsLifted(d) &&
                !(d.form().Has(isa::BRANCH) && d.form().operands[0] != isa::NA &&
                  (d.form().operands[0] == isa::Jb || d.form().operands[0] == isa::Jz) &&
                  !Canonical(next + d.imm)) &&
                !(d.form().Has(isa::BRANCH) && d.opsize != 8);
    if (lift) {
      ++b.lifted_insns;
      ends = Lifter(b, dd, rip, vendor).Lift(li);
    } else {
      b.Emit(Op::Interpret, ir::kNoValue, ir::kNoValue, ir::kNoValue, rip,
             reinterpret_cast<uint64_t>(&dd));
      // Anything that may change rip other than to the next instruction
      // leaves through the state.
      // popf may set TF: the dispatcher then single-steps what follows.
      const IsaForm& form = d.form();
      ends = form.Has(isa::BRANCH | isa::TRAP) || d.id == InsnId::POPF;
      if (ends) b.Emit(Op::ExitState);
    }
    if (ends) return true;
    rip = next;
    if (b.guest_insns >= max_insns) {
      b.Emit(Op::ExitJump, ir::kNoValue, ir::kNoValue, ir::kNoValue, rip);
      return true;
    }
  }
}

}  // namespace cpudiff::jit

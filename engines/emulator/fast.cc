// Specialised handlers for the register forms of the hottest instructions
// (ALU, test, inc/dec, mov, jcc): the operand size and the operation are
// template parameters, the operands are registers, so no operand-form
// dispatch runs per instruction. They compute exactly what the table's
// generic handlers compute (same AluCompute, same flag rules); Cpu::Run
// picks them once per decoded instruction (ResolveHandler).
#include <utility>

#include "engines/emulator/operands.h"

namespace cpudiff::emu {
namespace {

using namespace isa;

template <int kSize>
uint64_t R(const Cpu& c, int r) {
  return c.s.gpr[r] & SizeMask(kSize);
}

// Which of the flags an instruction writes are read before the next write:
// all of them, none (the next instruction overwrites all six), or only CF
// (the next one is inc/dec, which keeps CF). See Cpu::Run.
enum Live { kLiveAll, kLiveNone, kLiveCf };

template <int kLive>
void SetFlags(Cpu& c, uint64_t f) {
  if (kLive == kLiveAll) c.SetStatus(f);
  if (kLive == kLiveCf) c.s.rflags = (c.s.rflags & ~kFlagCF) | (f & kFlagCF);
}

enum AluForm { kEG, kGE, kEI, kAI };

// op with the operand shape kForm: dst=rm, src=reg (Ev,Gv); dst=reg,
// src=rm (Gv,Ev); dst=rm, immediate (Ev,Iz / Ev,Ibs, sign-extended); or
// rAX, immediate. The shape is a template argument so that each handler
// reads its operands without a branch.
template <int kForm, int kOp, int kSize, int kLive>
void Alu(Cpu& c, const DecodedInsn& d) {
  const int dst = kForm == kGE ? d.reg : kForm == kAI ? static_cast<int>(kRax) : d.rm;
  const uint64_t src = kForm == kEG   ? R<kSize>(c, d.reg)
                       : kForm == kGE ? R<kSize>(c, d.rm)
                                      : d.imm & SizeMask(kSize);
  uint64_t f;
  uint64_t r = AluCompute(kOp, R<kSize>(c, dst), src, c.s.rflags & kFlagCF, kSize, &f);
  if (kOp != kCmp) c.SetReg(dst, kSize, r);
  SetFlags<kLive>(c, f);
}

// test (and without a write; CF, OF and AF cleared as the generic handler)
template <int kSize, int kLive>
void TestEG(Cpu& c, const DecodedInsn& d) {
  SetFlags<kLive>(c, ZSPFlags(R<kSize>(c, d.rm) & R<kSize>(c, d.reg), kSize));
}
template <int kSize, int kLive>
void TestEI(Cpu& c, const DecodedInsn& d) {
  SetFlags<kLive>(c, ZSPFlags(R<kSize>(c, d.rm) & d.imm, kSize));
}
template <int kSize, int kLive>
void TestAI(Cpu& c, const DecodedInsn& d) {
  SetFlags<kLive>(c, ZSPFlags(R<kSize>(c, kRax) & d.imm, kSize));
}

// inc/dec: CF kept.
template <bool kDec, int kSize, int kLive>
void IncDecR(Cpu& c, const DecodedInsn& d) {
  uint64_t f;
  uint64_t r = AluCompute(kDec ? kSub : kAdd, R<kSize>(c, d.rm), 1, false, kSize, &f);
  c.SetReg(d.rm, kSize, r);
  SetFlags<kLive>(c, (f & ~kFlagCF) | (c.s.rflags & kFlagCF));
}

template <int kSize>
void MovEG(Cpu& c, const DecodedInsn& d) {
  c.SetReg(d.rm, kSize, R<kSize>(c, d.reg));
}
template <int kSize>
void MovGE(Cpu& c, const DecodedInsn& d) {
  c.SetReg(d.reg, kSize, R<kSize>(c, d.rm));
}
template <int kSize>
void MovEI(Cpu& c, const DecodedInsn& d) {
  c.SetReg(d.rm, kSize, d.imm & SizeMask(kSize));
}

// jcc with a 64-bit operand size (the AMD 16-bit form stays generic), one
// handler per condition (Cpu::Cond with the condition fixed).
template <int kCc>
void Jcc64(Cpu& c, const DecodedInsn& d) {
  uint64_t f = c.s.rflags;
  bool of = f & kFlagOF, cf = f & kFlagCF, zf = f & kFlagZF, sf = f & kFlagSF, pf = f & kFlagPF;
  bool r;
  switch (kCc >> 1) {
    case 0:
      r = of;
      break;
    case 1:
      r = cf;
      break;
    case 2:
      r = zf;
      break;
    case 3:
      r = cf || zf;
      break;
    case 4:
      r = sf;
      break;
    case 5:
      r = pf;
      break;
    case 6:
      r = sf != of;
      break;
    default:
      r = zf || sf != of;
      break;
  }
  if ((kCc & 1) ? !r : r) c.Jump(c.next_rip + d.imm);
}

template <int... kCc>
Handler JccFor(int cc, std::integer_sequence<int, kCc...>) {
  static constexpr Handler kTable[] = {Jcc64<kCc>...};
  return kTable[cc & 15];
}

template <int N>
using Int = std::integral_constant<int, N>;

// Calls f(Int<size>) for operand size 2, 4 or 8.
template <typename F>
Handler WithSize(int size, F f) {
  switch (size) {
    case 2:
      return f(Int<2>{});
    case 4:
      return f(Int<4>{});
    case 8:
      return f(Int<8>{});
    default:
      return nullptr;
  }
}

template <typename F>
Handler WithLive(int live, F f) {
  switch (live) {
    case kLiveNone:
      return f(Int<kLiveNone>{});
    case kLiveCf:
      return f(Int<kLiveCf>{});
    default:
      return f(Int<kLiveAll>{});
  }
}

template <typename F>
Handler WithOp(int op, F f) {
  switch (op) {
    case kAdd:
      return f(Int<kAdd>{});
    case kOr:
      return f(Int<kOr>{});
    case kAdc:
      return f(Int<kAdc>{});
    case kSbb:
      return f(Int<kSbb>{});
    case kAnd:
      return f(Int<kAnd>{});
    case kSub:
      return f(Int<kSub>{});
    case kXor:
      return f(Int<kXor>{});
    default:
      return f(Int<kCmp>{});
  }
}

// The ALU operation and form of an ALU InsnId, or false.
bool AluIdentity(InsnId id, int* op, AluForm* form) {
#define ALU_ID(NAME, OP)     \
  case InsnId::NAME##_EvGv:  \
    *op = OP;                \
    *form = kEG;             \
    return true;             \
  case InsnId::NAME##_GvEv:  \
    *op = OP;                \
    *form = kGE;             \
    return true;             \
  case InsnId::NAME##_EvIz:  \
  case InsnId::NAME##_EvIbs: \
    *op = OP;                \
    *form = kEI;             \
    return true;             \
  case InsnId::NAME##_RAXIz: \
    *op = OP;                \
    *form = kAI;             \
    return true;
  switch (id) {
    ALU_ID(ADD, kAdd)
    ALU_ID(OR, kOr)
    ALU_ID(ADC, kAdc)
    ALU_ID(SBB, kSbb)
    ALU_ID(AND, kAnd)
    ALU_ID(SUB, kSub)
    ALU_ID(XOR, kXor)
    ALU_ID(CMP, kCmp)
    default:
      return false;
  }
#undef ALU_ID
}

// The fast handler of `d` with flags `live`; null when there is none.
Handler Pick(const DecodedInsn& d, int live) {
  bool reg = d.has_modrm && d.mod == 3;
  int op;
  AluForm form;
  if (AluIdentity(d.id, &op, &form)) {
    if (form != kAI && !reg) return nullptr;
    return WithLive(live, [&](auto l) {
      return WithSize(d.opsize, [&](auto s) {
        return WithOp(op, [&](auto o) -> Handler {
          constexpr int kL = decltype(l)::value, kS = decltype(s)::value, kO = decltype(o)::value;
          switch (form) {
            case kEG:
              return Alu<kEG, kO, kS, kL>;
            case kGE:
              return Alu<kGE, kO, kS, kL>;
            case kEI:
              return Alu<kEI, kO, kS, kL>;
            default:
              return Alu<kAI, kO, kS, kL>;
          }
        });
      });
    });
  }
  auto with = [&](auto make) {
    return WithLive(live, [&](auto l) {
      return WithSize(d.opsize, [&](auto s) { return make(Int<decltype(s)::value>{}, l); });
    });
  };
  switch (d.id) {
    case InsnId::TEST_EvGv:
      if (!reg) return nullptr;
      return with(
          [](auto s, auto l) -> Handler { return TestEG<decltype(s)::value, decltype(l)::value>; });
    case InsnId::TEST_EvIz:
    case InsnId::TEST_EvIz_1:
      if (!reg) return nullptr;
      return with(
          [](auto s, auto l) -> Handler { return TestEI<decltype(s)::value, decltype(l)::value>; });
    case InsnId::TEST_RAXIz:
      return with(
          [](auto s, auto l) -> Handler { return TestAI<decltype(s)::value, decltype(l)::value>; });
    case InsnId::INC_Ev:
      if (!reg) return nullptr;
      return with([](auto s, auto l) -> Handler {
        return IncDecR<false, decltype(s)::value, decltype(l)::value>;
      });
    case InsnId::DEC_Ev:
      if (!reg) return nullptr;
      return with([](auto s, auto l) -> Handler {
        return IncDecR<true, decltype(s)::value, decltype(l)::value>;
      });
    default:
      break;
  }
  if (live != kLiveAll) return nullptr;
  switch (d.id) {
    case InsnId::MOV_EvGv:
      if (!reg) return nullptr;
      return WithSize(d.opsize, [](auto s) -> Handler { return MovEG<decltype(s)::value>; });
    case InsnId::MOV_GvEv:
      if (!reg) return nullptr;
      return WithSize(d.opsize, [](auto s) -> Handler { return MovGE<decltype(s)::value>; });
    case InsnId::MOV_EvIz:
      if (!reg) return nullptr;
      return WithSize(d.opsize, [](auto s) -> Handler { return MovEI<decltype(s)::value>; });
    case InsnId::JCC_Jb:
    case InsnId::JCC_Jz:
      return d.opsize == 2 ? nullptr : JccFor(d.cond, std::make_integer_sequence<int, 16>{});
    default:
      return nullptr;
  }
}

// How an instruction treats the status flags, for its predecessor: writes
// all six without reading any, writes all but CF without reading any, or
// anything else. Only forms that cannot fault qualify.
enum FlagUse { kUseOther, kWritesAll, kWritesAllButCf };

FlagUse Use(const DecodedInsn& d) {
  bool reg = d.has_modrm && d.mod == 3;
  int op;
  AluForm form;
  if (AluIdentity(d.id, &op, &form)) {
    if (form != kAI && !reg) return kUseOther;
    return op == kAdc || op == kSbb ? kUseOther : kWritesAll;
  }
  switch (d.id) {
    case InsnId::TEST_EvGv:
    case InsnId::TEST_EvIz:
    case InsnId::TEST_EvIz_1:
      return reg ? kWritesAll : kUseOther;
    case InsnId::TEST_RAXIz:
      return kWritesAll;
    case InsnId::INC_Ev:
    case InsnId::DEC_Ev:
      return reg ? kWritesAllButCf : kUseOther;
    default:
      return kUseOther;
  }
}

}  // namespace

Handler FastHandler(const DecodedInsn& d) { return Pick(d, kLiveAll); }

Handler FastHandlerBefore(const DecodedInsn& d, const DecodedInsn& next) {
  switch (Use(next)) {
    case kWritesAll:
      return Pick(d, kLiveNone);
    case kWritesAllButCf:
      return Pick(d, kLiveCf);
    default:
      return nullptr;
  }
}

}  // namespace cpudiff::emu

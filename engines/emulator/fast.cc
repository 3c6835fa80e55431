// Specialised handlers for the register forms of the hottest instructions
// (ALU, test, inc/dec, mov, jcc): the operand size and the operation are
// template parameters, the operands are registers, so no operand-form
// dispatch runs per instruction. They compute exactly what the table's
// generic handlers compute (same AluCompute, same flag rules); Cpu::Run
// picks them once per decoded instruction (ResolveHandler).
#include "engines/emulator/operands.h"

namespace cpudiff::emu {
namespace {

using namespace isa;

template <int kSize>
uint64_t R(const Cpu& c, int r) {
  return c.s.gpr[r] & SizeMask(kSize);
}

// op dst=rm, src=reg (Ev,Gv)
template <int kOp, int kSize>
void AluEG(Cpu& c, const DecodedInsn& d) {
  uint64_t f;
  uint64_t r =
      AluCompute(kOp, R<kSize>(c, d.rm), R<kSize>(c, d.reg), c.s.rflags & kFlagCF, kSize, &f);
  if (kOp != kCmp) c.SetReg(d.rm, kSize, r);
  c.SetStatus(f);
}

// op dst=reg, src=rm (Gv,Ev)
template <int kOp, int kSize>
void AluGE(Cpu& c, const DecodedInsn& d) {
  uint64_t f;
  uint64_t r =
      AluCompute(kOp, R<kSize>(c, d.reg), R<kSize>(c, d.rm), c.s.rflags & kFlagCF, kSize, &f);
  if (kOp != kCmp) c.SetReg(d.reg, kSize, r);
  c.SetStatus(f);
}

// op dst=rm, immediate (Ev,Iz / Ev,Ibs; the immediate is sign-extended)
template <int kOp, int kSize>
void AluEI(Cpu& c, const DecodedInsn& d) {
  uint64_t f;
  uint64_t r =
      AluCompute(kOp, R<kSize>(c, d.rm), d.imm & SizeMask(kSize), c.s.rflags & kFlagCF, kSize, &f);
  if (kOp != kCmp) c.SetReg(d.rm, kSize, r);
  c.SetStatus(f);
}

// op rAX, immediate
template <int kOp, int kSize>
void AluAI(Cpu& c, const DecodedInsn& d) {
  uint64_t f;
  uint64_t r =
      AluCompute(kOp, R<kSize>(c, kRax), d.imm & SizeMask(kSize), c.s.rflags & kFlagCF, kSize, &f);
  if (kOp != kCmp) c.SetReg(kRax, kSize, r);
  c.SetStatus(f);
}

// test (and without a write; CF, OF and AF cleared as the generic handler)
template <int kSize>
void TestEG(Cpu& c, const DecodedInsn& d) {
  c.SetStatus(ZSPFlags(R<kSize>(c, d.rm) & R<kSize>(c, d.reg), kSize));
}
template <int kSize>
void TestEI(Cpu& c, const DecodedInsn& d) {
  c.SetStatus(ZSPFlags(R<kSize>(c, d.rm) & d.imm, kSize));
}
template <int kSize>
void TestAI(Cpu& c, const DecodedInsn& d) {
  c.SetStatus(ZSPFlags(R<kSize>(c, kRax) & d.imm, kSize));
}

// inc/dec: CF kept.
template <bool kDec, int kSize>
void IncDecR(Cpu& c, const DecodedInsn& d) {
  uint64_t f;
  uint64_t r = AluCompute(kDec ? kSub : kAdd, R<kSize>(c, d.rm), 1, false, kSize, &f);
  c.SetReg(d.rm, kSize, r);
  c.SetStatus((f & ~kFlagCF) | (c.s.rflags & kFlagCF));
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

// jcc with a 64-bit operand size (the AMD 16-bit form stays generic).
void Jcc64(Cpu& c, const DecodedInsn& d) {
  if (c.Cond(d.cond)) c.Jump(c.next_rip + d.imm);
}

// Pointers by operand size 2, 4, 8.
template <template <int> class F>
Handler BySize(int size) {
  switch (size) {
    case 2:
      return F<2>::h;
    case 4:
      return F<4>::h;
    case 8:
      return F<8>::h;
    default:
      return nullptr;
  }
}

#define FAST_WRAP(NAME, FN)                 \
  template <int kSize>                      \
  struct NAME {                             \
    static constexpr Handler h = FN<kSize>; \
  };
FAST_WRAP(TestEGW, TestEG)
FAST_WRAP(TestEIW, TestEI)
FAST_WRAP(TestAIW, TestAI)
FAST_WRAP(MovEGW, MovEG)
FAST_WRAP(MovGEW, MovGE)
FAST_WRAP(MovEIW, MovEI)
#undef FAST_WRAP

template <bool kDec>
struct IncDecW {
  template <int kSize>
  struct T {
    static constexpr Handler h = IncDecR<kDec, kSize>;
  };
};

template <int kOp>
struct AluW {
  template <int kSize>
  struct EG {
    static constexpr Handler h = AluEG<kOp, kSize>;
  };
  template <int kSize>
  struct GE {
    static constexpr Handler h = AluGE<kOp, kSize>;
  };
  template <int kSize>
  struct EI {
    static constexpr Handler h = AluEI<kOp, kSize>;
  };
  template <int kSize>
  struct AI {
    static constexpr Handler h = AluAI<kOp, kSize>;
  };
};

enum AluForm { kEG, kGE, kEI, kAI };

template <int kOp>
Handler AluBy(AluForm form, int size) {
  switch (form) {
    case kEG:
      return BySize<AluW<kOp>::template EG>(size);
    case kGE:
      return BySize<AluW<kOp>::template GE>(size);
    case kEI:
      return BySize<AluW<kOp>::template EI>(size);
    default:
      return BySize<AluW<kOp>::template AI>(size);
  }
}

Handler AluFast(int op, AluForm form, int size) {
  switch (op) {
    case kAdd:
      return AluBy<kAdd>(form, size);
    case kOr:
      return AluBy<kOr>(form, size);
    case kAdc:
      return AluBy<kAdc>(form, size);
    case kSbb:
      return AluBy<kSbb>(form, size);
    case kAnd:
      return AluBy<kAnd>(form, size);
    case kSub:
      return AluBy<kSub>(form, size);
    case kXor:
      return AluBy<kXor>(form, size);
    default:
      return AluBy<kCmp>(form, size);
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

}  // namespace

Handler FastHandler(const DecodedInsn& d) {
  bool reg = d.has_modrm && d.mod == 3;
  int size = d.opsize;
  int op;
  AluForm form;
  if (AluIdentity(d.id, &op, &form)) {
    if (form != kAI && !reg) return nullptr;
    return AluFast(op, form, size);
  }
  switch (d.id) {
    case InsnId::TEST_EvGv:
      return reg ? BySize<TestEGW>(size) : nullptr;
    case InsnId::TEST_EvIz:
    case InsnId::TEST_EvIz_1:
      return reg ? BySize<TestEIW>(size) : nullptr;
    case InsnId::TEST_RAXIz:
      return BySize<TestAIW>(size);
    case InsnId::INC_Ev:
      return reg ? BySize<IncDecW<false>::T>(size) : nullptr;
    case InsnId::DEC_Ev:
      return reg ? BySize<IncDecW<true>::T>(size) : nullptr;
    case InsnId::MOV_EvGv:
      return reg ? BySize<MovEGW>(size) : nullptr;
    case InsnId::MOV_GvEv:
      return reg ? BySize<MovGEW>(size) : nullptr;
    case InsnId::MOV_EvIz:
      return reg ? BySize<MovEIW>(size) : nullptr;
    case InsnId::JCC_Jb:
    case InsnId::JCC_Jz:
      return d.opsize == 2 ? nullptr : Jcc64;
    default:
      return nullptr;
  }
}

}  // namespace cpudiff::emu

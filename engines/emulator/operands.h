// Operand access by the ISA table's operand forms, shared by the handlers.
#pragma once

#include "engines/emulator/cpu.h"

namespace cpudiff::emu {

// Size in bytes of a general-purpose operand form.
inline int OpSize(isa::Opnd o, const DecodedInsn& d) {
  using namespace isa;
  switch (o) {
    case Eb:
    case Gb:
    case Ib:
    case AL:
    case Zb:
    case Ob:
    case Xb:
    case Yb:
    case Mb:
    case CL:
      return 1;
    case Ew:
    case Gw:
    case Iw:
    case Mw:
    case DX:
    case Sw:
      return 2;
    case Ed:
    case Gd:
    case Md:
      return 4;
    case Eq:
    case Gq:
    case Mq:
    case Rq:
    case Zq:
      return d.opsize == 2 ? 2 : 8;
    case Ey:
    case Gy:
    case Ry:
    case My:
    case By:
      return d.rex_w ? 8 : 4;
    default:
      return d.opsize;  // v, z, s forms, rAX
  }
}

inline bool IsImm(isa::Opnd o) {
  using namespace isa;
  return o == Ib || o == Ibs || o == Iw || o == Iz || o == Iv || o == ONE;
}

// Location of a register or memory operand form.
inline Loc OpLoc(Cpu& c, const DecodedInsn& d, isa::Opnd o) {
  using namespace isa;
  int size = OpSize(o, d);
  switch (o) {
    case Eb:
    case Ew:
    case Ed:
    case Eq:
    case Ev:
    case Ey:
    case M:
    case Mb:
    case Mw:
    case Md:
    case Mq:
    case Mv:
    case My:
    case Rv:
    case Ry:
    case Rq:
      return c.ELoc(d, size);
    case Gb:
    case Gw:
    case Gd:
    case Gq:
    case Gv:
    case Gy:
      return c.GLoc(d, size);
    case AL:
    case RAX:
      return c.RegLoc(kRax, size, d);
    case CL:
      return c.RegLoc(kRcx, 1, d);
    case DX:
      return c.RegLoc(kRdx, 2, d);
    case Zb:
    case Zv:
    case Zq:
      return c.RegLoc(d.opreg, size, d);
    case By:
      return c.RegLoc(d.vvvv, size, d);
    case Ob:
    case Ov: {
      Loc l;
      l.mem = true;
      l.size = size;
      l.addr = c.EffAddr(d, &l.stack);
      return l;
    }
    default:
      Unsupported("operand form " + std::string(OperandName(o)));
  }
}

// Value of an immediate or register/memory source operand, `size` bytes.
inline uint64_t OpRead(Cpu& c, const DecodedInsn& d, isa::Opnd o, int size) {
  if (o == isa::ONE) return 1;
  if (IsImm(o)) return d.imm & SizeMask(size);
  return c.Read(OpLoc(c, d, o));
}

[[gnu::always_inline]] inline uint64_t ZSPFlags(uint64_t r, int size) {
  uint64_t f = 0;
  r &= SizeMask(size);
  if (r == 0) f |= kFlagZF;
  if (r & SignBit(size)) f |= kFlagSF;
  if (Parity(r)) f |= kFlagPF;
  return f;
}

// The eight ALU operations, in the order of the reg field of opcodes 80-83.
enum AluOp { kAdd, kOr, kAdc, kSbb, kAnd, kSub, kXor, kCmp };

// Result and the six status flags of a two-operand ALU operation.
[[gnu::always_inline]] inline uint64_t AluCompute(int op, uint64_t a, uint64_t b, bool cin,
                                                  int size, uint64_t* flags) {
  uint64_t m = SizeMask(size), sb = SignBit(size);
  uint64_t r, f = 0;
  switch (op) {
    case kAdd:
    case kAdc: {
      uint64_t c = (op == kAdc && cin) ? 1 : 0;
      r = (a + b + c) & m;
      bool carry = size == 8 ? (r < a || (c && r == a)) : ((a + b + c) >> (size * 8)) != 0;
      if (op == kAdd && g_test_plant_add_cf) carry = false;
      if (carry) f |= kFlagCF;
      if ((a ^ r) & (b ^ r) & sb) f |= kFlagOF;
      if ((a ^ b ^ r) & 0x10) f |= kFlagAF;
      break;
    }
    case kSub:
    case kSbb:
    case kCmp: {
      uint64_t c = (op == kSbb && cin) ? 1 : 0;
      r = (a - b - c) & m;
      if (a < b || (c && a == b)) f |= kFlagCF;
      if ((a ^ b) & (a ^ r) & sb) f |= kFlagOF;
      if ((a ^ b ^ r) & 0x10) f |= kFlagAF;
      break;
    }
    case kOr:
      r = (a | b) & m;
      break;
    case kAnd:
      r = (a & b) & m;
      break;
    default:
      r = (a ^ b) & m;
      break;
  }
  *flags = f | ZSPFlags(r, size);
  return r;
}

}  // namespace cpudiff::emu

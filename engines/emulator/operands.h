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

inline uint64_t ZSPFlags(uint64_t r, int size) {
  uint64_t f = 0;
  r &= SizeMask(size);
  if (r == 0) f |= kFlagZF;
  if (r & SignBit(size)) f |= kFlagSF;
  if (Parity(r)) f |= kFlagPF;
  return f;
}

}  // namespace cpudiff::emu

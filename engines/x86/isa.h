// The x86-64 instruction-form table (engines/x86/isa.inc) as C++ data.
//
// InsnId names every row of the table; Forms() gives its descriptor. The
// decoder, the emulator's dispatch, the translator and the generator all read
// the same rows. Immutable after static initialization; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace cpudiff {

// The tokens of isa.inc. Expand the table where this namespace is in scope.
namespace isa {

enum Enc : uint8_t { LEG, VEX };
enum Map : uint8_t { MAP1, MAP0F, MAP0F38, MAP0F3A };
enum Pfx : uint8_t { NP, P66, PF3, PF2, ANYP };
// ModRM column: NOMRM, MRM, X0..X7 (0x10 | ext), XB(byte) (0x100 | byte).
inline constexpr uint16_t NOMRM = 0, MRM = 1, X0 = 0x10, X1 = 0x11, X2 = 0x12, X3 = 0x13, X4 = 0x14,
                          X5 = 0x15, X6 = 0x16, X7 = 0x17;
constexpr uint16_t XB(unsigned byte) { return static_cast<uint16_t>(0x100 | byte); }
enum Mod : uint8_t { ANYMOD, MEM, REG };
enum W : uint8_t { WIG, W0, W1 };

// Operand forms (see isa.inc for the notation).
enum Opnd : uint8_t {
  NA = 0,
  // General-purpose.
  Eb,
  Ew,
  Ed,
  Eq,
  Ev,
  Ey,
  Gb,
  Gw,
  Gd,
  Gq,
  Gv,
  Gy,
  Rv,
  Ry,
  Rq,
  M,
  Mb,
  Mw,
  Md,
  Mq,
  Mv,
  My,
  Mdq,
  Mp,
  Ib,
  Ibs,
  Iw,
  Iz,
  Iv,
  Jb,
  Jz,
  ONE,
  AL,
  RAX,
  CL,
  DX,
  Zb,
  Zv,
  Zq,
  Ob,
  Ov,
  Xb,
  Xv,
  Yb,
  Yv,
  By,
  IMPL,
  // Segment, control and debug registers.
  Sw,
  Cq,
  Dq,
  // SSE.
  Vps,
  Vpd,
  Vss,
  Vsd,
  Vq,
  Vdq,
  Wps,
  Wpd,
  Wss,
  Wsd,
  Wq,
  Wd,
  Ww,
  Wdq,
  Uq,
  Ups,
  Upd,
  Udq,
  // MMX.
  Pq,
  Qq,
  Nq,
  kNumOpnd
};

enum Isa : uint8_t {
  BASE,
  X87,
  MMX,
  SSE,
  SSE2,
  SSE3,
  SSSE3,
  SSE41,
  SSE42,
  POPCNT,
  LZCNT,
  BMI1,
  BMI2,
  ADX,
  MOVBE,
  CX16,
  CLFSH,
  AES,
  PCLMUL,
  RDRAND,
  SSE4A,
  SHA,
  OTHER,
  SYSTEM,
  kNumIsa
};

enum Attr : uint32_t {
  LOCK = 1u << 0,
  NO64 = 1u << 1,
  D64 = 1u << 2,
  F64 = 1u << 3,
  REP = 1u << 4,
  REPC = 1u << 5,
  PRIV = 1u << 6,
  NONDET = 1u << 7,
  ALIGN16 = 1u << 8,
  BRANCH = 1u << 9,
  TRAP = 1u << 10,
  SSE_FP = 1u << 11,
  NOP = 1u << 12,
  UD = 1u << 13,
  SEG = 1u << 14,
  CC16 = 1u << 15,
  VVVV1 = 1u << 16,
};

// RFLAGS bits, as in the architecture.
enum Flag : uint16_t {
  CF = 1 << 0,
  PF = 1 << 2,
  AF = 1 << 4,
  ZF = 1 << 6,
  SF = 1 << 7,
  DF = 1 << 10,
  OF = 1 << 11,
  AC = 0,  // alignment checking is not a status flag the table tracks
  OSZAPC = CF | PF | AF | ZF | SF | OF,
};

}  // namespace isa

enum class InsnId : uint16_t {
#define X86_INSN(id, ...) id,
#include "engines/x86/isa.inc"
#undef X86_INSN
  kCount,
  kInvalid = kCount,
};
inline constexpr int kNumInsnIds = static_cast<int>(InsnId::kCount);

// One row of the table.
struct IsaForm {
  InsnId id;
  std::string_view name;  // the id as text, e.g. "ADD_EbGb"
  std::string_view mnemonic;
  isa::Enc enc;
  isa::Map map;
  uint8_t opcode;
  isa::Pfx pfx;
  uint16_t rm;  // NOMRM, MRM, X0..X7 or XB(byte)
  isa::Mod mod;
  isa::W w;
  isa::Opnd operands[4];
  isa::Isa isa;
  uint32_t attr;
  uint16_t flags_tested;
  uint16_t flags_modified;
  uint16_t flags_undefined;

  bool has_modrm() const { return rm != isa::NOMRM; }
  bool has_reg_ext() const { return (rm & 0xf0) == 0x10; }
  int reg_ext() const { return rm & 7; }
  bool has_exact_modrm() const { return (rm & 0x100) != 0; }
  uint8_t exact_modrm() const { return static_cast<uint8_t>(rm & 0xff); }
  bool Has(uint32_t a) const { return (attr & a) != 0; }
};

// Every row, indexed by InsnId.
std::span<const IsaForm> IsaForms();
inline const IsaForm& Form(InsnId id) { return IsaForms()[static_cast<int>(id)]; }
std::string_view IsaName(isa::Isa i);
std::string_view OperandName(isa::Opnd o);

}  // namespace cpudiff

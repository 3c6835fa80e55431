// The x86-64 instruction decoder, driven by the ISA table (isa.inc).
//
// Decodes one instruction in 64-bit mode into a DecodedInsn that carries
// everything an executor needs (form, operand size, register numbers,
// effective-address parts, immediates) and nothing about how it is
// executed: the emulator and the translator both consume it.
//
// Decode is a pure function of its input bytes; the lookup tables are built
// once on first use (thread-safe static initialization).
#pragma once

#include <cstddef>
#include <cstdint>

#include "engines/x86/isa.h"

namespace cpudiff {

enum class DecodeStatus : uint8_t {
  kOk,        // a form of the table; `insn` is complete
  kInvalid,   // #UD: no form matches, invalid in 64-bit mode, bad LOCK, reserved
  kTooLong,   // longer than 15 bytes: #GP(0)
  kNeedMore,  // the bytes ran out at offset `DecodedInsn::length`
  kUnknown,   // a valid-looking encoding outside the table (AVX, AVX-512):
              // `length` is right, the instruction is not modelled
};

// Segment prefixes (only FS and GS have a base in 64-bit mode).
enum class SegPrefix : uint8_t { kNone, kEs, kCs, kSs, kDs, kFs, kGs };

struct DecodedInsn {
  InsnId id = InsnId::kInvalid;
  uint8_t length = 0;
  uint8_t opcode = 0;    // the opcode byte (for the +r and condition-code rows)
  uint8_t opsize = 4;    // operand size in bytes of `v` operands: 2, 4 or 8
  uint8_t addrsize = 8;  // 8, or 4 with the 67 prefix
  SegPrefix seg = SegPrefix::kNone;
  bool lock = false;
  bool rep = false;    // F3 (when it is not the mandatory prefix)
  bool repne = false;  // F2 (when it is not the mandatory prefix)
  bool opsize_prefix = false;
  bool has_rex = false;  // any REX prefix (selects SPL..DIL over AH..BH)
  bool rex_w = false;    // REX.W or VEX.W
  bool vex = false;
  uint8_t vex_l = 0;
  uint8_t vvvv = 0;  // VEX.vvvv as a register number (0..15)

  // ModRM: reg and rm include REX.R / REX.B.
  bool has_modrm = false;
  uint8_t modrm = 0;
  uint8_t mod = 0;
  uint8_t reg = 0;
  uint8_t rm = 0;
  // Memory operand (mod != 3, or moffs): base + index * scale + disp, where
  // base is -1 for none and kRipBase for RIP-relative (relative to the next
  // instruction), and index is -1 for none.
  bool has_mem = false;
  int8_t base = -1;
  int8_t index = -1;
  uint8_t scale = 1;
  int64_t disp = 0;
  // +r register (opcode low 3 bits with REX.B) and condition code.
  uint8_t opreg = 0;
  uint8_t cond = 0;
  // Immediates: the first is sign-extended for Ibs, Iz, Jb and Jz; the
  // second is enter's Ib.
  uint64_t imm = 0;
  uint64_t imm2 = 0;

  const IsaForm& form() const { return Form(id); }
};

inline constexpr int8_t kRipBase = 16;

// `amd_branch_opsize`: AMD CPUs honour 66 on near branches in 64-bit mode
// (16-bit operand size: rel16, IP truncated to 16 bits, 2-byte return
// addresses); Intel CPUs and Zydis ignore it. Off by default.
DecodeStatus Decode(const uint8_t* bytes, size_t available, DecodedInsn* insn,
                    bool amd_branch_opsize = false);

}  // namespace cpudiff

// The instruction forms the fuzzing generator emits, and the one interface
// through which it gets them (FormSet::Build).
//
// Forms come from Zydis for now: random byte strings are decoded, and each
// distinct form (mnemonic, encoding, opcode, operand kinds and sizes) whose
// ISA extension, ISA set or mnemonic is selected is kept with an encoder
// request that re-encodes it. No second, hand-kept instruction table. When
// the project's own x86 ISA table (engines/x86) lands, FormSet::Build reads
// the forms from it instead and nothing else in testgen changes.
#pragma once

#include <Zydis/Zydis.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cpudiff {

// What the generator needs to know about one visible operand to rewrite it.
struct FormOperand {
  ZydisOperandType type = ZYDIS_OPERAND_TYPE_UNUSED;
  ZydisRegisterClass reg_class = ZYDIS_REGCLASS_INVALID;  // registers
  bool written = false;                                   // written by the form
  uint16_t mem_bits = 0;                                  // memory: access size in bits
  uint8_t imm_bits = 0;                                   // immediates: encoded width
  bool imm_signed = false;
};

struct InsnForm {
  ZydisEncoderRequest request;        // re-encodes the form as decoded
  std::vector<uint8_t> bytes;         // the bytes it was found as (a valid encoding)
  std::vector<FormOperand> operands;  // parallel to request.operands
  ZydisMnemonic mnemonic = ZYDIS_MNEMONIC_INVALID;
  uint16_t operand_width = 0;  // effective operand size in bits
  // Flag metadata (RFLAGS bit masks), for the undefined-flag filter.
  uint32_t flags_tested = 0;
  uint32_t flags_written = 0;  // modified, set to 0 or to 1
  uint32_t flags_undefined = 0;
  // General-purpose registers (bit = register number, rsp excluded) that
  // the form writes without naming them, when that leaves them holding
  // something other than an address near the old one: the generator stops
  // using them as base or index afterwards. String instructions only step
  // rsi/rdi and enter points rbp into the stack: not counted.
  uint32_t implicit_gpr_written = 0;
  // Those it steps instead (string instructions: rsi, rdi; enter: rbp):
  // still addresses, no longer 16-byte aligned.
  uint32_t implicit_gpr_stepped = 0;
  bool has_memory = false;
  bool memory_written = false;  // a memory operand is written
  uint16_t mem_bits = 0;        // size of the (first) memory operand in bits
  bool has_xmm = false;         // an XMM register operand
  bool is_shift = false;        // shift or rotate: immediates are counts
  std::string name;             // "add r64, imm8"-like key, for listings
};

struct FormFilter {
  // Lower-case Zydis ISA extension ("base", "sse2", "bmi1"), ISA set
  // ("sse42", "popcnt") or mnemonic ("bsr") names. Empty: kDefaultIsa.
  std::vector<std::string> isa;
  // Keep instructions whose result differs from run to run (rdtsc, rdrand,
  // cpuid, ...). Off by default: they diverge by nature.
  bool include_nondeterministic = false;
};

// The ISA extensions selected by default: what every engine here can run
// and whose state cpudiff compares (general-purpose and SSE; no x87, MMX or
// AVX state).
inline constexpr const char* kDefaultIsa =
    "base,longmode,sse,sse2,sse3,ssse3,sse4,bmi1,bmi2,lzcnt,adox_adcx,movbe,popcnt";

// True for instructions that a campaign excludes unless asked: their results
// differ from run to run or from machine to machine (time stamps, random
// numbers, CPU identification, descriptor-table addresses).
bool IsNondeterministic(ZydisMnemonic m);

class FormSet {
 public:
  // Builds the set for `filter`: deterministic (a fixed internal seed), a few
  // tens of milliseconds. Throws std::invalid_argument when no form matches.
  static std::shared_ptr<const FormSet> Build(const FormFilter& filter);

  const std::vector<InsnForm>& forms() const { return forms_; }
  // Indexes of the forms with a memory operand.
  const std::vector<uint32_t>& memory_forms() const { return memory_forms_; }

 private:
  std::vector<InsnForm> forms_;
  std::vector<uint32_t> memory_forms_;
};

}  // namespace cpudiff

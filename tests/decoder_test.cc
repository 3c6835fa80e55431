// The decoder (engines/x86/decoder.h) against known encodings and against
// Zydis on random byte strings.
//
// The random comparison runs 100,000 strings by default; set
// CPUDIFF_DECODER_STRINGS=1000000 for the full campaign. Differences are
// grouped by reason; a difference without an explained reason fails.
#include "engines/x86/decoder.h"

#include <Zydis/Zydis.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "engines/x86/state.h"
#include "testgen/generate.h"

namespace cpudiff {
namespace {

DecodeStatus DecodeHex(std::string_view hex, DecodedInsn* d) {
  std::vector<uint8_t> b;
  EXPECT_TRUE(ParseHexBytes(hex, &b)) << hex;
  return Decode(b.data(), b.size(), d);
}

struct Known {
  const char* hex;
  DecodeStatus status;
  int length;
  const char* id;  // IsaForm name, or "" when not checked
};

// Encodings from the Intel SDM opcode tables (lengths as GNU as emits them).
TEST(Decoder, KnownEncodings) {
  const Known known[] = {
      {"4801d8", DecodeStatus::kOk, 3, "ADD_EvGv"},                 // add rax, rbx
      {"00d8", DecodeStatus::kOk, 2, "ADD_EbGb"},                   // add al, bl
      {"6681c33412", DecodeStatus::kOk, 5, "ADD_EvIz"},             // add bx, 0x1234
      {"4881c378563412", DecodeStatus::kOk, 7, "ADD_EvIz"},         // add rbx, 0x12345678
      {"48b88877665544332211", DecodeStatus::kOk, 10, "MOV_ZvIv"},  // movabs rax, imm64
      {"488b0500000000", DecodeStatus::kOk, 7, "MOV_GvEv"},         // mov rax, [rip+0]
      {"8b04cd00000000", DecodeStatus::kOk, 7, "MOV_GvEv"},         // mov eax, [rcx*8+0]
      {"8b442408", DecodeStatus::kOk, 4, "MOV_GvEv"},               // mov eax, [rsp+8]
      {"f3a4", DecodeStatus::kOk, 2, "MOVSB"},                      // rep movsb
      {"f390", DecodeStatus::kOk, 2, "PAUSE"},                      // pause
      {"f30fbcc1", DecodeStatus::kOk, 4, "TZCNT_GvEv"},             // tzcnt eax, ecx
      {"0fbcc1", DecodeStatus::kOk, 3, "BSF_GvEv"},                 // bsf eax, ecx
      {"660f6fc1", DecodeStatus::kOk, 4, "MOVDQA_VW"},              // movdqa xmm0, xmm1
      {"f20f38f1c1", DecodeStatus::kOk, 5, "CRC32_GdEv"},           // crc32 eax, ecx
      {"c4e278f2c3", DecodeStatus::kOk, 5, "ANDN_GyByEy"},          // andn eax, eax, ebx
      {"c4e3fbf0c105", DecodeStatus::kOk, 6, "RORX_GyEyIb"},        // rorx rax, rcx, 5
      {"c8100001", DecodeStatus::kOk, 4, "ENTER_IwIb"},             // enter 16, 1
      {"a11122334455667788", DecodeStatus::kOk, 9, "MOV_RAXOv"},    // mov eax, [moffs64]
      {"0f0b", DecodeStatus::kOk, 2, "UD2"},                        // ud2
      {"f00118", DecodeStatus::kOk, 3, "ADD_EvGv"},                 // lock add [rax], ebx
      {"f001d8", DecodeStatus::kInvalid, 0, ""},                    // lock add eax, ebx
      {"f090", DecodeStatus::kInvalid, 0, ""},                      // lock nop
      {"f08b00", DecodeStatus::kInvalid, 0, ""},                    // lock mov eax, [rax]
      {"06", DecodeStatus::kInvalid, 0, ""},                        // push es
      {"37", DecodeStatus::kInvalid, 0, ""},                        // aaa
      {"82c001", DecodeStatus::kInvalid, 0, ""},                    // add al, 1 (82)
      {"c4e27cf2c3", DecodeStatus::kInvalid, 0, ""},                // andn with VEX.L1
      {"c4e383f0c105", DecodeStatus::kInvalid, 0, ""},              // rorx with vvvv != 1111
      {"66c5f8", DecodeStatus::kInvalid, 0, ""},                    // 66 before VEX
      {"6666666666666666666666666601d8", DecodeStatus::kOk, 15, "ADD_EvGv"},
      {"666666666666666666666666666601d8", DecodeStatus::kTooLong, 0, ""},
      {"4881", DecodeStatus::kNeedMore, 0, ""},
  };
  for (const Known& k : known) {
    DecodedInsn d;
    DecodeStatus s = DecodeHex(k.hex, &d);
    EXPECT_EQ(static_cast<int>(s), static_cast<int>(k.status)) << k.hex;
    if (s == DecodeStatus::kOk && k.status == DecodeStatus::kOk) {
      EXPECT_EQ(d.length, k.length) << k.hex;
      EXPECT_EQ(d.form().name, k.id) << k.hex;
    }
  }
}

TEST(Decoder, OperandFields) {
  DecodedInsn d;
  // mov rax, [r12 + r13*4 + 0x10]
  ASSERT_EQ(DecodeHex("4b8b44ac10", &d), DecodeStatus::kOk);
  EXPECT_EQ(d.opsize, 8);
  EXPECT_EQ(d.reg, 0);
  EXPECT_EQ(d.base, 12);
  EXPECT_EQ(d.index, 13);
  EXPECT_EQ(d.scale, 4);
  EXPECT_EQ(d.disp, 0x10);
  // push word imm8 (66 6a ff): D64 with 66 is 16-bit, imm sign-extended.
  ASSERT_EQ(DecodeHex("666aff", &d), DecodeStatus::kOk);
  EXPECT_EQ(d.opsize, 2);
  EXPECT_EQ(d.imm, ~0ull);
  // jne rel32 with condition code 5.
  ASSERT_EQ(DecodeHex("0f8510000000", &d), DecodeStatus::kOk);
  EXPECT_EQ(d.cond, 5);
  EXPECT_EQ(d.imm, 0x10u);
  // jmp rel with 66: Intel (and Zydis) ignore the prefix, AMD takes rel16.
  ASSERT_EQ(DecodeHex("66e90200909090", &d), DecodeStatus::kOk);
  EXPECT_EQ(d.length, 6);
  std::vector<uint8_t> b;
  ASSERT_TRUE(ParseHexBytes("66e90200909090", &b));
  ASSERT_EQ(Decode(b.data(), b.size(), &d, /*amd_branch_opsize=*/true), DecodeStatus::kOk);
  EXPECT_EQ(d.length, 4);
  EXPECT_EQ(d.opsize, 2);
  // xchg r8, rax via REX.B 90.
  ASSERT_EQ(DecodeHex("4990", &d), DecodeStatus::kOk);
  EXPECT_EQ(d.opreg, 8);
}

// ---- Zydis comparison ------------------------------------------------------

// Why our decoder and Zydis 4.0 may disagree on a string, each checked.
// Returns "" for an unexplained difference.
std::string ExplainDifference(const ZydisDecodedInstruction* z, DecodeStatus ours,
                              const DecodedInsn& d) {
  if (z == nullptr && ours == DecodeStatus::kUnknown) {
    return "VEX/EVEX form outside the table (validity not modelled)";
  }
  if (z != nullptr && (z->mnemonic == ZYDIS_MNEMONIC_JKZD || z->mnemonic == ZYDIS_MNEMONIC_JKNZD)) {
    return "Knights Corner VEX forms (not on any current CPU)";
  }
  if (z != nullptr) {
    switch (z->meta.isa_ext) {
      case ZYDIS_ISA_EXT_AVX:
      case ZYDIS_ISA_EXT_AVX2:
      case ZYDIS_ISA_EXT_AVX2GATHER:
      case ZYDIS_ISA_EXT_AVX512EVEX:
      case ZYDIS_ISA_EXT_AVX512VEX:
      case ZYDIS_ISA_EXT_AVXAES:
      case ZYDIS_ISA_EXT_AVX_VNNI:
      case ZYDIS_ISA_EXT_F16C:
      case ZYDIS_ISA_EXT_FMA:
      case ZYDIS_ISA_EXT_FMA4:
      case ZYDIS_ISA_EXT_XOP:
      case ZYDIS_ISA_EXT_TBM:
      case ZYDIS_ISA_EXT_AMX_BF16:
      case ZYDIS_ISA_EXT_AMX_INT8:
      case ZYDIS_ISA_EXT_AMX_TILE:
        if (ours == DecodeStatus::kUnknown) return "";
        return "AVX/AVX-512/XOP form outside the table (validity not modelled)";
      case ZYDIS_ISA_EXT_KNC:
      case ZYDIS_ISA_EXT_KNCE:
        return "Knights Corner VEX forms (not on any current CPU)";
      case ZYDIS_ISA_EXT_AMD3DNOW:
        return "3DNow! (absent on current CPUs)";
      case ZYDIS_ISA_EXT_VTX:
      case ZYDIS_ISA_EXT_SVM:
      case ZYDIS_ISA_EXT_SGX:
      case ZYDIS_ISA_EXT_SGX_ENCLV:
      case ZYDIS_ISA_EXT_SMX:
      case ZYDIS_ISA_EXT_SNP:
      case ZYDIS_ISA_EXT_TDX:
      case ZYDIS_ISA_EXT_AMD_INVLPGB:
      case ZYDIS_ISA_EXT_RDPRU:
      case ZYDIS_ISA_EXT_SERIALIZE:
      case ZYDIS_ISA_EXT_HRESET:
      case ZYDIS_ISA_EXT_UINTR:
      case ZYDIS_ISA_EXT_PCONFIG:
      case ZYDIS_ISA_EXT_MCOMMIT:
      case ZYDIS_ISA_EXT_MONITORX:
      case ZYDIS_ISA_EXT_CLZERO:
      case ZYDIS_ISA_EXT_TSX_LDTRK:
      case ZYDIS_ISA_EXT_VMFUNC:
      case ZYDIS_ISA_EXT_PADLOCK:
      case ZYDIS_ISA_EXT_KNCV:
      case ZYDIS_ISA_EXT_CET:
        if (ours == DecodeStatus::kInvalid) {
          return "system, virtualization or vendor extension outside the table";
        }
        break;
      default:
        break;
    }
  }
  if (z == nullptr && ours == DecodeStatus::kOk) {
    switch (Form(d.id).isa) {
      case isa::X87:
        return "x87 encoding Zydis calls reserved (x87 is decoded for length only)";
      case isa::OTHER:
      case isa::SYSTEM:
        return "extension or system form whose reserved encodings are not modelled";
      default:
        break;
    }
    if (d.id == InsnId::NOP_1A || d.id == InsnId::NOP_1B) {
      return "0F 1A/1B: hint NOPs without MPX, Zydis applies MPX's rules";
    }
  }
  if (z != nullptr) {
    switch (z->meta.isa_ext) {
      default:
        break;
    }
  }
  return "";
}

TEST(Decoder, AgreesWithZydisOnRandomBytes) {
  size_t n = 100000;
  if (const char* e = std::getenv("CPUDIFF_DECODER_STRINGS")) n = std::strtoull(e, nullptr, 10);
  ZydisDecoder zd;
  ASSERT_EQ(ZydisDecoderInit(&zd, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64),
            ZYAN_STATUS_SUCCESS);
  Rng rng(42);
  static const uint8_t kPrefixes[] = {0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x2e, 0x64, 0x65};
  std::map<std::string, size_t> explained;
  std::map<std::string, std::pair<size_t, std::string>> unexplained;
  size_t agree = 0;
  for (size_t i = 0; i < n; ++i) {
    uint8_t buf[16];
    for (uint8_t& b : buf) b = static_cast<uint8_t>(rng.Next());
    // Bias toward plausible shapes: a few prefixes, REX, escapes.
    size_t p = 0;
    int np = static_cast<int>(rng.Below(4));
    for (int k = 0; k < np; ++k) buf[p++] = kPrefixes[rng.Below(sizeof kPrefixes)];
    if (rng.Below(2)) buf[p++] = static_cast<uint8_t>(0x40 | rng.Below(16));
    switch (rng.Below(5)) {
      case 0:
        buf[p++] = 0x0f;
        break;
      case 1:
        buf[p++] = 0x0f;
        buf[p++] = 0x38;
        break;
      case 2:
        buf[p++] = 0x0f;
        buf[p++] = 0x3a;
        break;
      case 3:
        if (rng.Below(4) == 0) buf[p++] = rng.Below(2) ? 0xc4 : 0xc5;
        break;
      default:
        break;
    }
    ZydisDecodedInstruction zi;
    bool zok = ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&zd, nullptr, buf, sizeof buf, &zi));
    DecodedInsn d;
    DecodeStatus s = Decode(buf, sizeof buf, &d);
    bool ours_ok = s == DecodeStatus::kOk || s == DecodeStatus::kUnknown;
    if (zok == ours_ok && (!zok || zi.length == d.length)) {
      ++agree;
      continue;
    }
    std::string why = ExplainDifference(zok ? &zi : nullptr, s, d);
    if (!why.empty()) {
      ++explained[why];
      continue;
    }
    std::string key = std::string(zok ? ZydisMnemonicGetString(zi.mnemonic) : "(zydis invalid)");
    key += ours_ok ? " / ours ok" : " / ours invalid";
    if (zok && ours_ok) key += " len " + std::to_string(zi.length) + "/" + std::to_string(d.length);
    if (s == DecodeStatus::kOk) key += " " + std::string(d.form().name);
    auto& u = unexplained[key];
    if (u.first++ == 0) u.second = HexBytes(std::span(buf, 16));
  }
  for (auto& [why, count] : explained) {
    std::printf("explained: %zu x %s\n", count, why.c_str());
  }
  size_t bad = 0;
  for (auto& [key, v] : unexplained) {
    bad += v.first;
    std::printf("UNEXPLAINED: %zu x %s e.g. %s\n", v.first, key.c_str(), v.second.c_str());
  }
  std::printf("%zu strings: %zu agree, %zu unexplained\n", n, agree, bad);
  EXPECT_EQ(bad, 0u);
}

}  // namespace
}  // namespace cpudiff

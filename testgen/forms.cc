#include "testgen/forms.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "engines/x86/zydis_decoder.h"
#include "testgen/generate.h"

namespace cpudiff {
namespace {

std::string Lower(const char* s) {
  std::string out = s ? s : "";
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Register classes the generator can rewrite and whose state cpudiff
// compares. A form with a visible operand of any other class (segment,
// control, x87, MMX, YMM, masks, ...) is not kept.
bool RewritableClass(ZydisRegisterClass c) {
  switch (c) {
    case ZYDIS_REGCLASS_GPR8:
    case ZYDIS_REGCLASS_GPR16:
    case ZYDIS_REGCLASS_GPR32:
    case ZYDIS_REGCLASS_GPR64:
    case ZYDIS_REGCLASS_XMM:
      return true;
    default:
      return false;
  }
}

bool ExcludedCategory(ZydisInstructionCategory c) {
  switch (c) {
    // Control transfers: the stream shapes place branches themselves, with
    // targets inside the case.
    case ZYDIS_CATEGORY_COND_BR:
    case ZYDIS_CATEGORY_UNCOND_BR:
    case ZYDIS_CATEGORY_CALL:
    case ZYDIS_CATEGORY_RET:
    // System calls, interrupts, I/O, system state: a test case never makes a
    // host system call, and these end the stream or need ring 0.
    case ZYDIS_CATEGORY_SYSCALL:
    case ZYDIS_CATEGORY_SYSRET:
    case ZYDIS_CATEGORY_INTERRUPT:
    case ZYDIS_CATEGORY_IO:
    case ZYDIS_CATEGORY_IOSTRINGOP:
    case ZYDIS_CATEGORY_SYSTEM:
    case ZYDIS_CATEGORY_SEGOP:
    case ZYDIS_CATEGORY_X87_ALU:
    case ZYDIS_CATEGORY_MMX:
    case ZYDIS_CATEGORY_XSAVE:
    case ZYDIS_CATEGORY_XSAVEOPT:
      return true;
    default:
      return false;
  }
}

}  // namespace

bool IsNondeterministic(ZydisMnemonic m) {
  switch (m) {
    case ZYDIS_MNEMONIC_RDTSC:
    case ZYDIS_MNEMONIC_RDTSCP:
    case ZYDIS_MNEMONIC_RDRAND:
    case ZYDIS_MNEMONIC_RDSEED:
    case ZYDIS_MNEMONIC_RDPID:
    case ZYDIS_MNEMONIC_RDPMC:
    case ZYDIS_MNEMONIC_RDPRU:
    case ZYDIS_MNEMONIC_CPUID:
    case ZYDIS_MNEMONIC_XGETBV:
    case ZYDIS_MNEMONIC_RDFSBASE:
    case ZYDIS_MNEMONIC_RDGSBASE:
    case ZYDIS_MNEMONIC_WRFSBASE:
    case ZYDIS_MNEMONIC_WRGSBASE:
    case ZYDIS_MNEMONIC_SGDT:
    case ZYDIS_MNEMONIC_SIDT:
    case ZYDIS_MNEMONIC_SLDT:
    case ZYDIS_MNEMONIC_STR:
    case ZYDIS_MNEMONIC_SMSW:
    case ZYDIS_MNEMONIC_LSL:
    case ZYDIS_MNEMONIC_LAR:
    case ZYDIS_MNEMONIC_VERR:
    case ZYDIS_MNEMONIC_VERW:
    case ZYDIS_MNEMONIC_XBEGIN:
    case ZYDIS_MNEMONIC_XEND:
    case ZYDIS_MNEMONIC_XABORT:
    case ZYDIS_MNEMONIC_XTEST:
    case ZYDIS_MNEMONIC_MONITOR:
    case ZYDIS_MNEMONIC_MWAIT:
    case ZYDIS_MNEMONIC_UMONITOR:
    case ZYDIS_MNEMONIC_UMWAIT:
    case ZYDIS_MNEMONIC_TPAUSE:
      return true;
    default:
      return false;
  }
}

std::shared_ptr<const FormSet> FormSet::Build(const FormFilter& filter) {
  std::set<std::string> wanted;
  std::vector<std::string> names = filter.isa;
  if (names.empty()) {
    std::stringstream ss(kDefaultIsa);
    std::string n;
    while (std::getline(ss, n, ',')) names.push_back(n);
  }
  for (const std::string& n : names) wanted.insert(Lower(n.c_str()));

  const ZydisDecoder& decoder = LongModeDecoder();

  // Candidate encodings: optional operand-size / mandatory prefix, optional
  // REX, an opcode map, then random bytes. The prefix mix makes every map
  // (one-byte, 0f, 0f38, 0f3a, with and without 66/f2/f3) frequent enough
  // that its forms are found in a few hundred thousand draws.
  static constexpr uint8_t kPrefixes[] = {0, 0, 0, 0x66, 0xf2, 0xf3};
  std::map<std::string, InsnForm> found;  // ordered: the set does not depend on hashing
  Rng rng(0x666f726d73ull);               // fixed: same forms on every run
  constexpr int kDraws = 400000;
  for (int draw = 0; draw < kDraws; ++draw) {
    uint8_t buf[15];
    size_t n = 0;
    uint64_t r = rng.Next();
    if (r % 4 == 0) {
      // A VEX prefix (c4: 3 bytes, c5: 2 bytes) with a random payload, which
      // holds the map: the only way to the VEX-only forms (andn, bextr,
      // blsr, shlx, ...).
      const bool three = (r >> 2) & 1;
      buf[n++] = three ? 0xc4 : 0xc5;
      buf[n++] = static_cast<uint8_t>(r >> 8);
      if (three) buf[n++] = static_cast<uint8_t>(r >> 16);
    } else {
      r >>= 2;
      if (uint8_t p = kPrefixes[r % std::size(kPrefixes)]) buf[n++] = p;
      r /= std::size(kPrefixes);
      if (r % 3 == 0) buf[n++] = static_cast<uint8_t>(0x40 | ((r >> 2) & 0xf));
      r >>= 6;
      switch (r % 4) {
        case 0:
          break;
        case 1:
          buf[n++] = 0x0f;
          break;
        case 2:
          buf[n++] = 0x0f;
          buf[n++] = 0x38;
          break;
        default:
          buf[n++] = 0x0f;
          buf[n++] = 0x3a;
          break;
      }
    }
    uint64_t tail = rng.Next();
    while (n < sizeof buf) {
      buf[n++] = static_cast<uint8_t>(tail);
      tail >>= 8;
      if (tail == 0) tail = rng.Next();
    }

    ZydisDecodedInstruction in;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder, buf, sizeof buf, &in, ops))) continue;
    std::string ext = Lower(ZydisISAExtGetString(in.meta.isa_ext));
    std::string set = Lower(ZydisISASetGetString(in.meta.isa_set));
    std::string mnem = Lower(ZydisMnemonicGetString(in.mnemonic));
    if (!wanted.count(ext) && !wanted.count(set) && !wanted.count(mnem)) continue;
    if (in.encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY &&
        in.encoding != ZYDIS_INSTRUCTION_ENCODING_VEX) {
      continue;
    }
    if (in.attributes & (ZYDIS_ATTRIB_IS_PRIVILEGED | ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE |
                         ZYDIS_ATTRIB_HAS_REPNE | ZYDIS_ATTRIB_HAS_SEGMENT)) {
      continue;  // rep: unbounded loops; segment overrides: fs/gs are not set up
    }
    if (ExcludedCategory(in.meta.category)) continue;
    if (!filter.include_nondeterministic && IsNondeterministic(in.mnemonic)) continue;
    // hlt ends the case, ud0/ud1/ud2 are #UD by definition: not worth a form
    // (raw bytes still reach them).
    if (in.mnemonic == ZYDIS_MNEMONIC_HLT || in.mnemonic == ZYDIS_MNEMONIC_UD0 ||
        in.mnemonic == ZYDIS_MNEMONIC_UD1 || in.mnemonic == ZYDIS_MNEMONIC_UD2) {
      continue;
    }
    // fxsave/fxrstor move the x87 and MMX state, which is not part of the
    // compared state and not set up alike on every engine.
    if (in.mnemonic == ZYDIS_MNEMONIC_FXSAVE || in.mnemonic == ZYDIS_MNEMONIC_FXSAVE64 ||
        in.mnemonic == ZYDIS_MNEMONIC_FXRSTOR || in.mnemonic == ZYDIS_MNEMONIC_FXRSTOR64) {
      continue;
    }

    InsnForm f;
    bool ok = true;
    std::string key = mnem + " " + std::to_string(in.encoding) + ":" +
                      std::to_string(in.opcode_map) + ":" + std::to_string(in.opcode) + ":" +
                      std::to_string(in.operand_width) + "|";
    f.name = mnem;
    int imm_index = 0;
    for (uint8_t i = 0; i < in.operand_count_visible && ok; ++i) {
      const ZydisDecodedOperand& op = ops[i];
      FormOperand fo;
      fo.type = op.type;
      std::string part;
      switch (op.type) {
        case ZYDIS_OPERAND_TYPE_REGISTER:
          fo.reg_class = ZydisRegisterGetClass(op.reg.value);
          fo.written = (op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) != 0;
          ok = RewritableClass(fo.reg_class);
          f.has_xmm |= fo.reg_class == ZYDIS_REGCLASS_XMM;
          part = std::string(fo.reg_class == ZYDIS_REGCLASS_XMM ? "xmm" : "r") +
                 std::to_string(op.size);
          break;
        case ZYDIS_OPERAND_TYPE_MEMORY:
          ok = op.mem.type == ZYDIS_MEMOP_TYPE_MEM && op.mem.segment != ZYDIS_REGISTER_FS &&
               op.mem.segment != ZYDIS_REGISTER_GS;
          fo.written = (op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) != 0;
          fo.mem_bits = op.size;
          if (!f.has_memory) f.mem_bits = op.size;
          f.has_memory = true;
          f.memory_written |= fo.written;
          part = "m" + std::to_string(op.size);
          break;
        case ZYDIS_OPERAND_TYPE_IMMEDIATE:
          // The encoded width: instruction.raw.imm, in operand order.
          fo.imm_bits = in.raw.imm[std::min(imm_index++, 1)].size;
          fo.imm_signed = op.imm.is_signed;
          part = "imm" + std::to_string(fo.imm_bits);
          break;
        default:
          ok = false;  // far pointers
      }
      f.operands.push_back(fo);
      f.name += std::string(i ? ", " : " ") + part;
      key += part + ",";
    }
    if (!ok || found.count(key)) continue;
    if (!ZYAN_SUCCESS(ZydisEncoderDecodedInstructionToEncoderRequest(
            &in, ops, in.operand_count_visible, &f.request))) {
      continue;
    }
    // The request must encode as it is, or rewriting it will not either.
    uint8_t enc[ZYDIS_MAX_INSTRUCTION_LENGTH];
    ZyanUSize len = sizeof enc;
    if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&f.request, enc, &len))) continue;
    for (uint8_t i = in.operand_count_visible; i < in.operand_count; ++i) {
      const ZydisDecodedOperand& op = ops[i];
      if (op.type != ZYDIS_OPERAND_TYPE_REGISTER ||
          !(op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)) {
        continue;
      }
      const ZydisRegister full =
          ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, op.reg.value);
      if (full < ZYDIS_REGISTER_RAX || full > ZYDIS_REGISTER_R15) continue;
      const int id = full - ZYDIS_REGISTER_RAX;
      if (id == 4) continue;  // rsp: pushes and pops keep it in the stack page
      if ((in.meta.category == ZYDIS_CATEGORY_STRINGOP && (id == 6 || id == 7)) ||
          (in.mnemonic == ZYDIS_MNEMONIC_ENTER && id == 5)) {
        f.implicit_gpr_stepped |= 1u << id;
        continue;
      }
      f.implicit_gpr_written |= 1u << id;
    }
    f.bytes.assign(buf, buf + in.length);
    f.mnemonic = in.mnemonic;
    f.operand_width = in.operand_width;
    if (in.cpu_flags) {
      f.flags_tested = in.cpu_flags->tested;
      f.flags_written = in.cpu_flags->modified | in.cpu_flags->set_0 | in.cpu_flags->set_1;
      f.flags_undefined = in.cpu_flags->undefined;
    }
    f.is_shift =
        in.meta.category == ZYDIS_CATEGORY_SHIFT || in.meta.category == ZYDIS_CATEGORY_ROTATE;
    found.emplace(std::move(key), std::move(f));
  }
  if (found.empty()) {
    throw std::invalid_argument(
        "no instruction form matches --isa (give Zydis ISA extension, "
        "ISA set or mnemonic names, e.g. base,sse2,bmi1,popcnt)");
  }
  auto set = std::make_shared<FormSet>();
  for (auto& [key, f] : found) {
    if (f.has_memory) set->memory_forms_.push_back(static_cast<uint32_t>(set->forms_.size()));
    set->forms_.push_back(std::move(f));
  }
  return set;
}

}  // namespace cpudiff

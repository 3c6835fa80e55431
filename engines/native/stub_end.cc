#include "engines/native/stub_end.h"

#include <Zydis/Zydis.h>

#include <cstring>
#include <span>
#include <vector>

#include "engines/x86/zydis_decoder.h"

namespace cpudiff {
namespace {

const ZydisDecoder& Decoder() { return LongModeDecoder(); }

// Index 0..15 of the 64-bit register enclosing a general-purpose register,
// or -1 for anything else.
int GprIndex(ZydisRegister r) {
  switch (ZydisRegisterGetClass(r)) {
    case ZYDIS_REGCLASS_GPR8:
    case ZYDIS_REGCLASS_GPR16:
    case ZYDIS_REGCLASS_GPR32:
    case ZYDIS_REGCLASS_GPR64:
      return ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r) - ZYDIS_REGISTER_RAX;
    default:
      return -1;
  }
}

bool IsRip(ZydisRegister r) {
  return r == ZYDIS_REGISTER_RIP || r == ZYDIS_REGISTER_EIP || r == ZYDIS_REGISTER_IP;
}

// Instructions whose memory access is not at the operand's effective address
// (bt* with a register bit offset), or whose accesses Zydis does not list in
// full (enter with a nesting level reads the old frame pointers).
bool AccessNotAtOperand(const ZydisDecodedInstruction& in, const ZydisDecodedOperand* ops) {
  switch (in.mnemonic) {
    case ZYDIS_MNEMONIC_BT:
    case ZYDIS_MNEMONIC_BTS:
    case ZYDIS_MNEMONIC_BTR:
    case ZYDIS_MNEMONIC_BTC:
      return ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY && ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER;
    case ZYDIS_MNEMONIC_ENTER:
    case ZYDIS_MNEMONIC_LEAVE:
      return true;
    default:
      return false;
  }
}

struct Insn {
  uint32_t off;
  ZydisDecodedInstruction in;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
};

}  // namespace

uint64_t WriteStub(uint64_t end_addr, uint64_t target, std::span<uint8_t> out) {
  // ff 25 disp32: jmp [rip+disp32], rip being end_addr + 6; the quadword
  // follows at the next multiple of 8.
  uint64_t q = (end_addr + 6 + 7) & ~uint64_t{7};
  auto disp = static_cast<uint32_t>(q - (end_addr + 6));
  uint64_t n = 0;
  out[n++] = 0xff;
  out[n++] = 0x25;
  for (int i = 0; i < 4; ++i) out[n++] = static_cast<uint8_t>(disp >> (8 * i));
  while (end_addr + n < q) out[n++] = 0xcc;
  for (int i = 0; i < 8; ++i) out[n++] = static_cast<uint8_t>(target >> (8 * i));
  return n;
}

EndPlan PlanEnd(const TestCase& tc, uint64_t region_size) {
  const EndPlan keep_hlt;
  const uint64_t len = tc.code.size();
  if (len + kStubMaxBytes > region_size) return keep_hlt;
  const uint64_t lo = tc.code_addr, hi = tc.code_addr + region_size;
  for (const MemRegion& m : tc.mem) {
    if (m.addr < hi && lo < m.addr + m.size) return keep_hlt;
  }

  // Decode the whole stream; it must end exactly at its end. The decoded
  // stream is kept for the next call: cases often share their code (many
  // initial states per code stream), and decoding is most of the cost.
  struct Decoded {
    uint64_t addr = 0;
    std::vector<uint8_t> code;
    bool valid = false;       // `code` at `addr` was decoded
    bool ok = false;          // ... into instructions ending at its end
    std::vector<Insn> insns;  // [0, count) used; storage reused
    size_t count = 0;
    std::vector<uint8_t> boundary;
    uint16_t written = 0;  // GPRs any instruction writes, by index
    bool writes_seg_base = false;
  };
  thread_local Decoded d;
  if (!d.valid || d.addr != tc.code_addr || d.code != tc.code) {
    d.valid = false;
    d.addr = tc.code_addr;
    d.code = tc.code;
    d.count = 0;
    d.boundary.assign(len + 1, 0);
    d.written = 0;
    d.writes_seg_base = false;
    d.ok = true;
    for (uint64_t off = 0; off < len;) {
      // Grown one element at a time and never shrunk: value-initializing an
      // Insn (about 1 KiB) per instruction per case would cost more than
      // the decode.
      if (d.count == d.insns.size()) d.insns.emplace_back();
      Insn& x = d.insns[d.count++];
      x.off = static_cast<uint32_t>(off);
      if (!ZYAN_SUCCESS(
              ZydisDecoderDecodeFull(&Decoder(), tc.code.data() + off, len - off, &x.in, x.ops))) {
        d.ok = false;
        break;
      }
      d.boundary[off] = 1;
      off += x.in.length;
      for (uint8_t i = 0; i < x.in.operand_count; ++i) {
        const ZydisDecodedOperand& op = x.ops[i];
        if (op.type == ZYDIS_OPERAND_TYPE_REGISTER &&
            (op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)) {
          int g = GprIndex(op.reg.value);
          if (g >= 0) d.written |= static_cast<uint16_t>(1u << g);
        }
      }
      if (x.in.mnemonic == ZYDIS_MNEMONIC_WRFSBASE || x.in.mnemonic == ZYDIS_MNEMONIC_WRGSBASE) {
        d.writes_seg_base = true;
      }
    }
    d.boundary[len] = 1;
    d.valid = true;
  }
  if (!d.ok) return keep_hlt;
  const std::span<const Insn> insns(d.insns.data(), d.count);
  const std::vector<uint8_t>& boundary = d.boundary;
  const uint16_t written = d.written;
  const bool writes_seg_base = d.writes_seg_base;
  if (tc.init.rip < lo || tc.init.rip - lo > len || !boundary[tc.init.rip - lo]) return keep_hlt;

  // The byte range [*ea, *ea + size) a memory operand accesses, from initial
  // register values, which hold because no instruction of the case writes
  // these registers. False when that is not known. Computed here rather than
  // by ZydisCalcAbsoluteAddressEx, whose register context (one value per
  // Zydis register, 2 KiB) would have to be filled per case for every
  // sub-register name.
  auto range = [&](const Insn& x, const ZydisDecodedOperand& op, uint64_t* ea, uint64_t* size) {
    uint64_t a = static_cast<uint64_t>(op.mem.disp.value);
    for (int part = 0; part < 2; ++part) {
      const ZydisRegister r = part == 0 ? op.mem.base : op.mem.index;
      if (r == ZYDIS_REGISTER_NONE) continue;
      uint64_t v;
      if (IsRip(r)) {
        v = lo + x.off + x.in.length;
      } else {
        int g = GprIndex(r);
        if (g < 0 || (written >> g) & 1) return false;
        v = tc.init.gpr[g];
        uint16_t bits = ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, r);
        if (bits < 64) v &= (uint64_t{1} << bits) - 1;
      }
      a += part == 1 ? v * op.mem.scale : v;
    }
    if (x.in.address_width == 32) a &= 0xffffffffu;
    if (op.mem.segment == ZYDIS_REGISTER_FS || op.mem.segment == ZYDIS_REGISTER_GS) {
      if (writes_seg_base) return false;
      a += op.mem.segment == ZYDIS_REGISTER_FS ? tc.init.fs_base : tc.init.gs_base;
    }
    *ea = a;
    *size = op.size / 8;
    return *size != 0 && a + *size >= a;
  };

  uint32_t write_regions = 0;
  for (const Insn& x : insns) {
    const uint64_t ip = lo + x.off;
    if (AccessNotAtOperand(x.in, x.ops)) return keep_hlt;
    bool writes_rip = false;
    bool relative = false;
    for (uint8_t i = 0; i < x.in.operand_count; ++i) {
      const ZydisDecodedOperand& op = x.ops[i];
      if (op.type == ZYDIS_OPERAND_TYPE_REGISTER && IsRip(op.reg.value) &&
          (op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)) {
        writes_rip = true;
      }
      if (op.type == ZYDIS_OPERAND_TYPE_IMMEDIATE && op.imm.is_relative) {
        uint64_t target = 0;
        if (!ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&x.in, &op, ip, &target))) return keep_hlt;
        if (target < lo || target - lo > len || !boundary[target - lo]) return keep_hlt;
        relative = true;
      }
      if (op.type != ZYDIS_OPERAND_TYPE_MEMORY || op.mem.type == ZYDIS_MEMOP_TYPE_AGEN) continue;
      if (op.mem.type != ZYDIS_MEMOP_TYPE_MEM) return keep_hlt;  // MIB, VSIB
      uint64_t ea = 0, size = 0;
      const bool known = range(x, op, &ea, &size);
      if (op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) {
        if (!known) {
          write_regions = ~0u;
        } else {
          for (size_t r = 0; r < tc.mem.size() && r < 31; ++r) {
            const MemRegion& m = tc.mem[r];
            if (ea < m.addr + m.size && m.addr < ea + size) write_regions |= 1u << (r + 1);
          }
          if (tc.mem.size() >= 31) write_regions = ~0u;
        }
      }
      if (!(op.actions & ZYDIS_OPERAND_ACTION_MASK_READ)) continue;  // a write cannot see code
      if (!known) return keep_hlt;
      if (ea < hi && lo < ea + size) return keep_hlt;
    }
    if (writes_rip && !relative) return keep_hlt;
  }
  return EndPlan{true, write_regions};
}

}  // namespace cpudiff

#include "testgen/generate.h"

namespace cpudiff {
namespace {

// Registers a generated instruction may write: every GPR but rsp (the stack
// pointer must stay in the stack page) and rdi (the base of memory operands).
constexpr int kDestRegs[] = {kRax, kRcx, kRdx, kRbx, kRbp, kRsi, kR8,
                             kR9,  kR10, kR11, kR12, kR13, kR14, kR15};

int PickDest(Rng& rng) { return kDestRegs[rng.Below(std::size(kDestRegs))]; }
int PickSrc(Rng& rng) { return static_cast<int>(rng.Below(16)); }

void EmitRex(std::vector<uint8_t>& out, bool w, int reg, int rm) {
  out.push_back(static_cast<uint8_t>(0x40 | (w ? 8 : 0) | ((reg >> 3) << 2) | (rm >> 3)));
}
uint8_t ModRm(int mod, int reg, int rm) {
  return static_cast<uint8_t>(mod << 6 | (reg & 7) << 3 | (rm & 7));
}

// op r/m64, r64 with a register destination.
void AluRegReg(Rng& rng, std::vector<uint8_t>& out) {
  static constexpr uint8_t kOps[] = {0x01, 0x09, 0x11, 0x19, 0x21, 0x29, 0x31, 0x39, 0x89, 0x85};
  int dst = PickDest(rng), src = PickSrc(rng);
  bool w = rng.Below(4) != 0;  // mostly 64-bit, sometimes 32-bit
  EmitRex(out, w, src, dst);
  out.push_back(kOps[rng.Below(std::size(kOps))]);
  out.push_back(ModRm(3, src, dst));
}

// shl/shr/sar/rol/ror/rcl/rcr r64, imm8
void ShiftImm(Rng& rng, std::vector<uint8_t>& out) {
  static constexpr int kExt[] = {0, 1, 2, 3, 4, 5, 7};
  int dst = PickDest(rng);
  EmitRex(out, true, 0, dst);
  out.push_back(0xc1);
  out.push_back(ModRm(3, kExt[rng.Below(std::size(kExt))], dst));
  static constexpr uint8_t kCounts[] = {0, 1, 2, 31, 32, 63, 64, 65};
  out.push_back(kCounts[rng.Below(std::size(kCounts))]);
}

// inc/dec/not/neg r64
void Unary(Rng& rng, std::vector<uint8_t>& out) {
  int dst = PickDest(rng);
  EmitRex(out, true, 0, dst);
  switch (rng.Below(4)) {
    case 0: out.push_back(0xff); out.push_back(ModRm(3, 0, dst)); break;
    case 1: out.push_back(0xff); out.push_back(ModRm(3, 1, dst)); break;
    case 2: out.push_back(0xf7); out.push_back(ModRm(3, 2, dst)); break;
    default: out.push_back(0xf7); out.push_back(ModRm(3, 3, dst)); break;
  }
}

// mov r64, imm32 (sign-extended) / imul r64, r/m64 / bswap / cmovcc
void Misc(Rng& rng, std::vector<uint8_t>& out) {
  int dst = PickDest(rng), src = PickSrc(rng);
  switch (rng.Below(4)) {
    case 0: {
      EmitRex(out, true, 0, dst);
      out.push_back(0xc7);
      out.push_back(ModRm(3, 0, dst));
      uint32_t imm = static_cast<uint32_t>(rng.EdgeValue());
      for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(imm >> (8 * i)));
      break;
    }
    case 1:
      EmitRex(out, true, dst, src);
      out.push_back(0x0f);
      out.push_back(0xaf);
      out.push_back(ModRm(3, dst, src));
      break;
    case 2:
      EmitRex(out, true, 0, dst);
      out.push_back(0x0f);
      out.push_back(static_cast<uint8_t>(0xc8 + (dst & 7)));
      break;
    default:
      EmitRex(out, true, dst, src);
      out.push_back(0x0f);
      out.push_back(static_cast<uint8_t>(0x40 + rng.Below(16)));
      out.push_back(ModRm(3, dst, src));
      break;
  }
}

// mov [rdi+disp8], r64 / mov r64, [rdi+disp8] / add [rdi+disp8], r64
void Memory(Rng& rng, std::vector<uint8_t>& out) {
  int reg = rng.Below(2) ? PickDest(rng) : PickSrc(rng);
  static constexpr uint8_t kOps[] = {0x89, 0x8b, 0x01, 0x31};
  uint8_t op = kOps[rng.Below(std::size(kOps))];
  if (op == 0x8b) reg = PickDest(rng);
  EmitRex(out, true, reg, kRdi);
  out.push_back(op);
  out.push_back(ModRm(1, reg, kRdi));
  out.push_back(static_cast<uint8_t>(rng.Below(15) * 8));  // inside the data page
}

}  // namespace

uint64_t Rng::EdgeValue() {
  switch (Below(8)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return ~0ull;
    case 3: return 1ull << Below(64);
    case 4: return (1ull << 63) - Below(2);  // INT64_MAX, INT64_MAX-1
    case 5: return 0x80000000ull - Below(2);
    default: return Next();
  }
}

std::vector<MemRegion> SmallLayout() {
  return {MemRegion{kDefaultDataAddr, kPageSize, kPermR | kPermW, {}},
          MemRegion{kDefaultStackAddr, kPageSize, kPermR | kPermW, {}}};
}

void RandomizeRegisters(Rng& rng, TestCase* tc) {
  for (int r = 0; r < 16; ++r) tc->init.gpr[r] = rng.EdgeValue();
  tc->init.gpr[kRsp] = kDefaultStackAddr + kPageSize - 16;
  tc->init.gpr[kRdi] = kDefaultDataAddr;
  tc->init.rflags = 0x202 | (rng.Next() & kStatusFlags);
}

TestCase GenerateAluCase(Rng& rng, const GenOptions& opts) {
  TestCase tc;
  tc.generator = "alu";
  tc.mem = SmallLayout();
  tc.mem[0].data.resize(128);
  for (auto& b : tc.mem[0].data) b = static_cast<uint8_t>(rng.Next());
  tc.init.rip = tc.code_addr;
  RandomizeRegisters(rng, &tc);
  int n = opts.min_insns + static_cast<int>(rng.Below(opts.max_insns - opts.min_insns + 1));
  for (int i = 0; i < n; ++i) {
    switch (rng.Below(opts.memory_ops ? 5 : 4)) {
      case 0: AluRegReg(rng, tc.code); break;
      case 1: ShiftImm(rng, tc.code); break;
      case 2: Unary(rng, tc.code); break;
      case 3: Misc(rng, tc.code); break;
      default: Memory(rng, tc.code); break;
    }
  }
  return tc;
}

}  // namespace cpudiff

// String instructions: movs, stos, lods, cmps, scas, with rep/repe/repne
// and DF. A fault in iteration k leaves the state after iteration k-1 with
// rip at the instruction, as silicon does.
#include "engines/emulator/operands.h"

namespace cpudiff::emu {
namespace {

using namespace isa;

enum StrOp { kMovs, kStos, kLods, kCmps, kScas };

uint64_t SegBase(const Cpu& c, SegPrefix seg) {
  if (seg == SegPrefix::kFs) return c.s.fs_base;
  if (seg == SegPrefix::kGs) return c.s.gs_base;
  return 0;
}

uint64_t SubFlags(uint64_t a, uint64_t b, int size) {
  uint64_t m = SizeMask(size), sb = SignBit(size);
  uint64_t r = (a - b) & m;
  uint64_t f = ZSPFlags(r, size);
  if (a < b) f |= kFlagCF;
  if ((a ^ b) & (a ^ r) & sb) f |= kFlagOF;
  if ((a ^ b ^ r) & 0x10) f |= kFlagAF;
  return f;
}

template <int kOp>
void Str(Cpu& c, const DecodedInsn& d) {
  bool byte = d.form().operands[0] == Xb || d.form().operands[0] == Yb ||
              d.form().operands[1] == Xb || d.form().operands[1] == Yb;
  int size = byte ? 1 : d.opsize;
  int as = d.addrsize;
  uint64_t am = SizeMask(as);
  bool rep = d.rep || d.repne;
  int64_t step = c.Flag(kFlagDF) ? -size : size;
  uint64_t src_base = SegBase(c, d.seg);
  for (;;) {
    if (rep && c.GetReg(kRcx, as) == 0) break;
    uint64_t si = c.GetReg(kRsi, as), di = c.GetReg(kRdi, as);
    uint64_t flags = 0;
    switch (kOp) {
      case kMovs: {
        uint64_t v = c.ReadMem(c.Linear(((si)&am) + src_base, false), size);
        c.WriteMem(c.Linear(di, false), v, size);
        c.SetReg(kRsi, as, si + step);
        c.SetReg(kRdi, as, di + step);
        break;
      }
      case kStos:
        c.WriteMem(c.Linear(di, false), c.GetReg(kRax, size), size);
        c.SetReg(kRdi, as, di + step);
        break;
      case kLods: {
        uint64_t v = c.ReadMem(c.Linear(si + src_base, false), size);
        c.SetReg(kRax, size, v);
        c.SetReg(kRsi, as, si + step);
        break;
      }
      case kCmps: {
        uint64_t a = c.ReadMem(c.Linear(si + src_base, false), size);
        uint64_t b = c.ReadMem(c.Linear(di, false), size);
        flags = SubFlags(a, b, size);
        c.SetReg(kRsi, as, si + step);
        c.SetReg(kRdi, as, di + step);
        c.SetStatus(flags);
        break;
      }
      case kScas: {
        uint64_t b = c.ReadMem(c.Linear(di, false), size);
        flags = SubFlags(c.GetReg(kRax, size), b, size);
        c.SetReg(kRdi, as, di + step);
        c.SetStatus(flags);
        break;
      }
    }
    if (!rep) break;
    c.SetReg(kRcx, as, c.GetReg(kRcx, as) - 1);
    if (kOp == kCmps || kOp == kScas) {
      if (d.rep && !c.Flag(kFlagZF)) break;
      if (d.repne && c.Flag(kFlagZF)) break;
    }
  }
}

}  // namespace

void RegisterString(HandlerTable& t) {
  t.Set(InsnId::MOVSB, Str<kMovs>);
  t.Set(InsnId::MOVSV, Str<kMovs>);
  t.Set(InsnId::STOSB, Str<kStos>);
  t.Set(InsnId::STOSV, Str<kStos>);
  t.Set(InsnId::LODSB, Str<kLods>);
  t.Set(InsnId::LODSV, Str<kLods>);
  t.Set(InsnId::CMPSB, Str<kCmps>);
  t.Set(InsnId::CMPSV, Str<kCmps>);
  t.Set(InsnId::SCASB, Str<kScas>);
  t.Set(InsnId::SCASV, Str<kScas>);
}

}  // namespace cpudiff::emu

// Logic: test, not (and/or/xor share the ALU in arith.cc).
#include "engines/emulator/operands.h"

namespace cpudiff::emu {
namespace {

using namespace isa;

void Test(Cpu& c, const DecodedInsn& d) {
  const IsaForm& f = d.form();
  int size = OpSize(f.operands[0], d);
  uint64_t a = c.Read(OpLoc(c, d, f.operands[0]));
  uint64_t b = OpRead(c, d, f.operands[1], size);
  c.SetStatus(ZSPFlags(a & b, size));
}

void Not(Cpu& c, const DecodedInsn& d) {
  Loc dst = OpLoc(c, d, d.form().operands[0]);
  c.Write(dst, ~c.Read(dst, true));
}

}  // namespace

void RegisterLogic(HandlerTable& t) {
  for (InsnId id :
       {InsnId::TEST_EbGb, InsnId::TEST_EvGv, InsnId::TEST_ALIb, InsnId::TEST_RAXIz,
        InsnId::TEST_EbIb, InsnId::TEST_EbIb_1, InsnId::TEST_EvIz, InsnId::TEST_EvIz_1}) {
    t.Set(id, Test);
  }
  t.Set(InsnId::NOT_Eb, Not);
  t.Set(InsnId::NOT_Ev, Not);
}

}  // namespace cpudiff::emu

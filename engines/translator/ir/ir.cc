#include "engines/translator/ir/ir.h"

#include <cstdio>

namespace cpudiff::ir {
namespace {

constexpr int CountArgs(Type a, Type b, Type c) {
  return (a != Type::Void) + (b != Type::Void) + (c != Type::Void);
}

constexpr OpInfo kInfo[] = {
#define OPCODE(name, ret, a1, a2, a3) \
  {#name, Type::ret, {Type::a1, Type::a2, Type::a3}, CountArgs(Type::a1, Type::a2, Type::a3)},
#include "engines/translator/ir/opcodes.inc"
#undef OPCODE
};
static_assert(sizeof(kInfo) / sizeof(kInfo[0]) == kNumOps);

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Ops whose immediate is a size in bytes, and the sizes they accept.
bool SizeImmOk(const Inst& in) {
  auto size_ok = [](uint64_t s) { return s == 1 || s == 2 || s == 4 || s == 8; };
  switch (in.op) {
    case Op::ZeroExt:
    case Op::SignExt:
    case Op::IsZero:
    case Op::SignOf:
    case Op::CarryAdd:
    case Op::CarrySub:
    case Op::OverflowAdd:
    case Op::OverflowSub:
      return size_ok(in.imm);
    case Op::VAdd:
    case Op::VSub:
    case Op::VCmpEq:
      return size_ok(in.imm);
    case Op::VAnd:
    case Op::VAndNot:
    case Op::VOr:
    case Op::VXor:
      return in.imm == 16;
    case Op::Load:
    case Op::Store:
      return size_ok(in.imm & 0xff);
    case Op::LoadV128:
    case Op::StoreV128:
      return (in.imm & 0xff) == 16;
    case Op::GetReg:
    case Op::SetReg:
      return in.imm < 18;
    case Op::GetXmm:
    case Op::SetXmm:
      return in.imm < 16;
    case Op::GetFlag:
    case Op::SetFlag:
      return in.imm < 64;
    case Op::Const1:
      return in.imm <= 1;
    case Op::Interpret:
      return in.imm2 != 0;
    default:
      return true;
  }
}

}  // namespace

std::string_view TypeName(Type t) {
  switch (t) {
    case Type::Void:
      return "void";
    case Type::U1:
      return "u1";
    case Type::U64:
      return "u64";
    case Type::V128:
      return "v128";
  }
  return "?";
}

const OpInfo& Info(Op op) { return kInfo[static_cast<int>(op)]; }

bool IsTerminator(Op op) {
  return op == Op::ExitJump || op == Op::ExitCond || op == Op::ExitIndirect ||
         op == Op::ExitState || op == Op::ExitHalt;
}

bool IsBarrier(Op op) {
  return IsTerminator(op) || op == Op::Load || op == Op::Store || op == Op::LoadV128 ||
         op == Op::StoreV128 || op == Op::CheckCanonical || op == Op::CheckCodeWrite ||
         op == Op::Interpret;
}

bool HasSideEffect(Op op) {
  return IsBarrier(op) || op == Op::SetReg || op == Op::SetFlag || op == Op::SetXmm ||
         op == Op::InsnStart;
}

std::string Validate(const Block& b) {
  if (b.insts.empty()) return "empty block";
  for (size_t i = 0; i < b.insts.size(); ++i) {
    const Inst& in = b.insts[i];
    std::string where = "%" + std::to_string(i) + " " + std::string(Info(in.op).name);
    if (static_cast<int>(in.op) >= kNumOps) return where + ": unknown opcode";
    const OpInfo& info = Info(in.op);
    for (int a = 0; a < 3; ++a) {
      Value v = in.args[a];
      if (info.args[a] == Type::Void) {
        if (v != kNoValue) return where + ": argument " + std::to_string(a + 1) + " not expected";
        continue;
      }
      if (v == kNoValue) return where + ": argument " + std::to_string(a + 1) + " missing";
      if (v >= i) return where + ": argument %" + std::to_string(v) + " is not defined before use";
      Type t = b.TypeOf(v);
      if (t != info.args[a]) {
        return where + ": argument " + std::to_string(a + 1) + " is " + std::string(TypeName(t)) +
               ", expected " + std::string(TypeName(info.args[a]));
      }
    }
    if (!SizeImmOk(in)) return where + ": bad immediate " + Hex(in.imm);
    bool last = i + 1 == b.insts.size();
    if (IsTerminator(in.op) != last) {
      return where + (last ? ": block does not end with an exit" : ": exit before the end");
    }
  }
  if (b.insts[0].op != Op::InsnStart) return "block does not start with InsnStart";
  return "";
}

std::string Print(const Block& b) {
  std::string out;
  for (size_t i = 0; i < b.insts.size(); ++i) {
    const Inst& in = b.insts[i];
    const OpInfo& info = Info(in.op);
    std::string line;
    if (in.op == Op::InsnStart) {
      line = "; guest " + Hex(in.imm) + " (" + std::to_string(in.imm2) + " bytes)";
      out += line + "\n";
      continue;
    }
    if (info.ret != Type::Void) {
      line = "  %" + std::to_string(i) + ":" + std::string(TypeName(info.ret)) + " = ";
    } else {
      line = "  ";
    }
    line += info.name;
    bool first = true;
    // State ops name their register or flag first.
    if (in.op == Op::GetReg || in.op == Op::SetReg) {
      static constexpr const char* kRegs[] = {"rax", "rcx", "rdx", "rbx", "rsp",     "rbp",
                                              "rsi", "rdi", "r8",  "r9",  "r10",     "r11",
                                              "r12", "r13", "r14", "r15", "fs_base", "gs_base"};
      line += std::string(" ") + (in.imm < 18 ? kRegs[in.imm] : "?");
      first = false;
    } else if (in.op == Op::GetFlag || in.op == Op::SetFlag) {
      static constexpr const char* kFlags[] = {"cf", "1",  "pf", "3",  "af", "5",
                                               "zf", "sf", "tf", "if", "df", "of"};
      line += std::string(" ") + (in.imm < 12 ? kFlags[in.imm] : std::to_string(in.imm).c_str());
      first = false;
    } else if (in.op == Op::GetXmm || in.op == Op::SetXmm) {
      line += " xmm" + std::to_string(in.imm);
      first = false;
    }
    for (int a = 0; a < info.num_args; ++a) {
      line += first ? " " : ", ";
      first = false;
      line += "%" + std::to_string(in.args[a]);
    }
    bool has_imm = in.op != Op::ExitState && in.op != Op::CheckCodeWrite && in.op != Op::GetReg &&
                   in.op != Op::SetReg && in.op != Op::GetFlag && in.op != Op::SetFlag &&
                   in.op != Op::GetXmm && in.op != Op::SetXmm;
    if (has_imm && (in.imm != 0 || info.num_args == 0)) {
      line += first ? " " : ", ";
      first = false;
      line += Hex(in.imm);
    }
    if (in.op == Op::ExitCond) line += ", " + Hex(in.imm2);
    if (in.op == Op::CheckCodeWrite) line += " " + Hex(in.imm);
    out += line + "\n";
  }
  return out;
}

}  // namespace cpudiff::ir

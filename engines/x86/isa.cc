#include "engines/x86/isa.h"

namespace cpudiff {
namespace {

using namespace isa;  // the tokens of isa.inc

constexpr IsaForm kForms[] = {
#define X86_INSN(id, mnem, enc, map, op, pfx, rm, mod, w, o1, o2, o3, o4, isa_ext, attr, tested, \
                 modified, undef)                                                                \
  {InsnId::id,       #id,     mnem, enc,    map,      op,   pfx, rm, mod, w,                     \
   {o1, o2, o3, o4}, isa_ext, attr, tested, modified, undef},
#include "engines/x86/isa.inc"
#undef X86_INSN
};
static_assert(std::size(kForms) == kNumInsnIds);

constexpr std::string_view kIsaNames[] = {
    "base",   "x87",    "mmx",    "sse",    "sse2",  "sse3", "ssse3", "sse4.1",
    "sse4.2", "popcnt", "lzcnt",  "bmi1",   "bmi2",  "adx",  "movbe", "cx16",
    "clfsh",  "aes",    "pclmul", "rdrand", "sse4a", "sha",  "other", "system"};
static_assert(std::size(kIsaNames) == kNumIsa);

constexpr std::string_view kOperandNames[] = {
    "",    "Eb", "Ew",  "Ed",  "Eq",  "Ev",  "Ey",  "Gb",  "Gw",  "Gd",  "Gq",  "Gv",
    "Gy",  "Rv", "Ry",  "Rq",  "M",   "Mb",  "Mw",  "Md",  "Mq",  "Mv",  "My",  "Mdq",
    "Mp",  "Ib", "Ibs", "Iw",  "Iz",  "Iv",  "Jb",  "Jz",  "1",   "AL",  "rAX", "CL",
    "DX",  "Zb", "Zv",  "Zq",  "Ob",  "Ov",  "Xb",  "Xv",  "Yb",  "Yv",  "By",  "",
    "Sw",  "Cq", "Dq",  "Vps", "Vpd", "Vss", "Vsd", "Vq",  "Vdq", "Wps", "Wpd", "Wss",
    "Wsd", "Wq", "Wd",  "Ww",  "Wdq", "Uq",  "Ups", "Upd", "Udq", "Pq",  "Qq",  "Nq"};
static_assert(std::size(kOperandNames) == kNumOpnd);

}  // namespace

std::span<const IsaForm> IsaForms() { return kForms; }
std::string_view IsaName(isa::Isa i) { return kIsaNames[i]; }
std::string_view OperandName(isa::Opnd o) { return kOperandNames[o]; }

}  // namespace cpudiff

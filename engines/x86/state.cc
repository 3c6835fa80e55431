#include "engines/x86/state.h"

#include <cstdio>
#include <cstring>

namespace cpudiff {
namespace {

constexpr uint64_t kAll = ~0ull;

#define GPR(n, i) {n, RegKind::kGpr, offsetof(CpuState, gpr) + (i) * 8, 64, kAll}
#define XMM(n, i) {n, RegKind::kXmm, offsetof(CpuState, xmm) + (i) * 16, 128, kAll}
constexpr RegInfo kRegisterTable[] = {
    GPR("rax", 0),   GPR("rcx", 1),   GPR("rdx", 2),   GPR("rbx", 3),
    GPR("rsp", 4),   GPR("rbp", 5),   GPR("rsi", 6),   GPR("rdi", 7),
    GPR("r8", 8),    GPR("r9", 9),    GPR("r10", 10),  GPR("r11", 11),
    GPR("r12", 12),  GPR("r13", 13),  GPR("r14", 14),  GPR("r15", 15),
    {"rip", RegKind::kRip, offsetof(CpuState, rip), 64, kAll},
    {"rflags", RegKind::kRflags, offsetof(CpuState, rflags), 64, kComparedFlags},
    XMM("xmm0", 0),  XMM("xmm1", 1),  XMM("xmm2", 2),  XMM("xmm3", 3),
    XMM("xmm4", 4),  XMM("xmm5", 5),  XMM("xmm6", 6),  XMM("xmm7", 7),
    XMM("xmm8", 8),  XMM("xmm9", 9),  XMM("xmm10", 10), XMM("xmm11", 11),
    XMM("xmm12", 12), XMM("xmm13", 13), XMM("xmm14", 14), XMM("xmm15", 15),
    {"mxcsr", RegKind::kMxcsr, offsetof(CpuState, mxcsr), 32, kMxcsrValidBits},
    {"fs_base", RegKind::kSegBase, offsetof(CpuState, fs_base), 64, kAll},
    {"gs_base", RegKind::kSegBase, offsetof(CpuState, gs_base), 64, kAll},
};
#undef GPR
#undef XMM
static_assert(std::size(kRegisterTable) == kNumRegisters);

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::span<const RegInfo> Registers() { return kRegisterTable; }

int FindRegister(std::string_view name) {
  for (int i = 0; i < kNumRegisters; ++i) {
    if (kRegisterTable[i].name == name) return i;
  }
  return -1;
}

RegValue ReadReg(const CpuState& s, int reg) {
  const RegInfo& r = kRegisterTable[reg];
  const auto* p = reinterpret_cast<const uint8_t*>(&s) + r.offset;
  RegValue v;
  if (r.width_bits == 32) {
    uint32_t x;
    std::memcpy(&x, p, 4);
    v.lo = x;
  } else {
    std::memcpy(&v.lo, p, 8);
    if (r.width_bits == 128) std::memcpy(&v.hi, p + 8, 8);
  }
  return v;
}

void WriteReg(CpuState& s, int reg, RegValue v) {
  const RegInfo& r = kRegisterTable[reg];
  auto* p = reinterpret_cast<uint8_t*>(&s) + r.offset;
  if (r.width_bits == 32) {
    uint32_t x = static_cast<uint32_t>(v.lo);
    std::memcpy(p, &x, 4);
  } else {
    std::memcpy(p, &v.lo, 8);
    if (r.width_bits == 128) std::memcpy(p + 8, &v.hi, 8);
  }
}

std::string FormatReg(int reg, RegValue v) {
  char buf[40];
  switch (kRegisterTable[reg].width_bits) {
    case 32:
      std::snprintf(buf, sizeof buf, "0x%08llx", static_cast<unsigned long long>(v.lo));
      break;
    case 128:
      std::snprintf(buf, sizeof buf, "0x%016llx%016llx", static_cast<unsigned long long>(v.hi),
                    static_cast<unsigned long long>(v.lo));
      break;
    default:
      std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v.lo));
  }
  return buf;
}

std::optional<std::string> ParseRegValue(int reg, std::string_view text, RegValue* out) {
  const int width = kRegisterTable[reg].width_bits;
  if (text.size() < 3 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X')) {
    return "expected a hex string \"0x...\"";
  }
  std::string_view digits = text.substr(2);
  if (digits.size() > static_cast<size_t>(width / 4)) {
    return "more than " + std::to_string(width / 4) + " hex digits for a " +
           std::to_string(width) + "-bit register";
  }
  RegValue v;
  for (char c : digits) {
    int d = HexDigit(c);
    if (d < 0) return std::string("not a hex digit: '") + c + "'";
    v.hi = (v.hi << 4) | (v.lo >> 60);
    v.lo = (v.lo << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return std::nullopt;
}

bool ParseHex64(std::string_view text, uint64_t* out) {
  if (text.size() < 3 || text.size() > 18 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X')) {
    return false;
  }
  uint64_t v = 0;
  for (char c : text.substr(2)) {
    int d = HexDigit(c);
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

std::string HexBytes(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    s[2 * i] = kDigits[bytes[i] >> 4];
    s[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return s;
}

bool ParseHexBytes(std::string_view hex, std::vector<uint8_t>* out) {
  if (hex.size() % 2) return false;
  out->resize(hex.size() / 2);
  for (size_t i = 0; i < out->size(); ++i) {
    int hi = HexDigit(hex[2 * i]);
    int lo = HexDigit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

std::string Hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

namespace {
struct VectorNameEntry {
  uint8_t vector;
  std::string_view name;
};
constexpr VectorNameEntry kVectorNames[] = {
    {kVecDE, "#DE"}, {kVecDB, "#DB"}, {kVecBP, "#BP"}, {kVecOF, "#OF"}, {kVecBR, "#BR"},
    {kVecUD, "#UD"}, {kVecNM, "#NM"}, {kVecSS, "#SS"}, {kVecGP, "#GP"}, {kVecPF, "#PF"},
    {kVecMF, "#MF"}, {kVecAC, "#AC"}, {kVecXM, "#XM"},
};
}  // namespace

std::string VectorName(uint8_t vector) {
  for (const auto& e : kVectorNames) {
    if (e.vector == vector) return std::string(e.name);
  }
  return "#" + std::to_string(vector);
}

int VectorFromName(std::string_view name) {
  for (const auto& e : kVectorNames) {
    if (e.name == name) return e.vector;
  }
  return -1;
}

bool VectorHasErrorCode(uint8_t vector) {
  return vector == 8 || (vector >= 10 && vector <= 14) || vector == kVecAC || vector == 21;
}

Outcome Outcome::Fault(uint8_t vector) {
  Outcome o;
  o.kind = OutcomeKind::kFault;
  o.vector = vector;
  return o;
}
Outcome Outcome::FaultWithCode(uint8_t vector, uint64_t error_code) {
  Outcome o = Fault(vector);
  o.has_error_code = true;
  o.error_code = error_code;
  return o;
}
Outcome Outcome::PageFault(uint64_t error_code, uint64_t addr) {
  Outcome o = FaultWithCode(kVecPF, error_code);
  o.has_addr = true;
  o.addr = addr;
  return o;
}
Outcome Outcome::Timeout(std::string reason) {
  Outcome o;
  o.kind = OutcomeKind::kTimeout;
  o.reason = std::move(reason);
  return o;
}
Outcome Outcome::Syscall() {
  Outcome o;
  o.kind = OutcomeKind::kSyscall;
  return o;
}
Outcome Outcome::Unsupported(std::string reason) {
  Outcome o;
  o.kind = OutcomeKind::kUnsupported;
  o.reason = std::move(reason);
  return o;
}
Outcome Outcome::Crash(std::string reason) {
  Outcome o;
  o.kind = OutcomeKind::kCrash;
  o.reason = std::move(reason);
  return o;
}

bool Outcome::SameAs(const Outcome& o) const {
  if (kind != o.kind) return false;
  if (kind != OutcomeKind::kFault) return true;
  return vector == o.vector && has_error_code == o.has_error_code &&
         (!has_error_code || error_code == o.error_code) && has_addr == o.has_addr &&
         (!has_addr || addr == o.addr);
}

std::string_view OutcomeKindName(OutcomeKind k) {
  switch (k) {
    case OutcomeKind::kHalt: return "halt";
    case OutcomeKind::kFault: return "fault";
    case OutcomeKind::kTimeout: return "timeout";
    case OutcomeKind::kSyscall: return "syscall";
    case OutcomeKind::kUnsupported: return "unsupported";
    case OutcomeKind::kCrash: return "crash";
  }
  return "?";
}

std::string FormatOutcome(const Outcome& o) {
  if (o.kind == OutcomeKind::kFault) {
    std::string s = VectorName(o.vector);
    if (o.has_error_code || o.has_addr) {
      s += "(";
      if (o.has_error_code) s += "err=" + Hex64(o.error_code);
      if (o.has_addr) s += std::string(o.has_error_code ? ", " : "") + "addr=" + Hex64(o.addr);
      s += ")";
    }
    return s;
  }
  std::string s(OutcomeKindName(o.kind));
  if (!o.reason.empty()) s += ": " + o.reason;
  return s;
}

}  // namespace cpudiff

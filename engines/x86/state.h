// The architectural state cpudiff compares: general-purpose registers, RIP,
// RFLAGS, XMM0-15, MXCSR and the FS/GS bases, plus the outcome of a run.
//
// CpuState is a plain standard-layout struct on purpose: it crosses process
// boundaries (shared memory with the native runner, the plugin ABI) byte for
// byte. Every consumer that needs to walk registers by name (corpus parsing,
// comparing, printing, storage) goes through the one register table below.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cpudiff {

// GPR indices in x86 encoding order.
enum Gpr : int {
  kRax = 0, kRcx, kRdx, kRbx, kRsp, kRbp, kRsi, kRdi,
  kR8, kR9, kR10, kR11, kR12, kR13, kR14, kR15,
};

struct Xmm {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const Xmm&, const Xmm&) = default;
};

struct CpuState {
  std::array<uint64_t, 16> gpr{};
  uint64_t rip = 0;
  uint64_t rflags = 0x202;
  std::array<Xmm, 16> xmm{};
  uint32_t mxcsr = 0x1f80;
  uint32_t reserved = 0;
  uint64_t fs_base = 0;
  uint64_t gs_base = 0;
  friend bool operator==(const CpuState&, const CpuState&) = default;
};
static_assert(sizeof(CpuState) == 16 * 8 + 8 + 8 + 16 * 16 + 8 + 16);

// RFLAGS bits.
inline constexpr uint64_t kFlagCF = 1ull << 0;
inline constexpr uint64_t kFlagFixed1 = 1ull << 1;
inline constexpr uint64_t kFlagPF = 1ull << 2;
inline constexpr uint64_t kFlagAF = 1ull << 4;
inline constexpr uint64_t kFlagZF = 1ull << 6;
inline constexpr uint64_t kFlagSF = 1ull << 7;
inline constexpr uint64_t kFlagTF = 1ull << 8;
inline constexpr uint64_t kFlagIF = 1ull << 9;
inline constexpr uint64_t kFlagDF = 1ull << 10;
inline constexpr uint64_t kFlagOF = 1ull << 11;
inline constexpr uint64_t kFlagRF = 1ull << 16;
inline constexpr uint64_t kFlagAC = 1ull << 18;
inline constexpr uint64_t kFlagID = 1ull << 21;
// The six arithmetic status flags.
inline constexpr uint64_t kStatusFlags = kFlagCF | kFlagPF | kFlagAF | kFlagZF | kFlagSF | kFlagOF;
// Bits a test case may set in its initial RFLAGS (bit 1 and IF are forced on).
inline constexpr uint64_t kSettableFlags = kStatusFlags | kFlagDF | kFlagAC | kFlagID;
// Bits that are compared: user-visible flags. TF is masked by every engine,
// RF is set by silicon on a fault and not by the emulators (PLATFORM-NOTES).
inline constexpr uint64_t kComparedFlags = kSettableFlags | kFlagFixed1 | kFlagIF;

inline constexpr uint32_t kMxcsrDefault = 0x1f80;
// MXCSR bits that exist (FZ, RC, masks, DAZ, flags).
inline constexpr uint32_t kMxcsrValidBits = 0xffff;

// What a register table entry refers to. The same enum names the groups of
// fields an engine can observe (see Observes in engines/engine.h).
enum class RegKind : uint8_t { kGpr, kRip, kRflags, kXmm, kMxcsr, kSegBase };

// One row of the register table.
struct RegInfo {
  std::string_view name;
  RegKind kind;
  size_t offset;   // byte offset inside CpuState
  int width_bits;  // 32, 64 or 128
  uint64_t mask;   // comparison mask of the low 64 bits (128-bit: both halves)
};

// The register table: rax..r15, rip, rflags, xmm0..xmm15, mxcsr, fs_base, gs_base.
std::span<const RegInfo> Registers();
// Index in Registers() by name, or -1.
int FindRegister(std::string_view name);
inline constexpr int kRegRip = 16;
inline constexpr int kRegRflags = 17;
inline constexpr int kRegXmm0 = 18;
inline constexpr int kRegMxcsr = 34;
inline constexpr int kRegFsBase = 35;
inline constexpr int kRegGsBase = 36;
inline constexpr int kNumRegisters = 37;

// A register value of up to 128 bits.
struct RegValue {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const RegValue&, const RegValue&) = default;
};
RegValue ReadReg(const CpuState& s, int reg);
void WriteReg(CpuState& s, int reg, RegValue v);
// "0x" followed by width/4 hex digits.
std::string FormatReg(int reg, RegValue v);
// Parses "0x" and 1..width/4 hex digits. Returns an error message on failure.
std::optional<std::string> ParseRegValue(int reg, std::string_view text, RegValue* out);

// Parses "0x..." (1..16 hex digits) into a 64-bit value.
bool ParseHex64(std::string_view text, uint64_t* out);
std::string Hex64(uint64_t v);
// Bytes as hex digits without a prefix ("00ff"), and back (false on an odd
// length or a non-hex digit).
std::string HexBytes(std::span<const uint8_t> bytes);
bool ParseHexBytes(std::string_view hex, std::vector<uint8_t>* out);

// ---- Outcome --------------------------------------------------------------

enum class OutcomeKind : uint8_t {
  kHalt = 0,
  kFault = 1,
  kTimeout = 2,
  kSyscall = 3,      // the stream executed syscall, sysenter or int 0x80
  kUnsupported = 4,  // this engine cannot run this case (reason says why)
  kCrash = 5,        // the engine itself died on this case
};

// Exception vectors.
inline constexpr uint8_t kVecDE = 0, kVecDB = 1, kVecBP = 3, kVecOF = 4, kVecBR = 5, kVecUD = 6,
                         kVecNM = 7, kVecSS = 12, kVecGP = 13, kVecPF = 14, kVecMF = 16,
                         kVecAC = 17, kVecXM = 19;

// "#PF" etc. for a vector, "#14"-style for unnamed ones.
std::string VectorName(uint8_t vector);
// Vector for a name like "#PF"; -1 when unknown.
int VectorFromName(std::string_view name);
// True for the faults that push an error code (#GP, #SS, #PF, #AC, ...).
bool VectorHasErrorCode(uint8_t vector);

struct Outcome {
  OutcomeKind kind = OutcomeKind::kHalt;
  uint8_t vector = 0;            // kFault
  bool has_error_code = false;   // kFault
  uint64_t error_code = 0;
  bool has_addr = false;         // kFault: #PF fault address
  uint64_t addr = 0;
  std::string reason;            // kUnsupported, kCrash, kTimeout: free text

  static Outcome Halt() { return {}; }
  static Outcome Fault(uint8_t vector);
  static Outcome FaultWithCode(uint8_t vector, uint64_t error_code);
  static Outcome PageFault(uint64_t error_code, uint64_t addr);
  static Outcome Timeout(std::string reason = {});
  static Outcome Syscall();
  static Outcome Unsupported(std::string reason);
  static Outcome Crash(std::string reason);

  // Equality of what is compared (reason is never compared).
  bool SameAs(const Outcome& o) const;
};

// "halt", "#PF(err=0x6, addr=0x40000000)", "unsupported: ..." etc.
std::string FormatOutcome(const Outcome& o);
std::string_view OutcomeKindName(OutcomeKind k);

}  // namespace cpudiff

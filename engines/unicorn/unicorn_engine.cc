#include "engines/unicorn/unicorn_engine.h"

#include <cpuid.h>
#include <sys/mman.h>
#include <time.h>
#include <unicorn/unicorn.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "engines/worker/worker_engine.h"

// Unicorn 2.0.1 pitfalls this engine works around (measured, see
// PLATFORM-NOTES.md "Unicorn 2.0.1"):
// - one uc engine is kept; a clean context saved once is restored before
//   every case, because after an exception stopped by a hook a reused engine
//   misreports the next ones;
// - translated blocks survive uc_mem_unmap/uc_mem_map and writes to guest
//   memory from the host: whenever executable bytes differ from what was
//   there before (or the layout changed), that range is removed from the
//   translation cache with uc_ctl_remove_cache;
// - the stream ends by executing the appended HLT, which stops Unicorn with
//   RIP after it. Exits are enabled with an empty list: with `until`, or an
//   exit inside a translated block, every uc_emu_start translates again
//   (measured here: 110k runs/s with an exit at the HLT, 3M/s without);
// - without a UC_HOOK_CODE hook, RIP and RFLAGS at a memory fault are those
//   of the start of the translated block: the fast path runs without the
//   hook, and any case that does not end at the appended HLT is run again
//   with it. Blocks translated without the hook stay cached and do not call
//   a hook added later, so the executable ranges are dropped from the cache
//   whenever the run mode (hook or not) changes;
// - #UD arrives through UC_HOOK_INSN_INVALID, not UC_HOOK_INTR;
// - MXCSR of a fresh engine is 0: it is written for every case;
// - code runs at ring 0: privileged instructions are found by looking at
//   each instruction's bytes in a code hook (only for cases whose bytes could
//   contain one) and reported as the #GP that CPL3 gets on silicon. Code
//   proven straight-line and free of them (decoded here, or seen by an
//   earlier precise run of the same stream) runs without the hook: see
//   IsVerified.

namespace cpudiff {
namespace {

// Error-code bits of a #PF.
constexpr uint64_t kPfPresent = 1, kPfWrite = 2, kPfUser = 4, kPfFetch = 16;

bool HostHasUmip() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return (c >> 2) & 1;
}

// Cheap pre-filter: can these bytes hold an instruction that is privileged
// at CPL3 (checked precisely per instruction by PrivilegedFault)? A false
// positive only costs a slower run with a code hook.
bool MayContainPrivileged(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint8_t b = p[i];
    if (b == 0xfa || b == 0xfb || (b >= 0xe4 && b <= 0xe7) || (b >= 0xec && b <= 0xef) ||
        (b >= 0x6c && b <= 0x6f)) {
      return true;
    }
    if (b == 0x0f && i + 1 < n) {
      uint8_t c = p[i + 1];
      if (c <= 0x01 || (c >= 0x06 && c <= 0x09) || (c >= 0x20 && c <= 0x23) || c == 0x30 ||
          c == 0x32 || c == 0x33 || c == 0x35) {
        return true;
      }
    }
  }
  return false;
}

// What silicon does at CPL3 (Linux: IOPL 0, no I/O permission bitmap) for
// an instruction that Unicorn, at ring 0, would execute. Returns false when
// the instruction is not privileged.
bool PrivilegedFault(const uint8_t* p, size_t n, bool umip, Outcome* out) {
  size_t i = 0;
  while (i < n) {
    uint8_t b = p[i];
    bool legacy_prefix = b == 0x66 || b == 0x67 || b == 0xf0 || b == 0xf2 || b == 0xf3 ||
                         b == 0x2e || b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 ||
                         b == 0x65;
    if (!legacy_prefix) break;
    ++i;
  }
  if (i < n && (p[i] & 0xf0) == 0x40) ++i;  // REX
  if (i >= n) return false;
  uint8_t op = p[i];
  // cli, sti, in, out, ins, outs.
  if (op == 0xfa || op == 0xfb || (op >= 0xe4 && op <= 0xe7) || (op >= 0xec && op <= 0xef) ||
      (op >= 0x6c && op <= 0x6f)) {
    *out = Outcome::FaultWithCode(kVecGP, 0);
    return true;
  }
  if (op != 0x0f || i + 1 >= n) return false;
  uint8_t op2 = p[i + 1];
  uint8_t modrm = i + 2 < n ? p[i + 2] : 0;
  uint8_t reg = (modrm >> 3) & 7;
  bool mem = (modrm >> 6) != 3;
  switch (op2) {
    case 0x06:  // clts
    case 0x07:  // sysret
    case 0x08:  // invd
    case 0x09:  // wbinvd
    case 0x20: case 0x21: case 0x22: case 0x23:  // mov to/from CRn/DRn
    case 0x30:  // wrmsr
    case 0x32:  // rdmsr
    case 0x33:  // rdpmc (Linux leaves CR4.PCE clear)
    case 0x35:  // sysexit
      *out = Outcome::FaultWithCode(kVecGP, 0);
      return true;
    case 0x00:  // sldt, str (UMIP), lldt, ltr
      if (reg == 2 || reg == 3 || (umip && reg <= 1)) {
        *out = Outcome::FaultWithCode(kVecGP, 0);
        return true;
      }
      return false;
    case 0x01:
      if (mem || (modrm >= 0xe0 && modrm <= 0xf7)) {
        // sgdt sidt smsw (UMIP); lgdt lidt lmsw invlpg.
        if (reg == 2 || reg == 3 || reg == 6 || (reg == 7 && mem) ||
            (umip && (reg == 0 || reg == 1 || reg == 4))) {
          *out = Outcome::FaultWithCode(kVecGP, 0);
          return true;
        }
        return false;
      }
      if (modrm == 0xd1 || modrm == 0xf8) {  // xsetbv, swapgs
        *out = Outcome::FaultWithCode(kVecGP, 0);
        return true;
      }
      if (modrm == 0xca || modrm == 0xcb) {  // clac, stac: #UD when CPL > 0
        *out = Outcome::Fault(kVecUD);
        return true;
      }
      return false;
    default:
      return false;
  }
}

// Can these bytes hold pcmpestri/pcmpestrm (66 0f 3a 60/61)? See
// PcmpestrCrashes.
bool MayContainPcmpestr(const uint8_t* p, size_t n) {
  for (size_t i = 0; i + 2 < n; ++i) {
    if (p[i] == 0x0f && p[i + 1] == 0x3a && (p[i + 2] == 0x60 || p[i + 2] == 0x61)) return true;
  }
  return false;
}

// Unicorn 2.0.1 (QEMU 5) truncates the explicit lengths of pcmpestri and
// pcmpestrm (EAX, EDX; RAX, RDX with REX.W) to int before taking their
// absolute value: a low half of 0x80000000 stays negative, and the helper
// then indexes the XMM registers with it (the length in EDX drives the
// outer loop). The worker dies with SIGSEGV (or
// gets garbage), and starting a new one costs more than thousands of cases.
// The code hook stops before such an instruction and reports the crash.
bool IsPcmpestr(const uint8_t* p, size_t n) {
  size_t i = 0;
  bool opsize = false;
  while (i < n && (p[i] == 0x66 || p[i] == 0x67 || p[i] == 0xf0 || p[i] == 0xf2 || p[i] == 0xf3 ||
                   p[i] == 0x2e || p[i] == 0x36 || p[i] == 0x3e || p[i] == 0x26 || p[i] == 0x64 ||
                   p[i] == 0x65)) {
    opsize |= p[i] == 0x66;
    ++i;
  }
  if (i < n && (p[i] & 0xf0) == 0x40) ++i;
  return opsize && i + 2 < n && p[i] == 0x0f && p[i + 1] == 0x3a &&
         (p[i + 2] == 0x60 || p[i + 2] == 0x61);
}

// `rdx`: its value at the instruction. The same value in rax gives a
// negative length too, but measured here it does not crash (the result is
// left to the comparison with the reference engine).
bool PcmpestrCrashes(uint64_t rdx) { return static_cast<uint32_t>(rdx) == 0x80000000u; }

// Skips legacy prefixes and REX; returns the opcode offset.
size_t OpcodeOffset(const uint8_t* p, size_t n) {
  size_t i = 0;
  while (i < n && (p[i] == 0x66 || p[i] == 0x67 || p[i] == 0xf0 || p[i] == 0xf2 ||
                   p[i] == 0xf3 || p[i] == 0x2e || p[i] == 0x36 || p[i] == 0x3e ||
                   p[i] == 0x26 || p[i] == 0x64 || p[i] == 0x65)) {
    ++i;
  }
  if (i < n && (p[i] & 0xf0) == 0x40) ++i;
  return i;
}

// Can this instruction send execution anywhere but to the next one (or
// stop it)? Conservative: a false positive only keeps a case on the slow
// path. Faults are not covered: a faulting run is always rerun precisely.
bool MayTransferControl(const uint8_t* p, size_t n) {
  size_t i = OpcodeOffset(p, n);
  if (i >= n) return true;
  uint8_t op = p[i];
  if ((op >= 0x70 && op <= 0x7f) || (op >= 0xe0 && op <= 0xe3) || (op >= 0xe8 && op <= 0xeb) ||
      (op >= 0xc2 && op <= 0xc3) || (op >= 0xca && op <= 0xcf) || op == 0x9a || op == 0xf1 ||
      op == kHltByte) {
    return true;
  }
  const uint8_t modrm = i + 1 < n ? p[i + 1] : 0;
  if (op == 0xff) {
    const uint8_t reg = (modrm >> 3) & 7;
    return i + 1 >= n || (reg >= 2 && reg <= 5);  // call, callf, jmp, jmpf
  }
  if ((op == 0xc6 || op == 0xc7) && modrm == 0xf8) return true;  // xabort, xbegin
  if (op != 0x0f) return false;
  if (i + 1 >= n) return true;
  const uint8_t op2 = p[i + 1];
  // syscall, sysret, sysenter, sysexit, rsm, jcc rel32.
  return op2 == 0x05 || op2 == 0x07 || op2 == 0x34 || op2 == 0x35 || op2 == 0xaa ||
         (op2 >= 0x80 && op2 <= 0x8f);
}

// Length of the ModRM byte and what follows it (SIB, displacement) in 64-bit
// mode, where 16-bit addressing does not exist; 0 when `n` is too short.
size_t ModRmLength(const uint8_t* p, size_t n) {
  if (n < 1) return 0;
  const uint8_t modrm = p[0], mod = modrm >> 6, rm = modrm & 7;
  if (mod == 3) return 1;
  size_t len = 1;
  uint8_t base = rm;
  if (rm == 4) {
    if (n < 2) return 0;
    base = p[1] & 7;
    len = 2;
  }
  if (mod == 1) return len + 1;
  if (mod == 2 || (mod == 0 && base == 5)) return len + 4;
  return len;
}

// Length of the instruction at `p`, or 0 for anything this decoder does not
// know for sure: invalid in 64-bit mode, VEX/EVEX/XOP, 3DNow!, encodings
// whose length differs between vendors. It only has to cover the common
// integer and SSE instructions: a 0 keeps the case on the code-hook path.
// (Zydis, a project dependency, is not linked into this engine; this needs
// only lengths, and a wrong 0 costs speed, never correctness.)
size_t InsnLength(const uint8_t* p, size_t n) {
  size_t i = 0;
  bool opsize = false, addrsize = false, rex_w = false;
  for (; i < n; ++i) {
    const uint8_t b = p[i];
    if (b == 0x66) {
      opsize = true;
    } else if (b == 0x67) {
      addrsize = true;
    } else if (!(b == 0xf0 || b == 0xf2 || b == 0xf3 || b == 0x2e || b == 0x36 || b == 0x3e ||
                 b == 0x26 || b == 0x64 || b == 0x65)) {
      break;
    }
  }
  if (i < n && (p[i] & 0xf0) == 0x40) {
    rex_w = p[i] & 8;
    ++i;
  }
  if (i >= n) return 0;
  const uint8_t op = p[i++];
  // A REX prefix not directly before the opcode is ignored: leave such
  // streams to the code hook.
  if ((op & 0xf0) == 0x40 || op == 0x66 || op == 0x67 || op == 0xf0 || op == 0xf2 ||
      op == 0xf3 || op == 0x2e || op == 0x36 || op == 0x3e || op == 0x26 || op == 0x64 ||
      op == 0x65) {
    return 0;
  }
  // REX.W wins over 0x66: z-sized immediates are 16 bits only without it.
  const size_t immz = opsize && !rex_w ? 2 : 4;
  bool modrm = false;
  size_t imm = 0;
  if (op == 0x0f) {
    if (i >= n) return 0;
    const uint8_t op2 = p[i++];
    if (op2 == 0x38) {
      if (i >= n) return 0;
      ++i;
      modrm = true;
    } else if (op2 == 0x3a) {
      if (i >= n) return 0;
      ++i;
      modrm = true;
      imm = 1;
    } else if (op2 == 0x05 || op2 == 0x06 || op2 == 0x07 || op2 == 0x08 || op2 == 0x09 ||
               op2 == 0x0b || op2 == 0x0e || (op2 >= 0x30 && op2 <= 0x35) || op2 == 0x37 ||
               op2 == 0x77 || op2 == 0xa0 || op2 == 0xa1 || op2 == 0xa2 || op2 == 0xa8 ||
               op2 == 0xa9 || op2 == 0xaa || (op2 >= 0xc8 && op2 <= 0xcf)) {
      // No ModRM.
    } else if (op2 >= 0x80 && op2 <= 0x8f) {
      imm = 4;  // jcc rel32 (vendors differ with 0x66: a branch, never verified)
    } else if (op2 == 0x0f || op2 == 0x04 || op2 == 0x0a || op2 == 0x0c || op2 == 0x24 ||
               op2 == 0x25 || op2 == 0x26 || op2 == 0x27 || op2 == 0x36 || op2 == 0x39 ||
               (op2 >= 0x3b && op2 <= 0x3f) || op2 == 0x78 || op2 == 0x79 || op2 == 0x7a ||
               op2 == 0x7b || op2 == 0xff || op2 == 0xb9 || op2 == 0x0d || op2 == 0x01 ||
               (op2 >= 0x20 && op2 <= 0x23)) {
      // 3DNow!, invalid, VMX/SSE4a, ud0/ud1 (vendors differ), prefetch
      // forms, the 0f 01 group (modrm-less encodings hidden in ModRM), mov
      // to/from CRn/DRn (ModRM.mod ignored).
      return 0;
    } else {
      modrm = true;
      if ((op2 >= 0x70 && op2 <= 0x73) || op2 == 0xa4 || op2 == 0xac || op2 == 0xba ||
          op2 == 0xc2 || (op2 >= 0xc4 && op2 <= 0xc6)) {
        imm = 1;
      }
    }
  } else {
    switch (op) {
      // Invalid in 64-bit mode, VEX/EVEX, and opcodes whose length depends
      // on more than this decoder looks at.
      case 0x06: case 0x07: case 0x0e: case 0x16: case 0x17: case 0x1e: case 0x1f:
      case 0x27: case 0x2f: case 0x37: case 0x3f: case 0x60: case 0x61: case 0x62:
      case 0x82: case 0x8f: case 0x9a: case 0xc4: case 0xc5: case 0xd4: case 0xd5:
      case 0xd6: case 0xea: case 0xe8: case 0xe9: case 0xc8:
        return 0;
      default:
        break;
    }
    if (op < 0x40) {
      if ((op & 7) < 4) {
        modrm = true;
      } else if ((op & 7) == 4) {
        imm = 1;
      } else if ((op & 7) == 5) {
        imm = immz;
      }
    } else if (op == 0x63 || (op >= 0x84 && op <= 0x8e) || (op >= 0xd0 && op <= 0xd3) ||
               (op >= 0xd8 && op <= 0xdf) || op == 0xfe || op == 0xff) {
      modrm = true;
    } else if (op == 0x69 || op == 0x81 || op == 0xc7) {
      modrm = true;
      imm = immz;
    } else if (op == 0x6b || op == 0x80 || op == 0x83 || op == 0xc0 || op == 0xc1 ||
               op == 0xc6) {
      modrm = true;
      imm = 1;
    } else if (op == 0xf6 || op == 0xf7) {
      modrm = true;
      if (i >= n) return 0;
      if (((p[i] >> 3) & 7) < 2) imm = op == 0xf6 ? 1 : immz;  // test
    } else if (op == 0x68) {
      imm = immz;
    } else if (op == 0x6a || (op >= 0x70 && op <= 0x7f) || op == 0xa8 ||
               (op >= 0xb0 && op <= 0xb7) || op == 0xcd || (op >= 0xe0 && op <= 0xe7) ||
               op == 0xeb) {
      imm = 1;
    } else if (op == 0xa9) {
      imm = immz;
    } else if (op >= 0xb8 && op <= 0xbf) {
      imm = rex_w ? 8 : immz;
    } else if (op >= 0xa0 && op <= 0xa3) {
      imm = addrsize ? 4 : 8;  // moffs
    } else if (op == 0xc2 || op == 0xca) {
      imm = 2;
    }
  }
  if (modrm) {
    size_t m = ModRmLength(p + i, n - i);
    if (m == 0) return 0;
    i += m;
  }
  i += imm;
  return i <= n && i <= 15 ? i : 0;
}

uint32_t UcPerm(uint8_t perm) {
  uint32_t p = 0;
  if (perm & kPermR) p |= UC_PROT_READ;
  if (perm & kPermW) p |= UC_PROT_WRITE;
  if (perm & kPermX) p |= UC_PROT_EXEC;
  return p;
}

// Register ids in the order of the value arrays built by SetupRegs/ReadRegs.
constexpr int kGprIds[16] = {
    UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
    UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
    UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
    UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
};
constexpr int kNumUcRegs = 16 + 16 + 5;  // gprs, xmms, rflags mxcsr fs gs rip

class UnicornCore : public Engine {
 public:
  explicit UnicornCore(const EngineOptions& options)
      : max_blocks_(options.max_instructions), umip_(HostHasUmip()) {
    Check(uc_open(UC_ARCH_X86, UC_MODE_64, &uc_), "uc_open");
    Check(uc_ctl_exits_enable(uc_), "exits mode");
    Check(uc_ctl_set_exits(uc_, nullptr, 0), "exits");
    Check(uc_hook_add(uc_, &h_intr_, UC_HOOK_INTR, reinterpret_cast<void*>(&OnIntr), this, 1, 0),
          "intr hook");
    Check(uc_hook_add(uc_, &h_invalid_, UC_HOOK_INSN_INVALID, reinterpret_cast<void*>(&OnInvalid),
                      this, 1, 0),
          "invalid hook");
    Check(uc_hook_add(uc_, &h_syscall_, UC_HOOK_INSN, reinterpret_cast<void*>(&OnSyscall), this,
                      1, 0, UC_X86_INS_SYSCALL),
          "syscall hook");
    Check(uc_hook_add(uc_, &h_sysenter_, UC_HOOK_INSN, reinterpret_cast<void*>(&OnSyscall), this,
                      1, 0, UC_X86_INS_SYSENTER),
          "sysenter hook");
    Check(uc_hook_add(uc_, &h_mem_, UC_HOOK_MEM_INVALID, reinterpret_cast<void*>(&OnMemInvalid),
                      this, 1, 0),
          "memory hook");
    // The instruction budget counts executed translated blocks: a block
    // holds at least one instruction, so no case is cut off before
    // max_instructions instructions. (uc_emu_start's `count` installs a code
    // hook and costs ~300 us per call; its `timeout` starts a thread.)
    Check(uc_hook_add(uc_, &h_block_, UC_HOOK_BLOCK, reinterpret_cast<void*>(&OnBlock), this, 1,
                      0),
          "block hook");
    Check(uc_context_alloc(uc_, &clean_), "context alloc");
    Check(uc_context_save(uc_, clean_), "context save");
    for (int i = 0; i < 16; ++i) reg_ids_[i] = kGprIds[i];
    for (int i = 0; i < 16; ++i) reg_ids_[16 + i] = UC_X86_REG_XMM0 + i;
    reg_ids_[32] = UC_X86_REG_RFLAGS;
    reg_ids_[33] = UC_X86_REG_MXCSR;
    reg_ids_[34] = UC_X86_REG_FS_BASE;
    reg_ids_[35] = UC_X86_REG_GS_BASE;
    reg_ids_[36] = UC_X86_REG_RIP;
  }

  ~UnicornCore() override {
    if (uc_ == nullptr) return;
    UnmapAll();
    if (clean_ != nullptr) uc_context_free(clean_);
    uc_close(uc_);
  }

  void Run(std::span<const TestCase* const> cases, std::span<RunResult> results) override {
    for (size_t i = 0; i < cases.size(); ++i) {
      int64_t t0 = NowNs();
      RunOne(*cases[i], &results[i]);
      results[i].ns = static_cast<uint64_t>(NowNs() - t0);
    }
  }

 private:
  struct Mapping {
    uint64_t addr = 0;
    uint64_t size = 0;
    uint8_t perm = 0;
    uint8_t* host = nullptr;
    // Per page: may hold something other than zero (written by us or by a
    // case). Pages that are not are known to be zero and need no reset.
    std::vector<uint8_t> maybe_nonzero;
  };

  enum class Event { kNone, kIntr, kInvalid, kSyscall, kMem, kBudget, kPrivileged, kPcmpestr };

  static void Check(uc_err err, const char* what) {
    if (err != UC_ERR_OK) {
      throw std::runtime_error(std::string("unicorn: ") + what + ": " + uc_strerror(err));
    }
  }

  // ---- hooks ----------------------------------------------------------------

  void Record(Event e) {
    if (event_ != Event::kNone) return;
    event_ = e;
  }

  static void OnIntr(uc_engine* uc, uint32_t intno, void* user) {
    auto* self = static_cast<UnicornCore*>(user);
    if (self->event_ == Event::kNone) {
      self->event_ = Event::kIntr;
      self->intno_ = intno;
    }
    uc_emu_stop(uc);
  }

  static bool OnInvalid(uc_engine*, void* user) {
    static_cast<UnicornCore*>(user)->Record(Event::kInvalid);
    return false;
  }

  static void OnSyscall(uc_engine* uc, void* user) {
    static_cast<UnicornCore*>(user)->Record(Event::kSyscall);
    uc_emu_stop(uc);
  }

  static bool OnMemInvalid(uc_engine*, uc_mem_type type, uint64_t address, int, int64_t,
                           void* user) {
    auto* self = static_cast<UnicornCore*>(user);
    if (self->event_ == Event::kNone) {
      self->event_ = Event::kMem;
      self->mem_type_ = type;
      self->mem_addr_ = address;
    }
    return false;
  }

  static void OnBlock(uc_engine* uc, uint64_t, uint32_t, void* user) {
    auto* self = static_cast<UnicornCore*>(user);
    if (++self->blocks_ > self->max_blocks_) {
      self->Record(Event::kBudget);
      uc_emu_stop(uc);
    }
  }

  static void OnCode(uc_engine* uc, uint64_t address, uint32_t size, void* user) {
    auto* self = static_cast<UnicornCore*>(user);
    if (self->event_ != Event::kNone) return;
    self->last_insn_addr_ = address;
    self->last_insn_size_ = size;
    self->have_last_insn_ = true;
    uint8_t bytes[16] = {};
    size_t n = self->HostBytes(address, bytes, std::min<size_t>(size, sizeof(bytes)));
    // The appended HLT itself ends every clean run: only what runs before it
    // decides whether the path is straight-line.
    if (address != self->exit_ && MayTransferControl(bytes, n)) self->straight_ = false;
    if (IsPcmpestr(bytes, n)) {
      uint64_t rdx = 0;
      uc_reg_read(uc, UC_X86_REG_RDX, &rdx);
      if (PcmpestrCrashes(rdx)) {
        self->event_ = Event::kPcmpestr;
        uc_emu_stop(uc);
        return;
      }
    }
    if (!self->check_privileged_) return;
    Outcome o;
    if (PrivilegedFault(bytes, n, self->umip_, &o)) {
      // Stopping from a code hook stops before the instruction executes.
      self->event_ = Event::kPrivileged;
      self->privileged_ = o;
      uc_emu_stop(uc);
    }
  }

  // Copies guest bytes from our host buffers; returns how many were mapped.
  size_t HostBytes(uint64_t addr, uint8_t* out, size_t n) const {
    size_t got = 0;
    while (got < n) {
      const Mapping* m = Find(addr + got);
      if (m == nullptr) break;
      size_t k = std::min<uint64_t>(n - got, m->addr + m->size - (addr + got));
      std::memcpy(out + got, m->host + (addr + got - m->addr), k);
      got += k;
    }
    return got;
  }

  const Mapping* Find(uint64_t addr) const {
    for (const Mapping& m : maps_) {
      if (addr >= m.addr && addr - m.addr < m.size) return &m;
    }
    return nullptr;
  }

  // ---- memory ---------------------------------------------------------------

  void UnmapAll() {
    for (Mapping& m : maps_) {
      uc_mem_unmap(uc_, m.addr, m.size);
      munmap(m.host, m.size);
    }
    maps_.clear();
    code_len_ = 0;
  }

  void Invalidate(uint64_t begin, uint64_t end) {
    if (end > begin) uc_ctl_remove_cache(uc_, begin, end);
  }

  bool SameLayout(const TestCase& tc, uint64_t code_size) const {
    if (maps_.size() != tc.mem.size() + 1) return false;
    if (maps_[0].addr != tc.code_addr || maps_[0].size != code_size) return false;
    for (size_t i = 0; i < tc.mem.size(); ++i) {
      const Mapping& m = maps_[i + 1];
      const MemRegion& r = tc.mem[i];
      if (m.addr != r.addr || m.size != r.size || m.perm != r.perm) return false;
    }
    return true;
  }

  // Maps the case's regions (reusing the previous mappings when the layout
  // is the same) and writes their initial contents. Returns an error text
  // when the layout cannot be mapped.
  std::string SetupMemory(const TestCase& tc) {
    const uint64_t code_size = PageCeil(tc.code.size() + 1);
    if (!SameLayout(tc, code_size)) {
      UnmapAll();
      auto add = [&](uint64_t addr, uint64_t size, uint8_t perm) -> std::string {
        Mapping m;
        m.addr = addr;
        m.size = size;
        m.perm = perm;
        void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return "out of memory for region " + Hex64(addr);
        // Small regions never benefit from huge pages, and zeroing one on
        // first touch costs more than a whole case.
        madvise(p, size, MADV_NOHUGEPAGE);
        m.host = static_cast<uint8_t*>(p);
        uc_err err = uc_mem_map_ptr(uc_, addr, size, UcPerm(perm), m.host);
        if (err != UC_ERR_OK) {
          munmap(p, size);
          return "cannot map " + Hex64(addr) + "+" + Hex64(size) + ": " + uc_strerror(err);
        }
        m.maybe_nonzero.assign(size / kPageSize, 0);
        maps_.push_back(std::move(m));
        return {};
      };
      std::string err = add(tc.code_addr, code_size, kPermR | kPermX);
      for (size_t i = 0; err.empty() && i < tc.mem.size(); ++i) {
        const MemRegion& r = tc.mem[i];
        if (r.size == 0 || r.size % kPageSize != 0 || r.addr % kPageSize != 0) {
          err = "region " + Hex64(r.addr) + " is not page aligned";
        } else {
          err = add(r.addr, r.size, r.perm);
        }
      }
      if (!err.empty()) {
        UnmapAll();
        return err;
      }
      // Blocks translated for an earlier layout at these addresses survive
      // the unmap and map.
      for (const Mapping& m : maps_) {
        if (m.perm & kPermX) Invalidate(m.addr, m.addr + m.size);
      }
    }

    // Code: write it and drop translations only when the bytes changed.
    Mapping& code = maps_[0];
    const size_t n = tc.code.size() + 1;
    bool same = code_len_ == n && std::memcmp(code.host, tc.code.data(), tc.code.size()) == 0 &&
                code.host[n - 1] == kHltByte;
    if (!same) {
      std::memcpy(code.host, tc.code.data(), tc.code.size());
      code.host[n - 1] = kHltByte;
      if (code_len_ > n) std::memset(code.host + n, 0, code_len_ - n);
      Invalidate(code.addr, code.addr + std::max(code_len_, n));
      code_len_ = n;
    }
    exit_ = tc.code_addr + tc.code.size();

    // Data regions: initial data page by page, zero where a page may have
    // been dirtied before.
    for (size_t i = 0; i < tc.mem.size(); ++i) {
      const MemRegion& r = tc.mem[i];
      Mapping& m = maps_[i + 1];
      const bool exec = m.perm & kPermX;
      for (size_t page = 0; page < m.maybe_nonzero.size(); ++page) {
        const uint64_t off = page * kPageSize;
        uint8_t* dst = m.host + off;
        size_t have = off < r.data.size() ? std::min<size_t>(kPageSize, r.data.size() - off) : 0;
        if (have == 0 && !m.maybe_nonzero[page]) continue;
        if (exec) {
          bool differs = std::memcmp(dst, r.data.data() + off, have) != 0;
          for (size_t k = have; !differs && k < kPageSize; ++k) differs = dst[k] != 0;
          if (differs) Invalidate(m.addr + off, m.addr + off + kPageSize);
        }
        if (have != 0) std::memcpy(dst, r.data.data() + off, have);
        if (have < kPageSize && m.maybe_nonzero[page]) std::memset(dst + have, 0, kPageSize - have);
        m.maybe_nonzero[page] = have != 0;
      }
    }
    return {};
  }

  // ---- registers ------------------------------------------------------------

  void SetupRegs(const CpuState& s) {
    uc_context_restore(uc_, clean_);
    uint64_t rflags = (s.rflags & ~(kFlagTF | kFlagRF)) | kFlagFixed1 | kFlagIF;
    uint64_t mxcsr = s.mxcsr;
    uint64_t fs = s.fs_base, gs = s.gs_base, rip = s.rip;
    void* vals[kNumUcRegs];
    for (int i = 0; i < 16; ++i) vals[i] = const_cast<uint64_t*>(&s.gpr[i]);
    for (int i = 0; i < 16; ++i) vals[16 + i] = const_cast<Xmm*>(&s.xmm[i]);
    vals[32] = &rflags;
    vals[33] = &mxcsr;
    vals[34] = &fs;
    vals[35] = &gs;
    vals[36] = &rip;
    uc_reg_write_batch(uc_, reg_ids_, vals, kNumUcRegs);
  }

  void ReadRegs(CpuState* s) {
    uint64_t rflags = 0, mxcsr = 0;
    void* vals[kNumUcRegs];
    for (int i = 0; i < 16; ++i) vals[i] = &s->gpr[i];
    for (int i = 0; i < 16; ++i) vals[16 + i] = &s->xmm[i];
    vals[32] = &rflags;
    vals[33] = &mxcsr;
    vals[34] = &s->fs_base;
    vals[35] = &s->gs_base;
    vals[36] = &s->rip;
    uc_reg_read_batch(uc_, reg_ids_, vals, kNumUcRegs);
    // User mode always runs with IF set; a ring-0 popf in Unicorn can clear it.
    s->rflags = (rflags & ~kFlagRF) | kFlagIF;
    s->mxcsr = static_cast<uint32_t>(mxcsr);
    s->reserved = 0;
  }

  // ---- running --------------------------------------------------------------

  // Runs the case once. `precise` adds a code hook (exact RIP/RFLAGS at a
  // fault, the address of every instruction, the privileged check).
  uc_err Execute(const TestCase& tc, bool precise, bool check_privileged) {
    event_ = Event::kNone;
    blocks_ = 0;
    have_last_insn_ = false;
    straight_ = true;
    check_privileged_ = check_privileged;
    if (precise != tbs_hooked_) {
      for (const Mapping& m : maps_) {
        if (m.perm & kPermX) Invalidate(m.addr, m.addr + m.size);
      }
      tbs_hooked_ = precise;
    }
    uc_hook code_hook = 0;
    if (precise) {
      uc_hook_add(uc_, &code_hook, UC_HOOK_CODE, reinterpret_cast<void*>(&OnCode), this, 1, 0);
    }
    SetupRegs(tc.init);
    uc_err err = uc_emu_start(uc_, tc.init.rip, 0, 0, 0);
    if (code_hook != 0) uc_hook_del(uc_, code_hook);
    return err;
  }

  // Code may run from executable data regions, whose bytes we do not scan:
  // such cases always run with the code hook.
  static bool HasExecutableData(const TestCase& tc) {
    for (const MemRegion& r : tc.mem) {
      if (r.perm & kPermX) return true;
    }
    return false;
  }

  // The byte pre-filter flags about a third of random code (immediates and
  // ModRM bytes look like privileged opcodes), and a run with the code hook
  // costs twice as much. A precise run that went straight from the first
  // instruction to the appended HLT, with no instruction that can transfer
  // control, proves what any other run of the same code from the same RIP
  // executes: the same instructions, unless one faults, and a faulting run
  // is rerun precisely anyway. Such code needs neither the privileged check
  // (it was done, or the pre-filter found nothing) nor the dangling-prefix
  // rerun (the HLT was seen to start at its own address). Cases that share
  // their code come in runs, so one remembered stream is enough.
  bool IsVerified(const TestCase& tc) const {
    return verified_valid_ && verified_rip_ == tc.init.rip && verified_addr_ == tc.code_addr &&
           verified_code_ == tc.code;
  }

  // The same proof without a run, when every instruction of the stream
  // decodes: a linear sweep from the first byte that meets no branch and no
  // privileged instruction and ends exactly at the appended HLT.
  bool StraightByDecoding(const TestCase& tc) const {
    if (tc.init.rip != tc.code_addr) return false;
    const uint8_t* p = tc.code.data();
    const size_t n = tc.code.size();
    size_t i = 0;
    Outcome unused;
    while (i < n) {
      const size_t len = InsnLength(p + i, n - i);
      if (len == 0 || MayTransferControl(p + i, len) ||
          PrivilegedFault(p + i, len, umip_, &unused)) {
        return false;
      }
      i += len;
    }
    return true;
  }

  void MaybeVerify(const TestCase& tc, uc_err uerr) {
    const bool clean = uerr == UC_ERR_OK && event_ == Event::kNone && straight_ &&
                       have_last_insn_ && last_insn_addr_ == exit_;
    if (!clean) return;
    Remember(tc);
  }

  void Remember(const TestCase& tc) {
    verified_valid_ = true;
    verified_rip_ = tc.init.rip;
    verified_addr_ = tc.code_addr;
    verified_code_.assign(tc.code.begin(), tc.code.end());
  }

  void RunOne(const TestCase& tc, RunResult* res) {
    res->pages.clear();
    res->state = tc.init;
    std::string err = SetupMemory(tc);
    if (!err.empty()) {
      res->outcome = Outcome::Unsupported("unicorn: " + err);
      return;
    }
    const bool exec_data = HasExecutableData(tc);
    bool verified = !exec_data && IsVerified(tc);
    if (!exec_data && !verified && StraightByDecoding(tc)) {
      // Remembered like a verifying run: cases sharing this code skip the
      // decoding sweep.
      Remember(tc);
      verified = true;
    }
    const bool careful =
        MayContainPcmpestr(tc.code.data(), tc.code.size()) ||
        (!verified && (exec_data || MayContainPrivileged(tc.code.data(), tc.code.size())));
    uc_err uerr = Execute(tc, careful, careful);
    bool precise = careful;
    if (!precise && !(uerr == UC_ERR_OK && (event_ == Event::kBudget ||
                                             event_ == Event::kSyscall ||
                                             (event_ == Event::kNone &&
                                              AfterFinalHlt(tc, verified))))) {
      // Anything but a clean end: run again with the code hook for the
      // exact state. Memory is reset first: the first run may have written.
      CollectAndResetForRerun(tc);
      uerr = Execute(tc, true, false);
      precise = true;
    }
    if (precise && !exec_data) MaybeVerify(tc, uerr);
    if (event_ == Event::kPcmpestr) {
      // What a worker that died would report: the initial state, no pages.
      // Pages written before it are still reset before the next case.
      CollectFinalPages(tc, res);
      res->pages.clear();
      res->outcome = Outcome::Crash(
          "unicorn: pcmpestri/pcmpestrm with 0x80000000 in the low half of rdx (Unicorn 2.0.1 "
          "indexes out of bounds and crashes)");
      return;
    }
    ReadRegs(&res->state);
    Classify(tc, uerr, res);
    CollectFinalPages(tc, res);
  }

  // The pages the case changed, which also need a reset before the next.
  void CollectFinalPages(const TestCase& tc, RunResult* res) {
    finals_.resize(tc.mem.size());
    for (size_t i = 0; i < tc.mem.size(); ++i) finals_[i] = maps_[i + 1].host;
    CollectChangedPages(tc, finals_, &res->pages);
    MarkDirty(res->pages);
  }

  // Unicorn stopped right after the appended HLT. When the code ends with a
  // prefix byte the HLT may have been part of a longer instruction: the
  // precise run finds where it started.
  bool AfterFinalHlt(const TestCase& tc, bool verified) {
    uint64_t rip = 0;
    uc_reg_read(uc_, UC_X86_REG_RIP, &rip);
    if (rip != exit_ + 1) return false;
    if (tc.code.empty() || verified) return true;
    uint8_t last = tc.code.back();
    return OpcodeOffset(&last, 1) == 0;
  }

  void MarkDirty(const std::vector<PageImage>& pages) {
    for (const PageImage& p : pages) {
      for (size_t i = 1; i < maps_.size(); ++i) {
        Mapping& m = maps_[i];
        if (p.addr >= m.addr && p.addr - m.addr < m.size) {
          m.maybe_nonzero[(p.addr - m.addr) / kPageSize] = 1;
        }
      }
    }
  }

  // Rewrites the initial contents of the data regions after a first run.
  void CollectAndResetForRerun(const TestCase& tc) {
    for (Mapping& m : maps_) std::fill(m.maybe_nonzero.begin(), m.maybe_nonzero.end(), 1);
    SetupMemory(tc);
  }

  void Classify(const TestCase& tc, uc_err uerr, RunResult* res) {
    CpuState& s = res->state;
    switch (event_) {
      case Event::kBudget:
        res->outcome = Outcome::Timeout("unicorn: instruction budget of " +
                                        std::to_string(max_blocks_) + " blocks exhausted");
        return;
      case Event::kSyscall:
        // Unicorn advanced RIP past syscall/sysenter and did nothing else.
        res->outcome = Outcome::Syscall();
        return;
      case Event::kPrivileged:
        res->outcome = privileged_;
        s.rip = last_insn_addr_;
        return;
      case Event::kInvalid: {
        res->outcome = Outcome::Fault(kVecUD);
        if (!have_last_insn_) return;
        s.rip = last_insn_addr_;
        uint8_t bytes[16];
        size_t n = HostBytes(last_insn_addr_, bytes, std::min<size_t>(last_insn_size_, 16));
        size_t op = OpcodeOffset(bytes, n);
        if (op + 1 < n && bytes[op] == 0x0f && bytes[op + 1] == 0x34) {
          // sysenter: Unicorn (like AMD silicon in long mode) raises #UD; the
          // corpus contract reports it as a system call, never executed.
          res->outcome = Outcome::Syscall();
          s.rip = last_insn_addr_ + last_insn_size_;
        }
        return;
      }
      case Event::kMem: {
        uint64_t code = kPfUser;
        switch (mem_type_) {
          case UC_MEM_WRITE_UNMAPPED: code |= kPfWrite; break;
          case UC_MEM_FETCH_UNMAPPED: code |= kPfFetch; break;
          case UC_MEM_READ_PROT: code |= kPfPresent; break;
          case UC_MEM_WRITE_PROT: code |= kPfPresent | kPfWrite; break;
          case UC_MEM_FETCH_PROT: code |= kPfPresent | kPfFetch; break;
          default: break;
        }
        res->outcome = Outcome::PageFault(code, mem_addr_);
        if (code & kPfFetch) {
          // The failing instruction never reached the code hook. If RIP still
          // names the last executed one, the fetch was of the next one.
          if (have_last_insn_ && s.rip == last_insn_addr_) s.rip += last_insn_size_;
        } else if (have_last_insn_) {
          s.rip = last_insn_addr_;
        }
        return;
      }
      case Event::kIntr:
        ClassifyInterrupt(res);
        return;
      case Event::kPcmpestr:  // handled in RunOne
      case Event::kNone:
        break;
    }
    if (uerr != UC_ERR_OK) {
      res->outcome = Outcome::Crash(std::string("unicorn: uc_emu_start: ") + uc_strerror(uerr));
      return;
    }
    if (!have_last_insn_ && s.rip == exit_ + 1) {  // fast path: the appended HLT
      res->outcome = Outcome::Halt();
      s.rip = exit_;
      return;
    }
    // Unicorn stops at an HLT with RIP after it; the code hook saw where it began.
    uint8_t bytes[16];
    if (have_last_insn_) {
      size_t n = HostBytes(last_insn_addr_, bytes, std::min<size_t>(last_insn_size_, 16));
      size_t op = OpcodeOffset(bytes, n);
      if (op < n && bytes[op] == kHltByte) {
        res->outcome = Outcome::Halt();
        s.rip = last_insn_addr_;
        return;
      }
    }
    (void)tc;
    res->outcome = Outcome::Crash("unicorn: stopped at " + Hex64(s.rip) + " for no known reason");
  }

  // Tells software interrupts (int n, int3, int1) from exceptions by the
  // bytes of the instruction the code hook saw last.
  void ClassifyInterrupt(RunResult* res) {
    CpuState& s = res->state;
    uint8_t vec = static_cast<uint8_t>(intno_);
    uint8_t bytes[16];
    size_t n = 0, op = 0;
    if (have_last_insn_) {
      n = HostBytes(last_insn_addr_, bytes, std::min<size_t>(last_insn_size_, 16));
      op = OpcodeOffset(bytes, n);
    }
    const uint64_t after = last_insn_addr_ + last_insn_size_;
    if (op < n && bytes[op] == 0xcd && op + 1 < n && bytes[op + 1] == intno_) {
      if (intno_ == 0x80) {
        res->outcome = Outcome::Syscall();
        s.rip = after;
      } else if (intno_ == kVecBP) {
        // int 3 (cd 03) goes through the user-accessible #BP gate.
        res->outcome = Outcome::Fault(kVecBP);
        s.rip = after;
      } else {
        // The other IDT gates have DPL 0: #GP with the IDT bit and vector.
        res->outcome = Outcome::FaultWithCode(kVecGP, uint64_t{intno_} * 8 + 2);
        s.rip = last_insn_addr_;
      }
      return;
    }
    if (op < n && bytes[op] == 0xcc && intno_ == kVecBP) {
      res->outcome = Outcome::Fault(kVecBP);
      s.rip = after;
      return;
    }
    if (op < n && bytes[op] == 0xf1 && intno_ == kVecDB) {
      res->outcome = Outcome::Fault(kVecDB);
      s.rip = after;
      return;
    }
    // An exception raised by the instruction itself: RIP at it. Unicorn does
    // not report error codes; the ones it raises here (#GP, #SS) push 0.
    res->outcome =
        VectorHasErrorCode(vec) ? Outcome::FaultWithCode(vec, 0) : Outcome::Fault(vec);
    if (have_last_insn_) s.rip = last_insn_addr_;
  }

  uc_engine* uc_ = nullptr;
  uc_context* clean_ = nullptr;
  uc_hook h_intr_ = 0, h_invalid_ = 0, h_syscall_ = 0, h_sysenter_ = 0, h_mem_ = 0, h_block_ = 0;
  int reg_ids_[kNumUcRegs];
  std::vector<Mapping> maps_;  // [0] is the code region
  size_t code_len_ = 0;        // bytes of the code region that may be non-zero
  uint64_t exit_ = ~0ull;      // address of the appended HLT
  bool tbs_hooked_ = false;    // cached blocks were translated with a code hook
  // The last code stream proven straight-line and clean (see IsVerified).
  bool verified_valid_ = false;
  uint64_t verified_rip_ = 0;
  uint64_t verified_addr_ = 0;
  std::vector<uint8_t> verified_code_;
  std::vector<const uint8_t*> finals_;  // per case, kept to avoid an allocation
  const uint64_t max_blocks_;
  const bool umip_;

  // Per-run state written by the hooks.
  Event event_ = Event::kNone;
  uint32_t intno_ = 0;
  uc_mem_type mem_type_ = UC_MEM_READ;
  uint64_t mem_addr_ = 0;
  uint64_t blocks_ = 0;
  bool check_privileged_ = false;
  bool straight_ = true;  // no instruction seen by the code hook could branch
  bool have_last_insn_ = false;
  uint64_t last_insn_addr_ = 0;
  uint32_t last_insn_size_ = 0;
  Outcome privileged_;
};

}  // namespace

Availability ProbeUnicorn() {
  // uc_version returns major << 24 | minor << 16 | patch << 8 | extra of the
  // library actually loaded (the UC_VERSION_* macros are the headers').
  const unsigned v = uc_version(nullptr, nullptr);
  Availability a;
  a.version = "unicorn " + std::to_string(v >> 24) + "." + std::to_string((v >> 16) & 0xff) + "." +
              std::to_string((v >> 8) & 0xff);
  uc_engine* uc = nullptr;
  uc_err err = uc_open(UC_ARCH_X86, UC_MODE_64, &uc);
  if (err != UC_ERR_OK) {
    a.reason = std::string("uc_open: ") + uc_strerror(err);
    return a;
  }
  uc_close(uc);
  a.available = true;
  return a;
}

std::unique_ptr<Engine> CreateUnicornEngineInProcess(const EngineOptions& options) {
  return std::make_unique<UnicornCore>(options);
}

std::unique_ptr<Engine> CreateUnicornEngine(const EngineOptions& options) {
  return MakeWorkerEngine([options] { return CreateUnicornEngineInProcess(options); }, options,
                          "unicorn");
}

}  // namespace cpudiff

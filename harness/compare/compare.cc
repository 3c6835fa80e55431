// The comparer.
//
// Rules (the contract for every consumer of Mismatch lists):
//
// Outcomes
// - CompareResults: `a` is the reference. When either outcome is not halt,
//   fault or syscall (unsupported, crash, timeout), only the outcome kinds are
//   compared: timeout against timeout agrees, whatever the reasons say.
//   Otherwise the outcomes are compared as Outcome::SameAs does, except that
//   the error code takes no part when either side lacks kObserveErrorCode and
//   the #PF address none when either side lacks kObserveFaultAddr.
// - When completed outcomes differ the state is still compared (the two
//   states stop at different points, so some mismatches are consequences);
//   a person reading the divergence wants both states side by side.
//
// Cost
// - Equal results are found without decoding or allocating: CpuState,
//   outcome and the reported pages are compared raw first. Masks only hide
//   differences, so the Zydis analysis runs only when something differs.
//
// Registers
// - Every row of the register table (Registers()) is compared under its
//   RegInfo::mask; a group that either side does not observe
//   (ObserveBitForRegister) is skipped.
// - RFLAGS is compared bit by bit, one Mismatch per differing flag
//   ("rflags.ZF"), values "0"/"1". Flags that are undefined at the end of the
//   run are masked unless `strict`.
// - A GPR or XMM register tainted by an undefined flag is skipped unless
//   `strict`; so is memory once a tainted value may have been stored.
// - When control flow depended on an undefined flag (a jcc read it), the end
//   state is architecturally unknowable: only the outcome kind is compared
//   unless `strict`.
//
// Memory
// - Every writable region of tc.mem, over the union of the pages both sides
//   report (a page absent from RunResult::pages holds its initial contents).
//   One Mismatch per run of consecutive differing bytes, field
//   "mem[0x20000010]", values as hex byte strings ("00ff..."). Values longer
//   than kMaxMemValueBytes are cut and end in "...": the store and reports
//   keep the whole case, so the full bytes can always be recomputed.
//
// Expectations (CompareExpect)
// - Only what tc.expect lists. Outcome: the kind; for a fault the vector, and
//   error code / address only when the expectation gives them (and the engine
//   observes them). Registers: masked by the register mask; RFLAGS per flag,
//   masked by the undefined flags at the end (same analysis) unless `strict`.
//   A listed register is compared even when tainted: whoever wrote the
//   expectation asked for it. Memory: the listed byte ranges, runs as above.
// - When the engine did not complete (timeout, crash, unsupported) and the
//   expectation does not ask for that outcome, an outcome Mismatch is
//   reported (expected "completed" when no outcome is listed) and nothing
//   else is checked.
//
// Undefined flags and taint (AnalyzeUndefined)
// - The code is decoded with Zydis; per instruction, its flag metadata
//   (tested / modified / set_0 / set_1 / undefined) and operand actions give
//   what it reads and writes. The state tracked is: undefined flags, tainted
//   GPRs and XMM registers, "memory tainted", "control tainted".
// - An instruction is tainted when it tests an undefined flag, reads a
//   tainted register (including address registers), or loads memory after a
//   tainted store. A tainted instruction makes everything it writes undefined:
//   registers (tainted), flags it modifies (undefined; set_0/set_1 flags stay
//   defined, they are constants), memory (memory tainted). A tainted
//   conditional branch, loop or indirect jump taints control.
//   Zeroing idioms (xor/sub/pxor... of a register with itself) do not read.
// - Untainted writes clear: a flag written with a defined value becomes
//   defined, a GPR fully written (64-bit, or 32-bit which zero-extends)
//   becomes clean, an XMM register written whole (pure write of 128 bits or
//   more) becomes clean. Partial writes merge and keep the old taint.
// - Straight-line code is walked in order up to `end_rip` (that instruction
//   is not executed: the run halted or faulted there; after a trap, end_rip
//   is past the trapping instruction so it counts as executed). Code with
//   direct branches (jcc, jmp, call, loop with static targets) is analysed as
//   a forward may-dataflow over the control-flow graph to a fixpoint, so the
//   state at end_rip is the union over every path reaching it. Code with an
//   indirect transfer (ret, jmp/call through a register or memory) has
//   unknown paths: then every instruction is assumed to run in any order and
//   any number of times (union of all undefined flags, taint through any
//   reader, nothing is ever cleared). Both are conservative: they can only
//   mask more than an exact trace would, never less.
// - Zydis metadata is taken as it is. It calls some flags undefined where the
//   SDM is more precise (e.g. OF of shifts by 1); that errs on the side of
//   masking. One exception: a shift or rotate by an immediate count that is 0
//   modulo the operand size writes no flag (Zydis says it writes them, which
//   would make an earlier instruction's undefined flags look defined), and
//   one by CL makes no undefined flag defined.
//
// Attribution (Mismatch::insn_index / insn_form)
// - Register, flag and memory mismatches name the last instruction, in decode
//   order and before the end rip (of `a`, or of the engine for expectations),
//   that writes that field. Outcome and rip mismatches name the instruction
//   at the end rip of the faulting side (for a trap, the one before it).
//   insn_index is the index in Disassemble()'s listing.
//
// Signatures
// - "form|kind|engineA~engineB" with the engine names sorted, so that a
//   divergence between two engines collapses to one signature whichever was
//   the reference. Flag mismatches name the flag in the kind ("flags.ZF"):
//   imul's ZF and OF are different root causes. Outcome mismatches name the
//   pair of outcome kinds ("outcome.#GP->#PF", "outcome.halt->#UD"), never
//   the error code or the address, which vary from case to case; for the
//   same kind on both sides, which detail differs ("#PF->#PF(err)").
#include "harness/compare/compare.h"

#include <Zydis/Zydis.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>

#include "engines/x86/layout.h"
#include "engines/x86/zydis_decoder.h"

namespace cpudiff {

// Exposed for tests and reports (declared here rather than in compare.h so
// that compare.h consumers do not need Zydis's headers).
std::string InstructionForm(const ZydisDecodedInstruction& in, const ZydisDecodedOperand* ops);

namespace {

constexpr size_t kMaxMemValueBytes = 256;

// The flags that Zydis metadata is taken for. System flags (IF, TF, RF, NT,
// IOPL...) written by int3/syscall delivery are not user state.
constexpr uint32_t kTrackedFlags = static_cast<uint32_t>(kSettableFlags);

struct FlagName {
  uint64_t bit;
  const char* name;
};
constexpr FlagName kFlagNames[] = {
    {kFlagCF, "CF"}, {kFlagFixed1, "bit1"}, {kFlagPF, "PF"}, {kFlagAF, "AF"}, {kFlagZF, "ZF"},
    {kFlagSF, "SF"}, {kFlagTF, "TF"},       {kFlagIF, "IF"}, {kFlagDF, "DF"}, {kFlagOF, "OF"},
    {kFlagRF, "RF"}, {kFlagAC, "AC"},       {kFlagID, "ID"},
};

std::string FlagField(uint64_t bit) {
  for (const FlagName& f : kFlagNames) {
    if (f.bit == bit) return std::string("rflags.") + f.name;
  }
  int n = __builtin_ctzll(bit);
  return "rflags.bit" + std::to_string(n);
}

const ZydisDecoder& Decoder() { return LongModeDecoder(); }

const ZydisFormatter& Formatter() {
  static const ZydisFormatter formatter = [] {
    ZydisFormatter f;
    ZydisFormatterInit(&f, ZYDIS_FORMATTER_STYLE_INTEL);
    return f;
  }();
  return formatter;
}

// The bytes that are executed: the code and the HLT the loader appends.
std::vector<uint8_t> ExecutedBytes(const TestCase& tc) {
  std::vector<uint8_t> b = tc.code;
  b.push_back(kHltByte);
  return b;
}

bool Decode(const std::vector<uint8_t>& bytes, uint64_t off, ZydisDecodedInstruction* in,
            ZydisDecodedOperand* ops) {
  if (off >= bytes.size()) return false;
  return ZYAN_SUCCESS(
      ZydisDecoderDecodeFull(&Decoder(), bytes.data() + off, bytes.size() - off, in, ops));
}

// GPR index (x86 encoding order) of a Zydis register, or -1.
int GprIndex(ZydisRegister r) {
  switch (ZydisRegisterGetClass(r)) {
    case ZYDIS_REGCLASS_GPR8:
    case ZYDIS_REGCLASS_GPR16:
    case ZYDIS_REGCLASS_GPR32:
    case ZYDIS_REGCLASS_GPR64: {
      ZydisRegister full = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r);
      int id = ZydisRegisterGetId(full);
      return id >= 0 && id < 16 ? id : -1;
    }
    default:
      return -1;
  }
}

int XmmIndex(ZydisRegister r) {
  switch (ZydisRegisterGetClass(r)) {
    case ZYDIS_REGCLASS_XMM:
    case ZYDIS_REGCLASS_YMM:
    case ZYDIS_REGCLASS_ZMM: {
      int id = ZydisRegisterGetId(r);
      return id >= 0 && id < 16 ? id : -1;
    }
    default:
      return -1;
  }
}

enum class Flow : uint8_t {
  kNext,      // falls through
  kCond,      // falls through or goes to target
  kJump,      // goes to target
  kIndirect,  // unknown target (ret, jmp/call through register or memory)
  kStop,      // ends the run (hlt, ud2, undecodable bytes)
};

// What one instruction reads and writes, in the compact form the analysis
// needs (decoded Zydis structures are ~1 KiB each; code may be 1 MiB).
struct Effects {
  uint64_t addr = 0;
  uint8_t length = 1;
  bool valid = false;
  int index = -1;  // index in decode order (Disassemble), -1 off that order
  uint32_t flags_tested = 0;
  uint32_t flags_modified = 0;  // written with a value that depends on inputs
  uint32_t flags_const = 0;     // set_0 | set_1
  uint32_t flags_undef = 0;
  // The instruction may leave every flag as it was (a shift or rotate by a
  // count in CL, which is 0 modulo the operand size at run time or not):
  // it makes no undefined flag defined.
  bool flags_may_keep = false;
  uint16_t gpr_read = 0, gpr_write = 0, gpr_full_write = 0;
  uint16_t xmm_read = 0, xmm_write = 0, xmm_full_write = 0;
  bool mem_read = false, mem_write = false;
  bool writes_mxcsr = false, writes_segbase = false;
  bool zero_idiom = false;
  bool taints_control = false;  // conditional or indirect transfer
  Flow flow = Flow::kNext;
  uint64_t target = 0;

  uint32_t FlagsWritten() const { return flags_modified | flags_const | flags_undef; }
  // The flags the instruction's form can write, also when this instance
  // writes none (a shift by 0): a flag that differs after such a shift is
  // blamed on it, since an engine that wrote the flag there is the cause.
  uint32_t flags_listed = 0;
};

bool IsZeroIdiom(const ZydisDecodedInstruction& in, const ZydisDecodedOperand* ops) {
  switch (in.mnemonic) {
    case ZYDIS_MNEMONIC_XOR:
    case ZYDIS_MNEMONIC_SUB:
    case ZYDIS_MNEMONIC_PXOR:
    case ZYDIS_MNEMONIC_XORPS:
    case ZYDIS_MNEMONIC_XORPD:
    case ZYDIS_MNEMONIC_PSUBB:
    case ZYDIS_MNEMONIC_PSUBW:
    case ZYDIS_MNEMONIC_PSUBD:
    case ZYDIS_MNEMONIC_PSUBQ:
    case ZYDIS_MNEMONIC_VPXOR:
    case ZYDIS_MNEMONIC_VXORPS:
    case ZYDIS_MNEMONIC_VXORPD:
      break;
    default:
      return false;
  }
  // The explicit register sources: the last two visible operands.
  int n = in.operand_count_visible;
  if (n < 2) return false;
  const ZydisDecodedOperand& x = ops[n - 2];
  const ZydisDecodedOperand& y = ops[n - 1];
  return x.type == ZYDIS_OPERAND_TYPE_REGISTER && y.type == ZYDIS_OPERAND_TYPE_REGISTER &&
         x.reg.value == y.reg.value;
}

Effects ComputeEffects(uint64_t addr, const ZydisDecodedInstruction& in,
                       const ZydisDecodedOperand* ops) {
  Effects e;
  e.addr = addr;
  e.length = in.length;
  e.valid = true;
  const bool system = in.meta.category == ZYDIS_CATEGORY_INTERRUPT ||
                      in.meta.category == ZYDIS_CATEGORY_SYSCALL ||
                      in.meta.category == ZYDIS_CATEGORY_SYSRET;
  if (in.cpu_flags != nullptr && !system) {
    e.flags_tested = in.cpu_flags->tested & kTrackedFlags;
    e.flags_modified = in.cpu_flags->modified & kTrackedFlags;
    e.flags_const = (in.cpu_flags->set_0 | in.cpu_flags->set_1) & kTrackedFlags;
    e.flags_undef = in.cpu_flags->undefined & kTrackedFlags;
    e.flags_modified &= ~(e.flags_const | e.flags_undef);
  }
  e.flags_listed = e.FlagsWritten();
  switch (in.mnemonic) {
    case ZYDIS_MNEMONIC_SHL:
    case ZYDIS_MNEMONIC_SHR:
    case ZYDIS_MNEMONIC_SAR:
    case ZYDIS_MNEMONIC_ROL:
    case ZYDIS_MNEMONIC_ROR:
    case ZYDIS_MNEMONIC_RCL:
    case ZYDIS_MNEMONIC_RCR:
    case ZYDIS_MNEMONIC_SHLD:
    case ZYDIS_MNEMONIC_SHRD: {
      // A shift or rotate whose count is 0 modulo 32 (64 for 64-bit
      // operands) changes no flag (SDM), but Zydis lists the flags as
      // written: then an earlier instruction's undefined flags would be
      // taken as defined (seen on this AMD host: imul rdx, rdi / sar r13,
      // 0x40 keeps imul's undefined SF/ZF/PF, which silicon and the
      // emulators set differently).
      const ZydisDecodedOperand& count = ops[in.operand_count_visible - 1];
      if (count.type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
        const uint64_t mask = in.operand_width == 64 ? 63 : 31;
        if ((count.imm.value.u & mask) == 0) {
          e.flags_modified = e.flags_const = e.flags_undef = 0;
        }
      } else if (count.type == ZYDIS_OPERAND_TYPE_REGISTER &&
                 count.reg.value == ZYDIS_REGISTER_CL) {
        e.flags_may_keep = true;
      }
      break;
    }
    default:
      break;
  }
  e.zero_idiom = IsZeroIdiom(in, ops);
  for (int i = 0; i < in.operand_count; ++i) {
    const ZydisDecodedOperand& op = ops[i];
    const bool reads = op.actions & ZYDIS_OPERAND_ACTION_MASK_READ;
    const bool writes = op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE;
    if (op.type == ZYDIS_OPERAND_TYPE_REGISTER) {
      const ZydisRegister r = op.reg.value;
      if (int g = GprIndex(r); g >= 0) {
        const uint16_t bit = static_cast<uint16_t>(1u << g);
        if (reads) e.gpr_read |= bit;
        if (writes) e.gpr_write |= bit;
        // A pure write of 64 bits, or of 32 bits which zero-extends.
        const ZydisRegisterClass cls = ZydisRegisterGetClass(r);
        if (op.actions == ZYDIS_OPERAND_ACTION_WRITE &&
            (cls == ZYDIS_REGCLASS_GPR64 || cls == ZYDIS_REGCLASS_GPR32)) {
          e.gpr_full_write |= bit;
        }
      } else if (int x = XmmIndex(r); x >= 0) {
        const uint16_t bit = static_cast<uint16_t>(1u << x);
        if (reads) e.xmm_read |= bit;
        if (writes) e.xmm_write |= bit;
        if (op.actions == ZYDIS_OPERAND_ACTION_WRITE && op.size >= 128) e.xmm_full_write |= bit;
      } else if (r == ZYDIS_REGISTER_MXCSR && writes) {
        e.writes_mxcsr = true;
      }
    } else if (op.type == ZYDIS_OPERAND_TYPE_MEMORY) {
      // Address registers are read whatever the access is.
      if (int g = GprIndex(op.mem.base); g >= 0) e.gpr_read |= static_cast<uint16_t>(1u << g);
      if (int g = GprIndex(op.mem.index); g >= 0) e.gpr_read |= static_cast<uint16_t>(1u << g);
      if (op.mem.type == ZYDIS_MEMOP_TYPE_MEM) {
        if (reads) e.mem_read = true;
        if (writes) e.mem_write = true;
      }
    }
  }
  if (e.zero_idiom && ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER) {
    // The destination gets a constant whatever it held: a full write.
    const ZydisRegisterClass cls = ZydisRegisterGetClass(ops[0].reg.value);
    if (int g = GprIndex(ops[0].reg.value);
        g >= 0 && (cls == ZYDIS_REGCLASS_GPR64 || cls == ZYDIS_REGCLASS_GPR32)) {
      e.gpr_full_write |= static_cast<uint16_t>(1u << g);
    } else if (int x = XmmIndex(ops[0].reg.value); x >= 0) {
      e.xmm_full_write |= static_cast<uint16_t>(1u << x);
    }
  }
  if (in.mnemonic == ZYDIS_MNEMONIC_WRFSBASE || in.mnemonic == ZYDIS_MNEMONIC_WRGSBASE) {
    e.writes_segbase = true;
  }

  // Control flow.
  const bool relative = in.attributes & ZYDIS_ATTRIB_IS_RELATIVE;
  auto direct_target = [&](uint64_t* t) {
    for (int i = 0; i < in.operand_count_visible; ++i) {
      if (ops[i].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && ops[i].imm.is_relative) {
        ZyanU64 abs = 0;
        if (ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&in, &ops[i], addr, &abs))) {
          *t = abs;
          return true;
        }
      }
    }
    return false;
  };
  switch (in.meta.category) {
    case ZYDIS_CATEGORY_COND_BR:
      e.taints_control = true;
      e.flow = relative && direct_target(&e.target) ? Flow::kCond : Flow::kIndirect;
      break;
    case ZYDIS_CATEGORY_UNCOND_BR:
    case ZYDIS_CATEGORY_CALL:
      if (relative && direct_target(&e.target)) {
        // A call's return comes back through a ret, which is indirect.
        e.flow = Flow::kJump;
      } else {
        e.flow = Flow::kIndirect;
        e.taints_control = true;
      }
      break;
    case ZYDIS_CATEGORY_RET:
      e.flow = Flow::kIndirect;
      e.taints_control = true;
      break;
    default:
      if (in.mnemonic == ZYDIS_MNEMONIC_HLT || in.mnemonic == ZYDIS_MNEMONIC_UD0 ||
          in.mnemonic == ZYDIS_MNEMONIC_UD1 || in.mnemonic == ZYDIS_MNEMONIC_UD2) {
        e.flow = Flow::kStop;
      }
      // int3, int n, syscall end the run with rip past them; letting them
      // fall through makes the state after them available at that rip.
      break;
  }
  return e;
}

// The instruction stream of a case: a linear sweep from code_addr (the decode
// order of Disassemble), plus instructions decoded on demand at branch
// targets and entry points that fall inside other instructions. Built once
// per comparison that found a difference, shared by the analysis and the
// attribution.
class Program {
 public:
  explicit Program(const TestCase& tc)
      : bytes_(ExecutedBytes(tc)),
        base_(tc.code_addr),
        code_size_(tc.code.size()),
        by_offset_(bytes_.size(), -1) {
    // Linear sweep over the code and the appended HLT, so that a run that
    // falls off the end has a node to end at.
    insns_.reserve(bytes_.size() / 3 + 16);
    linear_.reserve(bytes_.size() / 3 + 16);
    uint64_t off = 0;
    while (off < bytes_.size()) {
      int id = DecodeAt(base_ + off);
      Effects& e = insns_[id];
      e.index = static_cast<int>(linear_.size());
      linear_.push_back(id);
      off += e.valid ? e.length : 1;
    }
  }

  bool InCode(uint64_t addr) const { return addr >= base_ && addr - base_ < bytes_.size(); }
  // Node id for an address, decoding it if needed; -1 outside the code.
  int Node(uint64_t addr) {
    if (!InCode(addr)) return -1;
    int id = by_offset_[addr - base_];
    return id >= 0 ? id : DecodeAt(addr);
  }
  int Find(uint64_t addr) const { return InCode(addr) ? by_offset_[addr - base_] : -1; }
  const Effects& At(int id) const { return insns_[id]; }
  size_t size() const { return insns_.size(); }
  // Node ids in decode order, the appended HLT included.
  const std::vector<int>& linear() const { return linear_; }
  uint64_t base() const { return base_; }
  uint64_t code_end() const { return base_ + code_size_; }

  // The form of the instruction at `addr` (decoded again: keeping decoded
  // Zydis structures for every instruction would cost ~1 KiB each).
  std::string FormAt(uint64_t addr) const {
    ZydisDecodedInstruction in;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    if (!InCode(addr) || !Decode(bytes_, addr - base_, &in, ops)) return {};
    return InstructionForm(in, ops);
  }

 private:
  int DecodeAt(uint64_t addr) {
    ZydisDecodedInstruction in;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    Effects e;
    if (Decode(bytes_, addr - base_, &in, ops)) {
      e = ComputeEffects(addr, in, ops);
    } else {
      // Undecodable: the CPU raises #UD here (or a #PF past the end).
      e.addr = addr;
      e.flow = Flow::kStop;
    }
    int id = static_cast<int>(insns_.size());
    insns_.push_back(e);
    by_offset_[addr - base_] = id;
    return id;
  }

  std::vector<uint8_t> bytes_;
  uint64_t base_;
  uint64_t code_size_;
  std::vector<Effects> insns_;
  std::vector<int> linear_;
  std::vector<int> by_offset_;  // node id of the instruction starting there
};

struct Taint {
  uint32_t flags = 0;
  uint16_t gpr = 0;
  uint16_t xmm = 0;
  bool mem = false;
  bool control = false;

  bool Join(const Taint& o) {
    Taint before = *this;
    flags |= o.flags;
    gpr |= o.gpr;
    xmm |= o.xmm;
    mem |= o.mem;
    control |= o.control;
    return before.flags != flags || before.gpr != gpr || before.xmm != xmm || before.mem != mem ||
           before.control != control;
  }
};

// The state after executing `e` from state `s`. `clear` is false when the
// order of execution is unknown: nothing is ever made defined again then.
Taint Transfer(Taint s, const Effects& e, bool clear) {
  if (!e.valid) return s;
  bool tainted = (e.flags_tested & s.flags) != 0 || (e.mem_read && s.mem);
  if (!e.zero_idiom) {
    tainted = tainted || (e.gpr_read & s.gpr) != 0 || (e.xmm_read & s.xmm) != 0;
  }
  if (tainted && e.taints_control) s.control = true;
  if (clear) {
    if (!e.flags_may_keep) s.flags &= ~(e.flags_modified | e.flags_const);
    if (!tainted) {
      s.gpr &= static_cast<uint16_t>(~e.gpr_full_write);
      s.xmm &= static_cast<uint16_t>(~e.xmm_full_write);
    }
  }
  s.flags |= e.flags_undef;
  if (tainted) {
    s.flags |= e.flags_modified;
    s.gpr |= e.gpr_write;
    s.xmm |= e.xmm_write;
    if (e.mem_write) s.mem = true;
  }
  return s;
}

Taint Analyze(const TestCase& tc, Program& prog, uint64_t end_rip) {
  // Hand-built cases may leave rip at 0; the corpus reader sets code_addr.
  const uint64_t entry = tc.init.rip != 0 ? tc.init.rip : tc.code_addr;

  // Discover the reachable graph from the entry.
  // At most two successors (fall-through and target); -1 = none.
  std::vector<std::array<int, 2>> succ;
  std::vector<int> work;
  std::vector<bool> seen;
  bool indirect = false;
  auto visit = [&](uint64_t addr) {
    int id = prog.Node(addr);
    if (id < 0) return -1;
    if (static_cast<size_t>(id) >= seen.size()) seen.resize(prog.size(), false);
    if (!seen[id]) {
      seen[id] = true;
      work.push_back(id);
    }
    return id;
  };
  const int entry_id = visit(entry);
  while (!work.empty()) {
    int id = work.back();
    work.pop_back();
    const Effects e = prog.At(id);  // copy: visit() may grow the table
    std::array<int, 2> s = {-1, -1};
    int ns = 0;
    auto add = [&](uint64_t a) {
      int t = visit(a);
      if (t >= 0) s[ns++] = t;
    };
    switch (e.flow) {
      case Flow::kNext:
        add(e.addr + e.length);
        break;
      case Flow::kCond:
        add(e.addr + e.length);
        add(e.target);
        break;
      case Flow::kJump:
        add(e.target);
        break;
      case Flow::kIndirect:
        indirect = true;
        break;
      case Flow::kStop:
        break;
    }
    if (succ.size() < prog.size()) succ.resize(prog.size(), {-1, -1});
    succ[id] = s;
  }
  succ.resize(prog.size(), {-1, -1});

  if (entry_id < 0 || indirect) {
    // Unknown paths: any instruction of the code may run, in any order, any
    // number of times. Join everything to a fixpoint without clearing.
    Taint all;
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < prog.size(); ++i) {
        changed |= all.Join(Transfer(all, prog.At(static_cast<int>(i)), /*clear=*/false));
      }
    }
    return all;
  }

  // Forward may-analysis: in[n] = join of out[p] over predecessors p.
  std::vector<Taint> in(prog.size());
  std::vector<bool> queued(prog.size(), false);
  work.assign(1, entry_id);
  queued[entry_id] = true;
  // Every reachable node is processed at least once, even when its input
  // stays empty; after that only when its input grows.
  std::vector<bool> processed(prog.size(), false);
  while (!work.empty()) {
    int id = work.back();
    work.pop_back();
    queued[id] = false;
    processed[id] = true;
    Taint out = Transfer(in[id], prog.At(id), /*clear=*/true);
    for (int t : succ[id]) {
      if (t < 0) continue;
      bool grew = in[t].Join(out);
      if ((grew || !processed[t]) && !queued[t]) {
        queued[t] = true;
        work.push_back(t);
      }
    }
  }
  int end_id = prog.Find(end_rip);
  if (end_id >= 0 && static_cast<size_t>(end_id) < seen.size() && seen[end_id]) return in[end_id];
  // The run ended somewhere the analysis did not reach (outside the code or
  // in the middle of an instruction): anything reachable may have run.
  Taint all;
  for (size_t i = 0; i < prog.size(); ++i) {
    if (i < seen.size() && seen[i]) {
      all.Join(in[i]);
      all.Join(Transfer(in[i], prog.At(static_cast<int>(i)), true));
    }
  }
  return all;
}

// ---- Attribution -----------------------------------------------------------

// Attributes mismatches to instructions of the decode-order listing.
class Attributor {
 public:
  Attributor(const Program& prog, uint64_t end_rip) : prog_(prog), end_rip_(end_rip) {}

  // The last instruction of the listing before the end rip that satisfies
  // `writes` (all of them when the run ended outside the code).
  template <typename Pred>
  void LastWriter(Pred writes, Mismatch* m) const {
    const bool in_code = end_rip_ >= prog_.base() && end_rip_ <= prog_.code_end();
    const auto& lin = prog_.linear();
    for (size_t i = lin.size(); i-- > 0;) {
      const Effects& e = prog_.At(lin[i]);
      if (!e.valid || e.addr >= prog_.code_end()) continue;
      if (in_code && e.addr >= end_rip_) continue;
      if (writes(e)) {
        Set(e, m);
        return;
      }
    }
  }

  // The instruction at `rip`, or the one ending there (traps report the rip
  // after the instruction).
  void AtOrBefore(uint64_t rip, Mismatch* m) const {
    int id = prog_.Find(rip);
    if (id >= 0 && prog_.At(id).index >= 0 && rip < prog_.code_end()) {
      Set(prog_.At(id), m);
      return;
    }
    for (int lid : prog_.linear()) {
      const Effects& e = prog_.At(lid);
      if (e.valid && e.addr < prog_.code_end() && e.addr + e.length == rip) {
        Set(e, m);
        return;
      }
    }
  }

 private:
  void Set(const Effects& e, Mismatch* m) const {
    m->insn_index = e.index;
    m->insn_form = prog_.FormAt(e.addr);
  }
  const Program& prog_;
  uint64_t end_rip_;
};

// The rip of the side whose end names the interesting instruction: a
// faulting side first (the reference when both fault), else the reference.
uint64_t OutcomeRip(const RunResult& a, const RunResult& b) {
  if (a.outcome.kind != OutcomeKind::kFault && b.outcome.kind == OutcomeKind::kFault) {
    return b.state.rip;
  }
  return a.state.rip;
}

void Attribute(const Attributor& at, uint64_t outcome_rip, Mismatch* m) {
  switch (m->kind) {
    case FieldKind::kOutcome:
    case FieldKind::kRip:
      at.AtOrBefore(outcome_rip, m);
      break;
    case FieldKind::kGpr: {
      int reg = FindRegister(m->field);
      at.LastWriter([reg](const Effects& e) { return (e.gpr_write >> reg) & 1; }, m);
      break;
    }
    case FieldKind::kXmm: {
      int x = FindRegister(m->field) - kRegXmm0;
      at.LastWriter([x](const Effects& e) { return (e.xmm_write >> x) & 1; }, m);
      break;
    }
    case FieldKind::kFlags: {
      uint64_t bit = 0;
      for (const FlagName& f : kFlagNames) {
        if (m->field == std::string("rflags.") + f.name) bit = f.bit;
      }
      at.LastWriter([bit](const Effects& e) { return (e.flags_listed & bit) != 0; }, m);
      break;
    }
    case FieldKind::kMxcsr:
      // Zydis lists MXCSR only for ldmxcsr-style writes; SSE arithmetic sets
      // its exception flags without saying so, so any XMM writer counts.
      at.LastWriter([](const Effects& e) { return e.writes_mxcsr || e.xmm_write != 0; }, m);
      break;
    case FieldKind::kSegBase:
      at.LastWriter([](const Effects& e) { return e.writes_segbase; }, m);
      break;
    case FieldKind::kMemory:
      at.LastWriter([](const Effects& e) { return e.mem_write; }, m);
      break;
  }
}

void AttributeAll(const Program& prog, uint64_t end_rip, uint64_t outcome_rip,
                  std::vector<Mismatch>* out) {
  if (out->empty()) return;
  Attributor at(prog, end_rip);
  for (Mismatch& m : *out) Attribute(at, outcome_rip, &m);
}

// ---- Formatting helpers -------------------------------------------------------

// A memory value for a Mismatch: hex bytes, cut after kMaxMemValueBytes.
std::string MemValue(const std::vector<uint8_t>& b) {
  const size_t n = std::min(b.size(), kMaxMemValueBytes);
  return HexBytes(std::span(b).first(n)) + (b.size() > n ? "..." : "");
}

std::string MemField(uint64_t addr) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "mem[0x%llx]", static_cast<unsigned long long>(addr));
  return buf;
}

FieldKind KindOfRegister(int reg) {
  switch (Registers()[reg].kind) {
    case RegKind::kGpr:
      return FieldKind::kGpr;
    case RegKind::kRip:
      return FieldKind::kRip;
    case RegKind::kRflags:
      return FieldKind::kFlags;
    case RegKind::kXmm:
      return FieldKind::kXmm;
    case RegKind::kMxcsr:
      return FieldKind::kMxcsr;
    case RegKind::kSegBase:
      return FieldKind::kSegBase;
  }
  return FieldKind::kGpr;
}

RegValue Masked(RegValue v, uint64_t mask) { return {v.lo & mask, v.hi & mask}; }

void AddFlagMismatches(uint64_t fa, uint64_t fb, uint64_t mask, std::vector<Mismatch>* out) {
  uint64_t diff = (fa ^ fb) & mask;
  while (diff != 0) {
    uint64_t bit = diff & -diff;
    diff &= diff - 1;
    out->push_back(
        {FieldKind::kFlags, FlagField(bit), (fa & bit) ? "1" : "0", (fb & bit) ? "1" : "0"});
  }
}

bool Completed(OutcomeKind k) {
  return k == OutcomeKind::kHalt || k == OutcomeKind::kFault || k == OutcomeKind::kSyscall;
}

bool OutcomesAgree(const Outcome& a, const Outcome& b, bool error_code, bool fault_addr) {
  if (a.kind != b.kind) return false;
  if (a.kind != OutcomeKind::kFault) return true;
  if (a.vector != b.vector) return false;
  if (error_code && (a.has_error_code != b.has_error_code ||
                     (a.has_error_code && a.error_code != b.error_code))) {
    return false;
  }
  if (fault_addr && (a.has_addr != b.has_addr || (a.has_addr && a.addr != b.addr))) return false;
  return true;
}

// Bytes of a page at the end of a run: the reported image, else initial.
const uint8_t* PageBytes(const RunResult& r, const MemRegion& region, uint64_t page,
                         std::array<uint8_t, kPageSize>* scratch) {
  auto it = std::lower_bound(r.pages.begin(), r.pages.end(), page,
                             [](const PageImage& p, uint64_t a) { return p.addr < a; });
  if (it != r.pages.end() && it->addr == page) return it->bytes.data();
  for (uint64_t i = 0; i < kPageSize; ++i) (*scratch)[i] = region.InitialByte(page + i);
  return scratch->data();
}

const MemRegion* WritableRegionOf(const TestCase& tc, uint64_t addr) {
  for (const MemRegion& m : tc.mem) {
    if ((m.perm & kPermW) && m.Contains(addr)) return &m;
  }
  return nullptr;
}

// Runs of differing bytes over the pages either side reports.
void CompareMemory(const TestCase& tc, const RunResult& a, const RunResult& b,
                   std::vector<Mismatch>* out) {
  // Fast path: both report the same pages with the same bytes.
  if (a.pages.size() == b.pages.size()) {
    bool same = true;
    for (size_t i = 0; same && i < a.pages.size(); ++i) {
      same = a.pages[i].addr == b.pages[i].addr && a.pages[i].bytes == b.pages[i].bytes;
    }
    if (same) return;
  }
  std::vector<uint64_t> pages;
  pages.reserve(a.pages.size() + b.pages.size());
  for (const PageImage& p : a.pages) pages.push_back(p.addr);
  for (const PageImage& p : b.pages) pages.push_back(p.addr);
  std::sort(pages.begin(), pages.end());
  pages.erase(std::unique(pages.begin(), pages.end()), pages.end());

  std::array<uint8_t, kPageSize> sa, sb;
  uint64_t run_start = 0, run_end = 0;  // [start, end) of the open run
  std::vector<uint8_t> va, vb;
  auto flush = [&] {
    if (va.empty()) return;
    out->push_back({FieldKind::kMemory, MemField(run_start), MemValue(va), MemValue(vb)});
    va.clear();
    vb.clear();
  };
  for (uint64_t page : pages) {
    const MemRegion* region = WritableRegionOf(tc, page);
    if (region == nullptr) continue;
    const uint8_t* pa = PageBytes(a, *region, page, &sa);
    const uint8_t* pb = PageBytes(b, *region, page, &sb);
    if (std::memcmp(pa, pb, kPageSize) == 0) continue;
    for (uint64_t i = 0; i < kPageSize; ++i) {
      if (pa[i] == pb[i]) continue;
      uint64_t addr = page + i;
      if (va.empty() || addr != run_end) {
        flush();
        run_start = addr;
      }
      va.push_back(pa[i]);
      vb.push_back(pb[i]);
      run_end = addr + 1;
    }
  }
  flush();
}

}  // namespace

std::string_view FieldKindName(FieldKind k) {
  switch (k) {
    case FieldKind::kOutcome:
      return "outcome";
    case FieldKind::kGpr:
      return "gpr";
    case FieldKind::kRip:
      return "rip";
    case FieldKind::kFlags:
      return "flags";
    case FieldKind::kXmm:
      return "xmm";
    case FieldKind::kMxcsr:
      return "mxcsr";
    case FieldKind::kSegBase:
      return "segbase";
    case FieldKind::kMemory:
      return "memory";
  }
  return "?";
}

std::string InstructionForm(const ZydisDecodedInstruction& in, const ZydisDecodedOperand* ops) {
  std::string s;
  if (in.attributes & ZYDIS_ATTRIB_HAS_LOCK) s += "lock ";
  if (in.attributes & ZYDIS_ATTRIB_HAS_REP) s += "rep ";
  if (in.attributes & ZYDIS_ATTRIB_HAS_REPE) s += "repe ";
  if (in.attributes & ZYDIS_ATTRIB_HAS_REPNE) s += "repne ";
  const char* mnem = ZydisMnemonicGetString(in.mnemonic);
  s += mnem != nullptr ? mnem : "?";
  bool first = true;
  int imm_seen = 0;  // explicit immediates map to raw.imm[] in order
  for (int i = 0; i < in.operand_count; ++i) {
    const ZydisDecodedOperand& op = ops[i];
    // Hidden operands (rflags, rsp of push...) are part of the mnemonic;
    // implicit ones are printed by name (shl r64, cl) since they are fixed.
    if (op.visibility == ZYDIS_OPERAND_VISIBILITY_HIDDEN) continue;
    const bool implicit = op.visibility == ZYDIS_OPERAND_VISIBILITY_IMPLICIT;
    std::string k;
    switch (op.type) {
      case ZYDIS_OPERAND_TYPE_REGISTER: {
        if (implicit) {
          k = ZydisRegisterGetString(op.reg.value);
          break;
        }
        switch (ZydisRegisterGetClass(op.reg.value)) {
          case ZYDIS_REGCLASS_GPR8:
            k = "r8";
            break;
          case ZYDIS_REGCLASS_GPR16:
            k = "r16";
            break;
          case ZYDIS_REGCLASS_GPR32:
            k = "r32";
            break;
          case ZYDIS_REGCLASS_GPR64:
            k = "r64";
            break;
          case ZYDIS_REGCLASS_XMM:
            k = "xmm";
            break;
          case ZYDIS_REGCLASS_YMM:
            k = "ymm";
            break;
          case ZYDIS_REGCLASS_ZMM:
            k = "zmm";
            break;
          case ZYDIS_REGCLASS_MMX:
            k = "mm";
            break;
          case ZYDIS_REGCLASS_X87:
            k = "st";
            break;
          case ZYDIS_REGCLASS_MASK:
            k = "k";
            break;
          case ZYDIS_REGCLASS_SEGMENT:
            k = "sreg";
            break;
          case ZYDIS_REGCLASS_CONTROL:
            k = "cr";
            break;
          case ZYDIS_REGCLASS_DEBUG:
            k = "dr";
            break;
          default:
            k = ZydisRegisterGetString(op.reg.value);
            break;
        }
        break;
      }
      case ZYDIS_OPERAND_TYPE_MEMORY:
        if (op.mem.type == ZYDIS_MEMOP_TYPE_AGEN) {
          k = "m";  // lea: an address, no access size
        } else {
          k = "m" + std::to_string(op.size);
        }
        break;
      case ZYDIS_OPERAND_TYPE_POINTER:
        k = "ptr";
        break;
      case ZYDIS_OPERAND_TYPE_IMMEDIATE: {
        if (implicit) {
          k = std::to_string(op.imm.value.u);
          break;
        }
        // The encoded width (imm8 of `add r64, imm8`), not the extended one.
        int bits = op.size;
        if (imm_seen < 2 && in.raw.imm[imm_seen].size != 0) bits = in.raw.imm[imm_seen].size;
        ++imm_seen;
        k = (op.imm.is_relative ? "rel" : "imm") + std::to_string(bits);
        break;
      }
      default:
        continue;
    }
    s += first ? " " : ", ";
    s += k;
    first = false;
  }
  return s;
}

namespace {
UndefinedState ToUndefinedState(const Taint& t) {
  UndefinedState u;
  u.rflags_mask = t.flags;
  u.gpr_mask = t.gpr;
  u.xmm_mask = t.xmm;
  u.memory_tainted = t.mem;
  u.control_tainted = t.control;
  return u;
}
}  // namespace

UndefinedState AnalyzeUndefined(const TestCase& tc, uint64_t end_rip) {
  Program prog(tc);
  return ToUndefinedState(Analyze(tc, prog, end_rip));
}

std::vector<Mismatch> CompareResults(const TestCase& tc, const RunResult& a, const RunResult& b,
                                     const CompareOptions& opts) {
  std::vector<Mismatch> out;
  const uint32_t both = opts.observes_a & opts.observes_b;

  if (!Completed(a.outcome.kind) || !Completed(b.outcome.kind)) {
    if (a.outcome.kind != b.outcome.kind) {
      out.push_back(
          {FieldKind::kOutcome, "outcome", FormatOutcome(a.outcome), FormatOutcome(b.outcome)});
      AttributeAll(Program(tc), a.state.rip, OutcomeRip(a, b), &out);
    }
    return out;
  }

  // Fast path: compare everything raw (under the register masks only). The
  // undefined-flag analysis can only hide differences, so it runs only when
  // there is one.
  const bool outcome_same =
      OutcomesAgree(a.outcome, b.outcome, both & kObserveErrorCode, both & kObserveFaultAddr);
  // CpuState is plain data: equal states need no walk of the table.
  bool regs_same = a.state == b.state;
  auto regs = Registers();
  if (!regs_same) {
    regs_same = true;
    for (int r = 0; r < kNumRegisters && regs_same; ++r) {
      if (!(both & ObserveBitForRegister(r))) continue;
      regs_same =
          Masked(ReadReg(a.state, r), regs[r].mask) == Masked(ReadReg(b.state, r), regs[r].mask);
    }
  }
  const bool observe_mem = both & kObserveMemory;
  if (outcome_same && regs_same) {
    if (!observe_mem) return out;
    CompareMemory(tc, a, b, &out);
    if (out.empty()) return out;
    out.clear();
  }

  Program prog(tc);
  const UndefinedState u =
      opts.strict ? UndefinedState{} : ToUndefinedState(Analyze(tc, prog, a.state.rip));
  if (!outcome_same) {
    // Different outcomes: registers and memory differ as a consequence (the
    // runs stopped at different places), so the outcome alone is the
    // divergence, one signature per root cause.
    out.push_back(
        {FieldKind::kOutcome, "outcome", FormatOutcome(a.outcome), FormatOutcome(b.outcome)});
    AttributeAll(prog, a.state.rip, OutcomeRip(a, b), &out);
    return out;
  }
  if (!u.control_tainted) {
    for (int r = 0; r < kNumRegisters; ++r) {
      if (!(both & ObserveBitForRegister(r))) continue;
      const RegInfo& info = regs[r];
      if (info.kind == RegKind::kRflags) {
        AddFlagMismatches(a.state.rflags, b.state.rflags, info.mask & ~u.rflags_mask, &out);
        continue;
      }
      if (info.kind == RegKind::kGpr && ((u.gpr_mask >> r) & 1)) continue;
      if (info.kind == RegKind::kXmm && ((u.xmm_mask >> (r - kRegXmm0)) & 1)) continue;
      RegValue va = Masked(ReadReg(a.state, r), info.mask);
      RegValue vb = Masked(ReadReg(b.state, r), info.mask);
      if (va != vb) {
        out.push_back(
            {KindOfRegister(r), std::string(info.name), FormatReg(r, va), FormatReg(r, vb)});
      }
    }
    if (observe_mem && !u.memory_tainted) CompareMemory(tc, a, b, &out);
  }
  AttributeAll(prog, a.state.rip, OutcomeRip(a, b), &out);
  return out;
}

std::vector<Mismatch> CompareExpect(const TestCase& tc, const RunResult& got,
                                    const CompareOptions& opts) {
  std::vector<Mismatch> out;
  if (!tc.expect) return out;
  const Expect& ex = *tc.expect;
  const uint32_t obs = opts.observes_b;

  if (!Completed(got.outcome.kind)) {
    if (!ex.outcome || ex.outcome->kind != got.outcome.kind) {
      out.push_back({FieldKind::kOutcome, "outcome",
                     ex.outcome ? FormatOutcome(ex.outcome->ToOutcome()) : "completed",
                     FormatOutcome(got.outcome)});
      AttributeAll(Program(tc), got.state.rip, got.state.rip, &out);
    }
    return out;
  }

  if (ex.outcome) {
    const ExpectOutcome& eo = *ex.outcome;
    bool same = eo.kind == got.outcome.kind;
    if (same && eo.kind == OutcomeKind::kFault) {
      same = eo.vector == got.outcome.vector;
      if (same && eo.error_code && (obs & kObserveErrorCode)) {
        same = got.outcome.has_error_code && got.outcome.error_code == *eo.error_code;
      }
      if (same && eo.addr && (obs & kObserveFaultAddr)) {
        same = got.outcome.has_addr && got.outcome.addr == *eo.addr;
      }
    }
    if (!same) {
      // As in CompareResults: a different outcome is the one divergence.
      out.push_back({FieldKind::kOutcome, "outcome", FormatOutcome(eo.ToOutcome()),
                     FormatOutcome(got.outcome)});
      AttributeAll(Program(tc), got.state.rip, got.state.rip, &out);
      return out;
    }
  }

  // Decoded only when something differs.
  std::optional<Program> prog;
  bool analyzed = false;
  UndefinedState u;
  auto regs = Registers();
  for (const auto& [r, want] : ex.regs) {
    if (r < 0 || r >= kNumRegisters || !(obs & ObserveBitForRegister(r))) continue;
    const RegInfo& info = regs[r];
    if (info.kind == RegKind::kRflags) {
      uint64_t mask = info.mask;
      if ((want.lo ^ got.state.rflags) & mask) {
        if (!opts.strict && !analyzed) {
          prog.emplace(tc);
          u = ToUndefinedState(Analyze(tc, *prog, got.state.rip));
          analyzed = true;
        }
        AddFlagMismatches(want.lo, got.state.rflags, mask & ~u.rflags_mask, &out);
      }
      continue;
    }
    RegValue va = Masked(want, info.mask);
    RegValue vb = Masked(ReadReg(got.state, r), info.mask);
    if (va != vb) {
      out.push_back(
          {KindOfRegister(r), std::string(info.name), FormatReg(r, va), FormatReg(r, vb)});
    }
  }

  if (obs & kObserveMemory) {
    for (const MemBytes& mb : ex.mem) {
      std::vector<uint8_t> va, vb;
      uint64_t run_start = 0;
      bool unmapped = false;
      auto flush = [&] {
        if (va.empty()) return;
        out.push_back({FieldKind::kMemory, MemField(run_start), MemValue(va),
                       unmapped ? "unmapped" : MemValue(vb)});
        va.clear();
        vb.clear();
        unmapped = false;
      };
      for (size_t i = 0; i < mb.data.size(); ++i) {
        uint64_t addr = mb.addr + i;
        uint8_t have = 0;
        bool mapped = FinalByte(tc, got, addr, &have);
        if (mapped && have == mb.data[i]) {
          flush();
          continue;
        }
        if (!va.empty() && unmapped != !mapped) flush();
        if (va.empty()) run_start = addr;
        unmapped = !mapped;
        va.push_back(mb.data[i]);
        vb.push_back(have);
      }
      flush();
    }
  }
  if (!out.empty()) {
    if (!prog) prog.emplace(tc);
    AttributeAll(*prog, got.state.rip, got.state.rip, &out);
  }
  return out;
}

std::vector<std::string> Disassemble(const TestCase& tc) {
  std::vector<std::string> lines;
  std::vector<uint8_t> bytes = ExecutedBytes(tc);
  uint64_t off = 0;
  while (off < tc.code.size()) {
    ZydisDecodedInstruction in;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    const uint64_t addr = tc.code_addr + off;
    char text[256];
    size_t len = 1;
    if (Decode(bytes, off, &in, ops)) {
      len = in.length;
      if (!ZYAN_SUCCESS(ZydisFormatterFormatInstruction(&Formatter(), &in, ops,
                                                        in.operand_count_visible, text, sizeof text,
                                                        addr, nullptr))) {
        std::snprintf(text, sizeof text, "(unformattable)");
      }
    } else {
      std::snprintf(text, sizeof text, "(bad)");
    }
    std::string hex;
    for (size_t i = 0; i < len; ++i) {
      char b[4];
      std::snprintf(b, sizeof b, i == 0 ? "%02x" : " %02x", bytes[off + i]);
      hex += b;
    }
    hex.resize(std::max<size_t>(16, hex.size() + 2), ' ');
    char head[32];
    std::snprintf(head, sizeof head, "0x%llx: ", static_cast<unsigned long long>(addr));
    lines.push_back(head + hex + text);
    off += len;
  }
  return lines;
}

std::string OutcomeLabel(std::string_view formatted) {
  size_t end = formatted.find_first_of("(:");
  return std::string(formatted.substr(0, end));
}

std::string Signature(const Mismatch& m, std::string_view engine_a, std::string_view engine_b) {
  std::string s = m.insn_form.empty() ? "?" : m.insn_form;
  s += '|';
  s += FieldKindName(m.kind);
  if (m.kind == FieldKind::kFlags && m.field.starts_with("rflags.")) {
    s += '.';
    s += m.field.substr(7);
  }
  const bool swap = engine_b < engine_a;
  if (m.kind == FieldKind::kOutcome) {
    // The pair of outcome kinds, in the order of the sorted engine names:
    // "#GP->#PF" whatever the error code and the address of this case.
    const std::string la = OutcomeLabel(swap ? m.b : m.a), lb = OutcomeLabel(swap ? m.a : m.b);
    s += '.' + la + "->" + lb;
    if (la == lb) {
      // The same kind: say which detail differs, not its values.
      auto detail = [](std::string_view f, std::string_view key) {
        size_t at = f.find(key);
        return at == std::string_view::npos ? std::string_view()
                                            : f.substr(at, f.find_first_of(",)", at) - at);
      };
      if (detail(m.a, "err=") != detail(m.b, "err=")) {
        s += "(err)";
      } else if (detail(m.a, "addr=") != detail(m.b, "addr=")) {
        s += "(addr)";
      }
    }
  }
  s += '|';
  if (swap) std::swap(engine_a, engine_b);
  s += engine_a;
  s += '~';
  s += engine_b;
  return s;
}

}  // namespace cpudiff

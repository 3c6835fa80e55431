// The translator: IR validator and printer, the passes, the emitted host
// code size, and whole runs (self-modifying code, precise faults in the
// middle of a block) in both block modes. Expected end states of the runs
// were recorded on the `native` engine (silicon, AMD EPYC).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "engines/engine.h"
#include "engines/translator/backend.h"
#include "engines/translator/frontend.h"
#include "engines/translator/passes.h"
#include "engines/translator/translator_engine.h"
#include "harness/compare/compare.h"
#include "harness/corpus/corpus.h"
#include "testgen/generate.h"

namespace cpudiff {
namespace {

using ir::Op;

TestCase Parse(const char* line) {
  TestCase tc;
  CorpusError err;
  EXPECT_TRUE(ParseCaseLine(line, "test", &tc, &err)) << err.ToString();
  return tc;
}

// Lifts the first block of a case.
jit::GuestBlock Lift(const TestCase& tc, uint32_t max_insns = 64) {
  emu::Memory mem;
  mem.Reset(tc);
  jit::GuestBlock gb;
  Outcome fault;
  EXPECT_TRUE(jit::LiftBlock(mem, tc.init.rip, max_insns, emu::Vendor::kAmd, &gb, &fault))
      << FormatOutcome(fault);
  return gb;
}

size_t CountOps(const ir::Block& b, Op op) {
  size_t n = 0;
  for (const ir::Inst& in : b.insts) n += in.op == op;
  return n;
}

TEST(TranslatorIr, ValidatorAcceptsEveryLiftedBlockOfTheSeedCorpusAndGeneratedCases) {
  std::vector<TestCase> cases;
  std::string dir = std::string(CPUDIFF_SOURCE_DIR) + "/corpus/seed";
  if (!std::filesystem::is_directory(dir)) GTEST_SKIP() << "no seed corpus at " << dir;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    ReadCorpusFile(e.path().string(), [&](TestCase&& tc) { cases.push_back(std::move(tc)); });
  }
  Rng rng(3);
  for (int i = 0; i < 500; ++i) cases.push_back(GenerateAluCase(rng, GenOptions{}));
  std::set<InsnId> lifted_forms;
  for (const TestCase& tc : cases) {
    emu::Memory mem;
    mem.Reset(tc);
    // Every instruction of the code as the start of a block, so that each
    // form is lifted on its own too.
    for (uint64_t rip = tc.code_addr; rip < tc.code_addr + tc.code.size(); ++rip) {
      jit::GuestBlock gb;
      Outcome fault;
      if (!jit::LiftBlock(mem, rip, 64, emu::Vendor::kAmd, &gb, &fault)) continue;
      ASSERT_EQ(ir::Validate(gb.ir), "") << tc.name << " at " << rip << "\n" << ir::Print(gb.ir);
      jit::Optimize(gb.ir);
      ASSERT_EQ(ir::Validate(gb.ir), "") << tc.name << " optimized\n" << ir::Print(gb.ir);
      for (const DecodedInsn& d : gb.decoded) {
        if (jit::IsLifted(d)) lifted_forms.insert(d.id);
      }
    }
  }
  // The lifted forms the corpus reaches (a floor, so that a frontend that
  // stops lifting shows up here).
  EXPECT_GE(lifted_forms.size(), 100u);
}

TEST(TranslatorIr, ValidatorRejectsMalformedBlocks) {
  ir::Block b;
  EXPECT_EQ(ir::Validate(b), "empty block");
  b.Emit(Op::InsnStart, ir::kNoValue, ir::kNoValue, ir::kNoValue, 0x1000, 1);
  ir::Value flag = b.Emit(Op::Const1, ir::kNoValue, ir::kNoValue, ir::kNoValue, 1);
  b.Emit(Op::SetReg, flag);  // a u1 where a u64 is expected
  b.Emit(Op::ExitHalt, ir::kNoValue, ir::kNoValue, ir::kNoValue, 0x1000);
  EXPECT_EQ(ir::Validate(b), "%2 SetReg: argument 1 is u1, expected u64");
  b.insts[2] = ir::Inst{Op::SetReg, {5, ir::kNoValue, ir::kNoValue}, 0, 0};
  EXPECT_EQ(ir::Validate(b), "%2 SetReg: argument %5 is not defined before use");
  b.insts[2] = ir::Inst{Op::ExitState};
  EXPECT_EQ(ir::Validate(b), "%2 ExitState: exit before the end");
  b.insts.pop_back();
  b.insts.pop_back();
  EXPECT_EQ(ir::Validate(b), "%1 Const1: block does not end with an exit");
  b.Emit(Op::ExitJump, ir::kNoValue, ir::kNoValue, ir::kNoValue, 0x2000);
  EXPECT_EQ(ir::Validate(b), "");
  b.insts[1].imm = 2;
  EXPECT_EQ(ir::Validate(b), "%1 Const1: bad immediate 0x2");
}

TEST(TranslatorIr, PrinterNamesStateAndImmediates) {
  // add rax, rbx; hlt
  jit::GuestBlock gb = Lift(Parse(R"({"v":1,"code":"4801d8"})"));
  jit::Optimize(gb.ir);
  EXPECT_EQ(ir::Print(gb.ir),
            "; guest 0x10000000 (3 bytes)\n"
            "  %1:u64 = GetReg rbx\n"
            "  %2:u64 = GetReg rax\n"
            "  %3:u64 = Add %2, %1\n"
            "  SetReg rax, %3\n"
            "  %5:u1 = CarryAdd %2, %1, %3, 0x8\n"
            "  SetFlag cf, %5\n"
            "  %7:u1 = OverflowAdd %2, %1, %3, 0x8\n"
            "  SetFlag of, %7\n"
            "  %9:u1 = AuxCarry %2, %1, %3\n"
            "  SetFlag af, %9\n"
            "  %11:u1 = IsZero %3, 0x8\n"
            "  SetFlag zf, %11\n"
            "  %13:u1 = SignOf %3, 0x8\n"
            "  SetFlag sf, %13\n"
            "  %15:u1 = ParityOf %3\n"
            "  SetFlag pf, %15\n"
            "; guest 0x10000003 (1 bytes)\n"
            "  ExitHalt 0x10000003\n");
}

TEST(TranslatorPasses, DeadFlagsAreNotComputed) {
  // add rax, rbx; sub rcx, rdx; xor rsi, rsi; hlt: only the xor's flags
  // are live at the exit.
  jit::GuestBlock gb = Lift(Parse(R"({"v":1,"code":"4801d84829d14831f6"})"));
  EXPECT_EQ(CountOps(gb.ir, Op::SetFlag), 18u);
  jit::Optimize(gb.ir);
  EXPECT_EQ(ir::Validate(gb.ir), "");
  EXPECT_EQ(CountOps(gb.ir, Op::SetFlag), 6u);
  EXPECT_EQ(CountOps(gb.ir, Op::CarryAdd), 0u);
  EXPECT_EQ(CountOps(gb.ir, Op::CarrySub), 0u);
}

TEST(TranslatorPasses, FlagsStayLiveAcrossAFaultingAccess) {
  // add rbx, rax; add [rdi], rax; hlt: the store may fault, so the first
  // add's flags must be in the state before it.
  jit::GuestBlock gb = Lift(Parse(R"({"v":1,"code":"4801c3480107"})"));
  jit::Optimize(gb.ir);
  EXPECT_EQ(CountOps(gb.ir, Op::SetFlag), 12u);
}

TEST(TranslatorPasses, ConstantsFoldThroughRegistersAndFlags) {
  // mov eax, 5; add eax, 3; jz +0; hlt: the sum, its flags and the branch
  // are all known at translation time.
  jit::GuestBlock gb = Lift(Parse(R"({"v":1,"code":"b80500000083c0037400"})"));
  jit::Optimize(gb.ir);
  EXPECT_EQ(ir::Validate(gb.ir), "");
  EXPECT_EQ(CountOps(gb.ir, Op::Add), 0u);
  EXPECT_EQ(CountOps(gb.ir, Op::ExitCond), 0u);
  ASSERT_EQ(gb.ir.insts.back().op, Op::ExitJump);
  EXPECT_EQ(gb.ir.insts.back().imm, 0x1000000aull);
  bool stored_eight = false;
  for (const ir::Inst& in : gb.ir.insts) {
    if (in.op == Op::SetReg && in.imm == kRax) {
      const ir::Inst& v = gb.ir.insts[in.args[0]];
      stored_eight = v.op == Op::Const && v.imm == 8;
    }
  }
  EXPECT_TRUE(stored_eight) << ir::Print(gb.ir);
  // Only the state writes and the exit are left: no GetReg, no arithmetic.
  EXPECT_EQ(CountOps(gb.ir, Op::GetReg), 0u);
}

TEST(TranslatorPasses, DeadCodeIsRemoved) {
  ir::Block b;
  b.Emit(Op::InsnStart, ir::kNoValue, ir::kNoValue, ir::kNoValue, 0x1000, 1);
  ir::Value r = b.Emit(Op::GetReg, ir::kNoValue, ir::kNoValue, ir::kNoValue, kRbx);
  b.Emit(Op::Not, r);  // unused
  b.Emit(Op::ExitHalt, ir::kNoValue, ir::kNoValue, ir::kNoValue, 0x1000);
  jit::EliminateDeadCode(b);
  EXPECT_EQ(b.insts.size(), 2u);
  EXPECT_EQ(ir::Validate(b), "");
}

// Counts the host instructions in [start, end) with the shared decoder.
size_t CountHostInsns(const uint8_t* start, const uint8_t* end) {
  size_t n = 0;
  for (const uint8_t* p = start; p < end; ++n) {
    DecodedInsn d;
    DecodeStatus st = Decode(p, static_cast<size_t>(end - p), &d);
    EXPECT_EQ(st, DecodeStatus::kOk) << "host code at +" << (p - start);
    if (st != DecodeStatus::kOk) return 0;
    p += d.length;
  }
  return n;
}

// Golden instruction counts of the host code for a few blocks, so that a
// change that makes the backend emit more (or the passes remove less) is
// seen. Update them deliberately when the backend changes.
TEST(TranslatorBackend, EmittedInstructionCounts) {
  struct Golden {
    const char* code;
    const char* what;
    size_t insns;
  };
  const Golden kGolden[] = {
      {"4801d8", "add rax, rbx; hlt", 25},
      {"4801d84829d14831f6", "add rax, rbx; sub rcx, rdx; xor rsi, rsi; hlt", 33},
      {"b80500000083c003", "mov eax, 5; add eax, 3; hlt", 14},
      {"488b07", "mov rax, [rdi]; hlt", 31},
      {"4801c84831c2ffc975f6", "l: add rax, rcx; xor rdx, rax; dec ecx; jnz l", 62},
      {"480fafc14801c3", "imul rax, rcx; add rbx, rax; hlt", 33},
  };
  Xbyak::CodeGenerator gen(1 << 16);
  const void* enter;
  const void* epilogue;
  jit::EmitTrampoline(gen, &enter, &epilogue);
  for (const Golden& g : kGolden) {
    std::string line = std::string(R"({"v":1,"code":")") + g.code + "\"}";
    jit::GuestBlock gb = Lift(Parse(line.c_str()));
    jit::Optimize(gb.ir);
    const uint8_t* start = gen.getCurr();
    jit::EmitBlock(gen, gb.ir, epilogue);
    size_t insns = CountHostInsns(start, gen.getCurr());
    RecordProperty(g.what, static_cast<int>(insns));
    std::printf("%-50s %zu host instructions\n", g.what, insns);
    EXPECT_EQ(insns, g.insns) << g.what;
  }
}

// Runs `lines` on the translator engine (in its worker) and checks each
// against its expectation.
void RunAndCheck(const std::vector<const char*>& lines) {
  std::vector<TestCase> cases;
  for (const char* l : lines) cases.push_back(Parse(l));
  std::vector<const TestCase*> ptrs;
  for (const TestCase& tc : cases) ptrs.push_back(&tc);
  EngineOptions opts;
  opts.max_instructions = 100000;
  std::unique_ptr<Engine> engine = CreateTranslatorEngine(opts);
  std::vector<RunResult> results(cases.size());
  engine->Run(ptrs, results);
  CompareOptions copts;
  copts.strict = true;
  for (size_t i = 0; i < cases.size(); ++i) {
    std::vector<Mismatch> ms = CompareExpect(cases[i], results[i], copts);
    std::string all;
    for (const Mismatch& m : ms) all += m.field + ": expected " + m.a + ", got " + m.b + "\n";
    EXPECT_TRUE(ms.empty()) << cases[i].name << ": " << FormatOutcome(results[i].outcome) << "\n"
                            << all;
  }
}

// clang-format off
const std::vector<const char*> kRunCases = {
  // At 0x20000000 (rwx): mov byte [rip+1], 2 (the immediate of the next
  // instruction) / mov al, 1 -> mov al, 2 / hlt. Self-modifying code inside
  // one block.
  R"({"v":1,"name":"smc-same-block","code":"90","regs":{"rip":"0x20000000"},"mem":[{"addr":"0x20000000","size":4096,"perm":"rwx","data":"c6050100000002b001f4"},{"addr":"0x30000000","size":4096,"perm":"rw"}],"expect":{"outcome":"halt","regs":{"rax":"0x2","rip":"0x20000009"},"mem":[{"addr":"0x20000008","data":"02"}]}})",
  // mov rax, 1 / add rbx, rax / add [rdi], rax (#PF) / mov ecx, 5 / hlt:
  // the fault in the middle of the block keeps the first add's flags.
  R"({"v":1,"name":"fault-mid-block","code":"48c7c0010000004801c3480107b905000000f4","regs":{"rdi":"0x40000000","rbx":"0xffffffffffffffff"},"expect":{"outcome":{"fault":"#PF","error_code":"0x6","addr":"0x40000000"},"regs":{"rax":"0x1","rbx":"0x0","rcx":"0x0","rip":"0x1000000a","rflags":"0x257"}}})",
  // add rbx, rax / inc rax / mov [rsi], rax (read-only page: #PF) / xor eax, eax / hlt
  R"({"v":1,"name":"fault-read-only","code":"4801c348ffc04889064831c0f4","regs":{"rsi":"0x20000000","rbx":"0x7fffffffffffffff","rax":"0x1"},"mem":[{"addr":"0x20000000","size":4096,"perm":"r"}],"expect":{"outcome":{"fault":"#PF","error_code":"0x7","addr":"0x20000000"},"regs":{"rax":"0x2","rbx":"0x8000000000000000","rip":"0x10000006","rflags":"0x202"}}})",
  // mov ecx, 3 / loop: dec ecx / jnz loop / hlt: a chained backward branch
  R"({"v":1,"name":"chained-loop","code":"b903000000ffc975fc","expect":{"outcome":"halt","regs":{"rcx":"0x0","rip":"0x10000009","rflags":"0x246"}}})",
  // mov ecx, 5 / l: add rax, rcx / xor rdx, rax / dec ecx / jnz l / hlt: a block
  // that loops to itself keeps its registers in host registers; the flags
  // it leaves are written back when the loop ends.
  R"({"v":1,"name":"loop-flags-out","code":"b9050000004801c84831c2ffc975f6f4","regs":{"rax":"0x7ffffffffffffffe","rdx":"0x0000000000000123"},"expect":{"outcome":"halt","regs":{"rax":"0x800000000000000d","rdx":"0x800000000000012c","rip":"0x1000000f","rflags":"0x246","mxcsr":"0x1f80"}}})",
  // mov ecx, 3 / l: add [rdi], rcx / add rdi, 0x800 / dec ecx / jnz l /
  // hlt: the third iteration's access faults (#PF) with the state of that
  // iteration (flags of the second dec).
  R"({"v":1,"name":"loop-fault-in-third-iteration","code":"b90300000048010f4881c700080000ffc975f2f4","regs":{"rdi":"0x000000002000f000","rflags":"0x00000000000002d7"},"expect":{"outcome":{"fault":"#PF","error_code":"0x6","addr":"0x20010000"},"regs":{"rcx":"0x1","rdi":"0x20010000","rip":"0x10000005","rflags":"0x202","mxcsr":"0x1f80"},"mem":[{"addr":"0x2000f000","data":"03"},{"addr":"0x2000f800","data":"02"}]}})",
  // Fourteen adds, an imul, adc and sbb over all sixteen registers in one
  // block: more live values than host registers (spills).
  R"({"v":1,"name":"register-pressure","code":"4801d84801d14801fe4d01c84d01da4d01ec4d01fe480fafc14801c34c29c64d31e24c01f24911f14919dbf4","regs":{"rax":"0x1111111111111111","rcx":"0x3333333333333333","rdx":"0x4444444444444444","rbx":"0x2222222222222222","rsi":"0x5555555555555555","rdi":"0x6666666666666666","r8":"0x7777777777777777","r9":"0x8888888888888888","r10":"0x9999999999999999","r11":"0xaaaaaaaaaaaaaaaa","r12":"0xbbbbbbbbbbbbbbbb","r13":"0xcccccccccccccccc","r14":"0xdddddddddddddddd","r15":"0xeeeeeeeeeeeeeeee"},"expect":{"outcome":"halt","regs":{"rax":"0x4e81b4e81b4e81b5","rcx":"0x7777777777777777","rdx":"0x111111111111110f","rbx":"0x70a3d70a3d70a3d7","rsi":"0xbbbbbbbbbbbbbbbc","r8":"0xffffffffffffffff","r9":"0x4444444444444445","r10":"0xccccccccccccccc4","r11":"0x3a06d3a06d3a06d2","r12":"0x8888888888888887","r14":"0xcccccccccccccccb","rip":"0x1000002b","rflags":"0xa06","mxcsr":"0x1f80"}}})",
  // l: mov r8, rax / mov rax, rbx / mov rbx, r8 / dec ecx / jnz l / hlt:
  // the loop's registers move in a cycle from one iteration to the next.
  R"({"v":1,"name":"loop-swapping-registers","code":"4989c04889d84c89c3ffc975f3f4","regs":{"rax":"0x0000000000000001","rcx":"0x0000000000000003","rbx":"0x0000000000000002"},"expect":{"outcome":"halt","regs":{"rax":"0x2","rcx":"0x0","rbx":"0x1","r8":"0x1","rip":"0x1000000d","rflags":"0x246","mxcsr":"0x1f80"}}})",
  // l: adc rax, rbx / dec ecx / jnz l / hlt: CF is read at the top of the
  // loop, so it is carried from one iteration to the next.
  R"({"v":1,"name":"loop-carry-in","code":"4811d8ffc975f9f4","regs":{"rax":"0xffffffffffffffff","rcx":"0x0000000000000004","rbx":"0x0000000000000001","rflags":"0x0000000000000203"},"expect":{"outcome":"halt","regs":{"rax":"0x5","rcx":"0x0","rip":"0x10000007","rflags":"0x246","mxcsr":"0x1f80"}}})",
  // l: add rax, rbx / add rsi, rdi / add r8, r9 / dec ecx / jnz l / hlt:
  // more registers than a loop keeps in host registers.
  R"({"v":1,"name":"loop-of-five-registers","code":"4801d84801fe4d01c8ffc975f3f4","regs":{"rax":"0x0000000000000001","rcx":"0x0000000000000007","rbx":"0x0000000000000002","rsi":"0x8000000000000000","rdi":"0x8000000000000001","r8":"0x0000000000000010","r9":"0xfffffffffffffff0"},"expect":{"outcome":"halt","regs":{"rax":"0xf","rcx":"0x0","rsi":"0x7","r8":"0xffffffffffffffa0","rip":"0x1000000d","rflags":"0x247","mxcsr":"0x1f80"}}})",
  // shr cx, 1 / hlt with cx = 0x8000: OF is the operand's sign (1), a flag
  // value that is not the host flag of the same name (written back as
  // itself, not taken from the host flags of a test).
  R"({"v":1,"name":"shr-of-from-the-operand-sign","code":"66d1e9f4","regs":{"rcx":"0x0000000000008000"},"expect":{"outcome":"halt","regs":{"rcx":"0x4000","rip":"0x10000003","rflags":"0xa16","mxcsr":"0x1f80"}}})",
};
// clang-format on

TEST(TranslatorRun, BlocksOfManyInstructions) {
  unsetenv("CPUDIFF_TRANSLATOR_BLOCK");
  RunAndCheck(kRunCases);
}

TEST(TranslatorRun, OneInstructionPerBlock) {
  setenv("CPUDIFF_TRANSLATOR_BLOCK", "1", 1);
  RunAndCheck(kRunCases);
  unsetenv("CPUDIFF_TRANSLATOR_BLOCK");
}

}  // namespace
}  // namespace cpudiff

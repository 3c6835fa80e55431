#include "harness/corpus/corpus.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace cpudiff {
namespace {

TestCase MustParse(const std::string& line) {
  TestCase tc;
  CorpusError err;
  EXPECT_TRUE(ParseCaseLine(line, "t.jsonl:1", &tc, &err)) << err.ToString();
  return tc;
}

TEST(Corpus, DesignExample) {
  TestCase tc = MustParse(
      R"({"v":1,"name":"adc-with-carry","code":"4811d8f4",)"
      R"("regs":{"rax":"0x7fffffffffffffff","rbx":"0x1","rflags":"0x203"},)"
      R"("mem":[{"addr":"0x20000000","size":4096,"perm":"rw","data":"00ff"}],)"
      R"("expect":{"outcome":"halt","regs":{"rax":"0x8000000000000001"}},"tags":["alu","adc"]})");
  EXPECT_EQ(tc.name, "adc-with-carry");
  EXPECT_EQ(tc.code, (std::vector<uint8_t>{0x48, 0x11, 0xd8, 0xf4}));
  EXPECT_EQ(tc.code_addr, kDefaultCodeAddr);
  EXPECT_EQ(tc.init.rip, kDefaultCodeAddr);
  EXPECT_EQ(tc.init.gpr[kRax], 0x7fffffffffffffffull);
  EXPECT_EQ(tc.init.gpr[kRbx], 1u);
  EXPECT_EQ(tc.init.gpr[kRsp], 0u);  // explicit mem: no default stack pointer
  EXPECT_EQ(tc.init.rflags, 0x203u);
  EXPECT_EQ(tc.init.mxcsr, 0x1f80u);
  ASSERT_EQ(tc.mem.size(), 1u);
  EXPECT_EQ(tc.mem[0].perm, kPermR | kPermW);
  EXPECT_EQ(tc.mem[0].InitialByte(0x20000001), 0xff);
  EXPECT_EQ(tc.mem[0].InitialByte(0x20000fff), 0);
  ASSERT_TRUE(tc.expect && tc.expect->outcome);
  EXPECT_EQ(tc.expect->outcome->kind, OutcomeKind::kHalt);
  ASSERT_EQ(tc.expect->regs.size(), 1u);
  EXPECT_EQ(tc.expect->regs[0].first, kRax);
  EXPECT_EQ(tc.tags, (std::vector<std::string>{"alu", "adc"}));
  // The code region holds the code, one HLT, and is page sized.
  MemRegion code = tc.CodeRegion();
  EXPECT_EQ(code.size, 4096u);
  EXPECT_EQ(code.data.back(), kHltByte);
  EXPECT_EQ(code.perm, kPermR | kPermX);
}

TEST(Corpus, DefaultsAndForcedFlags) {
  TestCase tc = MustParse(R"({"v":1,"code":"90","regs":{"rflags":"0x0","xmm15":"0x1"}})");
  EXPECT_EQ(tc.init.rflags, 0x202u);  // bit 1 and IF are always set
  EXPECT_EQ(tc.init.gpr[kRsp], kDefaultRsp);
  EXPECT_EQ(tc.init.xmm[15].lo, 1u);
  ASSERT_EQ(tc.mem.size(), 2u);
  EXPECT_EQ(tc.mem[0].addr, kDefaultDataAddr);
  EXPECT_EQ(tc.mem[0].size, kDefaultDataSize);
  EXPECT_EQ(tc.mem[1].addr, kDefaultStackAddr);
  EXPECT_FALSE(tc.expect.has_value());
}

TEST(Corpus, FaultOutcomeForms) {
  TestCase a = MustParse(R"({"v":1,"code":"0f0b","expect":{"outcome":"#UD"}})");
  EXPECT_EQ(a.expect->outcome->kind, OutcomeKind::kFault);
  EXPECT_EQ(a.expect->outcome->vector, kVecUD);
  EXPECT_FALSE(a.expect->outcome->error_code.has_value());
}

TEST(Corpus, PageFaultObject) {
  TestCase b = MustParse(
      R"({"v":1,"code":"8b042500000040","expect":{"outcome":{"fault":"#PF","error_code":"0x4","addr":"0x40000000"},"mem":[{"addr":"0x20000003","data":"ff"}]}})");
  EXPECT_EQ(b.expect->outcome->vector, kVecPF);
  EXPECT_EQ(*b.expect->outcome->error_code, 4u);
  EXPECT_EQ(*b.expect->outcome->addr, 0x40000000u);
  ASSERT_EQ(b.expect->mem.size(), 1u);
  EXPECT_EQ(b.expect->mem[0].addr, 0x20000003u);
}

TEST(Corpus, WriteReadRoundTrip) {
  const std::string lines[] = {
      R"({"v":1,"name":"x","code":"4801d8","regs":{"rax":"0x5","rflags":"0xa93","xmm3":"0xffffffffffffffff0000000000000001","mxcsr":"0x00009fc0","fs_base":"0x20000000"},"tags":["a"]})",
      R"({"v":1,"code":"90","code_addr":"0x400000","regs":{"rsp":"0x0"},"mem":[{"addr":"0x500000","size":8192,"perm":"r","data":"0102"},{"addr":"0x600000","size":4096,"perm":"rwx"}]})",
      R"({"v":1,"code":"cc","expect":{"outcome":{"fault":"#GP","error_code":"0x0"},"regs":{"rip":"0x10000001"}}})",
  };
  for (const std::string& line : lines) {
    TestCase a = MustParse(line);
    std::string written = WriteCaseLine(a);
    TestCase b = MustParse(written);
    EXPECT_EQ(a.Hash(), b.Hash()) << written;
    EXPECT_EQ(a.init, b.init) << written;
    EXPECT_EQ(a.mem.size(), b.mem.size());
    EXPECT_EQ(WriteCaseLine(b), written);
  }
}

TEST(Corpus, HashIgnoresNameAndExpect) {
  TestCase a = MustParse(R"({"v":1,"name":"a","code":"90"})");
  TestCase b = MustParse(R"({"v":1,"name":"b","code":"90","expect":{"outcome":"halt"}})");
  TestCase c = MustParse(R"({"v":1,"code":"90","regs":{"rax":"0x1"}})");
  EXPECT_EQ(a.Hash(), b.Hash());
  EXPECT_NE(a.Hash(), c.Hash());
}

struct Malformed {
  const char* line;
  const char* message;  // the whole "file:line: field: what" text
};

// Each malformed input with the message a user sees.
const Malformed kMalformed[] = {
    {R"({"v":1,"code":"90")", "t.jsonl:1: json: not valid JSON: "},
    {R"([1,2])", "t.jsonl:1: json: a case must be a JSON object, got array"},
    {R"({"code":"90"})", "t.jsonl:1: v: missing (the format version, 1)"},
    {R"({"v":2,"code":"90"})", "t.jsonl:1: v: unsupported format version 2 (this cpudiff reads 1)"},
    {R"({"v":1})", "t.jsonl:1: code: missing (the code bytes as hex)"},
    {R"({"v":1,"code":"9"})",
     "t.jsonl:1: code: expected an even number of hex digits (bytes, no 0x prefix)"},
    {R"({"v":1,"code":"zz"})",
     "t.jsonl:1: code: expected an even number of hex digits (bytes, no 0x prefix)"},
    {R"({"v":1,"code":144})", "t.jsonl:1: code: expected a string, got number"},
    {R"({"v":1,"code":"90","regs":{"eax":"0x1"}})",
     "t.jsonl:1: regs.eax: unknown register \"eax\""},
    {R"({"v":1,"code":"90","regs":{"rax":"1"}})",
     "t.jsonl:1: regs.rax: expected a hex string \"0x...\""},
    {R"({"v":1,"code":"90","regs":{"rax":"0x10000000000000000"}})",
     "t.jsonl:1: regs.rax: more than 16 hex digits for a 64-bit register"},
    {R"({"v":1,"code":"90","regs":{"rax":1}})",
     "t.jsonl:1: regs.rax: expected a string, got number"},
    {R"({"v":1,"code":"90","regs":{"rflags":"0x302"}})",
     "t.jsonl:1: regs.rflags: bits 0x100 may not be set (only CF PF AF ZF SF DF OF AC ID, plus bit 1 "
     "and IF)"},
    {R"({"v":1,"code":"90","regs":{"mxcsr":"0x10000"}})",
     "t.jsonl:1: regs.mxcsr: reserved MXCSR bits set (valid bits are 0xffff)"},
    {R"({"v":1,"code":"90","code_addr":"0x10000010"})", "t.jsonl:1: code_addr: not page aligned"},
    {R"({"v":1,"code":"90","mem":[{"addr":"0x20000100","size":4096,"perm":"rw"}]})",
     "t.jsonl:1: mem[0].addr: not page aligned"},
    {R"({"v":1,"code":"90","mem":[{"addr":"0x20000000","size":100,"perm":"rw"}]})",
     "t.jsonl:1: mem[0].size: must be a positive multiple of 4096"},
    {R"({"v":1,"code":"90","mem":[{"addr":"0x20000000","size":4096,"perm":"w"}]})",
     "t.jsonl:1: mem[0].perm: perm must be one of r, rw, rx, rwx, got \"w\""},
    {R"({"v":1,"code":"90","mem":[{"addr":"0x20000000","size":4096,"perm":"rw","data":"000102"},{"addr":"0x20000000","size":4096,"perm":"r"}]})",
     "t.jsonl:1: mem[1]: overlaps mem[0] (0x20000000..0x20001000)"},
    {R"({"v":1,"code":"90","mem":[{"addr":"0x10000000","size":4096,"perm":"rw"}]})",
     "t.jsonl:1: mem[0]: overlaps code (0x10000000..0x10001000)"},
    {R"({"v":1,"code":"90","mem":{"addr":"0x20000000"}})",
     "t.jsonl:1: mem: expected an array of regions"},
    {R"({"v":1,"code":"90","mem":[{"size":4096,"perm":"rw"}]})", "t.jsonl:1: mem[0].addr: missing"},
    {R"({"v":1,"code":"90","mem":[{"addr":"0x800000000000","size":4096,"perm":"rw"}]})",
     "t.jsonl:1: mem[0].addr: outside the user address range cases may use (below 0x7ff000000000)"},
    {R"({"v":1,"code":"90","expect":{"outcome":"#XX"}})",
     "t.jsonl:1: expect.outcome: unknown outcome \"#XX\" (halt, timeout, syscall, or a fault like "
     "\"#PF\")"},
    {R"({"v":1,"code":"90","expect":{"outcome":{"error_code":"0x4"}}})",
     "t.jsonl:1: expect.outcome: an outcome object needs \"fault\""},
    {R"({"v":1,"code":"90","expect":{"outcome":"halt","flags":"0x1"}})",
     "t.jsonl:1: expect.flags: unknown field"},
    {R"({"v":1,"code":"90","expect":{"mem":[{"addr":"0x20000000"}]}})",
     "t.jsonl:1: expect.mem[0]: expected an object with addr and data"},
    {R"({"v":1,"code":"90","reg":{"rax":"0x1"}})", "t.jsonl:1: reg: unknown field"},
    {R"({"v":1,"code":"90","tags":"alu"})", "t.jsonl:1: tags: expected an array of strings"},
    {R"({"v":1,"code":"90","mem":[{"addr":"0x20000000","size":4096,"perm":"rw","data":"0001020304050607"}],"regs":{"xmm0":"0x1ffffffffffffffffffffffffffffffff"}})",
     "t.jsonl:1: regs.xmm0: more than 32 hex digits for a 128-bit register"},
};

TEST(Corpus, MalformedLinesGetWhereFieldAndWhat) {
  int checked = 0;
  for (const Malformed& m : kMalformed) {
    TestCase tc;
    CorpusError err;
    EXPECT_FALSE(ParseCaseLine(m.line, "t.jsonl:1", &tc, &err)) << m.line;
    std::string got = err.ToString();
    // The JSON syntax error text comes from nlohmann: check our prefix only.
    EXPECT_EQ(got.substr(0, std::string(m.message).size()), m.message) << m.line;
    ++checked;
  }
  EXPECT_GE(checked, 20);
}

TEST(Corpus, FileReaderSkipsBadLinesAndCountsThem) {
  std::string path = ::testing::TempDir() + "/corpus_reader.jsonl";
  {
    std::ofstream out(path);
    out << R"({"v":1,"code":"90"})" << "\n\n";
    out << R"({"v":1,"code":"9"})" << "\n";
    out << "   \n";
    out << R"({"v":1,"code":"4801d8"})" << "\n";
  }
  std::vector<TestCase> cases;
  CorpusReadResult r = ReadCorpusFile(path, [&](TestCase&& tc) { cases.push_back(std::move(tc)); });
  EXPECT_EQ(r.cases, 2u);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].where, path + ":3");
  EXPECT_EQ(cases[1].source, path + ":5");
  std::remove(path.c_str());

  CorpusReadResult missing = ReadCorpusFile("/nonexistent/x.jsonl", [](TestCase&&) {});
  EXPECT_TRUE(missing.io_error);
  EXPECT_EQ(missing.errors[0].ToString(),
            "/nonexistent/x.jsonl: file: cannot open: No such file or directory");
}

TEST(Corpus, ExpectFromResultRecordsChangedBytes) {
  TestCase tc = MustParse(
      R"({"v":1,"code":"90","mem":[{"addr":"0x20000000","size":4096,"perm":"rw","data":"00112233"}]})");
  RunResult r;
  r.outcome = Outcome::PageFault(6, 0x40000000);
  r.state = tc.init;
  PageImage& p = r.pages.emplace_back();
  p.addr = 0x20000000;
  p.bytes[0] = 0x00;
  p.bytes[1] = 0x11;
  p.bytes[2] = 0x99;  // changed
  p.bytes[3] = 0x33;
  Expect e = ExpectFromResult(tc, r, 1);
  ASSERT_EQ(e.mem.size(), 1u);
  EXPECT_EQ(e.mem[0].addr, 0x20000001u);
  EXPECT_EQ(e.mem[0].data, (std::vector<uint8_t>{0x11, 0x99, 0x33}));
  EXPECT_EQ(*e.outcome->error_code, 6u);
  EXPECT_EQ(e.regs.size(), static_cast<size_t>(kNumRegisters));
}

}  // namespace
}  // namespace cpudiff

#include "harness/corpus/corpus.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace cpudiff {
namespace {

// ordered_json keeps the fields in the order written ("v" first).
using Json = nlohmann::ordered_json;

// Thrown inside the parser and turned into a CorpusError at the top.
struct Reject {
  std::string field;
  std::string what;
};

[[noreturn]] void Fail(std::string field, std::string what) {
  throw Reject{std::move(field), std::move(what)};
}

const std::string& AsString(const Json& j, const std::string& field) {
  if (!j.is_string()) Fail(field, std::string("expected a string, got ") + j.type_name());
  return j.get_ref<const std::string&>();
}

uint64_t AsHex64(const Json& j, const std::string& field) {
  const std::string& s = AsString(j, field);
  uint64_t v;
  if (!ParseHex64(s, &v)) {
    Fail(field, "expected a hex string \"0x...\" of at most 16 digits, got \"" + s + "\"");
  }
  return v;
}

std::vector<uint8_t> AsHexBytes(const Json& j, const std::string& field) {
  const std::string& s = AsString(j, field);
  std::vector<uint8_t> out;
  if (!ParseHexBytes(s, &out)) {
    Fail(field, "expected an even number of hex digits (bytes, no 0x prefix)");
  }
  return out;
}

bool IsCanonicalUser(uint64_t a) { return a < kUserAddrLimit; }

// The state a case starts from before its `regs` apply.
CpuState DefaultState(uint64_t code_addr, bool default_layout) {
  CpuState s;
  s.rip = code_addr;
  s.rflags = 0x202;
  s.mxcsr = kMxcsrDefault;
  if (default_layout) s.gpr[kRsp] = kDefaultRsp;
  return s;
}

std::vector<MemRegion> DefaultLayout() {
  MemRegion data{kDefaultDataAddr, kDefaultDataSize, kPermR | kPermW, {}};
  MemRegion stack{kDefaultStackAddr, kDefaultStackSize, kPermR | kPermW, {}};
  return {data, stack};
}

bool IsDefaultLayout(const std::vector<MemRegion>& mem) {
  if (mem.size() != 2) return false;
  auto def = DefaultLayout();
  for (size_t i = 0; i < 2; ++i) {
    if (mem[i].addr != def[i].addr || mem[i].size != def[i].size || mem[i].perm != def[i].perm ||
        std::any_of(mem[i].data.begin(), mem[i].data.end(), [](uint8_t b) { return b != 0; })) {
      return false;
    }
  }
  return true;
}

uint8_t ParsePerm(const std::string& s, const std::string& field) {
  if (s == "r") return kPermR;
  if (s == "rw") return kPermR | kPermW;
  if (s == "rx") return kPermR | kPermX;
  if (s == "rwx") return kPermR | kPermW | kPermX;
  Fail(field, "perm must be one of r, rw, rx, rwx, got \"" + s + "\"");
}

void ParseRegs(const Json& j, const std::string& field, CpuState* s,
               std::vector<std::pair<int, RegValue>>* listed, bool initial) {
  if (!j.is_object()) Fail(field, std::string("expected an object, got ") + j.type_name());
  for (const auto& [name, value] : j.items()) {
    std::string f = field + "." + name;
    int reg = FindRegister(name);
    if (reg < 0) Fail(f, "unknown register \"" + name + "\"");
    RegValue v;
    if (auto err = ParseRegValue(reg, AsString(value, f), &v)) Fail(f, *err);
    if (initial && reg == kRegRflags) {
      uint64_t bad = v.lo & ~(kSettableFlags | kFlagFixed1 | kFlagIF);
      if (bad) {
        Fail(f, "bits " + Hex64(bad) +
                    " may not be set (only CF PF AF ZF SF DF OF AC ID, plus bit 1 and IF)");
      }
      v.lo |= kFlagFixed1 | kFlagIF;
    }
    if (initial && reg == kRegMxcsr && (v.lo & ~uint64_t{kMxcsrValidBits})) {
      Fail(f, "reserved MXCSR bits set (valid bits are 0xffff)");
    }
    if (initial && (reg == kRegFsBase || reg == kRegGsBase) && !IsCanonicalUser(v.lo) &&
        (v.lo >> 47) != 0x1ffff) {
      Fail(f, "non-canonical segment base");
    }
    if (s) WriteReg(*s, reg, v);
    if (listed) listed->emplace_back(reg, v);
  }
}

ExpectOutcome ParseOutcome(const Json& j, const std::string& field) {
  ExpectOutcome o;
  std::string name;
  if (j.is_string()) {
    name = j.get<std::string>();
  } else if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (k != "fault" && k != "error_code" && k != "addr") {
        Fail(field + "." + k, "unknown field (expected fault, error_code, addr)");
      }
    }
    if (!j.contains("fault")) Fail(field, "an outcome object needs \"fault\"");
    name = AsString(j["fault"], field + ".fault");
    if (j.contains("error_code")) o.error_code = AsHex64(j["error_code"], field + ".error_code");
    if (j.contains("addr")) o.addr = AsHex64(j["addr"], field + ".addr");
  } else {
    Fail(field, "expected a string or an object");
  }
  if (name == "halt") {
    o.kind = OutcomeKind::kHalt;
  } else if (name == "timeout") {
    o.kind = OutcomeKind::kTimeout;
  } else if (name == "syscall") {
    o.kind = OutcomeKind::kSyscall;
  } else if (int vec = VectorFromName(name); vec >= 0) {
    o.kind = OutcomeKind::kFault;
    o.vector = static_cast<uint8_t>(vec);
  } else {
    Fail(j.is_object() ? field + ".fault" : field,
         "unknown outcome \"" + name + "\" (halt, timeout, syscall, or a fault like \"#PF\")");
  }
  if (o.kind != OutcomeKind::kFault && (o.error_code || o.addr)) {
    Fail(field, "error_code and addr belong to faults only");
  }
  return o;
}

void CheckOverlaps(const TestCase& tc) {
  std::vector<std::pair<MemRegion, std::string>> all;
  all.emplace_back(tc.CodeRegion(), "code");
  for (size_t i = 0; i < tc.mem.size(); ++i)
    all.emplace_back(tc.mem[i], "mem[" + std::to_string(i) + "]");
  for (size_t i = 0; i < all.size(); ++i) {
    for (size_t k = i + 1; k < all.size(); ++k) {
      const MemRegion& a = all[i].first;
      const MemRegion& b = all[k].first;
      if (a.addr < b.addr + b.size && b.addr < a.addr + a.size) {
        Fail(all[k].second, "overlaps " + all[i].second + " (" + Hex64(a.addr) + ".." +
                                Hex64(a.addr + a.size) + ")");
      }
    }
  }
}

void ParseCase(const Json& j, TestCase* tc) {
  if (!j.is_object())
    Fail("json", std::string("a case must be a JSON object, got ") + j.type_name());
  static const char* const kKnown[] = {"v",   "name",   "code", "code_addr", "regs",
                                       "mem", "expect", "tags", "generator", "seed"};
  for (const auto& [k, v] : j.items()) {
    if (std::find(std::begin(kKnown), std::end(kKnown), k) == std::end(kKnown)) {
      Fail(k, "unknown field");
    }
  }
  if (!j.contains("v")) Fail("v", "missing (the format version, 1)");
  if (!j["v"].is_number_integer() || j["v"].get<int64_t>() != kCorpusVersion) {
    Fail("v", "unsupported format version " + j["v"].dump() + " (this cpudiff reads 1)");
  }
  if (j.contains("name")) tc->name = AsString(j["name"], "name");
  if (j.contains("generator")) tc->generator = AsString(j["generator"], "generator");
  if (j.contains("seed")) tc->seed = AsHex64(j["seed"], "seed");
  if (j.contains("tags")) {
    const Json& t = j["tags"];
    if (!t.is_array()) Fail("tags", "expected an array of strings");
    for (size_t i = 0; i < t.size(); ++i) {
      tc->tags.push_back(AsString(t[i], "tags[" + std::to_string(i) + "]"));
    }
  }
  if (!j.contains("code")) Fail("code", "missing (the code bytes as hex)");
  tc->code = AsHexBytes(j["code"], "code");
  if (tc->code.size() > kMaxCodeBytes) Fail("code", "longer than 1 MiB");
  if (j.contains("code_addr")) {
    tc->code_addr = AsHex64(j["code_addr"], "code_addr");
    if (tc->code_addr % kPageSize) Fail("code_addr", "not page aligned");
    if (tc->code_addr == 0) Fail("code_addr", "page zero cannot be mapped");
    if (!IsCanonicalUser(tc->code_addr + PageCeil(tc->code.size() + 1))) {
      Fail("code_addr",
           "outside the user address range cases may use (below " + Hex64(kUserAddrLimit) + ")");
    }
  }
  const bool default_layout = !j.contains("mem");
  if (default_layout) {
    tc->mem = DefaultLayout();
  } else {
    const Json& m = j["mem"];
    if (!m.is_array()) Fail("mem", "expected an array of regions");
    for (size_t i = 0; i < m.size(); ++i) {
      std::string f = "mem[" + std::to_string(i) + "]";
      const Json& r = m[i];
      if (!r.is_object()) Fail(f, "expected an object with addr, size, perm, data");
      for (const auto& [k, v] : r.items()) {
        if (k != "addr" && k != "size" && k != "perm" && k != "data")
          Fail(f + "." + k, "unknown field");
      }
      MemRegion region;
      if (!r.contains("addr")) Fail(f + ".addr", "missing");
      region.addr = AsHex64(r["addr"], f + ".addr");
      if (region.addr % kPageSize) Fail(f + ".addr", "not page aligned");
      if (region.addr == 0) Fail(f + ".addr", "page zero cannot be mapped");
      if (!r.contains("size")) Fail(f + ".size", "missing");
      if (!r["size"].is_number_unsigned()) Fail(f + ".size", "expected a positive integer");
      region.size = r["size"].get<uint64_t>();
      if (region.size == 0 || region.size % kPageSize) {
        Fail(f + ".size", "must be a positive multiple of 4096");
      }
      if (region.size > kMaxRegionBytes) Fail(f + ".size", "larger than 64 MiB");
      if (!IsCanonicalUser(region.addr + region.size)) {
        Fail(f + ".addr",
             "outside the user address range cases may use (below " + Hex64(kUserAddrLimit) + ")");
      }
      if (!r.contains("perm")) Fail(f + ".perm", "missing");
      region.perm = ParsePerm(AsString(r["perm"], f + ".perm"), f + ".perm");
      if (r.contains("data")) {
        region.data = AsHexBytes(r["data"], f + ".data");
        if (region.data.size() > region.size) Fail(f + ".data", "longer than the region");
      }
      tc->mem.push_back(std::move(region));
    }
  }
  CheckOverlaps(*tc);
  tc->init = DefaultState(tc->code_addr, default_layout);
  if (j.contains("regs")) ParseRegs(j["regs"], "regs", &tc->init, nullptr, true);
  if (j.contains("expect")) {
    const Json& e = j["expect"];
    if (!e.is_object()) Fail("expect", "expected an object with outcome, regs, mem");
    Expect ex;
    for (const auto& [k, v] : e.items()) {
      if (k != "outcome" && k != "regs" && k != "mem") Fail("expect." + k, "unknown field");
    }
    if (e.contains("outcome")) ex.outcome = ParseOutcome(e["outcome"], "expect.outcome");
    if (e.contains("regs")) ParseRegs(e["regs"], "expect.regs", nullptr, &ex.regs, false);
    if (e.contains("mem")) {
      const Json& m = e["mem"];
      if (!m.is_array()) Fail("expect.mem", "expected an array of {addr, data}");
      for (size_t i = 0; i < m.size(); ++i) {
        std::string f = "expect.mem[" + std::to_string(i) + "]";
        if (!m[i].is_object() || !m[i].contains("addr") || !m[i].contains("data")) {
          Fail(f, "expected an object with addr and data");
        }
        MemBytes mb;
        mb.addr = AsHex64(m[i]["addr"], f + ".addr");
        mb.data = AsHexBytes(m[i]["data"], f + ".data");
        ex.mem.push_back(std::move(mb));
      }
    }
    tc->expect = std::move(ex);
  }
}

}  // namespace

bool ParseCaseLine(std::string_view line, const std::string& where, TestCase* out,
                   CorpusError* err) {
  *out = TestCase{};
  out->source = where;
  Json j;
  try {
    j = Json::parse(line.begin(), line.end());
  } catch (const Json::parse_error& e) {
    *err = {where, "json", std::string("not valid JSON: ") + e.what()};
    return false;
  }
  try {
    ParseCase(j, out);
  } catch (const Reject& r) {
    *err = {where, r.field, r.what};
    return false;
  }
  return true;
}

CorpusReadResult ReadCorpusFile(const std::string& path,
                                const std::function<void(TestCase&&)>& sink) {
  CorpusReadResult result;
  std::ifstream in(path);
  if (!in) {
    result.io_error = true;
    result.errors.push_back({path, "file", "cannot open: " + std::string(std::strerror(errno))});
    return result;
  }
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    TestCase tc;
    CorpusError err;
    std::string where = path + ":" + std::to_string(lineno);
    if (ParseCaseLine(line, where, &tc, &err)) {
      ++result.cases;
      sink(std::move(tc));
    } else {
      result.errors.push_back(std::move(err));
    }
  }
  if (in.bad()) {
    result.io_error = true;
    result.errors.push_back({path, "file", "read error"});
  }
  return result;
}

std::string WriteCaseLine(const TestCase& tc) {
  Json j = Json::object();
  j["v"] = kCorpusVersion;
  if (!tc.name.empty()) j["name"] = tc.name;
  j["code"] = HexBytes(tc.code);
  if (tc.code_addr != kDefaultCodeAddr) j["code_addr"] = Hex64(tc.code_addr);
  const bool default_layout = IsDefaultLayout(tc.mem);
  const CpuState def = DefaultState(tc.code_addr, default_layout);
  Json regs = Json::object();
  for (int r = 0; r < kNumRegisters; ++r) {
    RegValue v = ReadReg(tc.init, r);
    if (!(v == ReadReg(def, r))) regs[std::string(Registers()[r].name)] = FormatReg(r, v);
  }
  if (!regs.empty()) j["regs"] = regs;
  if (!default_layout) {
    Json mem = Json::array();
    for (const MemRegion& m : tc.mem) {
      Json r = {{"addr", Hex64(m.addr)}, {"size", m.size}, {"perm", PermString(m.perm)}};
      size_t n = m.data.size();
      while (n > 0 && m.data[n - 1] == 0) --n;
      if (n) r["data"] = HexBytes(std::span(m.data).first(n));
      mem.push_back(r);
    }
    j["mem"] = mem;
  }
  if (tc.expect) {
    Json e = Json::object();
    if (tc.expect->outcome) {
      const ExpectOutcome& o = *tc.expect->outcome;
      std::string name = o.kind == OutcomeKind::kFault ? VectorName(o.vector)
                                                       : std::string(OutcomeKindName(o.kind));
      if (o.error_code || o.addr) {
        Json oj = {{"fault", name}};
        if (o.error_code) oj["error_code"] = Hex64(*o.error_code);
        if (o.addr) oj["addr"] = Hex64(*o.addr);
        e["outcome"] = oj;
      } else {
        e["outcome"] = name;
      }
    }
    if (!tc.expect->regs.empty()) {
      Json er = Json::object();
      for (const auto& [reg, v] : tc.expect->regs) {
        er[std::string(Registers()[reg].name)] = FormatReg(reg, v);
      }
      e["regs"] = er;
    }
    if (!tc.expect->mem.empty()) {
      Json em = Json::array();
      for (const MemBytes& mb : tc.expect->mem) {
        em.push_back({{"addr", Hex64(mb.addr)}, {"data", HexBytes(mb.data)}});
      }
      e["mem"] = em;
    }
    j["expect"] = e;
  }
  if (!tc.tags.empty()) j["tags"] = tc.tags;
  if (!tc.generator.empty()) j["generator"] = tc.generator;
  if (tc.seed) j["seed"] = Hex64(tc.seed);
  return j.dump();
}

Expect ExpectFromResult(const TestCase& tc, const RunResult& r, int context) {
  Expect e;
  ExpectOutcome o;
  o.kind = r.outcome.kind;
  if (r.outcome.kind == OutcomeKind::kFault) {
    o.vector = r.outcome.vector;
    if (r.outcome.has_error_code) o.error_code = r.outcome.error_code;
    if (r.outcome.has_addr) o.addr = r.outcome.addr;
  }
  e.outcome = o;
  for (int reg = 0; reg < kNumRegisters; ++reg) {
    RegValue v = ReadReg(r.state, reg);
    // Only the compared RFLAGS bits: RF (set by silicon on a fault) and the
    // like are never checked, so they are not written either.
    if (reg == kRegRflags) v.lo &= kComparedFlags;
    e.regs.emplace_back(reg, v);
  }
  // Changed bytes, grouped into runs, widened by `context` within the region.
  for (const PageImage& p : r.pages) {
    const MemRegion* region = nullptr;
    for (const MemRegion& m : tc.mem) {
      if (m.Contains(p.addr)) region = &m;
    }
    if (!region) continue;
    uint64_t i = 0;
    while (i < kPageSize) {
      if (p.bytes[i] == region->InitialByte(p.addr + i)) {
        ++i;
        continue;
      }
      uint64_t start = i;
      uint64_t end = i + 1;
      // Extend while changed bytes are at most `context`*2 apart.
      for (uint64_t k = end; k < kPageSize; ++k) {
        if (p.bytes[k] != region->InitialByte(p.addr + k)) {
          if (k - end > static_cast<uint64_t>(2 * context)) break;
          end = k + 1;
        }
      }
      uint64_t lo =
          p.addr + start >= region->addr + context ? p.addr + start - context : region->addr;
      lo = std::max(lo, p.addr);
      uint64_t hi = std::min(p.addr + end + context, p.addr + kPageSize);
      MemBytes mb;
      mb.addr = lo;
      for (uint64_t a = lo; a < hi; ++a) mb.data.push_back(p.bytes[a - p.addr]);
      e.mem.push_back(std::move(mb));
      i = end;
    }
  }
  return e;
}

std::vector<std::string> ExpandCorpusPaths(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (!std::filesystem::is_directory(path, ec)) {
      files.push_back(path);
      continue;
    }
    std::vector<std::string> in_dir;
    for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
      if (e.path().extension() == ".jsonl") in_dir.push_back(e.path().string());
    }
    std::sort(in_dir.begin(), in_dir.end());
    files.insert(files.end(), in_dir.begin(), in_dir.end());
  }
  return files;
}

}  // namespace cpudiff

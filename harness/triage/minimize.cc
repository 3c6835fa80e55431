#include "harness/triage/minimize.h"

#include <Zydis/Zydis.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "engines/engine.h"
#include "engines/x86/zydis_decoder.h"
#include "harness/compare/compare.h"
#include "harness/corpus/corpus.h"
#include "harness/triage/known.h"
#include "harness/triage/rootcause.h"
#include "reports/report.h"
#include "reports/table.h"

namespace cpudiff {
namespace {

constexpr int kOk = 0;
constexpr int kDiffers = 1;
constexpr int kBadInput = 2;

struct Loaded {
  std::unique_ptr<Store> store;
  int64_t run_id = 0;
  StoredCase stored;
  TestCase tc;
  std::string reference;
  std::vector<std::string> engines;  // the run's engines, reference first
  bool strict = false;
};

Loaded Load(const std::string& db, int64_t run_id, const std::string& key) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(db, ec)) {
    throw std::runtime_error(db + ": no such database");
  }
  Loaded l;
  l.store = Store::Open(db);
  if (run_id > 0) {
    if (!l.store->GetRun(run_id))
      throw std::runtime_error(db + ": no run " + std::to_string(run_id));
    l.run_id = run_id;
  } else {
    std::optional<RunInfo> last = l.store->LatestRun();
    if (!last) throw std::runtime_error(db + ": the database holds no run yet");
    l.run_id = last->id;
  }
  std::optional<StoredCase> c = l.store->FindCase(key);
  if (!c) throw std::runtime_error(db + ": no case '" + key + "'");
  l.stored = *c;
  std::optional<TestCase> tc = l.store->LoadCase(c->id);
  if (!tc) throw std::runtime_error(db + ": case " + key + " cannot be rebuilt from the store");
  l.tc = *tc;
  nlohmann::json config =
      nlohmann::json::parse(l.store->GetRun(l.run_id)->config, nullptr, /*allow_exceptions=*/false);
  if (config.is_object()) {
    l.reference = config.value("reference", "");
    l.strict = config.value("strict", false);
    if (config.contains("engines") && config["engines"].is_array()) {
      for (const auto& e : config["engines"]) {
        if (e.is_string()) l.engines.push_back(e.get<std::string>());
      }
    }
  }
  if (l.reference.empty()) l.reference = "native";
  return l;
}

std::unique_ptr<Engine> CreateEngine(const std::string& name, const EngineOptions& options) {
  const EngineDesc* d = FindEngine(name);
  if (!d) throw std::runtime_error("no engine '" + name + "'");
  Availability a = d->probe();
  if (!a.available) throw std::runtime_error(name + " is not available here: " + a.reason);
  return d->create(options);
}

RunResult RunOne(Engine& e, const TestCase& tc) {
  const TestCase* cases[1] = {&tc};
  RunResult results[1];
  e.Run(cases, results);
  return results[0];
}

// The signatures two engines' results on a case give, as a campaign records
// them (the reference side first).
std::set<std::string> Signatures(const TestCase& tc, const RunResult& ref, const RunResult& other,
                                 const std::string& ref_name, const std::string& other_name,
                                 const CompareOptions& opts) {
  std::set<std::string> sigs;
  if (ref.outcome.kind == OutcomeKind::kUnsupported ||
      other.outcome.kind == OutcomeKind::kUnsupported) {
    return sigs;
  }
  for (const Mismatch& m : CompareResults(tc, ref, other, opts)) {
    sigs.insert(Signature(m, ref_name, other_name));
  }
  return sigs;
}

TestCase WithInstructions(const TestCase& base,
                          const std::vector<std::pair<size_t, size_t>>& bounds,
                          const std::vector<size_t>& keep) {
  TestCase tc = base;
  tc.code.clear();
  for (size_t i : keep) {
    auto [off, len] = bounds[i];
    tc.code.insert(tc.code.end(), base.code.begin() + off, base.code.begin() + off + len);
  }
  tc.expect.reset();
  return tc;
}

}  // namespace

std::vector<std::pair<size_t, size_t>> InstructionBounds(const std::vector<uint8_t>& code) {
  const ZydisDecoder& decoder = LongModeDecoder();
  std::vector<std::pair<size_t, size_t>> bounds;
  size_t off = 0;
  while (off < code.size()) {
    ZydisDecodedInstruction in;
    size_t len = 1;
    if (ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&decoder, nullptr, code.data() + off,
                                                   code.size() - off, &in))) {
      len = in.length;
    }
    bounds.emplace_back(off, len);
    off += len;
  }
  return bounds;
}

std::vector<size_t> DeltaDebug(std::vector<size_t> keep,
                               const std::function<bool(const std::vector<size_t>&)>& shows,
                               const std::function<bool()>& go_on) {
  size_t n = 2;
  while (keep.size() >= 2 && (!go_on || go_on())) {
    size_t chunk = (keep.size() + n - 1) / n;
    bool reduced = false;
    for (size_t from = 0; from < keep.size() && (!go_on || go_on()); from += chunk) {
      std::vector<size_t> candidate;
      for (size_t i = 0; i < keep.size(); ++i) {
        if (i < from || i >= from + chunk) candidate.push_back(keep[i]);
      }
      if (candidate.empty()) continue;
      if (shows(candidate)) {
        keep = std::move(candidate);
        n = std::max<size_t>(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= keep.size()) break;
      n = std::min(n * 2, keep.size());
    }
  }
  return keep;
}

int RunMinimize(const MinimizeOptions& opts, std::ostream& out, std::ostream& err) {
  Loaded l;
  std::string signature = opts.signature;
  std::unique_ptr<Engine> ref_engine, other_engine;
  std::string ref_name, other_name;
  try {
    l = Load(opts.db_path, opts.run_id, opts.case_key);
    if (signature.empty()) {
      std::vector<StoredDivergence> divs = l.store->DivergencesForCase(l.run_id, l.stored.id);
      // Prefer a divergence between two engines: one against `expect`
      // cannot be re-checked on a changed case.
      for (const StoredDivergence& d : divs) {
        if (d.engine_a != "expect" && d.engine_b != "expect") {
          signature = d.signature;
          break;
        }
      }
      if (signature.empty()) {
        throw std::runtime_error("case " + opts.case_key + " has no divergence between two " +
                                 "engines in run " + std::to_string(l.run_id));
      }
    }
    SignatureParts p;
    if (!SplitSignature(signature, &p)) throw std::runtime_error("not a signature: " + signature);
    // A divergence from `expect` is re-checked against the run's reference
    // engine, the silicon the expectations come from.
    if (p.engine_a == "expect") p.engine_a = l.reference;
    if (p.engine_b == "expect") p.engine_b = l.reference;
    if (p.engine_b == l.reference) std::swap(p.engine_a, p.engine_b);
    ref_name = p.engine_a;
    other_name = p.engine_b;
    signature = p.insn + "|" + p.field + "|" + std::min(ref_name, other_name) + "~" +
                std::max(ref_name, other_name);
    EngineOptions eo;
    eo.timeout_ms = opts.timeout_ms;
    eo.max_instructions = opts.max_instructions;
    ref_engine = CreateEngine(ref_name, eo);
    other_engine = CreateEngine(other_name, eo);
  } catch (const std::exception& e) {
    err << "cpudiff minimize: " << e.what() << "\n";
    return kBadInput;
  }

  CompareOptions copts;
  copts.strict = l.strict;
  copts.observes_a = ref_engine->Observes();
  copts.observes_b = other_engine->Observes();
  int runs = 0;
  auto shows = [&](const TestCase& tc) {
    ++runs;
    RunResult a = RunOne(*ref_engine, tc);
    RunResult b = RunOne(*other_engine, tc);
    return Signatures(tc, a, b, ref_name, other_name, copts).count(signature) > 0;
  };

  TestCase best = l.tc;
  best.expect.reset();
  if (!shows(best)) {
    err << "cpudiff minimize: case " << l.stored.id << " does not show " << signature << " on "
        << ref_name << " and " << other_name << " when run again\n";
    return kDiffers;
  }
  out << "minimizing case " << l.stored.id << " (" << l.stored.name << ") for " << signature
      << "\n";

  // 1. Delta debugging (ddmin) over whole instructions.
  std::vector<std::pair<size_t, size_t>> bounds = InstructionBounds(best.code);
  std::vector<size_t> keep(bounds.size());
  for (size_t i = 0; i < keep.size(); ++i) keep[i] = i;
  keep = DeltaDebug(std::move(keep), [&](const std::vector<size_t>& candidate) {
    return shows(WithInstructions(l.tc, bounds, candidate));
  });
  best = WithInstructions(l.tc, bounds, keep);
  out << "  instructions: " << bounds.size() << " -> " << keep.size() << "\n";

  // 2. Registers, flags and MXCSR towards zero (or their defaults). rsp
  // stays: the stack region is where it points.
  const CpuState defaults;
  int simplified = 0;
  auto try_state = [&](auto&& change) {
    TestCase candidate = best;
    change(candidate.init);
    if (candidate.init == best.init) return false;
    if (!shows(candidate)) return false;
    best = candidate;
    ++simplified;
    return true;
  };
  for (int r = 0; r < 16; ++r) {
    if (r == kRsp) continue;
    if (!try_state([&](CpuState& s) { s.gpr[r] = 0; })) {
      if (!try_state([&](CpuState& s) { s.gpr[r] &= 0xffffffffull; })) {
        try_state([&](CpuState& s) { s.gpr[r] &= 0xffull; });
      }
    }
  }
  for (int x = 0; x < 16; ++x) {
    if (!try_state([&](CpuState& s) { s.xmm[x] = {}; })) {
      try_state([&](CpuState& s) { s.xmm[x].hi = 0; });
    }
  }
  try_state([&](CpuState& s) { s.rflags = defaults.rflags; });
  for (uint64_t flag :
       {kFlagCF, kFlagPF, kFlagAF, kFlagZF, kFlagSF, kFlagDF, kFlagOF, kFlagAC, kFlagID}) {
    try_state([&](CpuState& s) { s.rflags &= ~flag; });
  }
  try_state([&](CpuState& s) { s.mxcsr = defaults.mxcsr; });
  try_state([&](CpuState& s) { s.fs_base = 0; });
  try_state([&](CpuState& s) { s.gs_base = 0; });

  // 3. Memory contents towards zero: a whole region, else halves down to
  // 8 bytes, descending only into ranges that hold a non-zero byte.
  for (size_t r = 0; r < best.mem.size(); ++r) {
    auto zero_range = [&](size_t from, size_t to) {
      TestCase candidate = best;
      std::vector<uint8_t>& d = candidate.mem[r].data;
      to = std::min(to, d.size());
      if (from >= to) return false;
      if (std::all_of(d.begin() + from, d.begin() + to, [](uint8_t b) { return b == 0; })) {
        return false;
      }
      std::fill(d.begin() + from, d.begin() + to, 0);
      while (!d.empty() && d.back() == 0) d.pop_back();
      if (!shows(candidate)) return false;
      best = candidate;
      ++simplified;
      return true;
    };
    std::vector<std::pair<size_t, size_t>> work = {{0, best.mem[r].data.size()}};
    while (!work.empty()) {
      auto [from, to] = work.back();
      work.pop_back();
      const std::vector<uint8_t>& d = best.mem[r].data;
      if (from >= std::min(to, d.size())) continue;
      if (zero_range(from, to)) continue;
      if (to - from <= 8) continue;
      size_t mid = from + (to - from) / 2;
      work.push_back({mid, to});
      work.push_back({from, mid});
    }
  }
  out << "  state simplifications kept: " << simplified << " (" << runs << " runs of " << ref_name
      << " and " << other_name << ")\n";

  // The minimized case with the reference's end state as its expect, ready
  // for a regression corpus.
  RunResult ref_end = RunOne(*ref_engine, best);
  best.expect = ExpectFromResult(best, ref_end);
  best.name =
      (l.stored.name.empty() ? "case-" + std::to_string(l.stored.id) : l.stored.name) + "-min";
  best.source.clear();
  best.tags.push_back("minimized");
  best.tags.push_back(signature);
  out << "  minimized code:\n";
  for (const std::string& line : Disassemble(best)) out << "    " << line << "\n";
  std::string line = WriteCaseLine(best);
  if (opts.output.empty()) {
    out << line << "\n";
  } else {
    std::ofstream f(opts.output, std::ios::app);
    if (!f || !(f << line << "\n")) {
      err << "cpudiff minimize: " << opts.output << ": cannot write\n";
      return kBadInput;
    }
    out << "  appended to " << opts.output << "\n";
  }
  return kOk;
}

int RunLockstep(const LockstepOptions& opts, std::ostream& out, std::ostream& err) {
  Loaded l;
  std::vector<std::string> names;
  std::vector<std::unique_ptr<Engine>> engines;
  try {
    l = Load(opts.db_path, opts.run_id, opts.case_key);
    std::vector<std::string> wanted = opts.engines.empty() ? l.engines : opts.engines;
    if (std::find(wanted.begin(), wanted.end(), l.reference) == wanted.end()) {
      wanted.insert(wanted.begin(), l.reference);
    }
    std::stable_partition(wanted.begin(), wanted.end(),
                          [&](const std::string& e) { return e == l.reference; });
    EngineOptions eo;
    eo.timeout_ms = opts.timeout_ms;
    eo.max_instructions = opts.max_instructions;
    for (const std::string& name : wanted) {
      const EngineDesc* d = FindEngine(name);
      if (!d) throw std::runtime_error("no engine '" + name + "'");
      Availability a = d->probe();
      if (!a.available) {
        if (name == l.reference)
          throw std::runtime_error(name + " is not available here: " + a.reason);
        out << "(" << name << " skipped: " << a.reason << ")\n";
        continue;
      }
      names.push_back(name);
      engines.push_back(d->create(eo));
    }
    if (engines.size() < 2) throw std::runtime_error("lockstep needs two engines that run here");
  } catch (const std::exception& e) {
    err << "cpudiff show --lockstep: " << e.what() << "\n";
    return kBadInput;
  }

  std::vector<std::pair<size_t, size_t>> bounds = InstructionBounds(l.tc.code);
  std::vector<std::string> disasm = Disassemble(l.tc);
  // Prefix k runs the first k instructions and halts at a HLT written over
  // the next one (InstructionPrefixes).
  std::vector<TestCase> prefixes = InstructionPrefixes(l.tc);
  std::vector<const TestCase*> ptrs;
  for (const TestCase& t : prefixes) ptrs.push_back(&t);
  std::vector<std::vector<RunResult>> results(engines.size());
  for (size_t e = 0; e < engines.size(); ++e) {
    results[e].resize(prefixes.size());
    engines[e]->Run(ptrs, results[e]);
  }

  out << "lockstep of case " << l.stored.id << " (" << l.stored.name << "), " << bounds.size()
      << " instructions, reference " << names[0] << ":\n";
  CompareOptions copts;
  copts.strict = l.strict;
  copts.observes_a = engines[0]->Observes();
  int status = kOk;
  for (size_t e = 1; e < engines.size(); ++e) {
    copts.observes_b = engines[e]->Observes();
    bool found = false;
    for (size_t k = 0; k < prefixes.size() && !found; ++k) {
      const RunResult& a = results[0][k];
      const RunResult& b = results[e][k];
      if (a.outcome.kind == OutcomeKind::kUnsupported ||
          b.outcome.kind == OutcomeKind::kUnsupported) {
        continue;
      }
      std::vector<Mismatch> ms = CompareResults(prefixes[k], a, b, copts);
      if (ms.empty()) continue;
      found = true;
      status = kDiffers;
      out << "\n"
          << names[e] << " first differs from " << names[0] << " after instruction #" << k << ": "
          << (k < disasm.size() ? disasm[k] : std::string("?")) << "\n";
      TextTable t({"field", names[0], names[e]});
      for (const Mismatch& m : ms) t.AddRow({m.field, m.a, m.b});
      t.Print(out);
      // Both end states in full for the registers that are not at zero.
      TextTable s({"", names[0], names[e], ""});
      s.AddRow({"outcome", FormatOutcome(a.outcome), FormatOutcome(b.outcome),
                a.outcome.SameAs(b.outcome) ? "" : "*"});
      for (int reg = 0; reg < kNumRegisters; ++reg) {
        RegValue va = ReadReg(a.state, reg), vb = ReadReg(b.state, reg);
        if (va == RegValue{} && vb == RegValue{}) continue;
        s.AddRow({std::string(Registers()[reg].name), FormatReg(reg, va), FormatReg(reg, vb),
                  va == vb ? "" : "*"});
      }
      out << "end states after instruction #" << k << " (* = differs):\n";
      s.Print(out);
    }
    if (!found) out << "\n" << names[e] << " agrees with " << names[0] << " after every prefix\n";
  }
  return status;
}

}  // namespace cpudiff

// Text and JSON reports. Everything here is read from the store (the case is
// rebuilt with Store::LoadCase), so a report can be written on any machine
// from the database file alone.
#include "reports/report.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "harness/compare/compare.h"
#include "harness/corpus/corpus.h"
#include "reports/table.h"
#include "reports/view.h"

namespace cpudiff {
namespace report_view {

// Memory rows shown per case: a case that rewrites a whole region would
// otherwise print thousands of lines.
constexpr size_t kMaxMemRows = 64;
constexpr uint64_t kMemRowBytes = 8;

// The status flags set in an RFLAGS value, for reading flag rows.
std::string MarkupEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string FlagNames(uint64_t rflags) {
  static constexpr std::pair<uint64_t, const char*> kFlags[] = {
      {kFlagCF, "CF"}, {kFlagPF, "PF"}, {kFlagAF, "AF"}, {kFlagZF, "ZF"}, {kFlagSF, "SF"},
      {kFlagDF, "DF"}, {kFlagOF, "OF"}, {kFlagAC, "AC"}, {kFlagID, "ID"}};
  std::string s;
  for (const auto& [bit, name] : kFlags) {
    if (rflags & bit) {
      if (!s.empty()) s += ' ';
      s += name;
    }
  }
  return s.empty() ? "-" : s;
}

// An engine's end state is meaningful only when the run ended in the case
// (halt, fault, syscall); for the others only the outcome is shown, as the
// comparer compares only the outcome then.
bool HasEndState(const Outcome& o) {
  return o.kind == OutcomeKind::kHalt || o.kind == OutcomeKind::kFault ||
         o.kind == OutcomeKind::kSyscall;
}

bool RegDiffers(int reg, RegValue a, RegValue b) {
  uint64_t mask = Registers()[reg].mask;
  return ((a.lo ^ b.lo) & mask) != 0 || ((a.hi ^ b.hi) & mask) != 0;
}

std::string FormatExpectOutcome(const ExpectOutcome& e) { return FormatOutcome(e.ToOutcome()); }

Json ParseJson(const std::string& text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? Json(text) : j;
}

// The reference engine of a run, from its config ({"reference": "..."}).
std::string RunReference(const std::optional<RunInfo>& run) {
  if (!run) return {};
  Json config = ParseJson(run->config);
  if (config.is_object() && config.contains("reference") && config["reference"].is_string()) {
    return config["reference"].get<std::string>();
  }
  return {};
}

// ---- One case, computed once for the text and JSON writers ---------------

CaseView BuildCaseView(Store& store, int64_t run_id, const StoredCase& c,
                       const std::string& reference) {
  CaseView v;
  v.stored = c;
  v.tc = store.LoadCase(c.id);
  // Campaigns store no corpus line (it is rebuilt from the raw columns):
  // writing one per stored case cost more than storing the case.
  if (v.stored.line.empty() && v.tc) v.stored.line = WriteCaseLine(*v.tc);
  v.results = store.ResultsForCase(run_id, c.id);
  v.divergences = store.DivergencesForCase(run_id, c.id);
  v.reference = reference;
  for (size_t i = 0; i < v.results.size(); ++i) {
    if (v.results[i].engine == reference) v.ref = static_cast<int>(i);
  }
  if (v.ref < 0 && !v.results.empty()) {
    // The configured reference did not run this case (or the run has no
    // config): the first engine that did stands in.
    v.ref = 0;
    v.reference = v.results[0].engine;
  }
  if (!v.tc) return v;
  const TestCase& tc = *v.tc;
  v.disassembly = Disassemble(tc);

  // Outcome row.
  const RunResult* ref = v.ref >= 0 ? &v.results[v.ref].result : nullptr;
  for (const StoredResult& sr : v.results) {
    v.outcomes.push_back(FormatOutcome(sr.result.outcome));
    if (ref && !sr.result.outcome.SameAs(ref->outcome)) v.outcome_differs = true;
  }
  if (tc.expect && tc.expect->outcome) v.outcome_expect = FormatExpectOutcome(*tc.expect->outcome);

  // Register rows: every register that is not at its default anywhere, or
  // differs between engines.
  const CpuState defaults;
  for (int reg = 0; reg < kNumRegisters; ++reg) {
    RegRow row;
    row.reg = reg;
    row.name = std::string(Registers()[reg].name);
    RegValue init = ReadReg(tc.init, reg);
    RegValue dflt = ReadReg(defaults, reg);
    bool interesting = init != dflt;
    row.initial = FormatReg(reg, init);
    if (tc.expect) {
      for (const auto& [ereg, ev] : tc.expect->regs) {
        if (ereg == reg) {
          row.expect = FormatReg(reg, ev);
          interesting = true;
        }
      }
    }
    bool ref_has_state = ref && HasEndState(ref->outcome);
    RegValue ref_value = ref_has_state ? ReadReg(ref->state, reg) : RegValue{};
    for (const StoredResult& sr : v.results) {
      if (!HasEndState(sr.result.outcome)) {
        row.values.push_back("-");
        continue;
      }
      RegValue val = ReadReg(sr.result.state, reg);
      row.values.push_back(FormatReg(reg, val));
      if (val != dflt) interesting = true;
      if (ref_has_state && RegDiffers(reg, ref_value, val)) row.differs = true;
    }
    if (interesting || row.differs) v.regs.push_back(std::move(row));
  }

  // Memory rows: 8-byte chunks of writable regions where some engine's
  // final bytes differ from the initial bytes or from the reference.
  std::set<uint64_t> pages;
  for (const StoredResult& sr : v.results) {
    if (!HasEndState(sr.result.outcome)) continue;
    for (const PageImage& p : sr.result.pages) pages.insert(p.addr);
  }
  for (uint64_t page : pages) {
    for (uint64_t a = page; a < page + kPageSize; a += kMemRowBytes) {
      std::vector<uint8_t> init(kMemRowBytes);
      bool mapped = true;
      for (uint64_t k = 0; k < kMemRowBytes; ++k) {
        const MemRegion* region = nullptr;
        for (const MemRegion& m : tc.mem) {
          if (m.Contains(a + k)) region = &m;
        }
        if (!region) {
          mapped = false;
          break;
        }
        init[k] = region->InitialByte(a + k);
      }
      if (!mapped) continue;
      MemRow row;
      row.addr = a;
      row.initial = HexBytes(init);
      std::vector<uint8_t> ref_bytes;
      bool ref_has_state = ref && HasEndState(ref->outcome);
      if (ref_has_state) {
        ref_bytes.resize(kMemRowBytes);
        for (uint64_t k = 0; k < kMemRowBytes; ++k) FinalByte(tc, *ref, a + k, &ref_bytes[k]);
      }
      bool changed = false;
      for (const StoredResult& sr : v.results) {
        if (!HasEndState(sr.result.outcome)) {
          row.values.push_back("-");
          continue;
        }
        std::vector<uint8_t> bytes(kMemRowBytes);
        for (uint64_t k = 0; k < kMemRowBytes; ++k) FinalByte(tc, sr.result, a + k, &bytes[k]);
        row.values.push_back(HexBytes(bytes));
        if (bytes != init) changed = true;
        if (ref_has_state && bytes != ref_bytes) row.differs = true;
      }
      if (!changed && !row.differs) continue;
      ++v.mem_rows_total;
      if (v.mem.size() < kMaxMemRows) v.mem.push_back(std::move(row));
    }
  }
  return v;
}

// ---- Text ------------------------------------------------------------------

void WriteCaseViewText(const CaseView& v, int64_t run_id, std::ostream& out) {
  const StoredCase& c = v.stored;
  char hash[24];
  std::snprintf(hash, sizeof hash, "%016" PRIx64, c.hash);
  out << "case " << c.id << " (hash " << hash << ")";
  if (!c.name.empty()) out << ": " << c.name;
  out << "\n";
  TextTable info;
  if (!c.source.empty()) info.AddRow({"source", c.source});
  if (v.tc && !v.tc->generator.empty()) {
    info.AddRow({"generator", v.tc->generator + ", seed " + Hex64(v.tc->seed)});
  }
  if (v.tc && !v.tc->tags.empty()) {
    std::string tags;
    for (const std::string& t : v.tc->tags) tags += (tags.empty() ? "" : ", ") + t;
    info.AddRow({"tags", tags});
  }
  info.Print(out);
  if (!v.tc) {
    out << "  (the case's fields are not in the store; its corpus line:)\n  " << c.line << "\n";
    return;
  }
  const TestCase& tc = *v.tc;

  out << "\ncode at " << Hex64(tc.code_addr) << " (" << tc.code.size() << " bytes):\n";
  if (v.disassembly.empty()) {
    out << "  " << HexBytes(tc.code) << "  (no disassembly)\n";
  }
  for (const std::string& line : v.disassembly) out << "  " << line << "\n";

  out << "\ninitial registers (non-zero):\n";
  TextTable init;
  for (int reg = 0; reg < kNumRegisters; ++reg) {
    RegValue val = ReadReg(tc.init, reg);
    if (val == RegValue{}) continue;
    std::string text = FormatReg(reg, val);
    if (reg == kRegRflags) text += "  " + FlagNames(val.lo);
    init.AddRow({std::string(Registers()[reg].name), text});
  }
  init.Print(out);
  if (!tc.mem.empty()) {
    out << "memory regions:\n";
    TextTable regions;
    for (const MemRegion& m : tc.mem) {
      size_t n = m.data.size();
      while (n > 0 && m.data[n - 1] == 0) --n;
      regions.AddRow({Hex64(m.addr), std::to_string(m.size) + " bytes", PermString(m.perm),
                      n ? std::to_string(n) + " bytes of data" : "zero"});
    }
    regions.Print(out);
  }

  if (v.results.empty()) {
    out << "\nno results for this case in run " << run_id << "\n";
  } else {
    out << "\nend states (run " << run_id << ", reference " << v.reference
        << "; * = differs from the reference):\n";
    std::vector<std::string> header = {"", "initial"};
    bool with_expect = tc.expect.has_value();
    if (with_expect) header.push_back("expect");
    for (const StoredResult& sr : v.results) header.push_back(sr.engine);
    header.push_back("");
    TextTable t(header);
    auto row = [&](const std::string& name, const std::string& initial, const std::string& expect,
                   const std::vector<std::string>& values, bool differs) {
      std::vector<std::string> cells = {name, initial};
      if (with_expect) cells.push_back(expect.empty() ? "" : expect);
      cells.insert(cells.end(), values.begin(), values.end());
      cells.push_back(differs ? "*" : "");
      t.AddRow(std::move(cells));
    };
    row("outcome", "", v.outcome_expect, v.outcomes, v.outcome_differs);
    for (const RegRow& r : v.regs) {
      row(r.name, r.initial, r.expect, r.values, r.differs);
      if (r.reg == kRegRflags) {
        std::vector<std::string> flags;
        for (const StoredResult& sr : v.results) {
          flags.push_back(HasEndState(sr.result.outcome) ? FlagNames(sr.result.state.rflags) : "-");
        }
        uint64_t exp = 0;
        bool has_exp = false;
        if (with_expect) {
          for (const auto& [ereg, ev] : tc.expect->regs) {
            if (ereg == kRegRflags) {
              exp = ev.lo;
              has_exp = true;
            }
          }
        }
        row("  flags", FlagNames(tc.init.rflags), has_exp ? FlagNames(exp) : "", flags, r.differs);
      }
    }
    t.Print(out);

    if (!v.mem.empty()) {
      out << "\nmemory (8-byte rows that changed or differ; * = differs from the reference):\n";
      std::vector<std::string> mheader = {"address", "initial"};
      for (const StoredResult& sr : v.results) mheader.push_back(sr.engine);
      mheader.push_back("");
      TextTable m(mheader);
      for (const MemRow& r : v.mem) {
        std::vector<std::string> cells = {Hex64(r.addr), r.initial};
        cells.insert(cells.end(), r.values.begin(), r.values.end());
        cells.push_back(r.differs ? "*" : "");
        m.AddRow(std::move(cells));
      }
      m.Print(out);
      if (v.mem_rows_total > v.mem.size()) {
        out << "  ... " << (v.mem_rows_total - v.mem.size()) << " more rows\n";
      }
    }
  }

  if (!v.divergences.empty()) {
    out << "\ndivergences (" << v.divergences.size() << "):\n";
    TextTable d({"engines", "field", "value a", "value b", "instruction", "signature"});
    for (const StoredDivergence& div : v.divergences) {
      std::string insn =
          div.mismatch.insn_index >= 0
              ? "#" + std::to_string(div.mismatch.insn_index) + " " + div.mismatch.insn_form
              : div.mismatch.insn_form;
      d.AddRow({div.engine_a + " vs " + div.engine_b, div.mismatch.field, div.mismatch.a,
                div.mismatch.b, insn, div.signature});
    }
    d.Print(out);
  }
  out << "\ncorpus line:\n  " << c.line << "\n";
}

// ---- JSON ------------------------------------------------------------------

Json CaseViewJson(const CaseView& v) {
  const StoredCase& c = v.stored;
  char hash[24];
  std::snprintf(hash, sizeof hash, "%016" PRIx64, c.hash);
  Json j;
  j["id"] = c.id;
  j["hash"] = hash;
  j["name"] = c.name;
  j["source"] = c.source;
  j["line"] = c.line;
  if (v.tc) {
    const TestCase& tc = *v.tc;
    j["generator"] = tc.generator;
    j["seed"] = Hex64(tc.seed);
    j["tags"] = tc.tags;
    j["code_addr"] = Hex64(tc.code_addr);
    j["code"] = HexBytes(tc.code);
    j["disassembly"] = v.disassembly;
    Json init = Json::object();
    for (int reg = 0; reg < kNumRegisters; ++reg) {
      RegValue val = ReadReg(tc.init, reg);
      if (val != RegValue{}) init[std::string(Registers()[reg].name)] = FormatReg(reg, val);
    }
    j["initial"] = init;
    Json regions = Json::array();
    for (const MemRegion& m : tc.mem) {
      regions.push_back({{"addr", Hex64(m.addr)}, {"size", m.size}, {"perm", PermString(m.perm)}});
    }
    j["regions"] = regions;
  }
  j["reference"] = v.reference;
  Json ends = Json::object();
  for (size_t e = 0; e < v.results.size(); ++e) {
    const StoredResult& sr = v.results[e];
    Json end;
    end["outcome"] = FormatOutcome(sr.result.outcome);
    end["outcome_kind"] = std::string(OutcomeKindName(sr.result.outcome.kind));
    end["ns"] = sr.result.ns;
    Json regs = Json::object();
    for (const RegRow& r : v.regs) {
      if (r.values[e] != "-") regs[r.name] = r.values[e];
    }
    end["regs"] = regs;
    ends[sr.engine] = end;
  }
  j["end_states"] = ends;
  Json differing = Json::array();
  if (v.outcome_differs) differing.push_back("outcome");
  for (const RegRow& r : v.regs) {
    if (r.differs) differing.push_back(r.name);
  }
  j["differs_from_reference"] = differing;
  Json mem = Json::array();
  for (const MemRow& r : v.mem) {
    Json row;
    row["addr"] = Hex64(r.addr);
    row["initial"] = r.initial;
    Json vals = Json::object();
    for (size_t e = 0; e < v.results.size(); ++e) vals[v.results[e].engine] = r.values[e];
    row["final"] = vals;
    row["differs"] = r.differs;
    mem.push_back(row);
  }
  j["memory_diff"] = mem;
  j["memory_diff_rows"] = v.mem_rows_total;
  Json divs = Json::array();
  for (const StoredDivergence& d : v.divergences) {
    divs.push_back({{"engine_a", d.engine_a},
                    {"engine_b", d.engine_b},
                    {"field_kind", std::string(FieldKindName(d.mismatch.kind))},
                    {"field", d.mismatch.field},
                    {"a", d.mismatch.a},
                    {"b", d.mismatch.b},
                    {"insn_index", d.mismatch.insn_index},
                    {"insn_form", d.mismatch.insn_form},
                    {"signature", d.signature}});
  }
  j["divergences"] = divs;
  return j;
}

// ---- Run summary -----------------------------------------------------------

Summary BuildSummary(Store& store, int64_t run_id, const KnownList* known,
                     const std::set<std::string>* baseline) {
  Summary s;
  s.run = store.GetRun(run_id);
  if (!s.run) throw std::runtime_error(store.Path() + ": no run " + std::to_string(run_id));
  s.reference = RunReference(s.run);
  s.config = ParseJson(s.run->config);
  s.versions = ParseJson(s.run->engine_versions);
  s.cases = store.CountCases(run_id);
  s.cases_done = store.CountCasesDone(run_id);
  s.divergences = store.CountDivergences(run_id);
  s.divergent_cases = store.CountDivergentCases(run_id);
  // Engines in the run's configured order, then any others that have results.
  if (s.config.is_object() && s.config.contains("engines") && s.config["engines"].is_array()) {
    for (const auto& e : s.config["engines"]) {
      if (e.is_string()) s.engines.push_back(e.get<std::string>());
    }
  }
  std::set<std::string> labels;
  for (const OutcomeCount& c : store.OutcomeCounts(run_id)) {
    if (std::find(s.engines.begin(), s.engines.end(), c.engine) == s.engines.end()) {
      s.engines.push_back(c.engine);
    }
    s.counts[c.engine][c.outcome] += c.count;
    labels.insert(c.outcome);
  }
  s.labels.assign(labels.begin(), labels.end());
  s.signatures = store.RunSignatures(run_id);
  for (SignatureRow& r : s.signatures) {
    const KnownEntry* k = known ? known->Match(r.signature) : nullptr;
    // The known list is the source of truth for "known"; a status recorded
    // in the store is shown as it is.
    if (k) r.status = "known";
    s.known_by.push_back(k);
    s.in_baseline.push_back(baseline && baseline->count(r.signature));
    if (IsNew(s, s.known_by.size() - 1)) ++s.new_signatures;
  }
  return s;
}

bool IsNew(const Summary& s, size_t i) {
  // Only the known list (data with reasons, under review) and the baseline
  // decide: a status set by hand in one database does not excuse anything.
  return !s.known_by[i] && !s.in_baseline[i];
}

std::string EngineUnderTest(const Summary& s, const SignatureRow& r) {
  auto is_ref = [&](const std::string& e) { return e == "expect" || e == s.reference; };
  if (is_ref(r.engine_a) && !is_ref(r.engine_b)) return r.engine_b;
  if (is_ref(r.engine_b) && !is_ref(r.engine_a)) return r.engine_a;
  return r.engine_b;
}

std::string ExampleDifference(Store& store, int64_t run_id, const SignatureRow& r) {
  for (const StoredDivergence& d : store.DivergencesForCase(run_id, r.example_case)) {
    if (d.signature == r.signature) {
      return d.mismatch.field + ": " + d.engine_a + " " + d.mismatch.a + ", " + d.engine_b + " " +
             d.mismatch.b;
    }
  }
  return "";
}

std::string EngineVersion(const Summary& s, const std::string& engine) {
  if (s.versions.is_object() && s.versions.contains(engine)) {
    const Json& v = s.versions[engine];
    return v.is_string() ? v.get<std::string>() : v.dump();
  }
  return "";
}

}  // namespace report_view

using report_view::BuildCaseView;
using report_view::BuildSummary;
using report_view::CaseView;
using report_view::CaseViewJson;
using report_view::EngineVersion;
using report_view::Json;
using report_view::RunReference;
using report_view::Summary;
using report_view::WriteCaseViewText;

void WriteCaseDetails(Store& store, int64_t run_id, const StoredCase& c, std::ostream& out) {
  CaseView v = BuildCaseView(store, run_id, c, RunReference(store.GetRun(run_id)));
  WriteCaseViewText(v, run_id, out);
}

void WriteCaseDetailsJson(Store& store, int64_t run_id, const StoredCase& c, std::ostream& out) {
  CaseView v = BuildCaseView(store, run_id, c, RunReference(store.GetRun(run_id)));
  out << CaseViewJson(v).dump(2) << "\n";
}

void WriteTextReport(Store& store, int64_t run_id, std::ostream& out, size_t max_examples,
                     const KnownList* known) {
  Summary s = BuildSummary(store, run_id, known);
  const RunInfo& run = *s.run;
  out << "cpudiff report: run " << run.id << " (" << run.status << ")\n";
  TextTable info;
  info.AddRow({"started", run.started});
  info.AddRow({"reference", s.reference.empty() ? "(not recorded)" : s.reference});
  std::string engines;
  for (const std::string& e : s.engines) {
    std::string version = EngineVersion(s, e);
    engines += (engines.empty() ? "" : ", ") + e + (version.empty() ? "" : " (" + version + ")");
  }
  info.AddRow({"engines", engines.empty() ? "-" : engines});
  info.AddRow({"host CPU", run.host_cpu.empty() ? "-" : run.host_cpu});
  info.AddRow({"git rev", run.git_rev.empty() ? "-" : run.git_rev});
  if (s.config.is_object() && s.config.contains("command") && s.config["command"].is_string()) {
    info.AddRow({"command", s.config["command"].get<std::string>()});
  }
  info.AddRow({"database", store.Path()});
  info.Print(out);

  out << "\ncases: " << s.cases << " (" << s.cases_done << " done)\n";
  if (!s.engines.empty()) {
    out << "results by outcome:\n";
    std::vector<std::string> header = {"engine"};
    header.insert(header.end(), s.labels.begin(), s.labels.end());
    header.push_back("total");
    TextTable t(header);
    for (size_t i = 1; i < header.size(); ++i) t.AlignRight(i);
    for (const std::string& e : s.engines) {
      std::vector<std::string> row = {e};
      int64_t total = 0;
      for (const std::string& l : s.labels) {
        auto it = s.counts[e].find(l);
        int64_t n = it == s.counts[e].end() ? 0 : it->second;
        total += n;
        row.push_back(std::to_string(n));
      }
      row.push_back(std::to_string(total));
      t.AddRow(std::move(row));
    }
    t.Print(out);
  }
  out << "divergences: " << s.divergences << " in " << s.divergent_cases << " cases, "
      << s.signatures.size() << " signatures";
  if (known) {
    out << " (" << s.new_signatures << " new, " << (s.signatures.size() - s.new_signatures)
        << " known)";
  }
  out << "\n";

  if (s.signatures.empty()) return;
  out << "\nsignatures (most frequent first):\n";
  TextTable sigs({"#", "count", "cases", "status", "field", "engines", "instruction", "signature"});
  sigs.AlignRight(0);
  sigs.AlignRight(1);
  sigs.AlignRight(2);
  for (size_t i = 0; i < s.signatures.size(); ++i) {
    const SignatureRow& r = s.signatures[i];
    std::string status = r.status;
    if (s.known_by[i]) status = "known: " + s.known_by[i]->id;
    if (r.first_run != run.id) status += " (since run " + std::to_string(r.first_run) + ")";
    sigs.AddRow({std::to_string(i + 1), std::to_string(r.count), std::to_string(r.cases), status,
                 r.field_kind, r.engine_a + " vs " + r.engine_b,
                 r.insn_form.empty() ? "?" : r.insn_form, r.signature});
  }
  sigs.Print(out);
  std::set<const KnownEntry*> reasons;
  for (const KnownEntry* k : s.known_by) {
    if (k && reasons.insert(k).second) {
      if (reasons.size() == 1) out << "\nknown divergences matched:\n";
      out << "  " << k->id << " (" << k->source << "): " << k->reason << "\n";
    }
  }

  // A case is often the example of several signatures (one per engine pair
  // or field): it is printed in full once and referred to afterwards.
  std::map<int64_t, size_t> shown;  // case id -> signature number
  const size_t examples = std::min(max_examples, s.signatures.size());
  for (size_t i = 0; i < examples; ++i) {
    const SignatureRow& r = s.signatures[i];
    out << "\n==== signature " << (i + 1) << "/" << s.signatures.size() << ": " << r.signature
        << " (" << r.count << " divergences in " << r.cases << " cases"
        << (s.known_by[i] ? ", known: " + s.known_by[i]->id : std::string()) << "); example:\n";
    if (auto it = shown.find(r.example_case); it != shown.end()) {
      out << "case " << r.example_case << ", shown under signature " << it->second << " above\n";
      continue;
    }
    shown[r.example_case] = i + 1;
    std::optional<StoredCase> c = store.GetCase(r.example_case);
    if (!c) {
      out << "  (case " << r.example_case << " is not in the database)\n";
      continue;
    }
    WriteCaseViewText(BuildCaseView(store, run_id, *c, s.reference), run_id, out);
  }
  if (examples < s.signatures.size()) {
    out << "\n(" << s.signatures.size() - examples
        << " more signatures without their example here: 'cpudiff report --examples N' shows more,"
           " 'cpudiff show CASE' one case)\n";
  }
}

void WriteJsonReport(Store& store, int64_t run_id, std::ostream& out, const KnownList* known) {
  Summary s = BuildSummary(store, run_id, known);
  const RunInfo& run = *s.run;
  Json j;
  j["format"] = "cpudiff-report";
  j["format_version"] = 1;
  j["database"] = store.Path();
  j["run"] = {{"id", run.id},           {"started", run.started},        {"status", run.status},
              {"git_rev", run.git_rev}, {"host_cpu", run.host_cpu},      {"reference", s.reference},
              {"engines", s.engines},   {"engine_versions", s.versions}, {"config", s.config}};
  Json results = Json::object();
  for (const std::string& e : s.engines) {
    Json per = Json::object();
    for (const std::string& l : s.labels) {
      auto it = s.counts[e].find(l);
      if (it != s.counts[e].end()) per[l] = it->second;
    }
    results[e] = per;
  }
  j["summary"] = {{"cases", s.cases},
                  {"cases_done", s.cases_done},
                  {"results", results},
                  {"divergences", s.divergences},
                  {"divergent_cases", s.divergent_cases},
                  {"signatures", s.signatures.size()},
                  {"new_signatures", s.new_signatures}};
  Json sigs = Json::array();
  for (size_t i = 0; i < s.signatures.size(); ++i) {
    const SignatureRow& r = s.signatures[i];
    Json sj = {{"signature", r.signature},
               {"count", r.count},
               {"cases", r.cases},
               {"status", r.status},
               {"first_run", r.first_run},
               {"field_kind", r.field_kind},
               {"insn_form", r.insn_form},
               {"engines", {r.engine_a, r.engine_b}},
               {"example_case", r.example_case}};
    if (const KnownEntry* k = s.known_by[i]) {
      sj["known"] = {{"id", k->id}, {"reason", k->reason}, {"source", k->source}};
    }
    if (std::optional<StoredCase> c = store.GetCase(r.example_case)) {
      sj["example"] = CaseViewJson(BuildCaseView(store, run_id, *c, s.reference));
    }
    sigs.push_back(sj);
  }
  j["signatures"] = sigs;
  out << j.dump(2) << "\n";
}

}  // namespace cpudiff

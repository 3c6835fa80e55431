// The HTML report: one self-contained file (inline CSS and SVG, no script,
// no external resource) that shows at a glance which engine disagrees with
// which, on what kind of instruction, at what cost, and the top signatures
// with their example cases laid out like `cpudiff show`.
#include <Zydis/Zydis.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "engines/x86/zydis_decoder.h"
#include "harness/compare/compare.h"
#include "reports/report.h"
#include "reports/view.h"

namespace cpudiff {
namespace {

using report_view::BuildCaseView;
using report_view::BuildSummary;
using report_view::CaseView;
using report_view::EngineUnderTest;
using report_view::ExampleDifference;
using report_view::IsNew;
using report_view::MarkupEscape;
using report_view::Summary;

constexpr size_t kTopSignatures = 25;

std::string Percent(int64_t num, int64_t den) {
  if (den == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * static_cast<double>(num) / den);
  return buf;
}

// Red (0% agreement) through yellow to green (100%).
std::string HeatColor(double agreement) {
  double t = std::clamp(agreement, 0.0, 1.0);
  // Most interesting differences are within a few percent of 100: stretch
  // the top of the scale so 99% and 90% look different.
  t = std::pow(t, 8.0);
  int hue = static_cast<int>(t * 120.0);
  char buf[48];
  std::snprintf(buf, sizeof buf, "hsl(%d,70%%,55%%)", hue);
  return buf;
}

// The instruction class (Zydis category: BINARY, LOGICAL, SSE, ...) of the
// instruction at `index` in decode order; "unattributed" when unknown.
std::string InstructionClass(const TestCase& tc, int index) {
  if (index < 0) return "unattributed";
  const ZydisDecoder& decoder = LongModeDecoder();
  size_t offset = 0;
  for (int i = 0; offset < tc.code.size(); ++i) {
    ZydisDecodedInstruction in;
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&decoder, nullptr, tc.code.data() + offset,
                                                    tc.code.size() - offset, &in))) {
      return "undecodable";
    }
    if (i == index) return ZydisCategoryGetString(in.meta.category);
    offset += in.length;
  }
  return "unattributed";
}

struct PairStats {
  int64_t compared = 0;
  int64_t agreed = 0;
};

struct EngineCost {
  int64_t cases = 0;
  int64_t measured = 0;
  uint64_t ns = 0;
  std::vector<uint64_t> samples;
};

struct Matrix {
  std::vector<std::string> engines;
  std::map<std::pair<size_t, size_t>, PairStats> pairs;
  std::map<std::string, EngineCost> cost;
  // class -> engine under test -> divergent cases
  std::map<std::string, std::map<std::string, int64_t>> by_class;
};

// Compares every pair of engines on every case of the run. The campaign
// records divergences against the reference only; the matrix needs them all.
Matrix BuildMatrix(Store& store, int64_t run_id, const Summary& s) {
  Matrix m;
  m.engines = s.engines;
  CompareOptions opts;
  if (s.config.is_object() && s.config.contains("strict") && s.config["strict"].is_boolean()) {
    opts.strict = s.config["strict"].get<bool>();
  }
  for (int64_t case_id : store.RunCaseIds(run_id)) {
    std::optional<TestCase> tc = store.LoadCase(case_id);
    if (!tc) continue;
    std::vector<StoredResult> results = store.ResultsForCase(run_id, case_id);
    std::vector<const RunResult*> by_engine(m.engines.size(), nullptr);
    for (const StoredResult& r : results) {
      auto it = std::find(m.engines.begin(), m.engines.end(), r.engine);
      if (it == m.engines.end()) continue;
      by_engine[it - m.engines.begin()] = &r.result;
      EngineCost& c = m.cost[r.engine];
      ++c.cases;
      if (r.result.ns) {
        ++c.measured;
        c.ns += r.result.ns;
        c.samples.push_back(r.result.ns);
      }
    }
    for (size_t a = 0; a < m.engines.size(); ++a) {
      for (size_t b = a + 1; b < m.engines.size(); ++b) {
        const RunResult* ra = by_engine[a];
        const RunResult* rb = by_engine[b];
        if (!ra || !rb || ra->outcome.kind == OutcomeKind::kUnsupported ||
            rb->outcome.kind == OutcomeKind::kUnsupported) {
          continue;
        }
        PairStats& p = m.pairs[{a, b}];
        ++p.compared;
        if (CompareResults(*tc, *ra, *rb, opts).empty()) ++p.agreed;
      }
    }
    // Divergent cases per instruction class and engine under test: the
    // class of the instruction the case's first divergence is attributed to.
    std::map<std::string, std::string> first_class;  // engine -> class
    for (const StoredDivergence& d : store.DivergencesForCase(run_id, case_id)) {
      SignatureRow r;
      r.engine_a = d.engine_a;
      r.engine_b = d.engine_b;
      std::string e = EngineUnderTest(s, r);
      if (!first_class.count(e)) first_class[e] = InstructionClass(*tc, d.mismatch.insn_index);
    }
    for (const auto& [e, cls] : first_class) m.by_class[cls][e]++;
  }
  return m;
}

void WriteStyle(std::ostream& out) {
  out << R"(<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #d0d7de;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
.new{background:#cf222e;color:#fff;border-radius:3px;padding:0 5px}.known{background:#6e7781;color:#fff;border-radius:3px;padding:0 5px}
.baseline{background:#9a6700;color:#fff;border-radius:3px;padding:0 5px}
tr.diff td{background:#ffebe9}td.star{color:#cf222e;font-weight:bold}
.muted{color:#57606a}.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;min-width:120px}.card b{display:block;font-size:22px}
details{margin:6px 0 14px}summary{cursor:pointer}pre{margin:4px 0;background:#f6f8fa;padding:6px}
td pre{white-space:pre-wrap;max-width:460px}td.why{max-width:380px;font-size:12px}
</style>
)";
}

void WriteHeatmap(const Matrix& m, const Summary& s, std::ostream& out) {
  const size_t n = m.engines.size();
  if (n < 2) {
    out << "<p class=\"muted\">One engine only: nothing to compare.</p>\n";
    return;
  }
  const int cell = 84, label = 90, top = 24;
  const int width = label + cell * static_cast<int>(n) + 10;
  const int height = top + cell * static_cast<int>(n) + 10;
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" role=\"img\" aria-label=\"engine agreement matrix\" font-family=\"sans-serif\" "
         "font-size=\"12\">\n";
  for (size_t i = 0; i < n; ++i) {
    int pos = label + cell * static_cast<int>(i) + cell / 2;
    out << "<text x=\"" << pos << "\" y=\"16\" text-anchor=\"middle\">"
        << MarkupEscape(m.engines[i]) << (m.engines[i] == s.reference ? " (ref)" : "")
        << "</text>\n";
    out << "<text x=\"" << label - 6 << "\" y=\"" << top + cell * static_cast<int>(i) + cell / 2 + 4
        << "\" text-anchor=\"end\">" << MarkupEscape(m.engines[i]) << "</text>\n";
  }
  for (size_t a = 0; a < n; ++a) {
    for (size_t b = 0; b < n; ++b) {
      int x = label + cell * static_cast<int>(b), y = top + cell * static_cast<int>(a);
      std::string fill = "#eaeef2", text = "-", title;
      if (a == b) {
        text = "";
      } else {
        auto it = m.pairs.find({std::min(a, b), std::max(a, b)});
        if (it != m.pairs.end() && it->second.compared > 0) {
          const PairStats& p = it->second;
          fill = HeatColor(static_cast<double>(p.agreed) / p.compared);
          text = Percent(p.agreed, p.compared);
          title = m.engines[a] + " vs " + m.engines[b] + ": " + std::to_string(p.agreed) + " of " +
                  std::to_string(p.compared) + " cases agree";
        }
      }
      out << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << cell - 2 << "\" height=\""
          << cell - 2 << "\" fill=\"" << fill << "\">";
      if (!title.empty()) out << "<title>" << MarkupEscape(title) << "</title>";
      out << "</rect>\n<text x=\"" << x + cell / 2 << "\" y=\"" << y + cell / 2 + 4
          << "\" text-anchor=\"middle\">" << MarkupEscape(text) << "</text>\n";
    }
  }
  out << "</svg>\n";
}

void WriteByClass(const Matrix& m, const Summary& s, std::ostream& out) {
  std::vector<std::string> engines;
  for (const std::string& e : m.engines) {
    if (e != s.reference) engines.push_back(e);
  }
  if (m.by_class.empty()) {
    out << "<p>No divergences.</p>\n";
    return;
  }
  int64_t max = 1;
  for (const auto& [cls, per] : m.by_class) {
    for (const auto& [e, n] : per) max = std::max(max, n);
  }
  out << "<table><tr><th>instruction class</th>";
  for (const std::string& e : engines) out << "<th>" << MarkupEscape(e) << "</th>";
  out << "</tr>\n";
  for (const auto& [cls, per] : m.by_class) {
    out << "<tr><td><code>" << MarkupEscape(cls) << "</code></td>";
    for (const std::string& e : engines) {
      auto it = per.find(e);
      int64_t v = it == per.end() ? 0 : it->second;
      int w = static_cast<int>(120.0 * static_cast<double>(v) / static_cast<double>(max));
      out << "<td class=\"n\"><svg width=\"124\" height=\"12\" aria-hidden=\"true\"><rect width=\""
          << w << "\" height=\"12\" fill=\"#cf222e\"/></svg> " << v << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</table>\n<p class=\"muted\">Divergent cases per engine, by the class (Zydis category) "
         "of the instruction the first divergence is attributed to.</p>\n";
}

void WriteEngines(const Matrix& m, const Summary& s, std::ostream& out) {
  out << "<table><tr><th>engine</th><th>version</th><th>cases</th><th>agrees with "
      << MarkupEscape(s.reference)
      << "</th><th>mean time per case</th><th>median</th><th>outcomes</th></tr>\n";
  for (size_t i = 0; i < m.engines.size(); ++i) {
    const std::string& e = m.engines[i];
    auto cit = m.cost.find(e);
    EngineCost c = cit == m.cost.end() ? EngineCost{} : cit->second;
    std::string agree = "reference";
    if (e != s.reference) {
      auto r = std::find(m.engines.begin(), m.engines.end(), s.reference);
      agree = "-";
      if (r != m.engines.end()) {
        size_t ri = r - m.engines.begin();
        auto it = m.pairs.find({std::min(i, ri), std::max(i, ri)});
        if (it != m.pairs.end()) agree = Percent(it->second.agreed, it->second.compared);
      }
    }
    std::string mean = "-", median = "-";
    if (c.measured) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1f µs", c.ns / 1000.0 / c.measured);
      mean = buf;
      std::nth_element(c.samples.begin(), c.samples.begin() + c.samples.size() / 2,
                       c.samples.end());
      std::snprintf(buf, sizeof buf, "%.1f µs", c.samples[c.samples.size() / 2] / 1000.0);
      median = buf;
    }
    std::string outcomes;
    auto oit = s.counts.find(e);
    if (oit != s.counts.end()) {
      for (const auto& [label, n] : oit->second) {
        outcomes += (outcomes.empty() ? "" : ", ") + label + " " + std::to_string(n);
      }
    }
    out << "<tr><td><b>" << MarkupEscape(e) << "</b></td><td>"
        << MarkupEscape(report_view::EngineVersion(s, e)) << "</td><td class=\"n\">" << c.cases
        << "</td><td class=\"n\">" << agree << "</td><td class=\"n\">" << mean
        << "</td><td class=\"n\">" << median << "</td><td class=\"mono\">" << MarkupEscape(outcomes)
        << "</td></tr>\n";
  }
  out << "</table>\n<p class=\"muted\">Time per case as each engine measured it in this run "
         "(batched engines: batch time / batch size); 'cpudiff bench' measures throughput "
         "apart.</p>\n";
}

void WriteCase(const CaseView& v, std::ostream& out) {
  if (!v.tc) {
    out << "<p class=\"mono\">" << MarkupEscape(v.stored.line) << "</p>\n";
    return;
  }
  out << "<pre>";
  for (const std::string& line : v.disassembly) out << MarkupEscape(line) << "\n";
  out << "</pre>\n";
  out << "<table class=\"mono\"><tr><th></th><th>initial</th>";
  if (v.tc->expect) out << "<th>expect</th>";
  for (const StoredResult& r : v.results) {
    out << "<th>" << MarkupEscape(r.engine) << (r.engine == v.reference ? " (ref)" : "") << "</th>";
  }
  out << "<th></th></tr>\n";
  auto row = [&](const std::string& name, const std::string& init, const std::string& expect,
                 const std::vector<std::string>& values, bool differs) {
    out << "<tr" << (differs ? " class=\"diff\"" : "") << "><td>" << MarkupEscape(name)
        << "</td><td>" << MarkupEscape(init) << "</td>";
    if (v.tc->expect) out << "<td>" << MarkupEscape(expect) << "</td>";
    for (const std::string& val : values) out << "<td>" << MarkupEscape(val) << "</td>";
    out << "<td class=\"star\">" << (differs ? "*" : "") << "</td></tr>\n";
  };
  row("outcome", "", v.outcome_expect, v.outcomes, v.outcome_differs);
  for (const report_view::RegRow& r : v.regs) {
    // Unchanged all-zero XMM rows are noise in a browser too.
    bool all_zero = r.initial.find_first_not_of("0x") == std::string::npos;
    for (const std::string& val : r.values) {
      all_zero = all_zero && (val == "-" || val.find_first_not_of("0x") == std::string::npos);
    }
    all_zero = all_zero && r.expect.find_first_not_of("0x") == std::string::npos;
    if (all_zero && !r.differs) continue;
    std::vector<std::string> values = r.values;
    std::string init = r.initial;
    if (r.reg == kRegRflags) {
      init += " " + report_view::FlagNames(v.tc->init.rflags);
      for (size_t i = 0; i < values.size(); ++i) {
        if (values[i] != "-")
          values[i] += " " + report_view::FlagNames(v.results[i].result.state.rflags);
      }
    }
    row(r.name, init, r.expect, values, r.differs);
  }
  out << "</table>\n";
  if (!v.mem.empty()) {
    out << "<h4>memory</h4>\n<table class=\"mono\"><tr><th>address</th><th>initial</th>";
    for (const StoredResult& r : v.results) out << "<th>" << MarkupEscape(r.engine) << "</th>";
    out << "<th></th></tr>\n";
    for (const report_view::MemRow& r : v.mem) {
      out << "<tr" << (r.differs ? " class=\"diff\"" : "") << "><td>" << Hex64(r.addr)
          << "</td><td>" << r.initial << "</td>";
      for (const std::string& val : r.values) out << "<td>" << MarkupEscape(val) << "</td>";
      out << "<td class=\"star\">" << (r.differs ? "*" : "") << "</td></tr>\n";
    }
    out << "</table>\n";
  }
  out << "<p class=\"muted\">corpus line:</p><pre>" << MarkupEscape(v.stored.line) << "</pre>\n";
}

// The root causes of the run (`cpudiff triage --collapse`): per engine and
// field kind how many, then each with its minimized example.
void WriteRootCauses(Store& store, int64_t run_id, const Summary& s, const KnownList* known,
                     std::ostream& out) {
  std::vector<RootCauseRow> rows = store.RootCauses(run_id);
  out << "<h2 id=\"root-causes\">Root causes</h2>\n";
  if (rows.empty()) {
    out << "<p class=\"muted\">Not collapsed yet: <code>cpudiff triage --collapse --db "
        << MarkupEscape(store.Path()) << "</code> finds the first differing instruction of each "
        << "divergent case and minimizes one example per root cause.</p>\n";
    return;
  }
  auto other_of = [&](const RootCauseRow& r) {
    return r.engine_a == s.reference ? r.engine_b : r.engine_a;
  };
  auto kind_of = [](const RootCauseRow& r) { return r.field.substr(0, r.field.find('.')); };
  std::vector<const KnownEntry*> by(rows.size(), nullptr);
  std::map<std::string, std::map<std::string, std::pair<int, int>>>
      grid;  // engine, kind: new, known
  std::set<std::string> kinds;
  int short_examples = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (known) by[i] = known->Match(rows[i].signature);
    auto& cell = grid[other_of(rows[i])][kind_of(rows[i])];
    (by[i] ? cell.second : cell.first)++;
    kinds.insert(kind_of(rows[i]));
    short_examples += rows[i].min_insns >= 1 && rows[i].min_insns <= 3;
  }
  out << "<p>" << s.signatures.size() << " recorded signatures collapse into <b>" << rows.size()
      << " root causes</b>: the first instruction after which each engine's state differs from "
      << MarkupEscape(s.reference) << " (lockstep over the case's instruction prefixes), the "
      << "first field that differs there, and for an outcome the pair of outcome kinds. "
      << short_examples << " of them have a minimized example of at most 3 instructions.</p>\n";
  out << "<table><tr><th>engine vs " << MarkupEscape(s.reference) << "</th>";
  for (const std::string& k : kinds) out << "<th>" << MarkupEscape(k) << "</th>";
  out << "</tr>\n";
  for (const auto& [engine, cells] : grid) {
    out << "<tr><td><b>" << MarkupEscape(engine) << "</b></td>";
    for (const std::string& k : kinds) {
      auto it = cells.find(k);
      if (it == cells.end()) {
        out << "<td class=\"n\"></td>";
        continue;
      }
      out << "<td class=\"n\">";
      if (it->second.first) out << "<span class=\"new\">" << it->second.first << " new</span> ";
      if (it->second.second)
        out << "<span class=\"known\">" << it->second.second << " known</span>";
      out << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</table>\n<p class=\"muted\">Root causes per engine and field kind.</p>\n";
  out << "<table><tr><th>#</th><th>status</th><th>cases</th><th>engine</th><th>instruction</th>"
         "<th>field</th><th>minimized example</th><th>reason / example case</th></tr>\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const RootCauseRow& r = rows[i];
    const std::string cls = by[i] ? "known" : "new";
    out << "<tr><td class=\"n\">" << i + 1 << "</td><td><span class=\"" << cls << "\">" << cls
        << "</span></td><td class=\"n\">" << r.cases << "</td><td>" << MarkupEscape(other_of(r))
        << "</td><td><code>" << MarkupEscape(r.insn_form) << "</code></td><td><code>"
        << MarkupEscape(r.field) << "</code></td><td>";
    if (!r.min_disasm.empty()) {
      out << "<pre>" << MarkupEscape(r.min_disasm) << "</pre>";
    } else {
      out << "<span class=\"muted\">" << MarkupEscape(r.min_note) << "</span>";
    }
    out << "</td><td class=\"why\">"
        << (by[i] ? MarkupEscape(by[i]->id + ": " + by[i]->reason) + "<br>" : "") << "case "
        << r.example_case << ", root <code>" << MarkupEscape(r.root_insn) << "</code></td></tr>\n";
  }
  out << "</table>\n";
}

}  // namespace

void WriteHtmlReport(Store& store, int64_t run_id, std::ostream& out, const KnownList* known,
                     const std::set<std::string>* baseline) {
  Summary s = BuildSummary(store, run_id, known, baseline);
  Matrix m = BuildMatrix(store, run_id, s);
  const RunInfo& run = *s.run;
  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      // Everything is inline: the file is mailed, attached to CI runs and
      // opened offline. The empty favicon keeps browsers from fetching one.
      << "<link rel=\"icon\" href=\"data:,\">\n"
      << "<title>cpudiff report: run " << run.id << "</title>\n";
  WriteStyle(out);
  out << "</head><body>\n<h1>cpudiff report: run " << run.id << "</h1>\n"
      << "<p class=\"muted\">" << MarkupEscape(run.started) << " · " << MarkupEscape(run.status)
      << " · host " << MarkupEscape(run.host_cpu) << " · git " << MarkupEscape(run.git_rev)
      << " · reference <b>" << MarkupEscape(s.reference) << "</b> · " << MarkupEscape(store.Path())
      << "</p>\n";
  out << "<div class=\"cards\">"
      << "<div class=\"card\"><b>" << s.cases << "</b>cases</div>"
      << "<div class=\"card\"><b>" << s.divergent_cases << "</b>divergent cases</div>"
      << "<div class=\"card\"><b>" << s.divergences << "</b>divergences</div>"
      << "<div class=\"card\"><b>" << s.signatures.size() << "</b>signatures</div>"
      << "<div class=\"card\"><b>" << s.new_signatures << "</b>new signatures</div></div>\n";

  WriteRootCauses(store, run_id, s, known, out);

  out << "<h2>Agreement between engines</h2>\n";
  WriteHeatmap(m, s, out);
  out << "<p class=\"muted\">Share of cases on which two engines end in the same state "
         "(undefined flags masked"
      << (s.config.is_object() && s.config.value("strict", false) ? ", strict run" : "")
      << "); cases one engine does not support are left out.</p>\n";

  out << "<h2>Engines: agreement and cost</h2>\n";
  WriteEngines(m, s, out);

  out << "<h2>Divergences by instruction class</h2>\n";
  WriteByClass(m, s, out);

  out << "<h2>Signatures</h2>\n";
  if (s.signatures.empty()) {
    out << "<p>No divergences.</p>\n";
  } else {
    out << "<table><tr><th>#</th><th>status</th><th>count</th><th>cases</th><th>engine</th>"
           "<th>signature</th><th>example</th><th>difference / reason</th></tr>\n";
    for (size_t i = 0; i < s.signatures.size(); ++i) {
      const SignatureRow& r = s.signatures[i];
      std::string cls = s.known_by[i] ? "known" : s.in_baseline[i] ? "baseline" : "new";
      std::string why = s.known_by[i] ? s.known_by[i]->id + ": " + s.known_by[i]->reason
                                      : ExampleDifference(store, run_id, r);
      out << "<tr><td class=\"n\">" << i + 1 << "</td><td><span class=\"" << cls << "\">" << cls
          << "</span></td><td class=\"n\">" << r.count << "</td><td class=\"n\">" << r.cases
          << "</td><td>" << MarkupEscape(EngineUnderTest(s, r)) << "</td><td><code>"
          << MarkupEscape(r.signature) << "</code></td><td>"
          << (i < kTopSignatures ? "<a href=\"#sig" + std::to_string(i + 1) + "\">case " +
                                       std::to_string(r.example_case) + "</a>"
                                 : "case " + std::to_string(r.example_case))
          << "</td><td>" << MarkupEscape(why) << "</td></tr>\n";
    }
    out << "</table>\n";
    out << "<h2>Top signatures with their example cases</h2>\n";
    // New signatures first: they are what a reader has to act on.
    std::vector<size_t> order(s.signatures.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_partition(order.begin(), order.end(), [&](size_t i) { return IsNew(s, i); });
    size_t shown = 0;
    for (size_t i : order) {
      if (shown++ >= kTopSignatures) break;
      const SignatureRow& r = s.signatures[i];
      out << "<h3 id=\"sig" << i + 1 << "\">" << i + 1 << ". <code>" << MarkupEscape(r.signature)
          << "</code> <span class=\""
          << (IsNew(s, i)     ? "new\">new"
              : s.known_by[i] ? "known\">known"
                              : "baseline\">baseline")
          << "</span></h3>\n<p>" << r.count << " divergences in " << r.cases
          << " cases; example case " << r.example_case << " (<code>cpudiff show " << r.example_case
          << "</code>)"
          << (s.known_by[i] ? ". Known: " + MarkupEscape(s.known_by[i]->reason) : std::string())
          << "</p>\n";
      std::optional<StoredCase> c = store.GetCase(r.example_case);
      if (!c) continue;
      out << "<details" << (shown <= 5 ? " open" : "") << "><summary>case " << c->id << " "
          << MarkupEscape(c->name) << "</summary>\n";
      WriteCase(BuildCaseView(store, run_id, *c, s.reference), out);
      out << "</details>\n";
    }
  }
  out << "</body></html>\n";
}

}  // namespace cpudiff

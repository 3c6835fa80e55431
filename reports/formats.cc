// JUnit XML and Markdown: the two forms CI systems read. One test case per
// signature, grouped by the engine under test; a new signature is a
// failure, a known one (or one in the baseline) passes with its reason.
#include <algorithm>
#include <cstdio>
#include <map>
#include <ostream>
#include <string>

#include "reports/report.h"
#include "reports/table.h"
#include "reports/view.h"

namespace cpudiff {
namespace {

using report_view::BuildSummary;
using report_view::EngineUnderTest;
using report_view::ExampleDifference;
using report_view::IsNew;
using report_view::MarkupEscape;
using report_view::Summary;

// Markdown table cells: '|' would end the cell, newlines the row.
std::string Md(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string Verdict(const Summary& s, size_t i) {
  if (s.known_by[i]) return "known";
  if (s.in_baseline[i]) return "baseline";
  return "new";
}

}  // namespace

void WriteJUnitReport(Store& store, int64_t run_id, std::ostream& out, const KnownList* known,
                      const std::set<std::string>* baseline) {
  Summary s = BuildSummary(store, run_id, known, baseline);
  // Engines under test, in run order; each is one test suite.
  std::vector<std::string> engines;
  for (const std::string& e : s.engines) {
    if (e != s.reference) engines.push_back(e);
  }
  for (const SignatureRow& r : s.signatures) {
    std::string e = EngineUnderTest(s, r);
    if (std::find(engines.begin(), engines.end(), e) == engines.end()) engines.push_back(e);
  }
  size_t total = 0;
  for (const std::string& e : engines) {
    size_t n = 0;
    for (const SignatureRow& r : s.signatures) n += EngineUnderTest(s, r) == e;
    total += n ? n : 1;
  }
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out << "<testsuites name=\"cpudiff run " << run_id << "\" tests=\"" << total << "\" failures=\""
      << s.new_signatures << "\">\n";
  for (const std::string& e : engines) {
    std::vector<size_t> mine;
    size_t failures = 0;
    for (size_t i = 0; i < s.signatures.size(); ++i) {
      if (EngineUnderTest(s, s.signatures[i]) != e) continue;
      mine.push_back(i);
      failures += IsNew(s, i);
    }
    out << "  <testsuite name=\"cpudiff." << MarkupEscape(e) << "\" tests=\""
        << (mine.empty() ? 1 : mine.size()) << "\" failures=\"" << failures
        << "\" errors=\"0\" skipped=\"0\">\n";
    out << "    <properties>\n"
        << "      <property name=\"reference\" value=\"" << MarkupEscape(s.reference) << "\"/>\n"
        << "      <property name=\"run\" value=\"" << run_id << "\"/>\n"
        << "      <property name=\"cases\" value=\"" << s.cases << "\"/>\n"
        << "    </properties>\n";
    if (mine.empty()) {
      // An engine without divergences still shows up as a passing check.
      out << "    <testcase classname=\"cpudiff." << MarkupEscape(e) << "\" name=\"agrees with "
          << MarkupEscape(s.reference) << " on " << s.cases << " cases\"/>\n";
    }
    for (size_t i : mine) {
      const SignatureRow& r = s.signatures[i];
      out << "    <testcase classname=\"cpudiff." << MarkupEscape(e) << "\" name=\""
          << MarkupEscape(r.signature) << "\">\n";
      std::string detail = std::to_string(r.count) + " divergences in " + std::to_string(r.cases) +
                           " cases; example case " + std::to_string(r.example_case) + " (" +
                           ExampleDifference(store, run_id, r) + "); cpudiff show " +
                           std::to_string(r.example_case);
      if (IsNew(s, i)) {
        out << "      <failure message=\"new divergence: " << MarkupEscape(r.signature)
            << "\" type=\"divergence\">" << MarkupEscape(detail) << "</failure>\n";
      } else {
        std::string why = s.known_by[i]
                              ? "known (" + s.known_by[i]->id + "): " + s.known_by[i]->reason
                              : std::string("in the baseline");
        out << "      <system-out>" << MarkupEscape(why + "\n" + detail) << "</system-out>\n";
      }
      out << "    </testcase>\n";
    }
    out << "  </testsuite>\n";
  }
  out << "</testsuites>\n";
}

void WriteMarkdownReport(Store& store, int64_t run_id, std::ostream& out, const KnownList* known,
                         const std::set<std::string>* baseline) {
  Summary s = BuildSummary(store, run_id, known, baseline);
  out << "## cpudiff: run " << run_id << " — "
      << (s.new_signatures ? "**" + std::to_string(s.new_signatures) + " new divergence signature" +
                                 (s.new_signatures == 1 ? "" : "s") + "**"
                           : std::string("no new divergences"))
      << "\n\n";
  std::string engines;
  for (const std::string& e : s.engines) engines += (engines.empty() ? "" : ", ") + e;
  out << "| | |\n|---|---|\n"
      << "| reference | " << Md(s.reference) << " |\n"
      << "| engines | " << Md(engines) << " |\n"
      << "| host CPU | " << Md(s.run->host_cpu) << " |\n"
      << "| git rev | " << Md(s.run->git_rev) << " |\n"
      << "| cases | " << s.cases << " |\n"
      << "| divergences | " << s.divergences << " in " << s.divergent_cases << " cases |\n"
      << "| signatures | " << s.signatures.size() << " (" << s.new_signatures << " new) |\n\n";

  auto table = [&](const char* title, const std::string& verdict) {
    size_t n = 0;
    for (size_t i = 0; i < s.signatures.size(); ++i) n += Verdict(s, i) == verdict;
    if (n == 0) return;
    out << "### " << title << " (" << n << ")\n\n"
        << "| count | cases | engine | field | instruction | example | "
        << (verdict == "known" ? "reason" : "difference") << " |\n"
        << "|---:|---:|---|---|---|---|---|\n";
    for (size_t i = 0; i < s.signatures.size(); ++i) {
      if (Verdict(s, i) != verdict) continue;
      const SignatureRow& r = s.signatures[i];
      std::string last = verdict == "known"
                             ? "`" + s.known_by[i]->id + "`: " + s.known_by[i]->reason
                             : ExampleDifference(store, run_id, r);
      std::string field = r.signature.substr(0, r.signature.rfind('|'));
      field = field.substr(field.rfind('|') + 1);
      out << "| " << r.count << " | " << r.cases << " | " << Md(EngineUnderTest(s, r)) << " | "
          << Md(field) << " | `" << Md(r.insn_form.empty() ? "?" : r.insn_form) << "` | "
          << "`cpudiff show " << r.example_case << "` | " << Md(last) << " |\n";
    }
    out << "\n";
  };
  table("New", "new");
  table("In the baseline", "baseline");
  table("Known", "known");
}

void WriteTriage(Store& store, const KnownList* known, std::ostream& out) {
  std::vector<SignatureRow> rows = store.Signatures();
  std::stable_sort(rows.begin(), rows.end(),
                   [](const SignatureRow& a, const SignatureRow& b) { return a.count > b.count; });
  std::map<int64_t, std::string> started;
  for (const RunInfo& r : store.Runs()) started[r.id] = r.started;
  size_t n_known = 0;
  TextTable t({"count", "status", "first seen", "last run", "example", "signature"});
  t.AlignRight(0);
  for (const SignatureRow& r : rows) {
    const KnownEntry* k = known ? known->Match(r.signature) : nullptr;
    n_known += k != nullptr;
    std::string status = k ? "known: " + k->id : r.status;
    t.AddRow({std::to_string(r.count), status,
              "run " + std::to_string(r.first_run) + " " + started[r.first_run],
              "run " + std::to_string(r.last_run), "case " + std::to_string(r.example_case),
              r.signature});
  }
  out << rows.size() << " signatures in " << store.Path() << " (" << rows.size() - n_known
      << " not known";
  if (!known) out << "; no known-divergence list given";
  out << ")\n";
  if (!rows.empty()) t.Print(out);
}

}  // namespace cpudiff

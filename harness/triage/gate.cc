#include "harness/triage/gate.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <stdexcept>

#include "harness/store/store.h"
#include "harness/triage/known.h"
#include "harness/triage/minimize.h"
#include "reports/report.h"
#include "reports/table.h"
#include "reports/view.h"

namespace cpudiff {
namespace {

constexpr int kGatePass = 0;
constexpr int kGateFail = 1;
constexpr int kGateBadInput = 2;

std::unique_ptr<Store> OpenExisting(const std::string& path, const char* what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw std::runtime_error(path + ": no such " + std::string(what) + " database");
  }
  return Store::Open(path);
}

// Writes through a temporary file and a rename, so that a CI step never
// reads half a report.
void WriteFile(const std::string& path, const std::function<void(std::ostream&)>& write) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) throw std::runtime_error(path + ": cannot write");
    write(f);
    f.flush();
    if (!f) throw std::runtime_error(path + ": write failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw std::runtime_error(path + ": " + ec.message());
}

}  // namespace

int RunGate(const GateOptions& opts, std::ostream& out, std::ostream& err) {
  std::unique_ptr<Store> store;
  KnownList known;
  std::set<std::string> baseline;
  int64_t run_id = opts.run_id;
  try {
    store = OpenExisting(opts.db_path, "campaign");
    if (run_id > 0) {
      if (!store->GetRun(run_id)) {
        throw std::runtime_error(opts.db_path + ": no run " + std::to_string(run_id));
      }
    } else {
      std::optional<RunInfo> last = store->LatestRun();
      if (!last) throw std::runtime_error(opts.db_path + ": the database holds no run yet");
      run_id = last->id;
    }
    if (!opts.known_path.empty()) known = KnownList::Load(opts.known_path);
    if (!opts.baseline_path.empty()) {
      std::unique_ptr<Store> base = OpenExisting(opts.baseline_path, "baseline");
      for (const SignatureRow& r : base->Signatures()) baseline.insert(r.signature);
    }
  } catch (const std::exception& e) {
    err << "cpudiff gate: " << e.what() << "\n";
    return kGateBadInput;
  }

  const KnownList* k = opts.known_path.empty() ? nullptr : &known;
  const std::set<std::string>* b = opts.baseline_path.empty() ? nullptr : &baseline;
  report_view::Summary s = report_view::BuildSummary(*store, run_id, k, b);
  try {
    if (!opts.junit_path.empty()) {
      WriteFile(opts.junit_path,
                [&](std::ostream& o) { WriteJUnitReport(*store, run_id, o, k, b); });
    }
    if (!opts.markdown_path.empty()) {
      WriteFile(opts.markdown_path,
                [&](std::ostream& o) { WriteMarkdownReport(*store, run_id, o, k, b); });
    }
  } catch (const std::exception& e) {
    err << "cpudiff gate: " << e.what() << "\n";
    return kGateBadInput;
  }

  size_t n_known = 0, n_baseline = 0;
  for (size_t i = 0; i < s.signatures.size(); ++i) {
    if (s.known_by[i]) {
      ++n_known;
    } else if (s.in_baseline[i]) {
      ++n_baseline;
    }
  }
  out << "cpudiff gate: run " << run_id << " of " << opts.db_path << ": " << s.cases << " cases, "
      << s.signatures.size() << " signatures: " << n_known << " known, " << n_baseline
      << " in the baseline, " << s.new_signatures << " new\n";
  if (s.run->status != "done" || s.cases_done < s.cases) {
    // What was not run cannot diverge: say so rather than pass quietly.
    out << "warning: run " << run_id << " is " << s.run->status << " with " << s.cases_done
        << " of " << s.cases << " cases done; the gate covers only those\n";
  }
  if (s.new_signatures == 0) {
    out << "PASS\n";
    return kGatePass;
  }
  TextTable t({"count", "cases", "example", "signature", "difference"});
  t.AlignRight(0);
  t.AlignRight(1);
  for (size_t i = 0; i < s.signatures.size(); ++i) {
    if (!report_view::IsNew(s, i)) continue;
    const SignatureRow& r = s.signatures[i];
    t.AddRow({std::to_string(r.count), std::to_string(r.cases),
              "case " + std::to_string(r.example_case), r.signature,
              report_view::ExampleDifference(*store, run_id, r)});
  }
  out << "new divergences:\n";
  t.Print(out);
  if (!opts.minimize_path.empty()) {
    out.flush();
    // One minimized case per new signature, for a regression corpus. A
    // signature that does not reproduce is said so and skipped; the
    // verdict stays the same.
    for (size_t i = 0; i < s.signatures.size(); ++i) {
      if (!report_view::IsNew(s, i)) continue;
      MinimizeOptions mo;
      mo.db_path = opts.db_path;
      mo.run_id = run_id;
      mo.case_key = std::to_string(s.signatures[i].example_case);
      mo.signature = s.signatures[i].signature;
      mo.output = opts.minimize_path;
      std::ostringstream progress;
      if (RunMinimize(mo, progress, err) == 0) {
        out << "minimized " << s.signatures[i].signature << " -> " << opts.minimize_path << "\n";
      }
    }
  }
  out << "FAIL: " << s.new_signatures << " new signature" << (s.new_signatures == 1 ? "" : "s")
      << " ('cpudiff show CASE --db " << opts.db_path << "' shows one; add a reasoned entry to "
      << "the known list, or fix the engine)\n";
  return kGateFail;
}

}  // namespace cpudiff

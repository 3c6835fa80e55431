// Report writers: read the store, never the engines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <set>
#include <string>

#include "harness/store/store.h"
#include "harness/triage/known.h"

namespace cpudiff {

// Summary, then divergences grouped by signature, each with one example case.
// Examples are printed for the first `max_examples` signatures.
// With `known`, signatures a known-divergence entry matches are marked
// "known" with the entry's id and reason; every other one stays listed.
void WriteTextReport(Store& store, int64_t run_id, std::ostream& out,
                     size_t max_examples = SIZE_MAX, const KnownList* known = nullptr);
// The same content as JSON.
void WriteJsonReport(Store& store, int64_t run_id, std::ostream& out,
                     const KnownList* known = nullptr);
// JUnit XML for CI: a test suite per engine under test, a test case per
// signature; a signature neither known nor in `baseline` is a failure.
void WriteJUnitReport(Store& store, int64_t run_id, std::ostream& out,
                      const KnownList* known = nullptr,
                      const std::set<std::string>* baseline = nullptr);
// A Markdown summary (for a pull request comment or a CI job summary): new
// signatures first with their example difference, then baseline and known
// ones with their reasons.
void WriteMarkdownReport(Store& store, int64_t run_id, std::ostream& out,
                         const KnownList* known = nullptr,
                         const std::set<std::string>* baseline = nullptr);
// One self-contained HTML page (inline CSS and SVG): engine x engine
// agreement heatmap, agreement and time per case of each engine,
// divergent cases by instruction class, the signatures and the top ones'
// example cases with end states side by side.
void WriteHtmlReport(Store& store, int64_t run_id, std::ostream& out,
                     const KnownList* known = nullptr,
                     const std::set<std::string>* baseline = nullptr);
// Every signature of the database across runs (the triage table), most
// frequent first: count, runs first and last seen, example case, status
// (known with the entry's id when `known` matches, else the stored status).
void WriteTriage(Store& store, const KnownList* known, std::ostream& out);
// One case: disassembly, initial state, every engine's end state side by
// side with `*` on rows that differ from the reference, memory diff, and the
// divergences recorded for it.
void WriteCaseDetails(Store& store, int64_t run_id, const StoredCase& c, std::ostream& out);
// The same content as JSON (the "example" objects of WriteJsonReport).
void WriteCaseDetailsJson(Store& store, int64_t run_id, const StoredCase& c, std::ostream& out);

}  // namespace cpudiff

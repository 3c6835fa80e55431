// Report writers: read the store, never the engines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>

#include "harness/store/store.h"

namespace cpudiff {

// Summary, then divergences grouped by signature, each with one example case.
// Examples are printed for the first `max_examples` signatures.
void WriteTextReport(Store& store, int64_t run_id, std::ostream& out,
                     size_t max_examples = SIZE_MAX);
// The same content as JSON.
void WriteJsonReport(Store& store, int64_t run_id, std::ostream& out);
// One case: disassembly, initial state, every engine's end state side by
// side with `*` on rows that differ from the reference, memory diff, and the
// divergences recorded for it.
void WriteCaseDetails(Store& store, int64_t run_id, const StoredCase& c, std::ostream& out);
// The same content as JSON (the "example" objects of WriteJsonReport).
void WriteCaseDetailsJson(Store& store, int64_t run_id, const StoredCase& c, std::ostream& out);

}  // namespace cpudiff

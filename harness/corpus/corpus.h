// Corpus format v1 (JSON Lines), reader and writer. The format is specified
// in corpus/FORMAT.md. Only this module touches the corpus JSON.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engines/x86/testcase.h"

namespace cpudiff {

inline constexpr int kCorpusVersion = 1;

// A rejected line: "file:line: field: what is wrong".
struct CorpusError {
  std::string where;  // "file:line"
  std::string field;  // "regs.rax", "mem[1].addr", "code", ... or "json"
  std::string what;
  std::string ToString() const { return where + ": " + field + ": " + what; }
};

// Parses one line. Returns false and fills `err` (with err->where = where)
// when the line is malformed. A blank line is not a case: callers skip it.
bool ParseCaseLine(std::string_view line, const std::string& where, TestCase* out,
                   CorpusError* err);

struct CorpusReadResult {
  size_t cases = 0;
  std::vector<CorpusError> errors;
  bool io_error = false;  // the file could not be opened or read (errors says why)
};

// Reads every line of a corpus file and calls `sink` for each valid case.
// Malformed lines are collected in the result and skipped.
CorpusReadResult ReadCorpusFile(const std::string& path,
                                const std::function<void(TestCase&&)>& sink);

// Writes a case as one corpus v1 line (no newline). Only fields that differ
// from the defaults are written; `expect` is written when present.
std::string WriteCaseLine(const TestCase& tc);

// An `expect` that records the whole end state of a run: the outcome (with
// error code and address of a fault), every register, and every changed
// memory byte with `context` bytes around it (clipped to the region).
Expect ExpectFromResult(const TestCase& tc, const RunResult& r, int context = 0);

// Corpus paths as given on a command line: a folder stands for its .jsonl
// files (sorted by name), anything else for itself.
std::vector<std::string> ExpandCorpusPaths(const std::vector<std::string>& paths);

}  // namespace cpudiff

// Known divergences: data, not code. Each entry of corpus/known/*.jsonl
// names a pattern of signatures (instruction form, field, engines) and why
// those engines are known to differ there. Reports mark matching signatures
// as known; the gate lets them pass. Nothing is ever hidden: a signature
// that no entry matches stays new.
//
// A KnownList is immutable after loading and safe to share between threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cpudiff {

// One line of a known-divergence file:
//   {"id":"unicorn-popcnt-ud","insn":"popcnt *","field":"outcome",
//    "engines":["unicorn"],"against":["native","expect"],
//    "reason":"Unicorn 2.0.1 raises #UD for popcnt under every CPU model",
//    "example":"corpus/seed/bitops.jsonl: popcnt-r64-r64"}
// `insn` (a glob or an array of globs) and `field` are shell globs (fnmatch)
// over the signature's instruction form ("?" when unknown) and field ("outcome", "gpr",
// "flags.CF", "mxcsr", "memory", ...). `engines` lists the engines that
// differ; `against` (default: native and expect, i.e. silicon) the side
// they differ from.
struct KnownEntry {
  std::string id;
  std::vector<std::string> insn = {"*"};  // any of these globs
  std::string field = "*";
  std::vector<std::string> engines;
  std::vector<std::string> against = {"native", "expect"};
  std::string reason;
  std::string example;
  std::string source;  // file:line
};

// A signature split into its parts ("bsr r32, r32|gpr|native~unicorn").
struct SignatureParts {
  std::string insn, field, engine_a, engine_b;
};
// Returns false when `signature` does not have three '|'-separated parts
// with a '~' between the engines.
bool SplitSignature(std::string_view signature, SignatureParts* out);

class KnownList {
 public:
  // Loads every *.jsonl file of a directory (sorted by name), or one file.
  // Throws std::runtime_error "file:line: what is wrong" on the first
  // malformed line, and when the path does not exist.
  static KnownList Load(const std::string& path);

  // The first entry matching the signature, or nullptr.
  const KnownEntry* Match(std::string_view signature) const;
  const std::vector<KnownEntry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  void Add(KnownEntry e) { entries_.push_back(std::move(e)); }

 private:
  std::vector<KnownEntry> entries_;
};

}  // namespace cpudiff

// libFuzzer target (docs/fuzzing.md, "Coverage-guided fuzzing"): the
// fuzzer's input becomes a case, the in-process engines (emulator and
// translator, whose code the fuzzer's coverage instrumentation sees) run it
// beside a reference engine, and a divergence that corpus/known does not
// explain stops the fuzzer after writing the case, with the reference's end
// state as its `expect`, as a corpus line.
//
// Input: the first 8 bytes (little-endian, zero-padded) are a case seed for
// the campaign generator (testgen/fuzz.h), which gives the memory layout,
// the initial registers and code; the bytes after them, when there are any,
// replace the code (at most 64 bytes): libFuzzer's mutations then reach the
// decoders directly while the values stay biased to edges.
//
// Environment:
//   CPUDIFF_FUZZ_REFERENCE  reference engine: native (default) or unicorn
//   CPUDIFF_FUZZ_ENGINES    engines under test, comma-separated (default
//                           emulator,translator; in-process ones only)
//   CPUDIFF_KNOWN           known divergences (default corpus/known when it
//                           exists in the working directory, else known/
//                           beside the executable)
//   CPUDIFF_FUZZ_OUT        folder for the divergent cases (default .)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engines/emulator/emulator_engine.h"
#include "engines/engine.h"
#include "engines/translator/translator_engine.h"
#include "harness/compare/compare.h"
#include "harness/corpus/corpus.h"
#include "harness/triage/known.h"
#include "testgen/fuzz.h"

namespace cpudiff {
namespace {

constexpr size_t kMaxCode = 64;

struct Side {
  std::string name;
  std::unique_ptr<Engine> engine;
  uint32_t observes = kObserveAll;
};

struct Fuzzer {
  std::unique_ptr<FuzzGenerator> gen;
  Side reference;
  std::vector<Side> engines;
  KnownList known;
  std::string out_dir = ".";
};

[[noreturn]] void Fail(const std::string& why) {
  std::cerr << "cpudiff fuzzer: " << why << "\n";
  std::exit(2);
}

std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

Fuzzer* Setup() {
  auto f = std::make_unique<Fuzzer>();
  f->gen = std::make_unique<FuzzGenerator>(FuzzOptions{});
  EngineOptions eo;
  // Raw code loops until a limit: keep the limits short, fuzzing wants
  // many executions per second.
  eo.timeout_ms = 100;
  eo.max_instructions = 100'000;

  f->reference.name = Env("CPUDIFF_FUZZ_REFERENCE", "native");
  const EngineDesc* ref = FindEngine(f->reference.name);
  if (!ref) Fail("unknown reference engine '" + f->reference.name + "'");
  Availability a = ref->probe();
  if (!a.available) Fail("reference " + f->reference.name + " is not available: " + a.reason);
  f->reference.engine = ref->create(eo);
  f->reference.observes = f->reference.engine->Observes();

  std::stringstream names(Env("CPUDIFF_FUZZ_ENGINES", "emulator,translator"));
  for (std::string name; std::getline(names, name, ',');) {
    Side s;
    s.name = name;
    // In this process, not in a worker: coverage is measured here.
    if (name == "emulator") {
      s.engine = CreateEmulatorEngineInProcess(eo);
    } else if (name == "translator") {
      s.engine = CreateTranslatorEngineInProcess(eo);
    } else {
      Fail("'" + name + "' is not an in-process engine (emulator, translator)");
    }
    s.observes = s.engine->Observes();
    f->engines.push_back(std::move(s));
  }
  std::string known = Env("CPUDIFF_KNOWN", "");
  if (known.empty() && std::filesystem::is_directory("corpus/known")) known = "corpus/known";
  // Under ClusterFuzzLite/OSS-Fuzz the list sits beside the target
  // (ci/clusterfuzzlite/build.sh copies it there).
  std::error_code ec;
  std::filesystem::path beside = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (known.empty() && !ec && std::filesystem::is_directory(beside.parent_path() / "known")) {
    known = (beside.parent_path() / "known").string();
  }
  if (!known.empty()) {
    try {
      f->known = KnownList::Load(known);
    } catch (const std::exception& e) {
      Fail(e.what());
    }
  }
  f->out_dir = Env("CPUDIFF_FUZZ_OUT", ".");
  std::cerr << "cpudiff fuzzer: reference " << f->reference.name << ", " << f->engines.size()
            << " engine(s), " << f->known.entries().size() << " known divergence(s)\n";
  return f.release();
}

// Comparable: both ends are a behaviour of the case, not of the host.
bool Comparable(OutcomeKind k) {
  return k != OutcomeKind::kUnsupported && k != OutcomeKind::kTimeout && k != OutcomeKind::kCrash;
}

}  // namespace
}  // namespace cpudiff

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cpudiff;
  static Fuzzer* f = Setup();
  uint64_t seed = 0;
  std::memcpy(&seed, data, size < 8 ? size : 8);
  TestCase tc;
  f->gen->Generate(seed, &tc);
  if (size > 8) tc.code.assign(data + 8, data + std::min(size, 8 + kMaxCode));
  char name[40];
  std::snprintf(name, sizeof name, "libfuzzer-%016llx", static_cast<unsigned long long>(tc.Hash()));
  tc.name = name;
  tc.tags = {"libfuzzer"};

  const TestCase* cases[] = {&tc};
  RunResult ref;
  f->reference.engine->Run(cases, std::span(&ref, 1));
  if (!Comparable(ref.outcome.kind)) return 0;
  std::vector<std::string> unexplained;
  for (Side& s : f->engines) {
    RunResult r;
    s.engine->Run(cases, std::span(&r, 1));
    if (r.outcome.kind == OutcomeKind::kUnsupported || r.outcome.kind == OutcomeKind::kTimeout) {
      continue;
    }
    CompareOptions co;
    co.observes_a = f->reference.observes & ~ref.unobserved;
    co.observes_b = s.observes & ~r.unobserved;
    for (const Mismatch& m : CompareResults(tc, ref, r, co)) {
      std::string sig = Signature(m, f->reference.name, s.name);
      if (!f->known.Match(sig)) {
        unexplained.push_back(sig + "  (" + m.field + ": " + m.a + " vs " + m.b + ")");
      }
    }
  }
  if (unexplained.empty()) return 0;
  TestCase with = tc;
  with.expect = ExpectFromResult(tc, ref);
  std::string path = f->out_dir + "/" + tc.name + ".jsonl";
  std::ofstream(path) << WriteCaseLine(with) << "\n";
  std::cerr << "cpudiff fuzzer: unexplained divergence, case written to " << path << ":\n";
  for (const std::string& u : unexplained) std::cerr << "  " << u << "\n";
  std::cerr << "  rerun: cpudiff run " << path << " --engines " << f->reference.name;
  for (const Side& s : f->engines) std::cerr << "," << s.name;
  std::cerr << "\n";
  // libFuzzer records the input that made the target stop.
  std::abort();
}

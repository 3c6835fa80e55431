#include "harness/cli.h"

#include <CLI/CLI.hpp>
#include <csignal>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "engines/outside/outside.h"
#include "harness/bench.h"
#include "harness/campaign.h"
#include "harness/corpus/corpus.h"
#include "harness/fuzz.h"
#include "harness/store/store.h"
#include "harness/triage/gate.h"
#include "harness/triage/known.h"
#include "harness/triage/minimize.h"
#include "harness/version.h"
#include "reports/report.h"

namespace cpudiff {
namespace {

constexpr const char* kExitCodesHelp =
    "Exit codes: 0 agreement, 1 divergences found, 2 usage or input error, 3 internal error,\n"
    "130 interrupted (what was done is committed; run --resume continues).";

void OnStopSignal(int) {
  if (g_stop_requested.exchange(true)) {
    // Second Ctrl-C: leave now. Committed batches are safe in the WAL.
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
  }
}

std::string JoinArgs(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) {
    if (i) s += ' ';
    s += argv[i];
  }
  return s;
}

// Every built-in engine, then the outside engines named with --engines
// (plugin:PATH, exec:COMMAND), which are loaded to ask what they are.
int CmdEngines(const std::vector<std::string>& outside) {
  std::vector<const EngineDesc*> list;
  for (const EngineDesc& d : BuiltinEngines()) list.push_back(&d);
  for (const std::string& n : outside) {
    std::string error;
    const EngineDesc* d = IsOutsideEngine(n) ? OutsideEngine(n, &error) : FindEngine(n);
    if (d == nullptr) {
      std::fprintf(stderr, "cpudiff: %s\n",
                   (error.empty() ? "unknown engine '" + n + "'" : error).c_str());
      return kExitUsage;
    }
    if (!d->builtin) list.push_back(d);
  }
  std::printf("%-11s %-15s %-10s %-9s %s\n", "ENGINE", "KIND", "AVAILABLE", "OBSERVES",
              "VERSION / REASON");
  for (const EngineDesc* d : list) {
    Availability a = d->probe();
    // Outside engines report their kind and observed fields in the version
    // line; the observes column shows "all" or "some" for the rest.
    std::string observes = (a.observes & kObserveAll) == kObserveAll ? "all" : "some";
    std::printf("%-11s %-15s %-10s %-9s %s\n", std::string(d->name).c_str(),
                d->builtin ? std::string(EngineKindName(d->kind)).c_str() : "outside",
                a.available ? "yes" : "no", a.available ? observes.c_str() : "-",
                (a.available ? a.version : a.reason).c_str());
    if (a.available && observes != "all") {
      std::printf("%-11s   not observed (not compared): %s\n", "",
                  ObserveNames(kObserveAll & ~a.observes).c_str());
    }
  }
  return kExitAgree;
}

std::unique_ptr<Store> OpenExistingStore(const std::string& path) {
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    std::fclose(f);
  } else {
    throw std::runtime_error(path + ": no such database (run 'cpudiff run' first)");
  }
  return Store::Open(path);
}

int64_t PickRun(Store& store, int64_t requested, const std::string& path) {
  if (requested > 0) {
    if (!store.GetRun(requested))
      throw std::runtime_error(path + ": no run " + std::to_string(requested));
    return requested;
  }
  std::optional<RunInfo> last = store.LatestRun();
  if (!last) throw std::runtime_error(path + ": the database holds no run yet");
  return last->id;
}

}  // namespace

int CliMain(int argc, char** argv) {
  CLI::App app{"cpudiff: differential and conformance testing of x86-64 instruction semantics"};
  app.footer(kExitCodesHelp);
  app.require_subcommand(1);
  app.set_version_flag("--version",
                       std::string("cpudiff ") + CPUDIFF_VERSION + " (" + CPUDIFF_GIT_REV + ")");

  // engines
  CLI::App* engines_cmd = app.add_subcommand("engines",
                                             "List the engines, whether they are "
                                             "available here, and why not");
  std::string list_engines;
  engines_cmd->add_option("--engines", list_engines,
                          "Also load and list these outside engines (plugin:PATH.so, "
                          "exec:'COMMAND ARGS'), comma-separated");

  // run
  CampaignOptions run_opts;
  std::string engines_csv;
  CLI::App* run_cmd =
      app.add_subcommand("run", "Run corpus files on engines side by side and record divergences");
  run_cmd
      ->add_option("corpus", run_opts.corpus_files, "Corpus v1 files (.jsonl), or folders of them")
      ->required();
  run_cmd->add_option("--engines", engines_csv,
                      "Comma-separated engine names (default: every available engine); "
                      "plugin:PATH.so and exec:'COMMAND ARGS' name outside engines");
  run_cmd->add_option("--reference", run_opts.reference,
                      "Engine every other engine is compared with (default: native)");
  run_cmd->add_option("--db", run_opts.db_path, "Campaign database")->capture_default_str();
  run_cmd->add_flag("--strict", run_opts.strict,
                    "Compare undefined flags too, and refuse to start on a malformed line");
  run_cmd->add_flag("--resume", run_opts.resume,
                    "Continue the last run in --db, skipping the cases it has done");
  run_cmd->add_flag("-q,--quiet", run_opts.quiet, "No progress line and no summary");
  run_cmd
      ->add_option("--timeout-ms", run_opts.engine_options.timeout_ms,
                   "Wall-time limit per case for real-time engines")
      ->capture_default_str();
  run_cmd
      ->add_option("--max-instructions", run_opts.engine_options.max_instructions,
                   "Instruction budget per case for counting engines")
      ->capture_default_str();
  run_cmd->add_option("--batch", run_opts.batch_size, "Cases per batch")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  // A corpus run keeps every case in full so that `show` and `minimize`
  // work on any of them (a corpus case has no generator seed to rebuild it
  // from); `fuzz` records agreeing cases by hash and seed only.
  run_opts.keep_all = true;
  bool run_compact = false;
  run_cmd->add_flag("--compact", run_compact,
                    "Record cases on which every engine agreed by hash only (smaller database; "
                    "show and minimize then work only on divergent cases)");
  run_cmd->add_option("--write-expect", run_opts.write_expect,
                      "Write every case to this file with the reference engine's end state as "
                      "its expect");

  // fuzz
  FuzzCommandOptions fuzz_opts;
  // Generated streams run for microseconds (loops are bounded); what runs
  // longer is a raw-byte case stuck in a loop of its own, and every one of
  // those costs the whole limit.
  fuzz_opts.campaign.engine_options.timeout_ms = 250;
  std::string fuzz_engines, fuzz_isa, fuzz_shapes, fuzz_time;
  CLI::App* fuzz_cmd =
      app.add_subcommand("fuzz", "Generate cases from a seed and run them on engines side by side");
  fuzz_cmd->add_option("--seed", fuzz_opts.seed, "Campaign seed: same seed and options, same cases")
      ->capture_default_str();
  auto* count_opt = fuzz_cmd->add_option(
      "--count", fuzz_opts.count,
      "Cases to generate (default " + std::to_string(kDefaultFuzzCount) + " without --time)");
  fuzz_cmd->add_option("--time", fuzz_time, "Stop after this long: 90, 90s, 15m, 2h")
      ->excludes(count_opt);
  fuzz_cmd
      ->add_option("--length", fuzz_opts.generator.max_length,
                   "Most instructions per generated stream (1..64)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  fuzz_cmd->add_option("--isa", fuzz_isa,
                       std::string("Comma-separated ISA extensions, ISA sets or mnemonics "
                                   "(Zydis names, lower case; default ") +
                           kDefaultIsa + ")");
  fuzz_cmd->add_option("--shapes", fuzz_shapes,
                       "Comma-separated stream shapes: single, random, branch, memory, raw, "
                       "mutate (default: all; mutate with --mutate)");
  fuzz_cmd->add_option("--mutate", fuzz_opts.mutate_files, "Corpus files whose cases are mutated");
  fuzz_cmd->add_flag("--include-nondeterministic",
                     fuzz_opts.generator.forms.include_nondeterministic,
                     "Also generate rdtsc, rdrand, cpuid and the like");
  fuzz_cmd->add_flag(
      "--include-undefined-flags", fuzz_opts.generator.include_undefined_flag_reads,
      "Also generate streams that read a flag an earlier instruction left undefined");
  fuzz_cmd->add_option("--engines", fuzz_engines,
                       "Comma-separated engine names (default: every available engine)");
  fuzz_cmd->add_option("--reference", fuzz_opts.campaign.reference,
                       "Engine every other engine is compared with (default: native)");
  fuzz_cmd
      ->add_option("--jobs", fuzz_opts.campaign.jobs,
                   "Sets of engine processes running batches side by side")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  fuzz_cmd->add_option("--db", fuzz_opts.campaign.db_path, "Campaign database")
      ->capture_default_str();
  fuzz_cmd->add_flag("--keep-all", fuzz_opts.campaign.keep_all,
                     "Store every case in full (default: agreeing cases by hash and seed only)");
  fuzz_cmd->add_flag("--strict", fuzz_opts.campaign.strict, "Compare undefined flags too");
  fuzz_cmd->add_flag("-q,--quiet", fuzz_opts.campaign.quiet,
                     "No progress line, no summary and no report");
  fuzz_cmd
      ->add_option("--timeout-ms", fuzz_opts.campaign.engine_options.timeout_ms,
                   "Wall-time limit per case for real-time engines")
      ->capture_default_str();
  fuzz_cmd
      ->add_option("--max-instructions", fuzz_opts.campaign.engine_options.max_instructions,
                   "Instruction budget per case for counting engines")
      ->capture_default_str();
  fuzz_cmd->add_option("--batch", fuzz_opts.campaign.batch_size, "Cases per batch")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  fuzz_cmd
      ->add_option("--top", fuzz_opts.report_examples, "Most frequent signatures listed at the end")
      ->capture_default_str();

  // report
  std::string db_path = "cpudiff.db";
  int64_t run_id = 0;
  std::string format = "text";
  std::string output;
  CLI::App* report_cmd = app.add_subcommand("report", "Summarize a run and its divergences");
  report_cmd->add_option("--db", db_path, "Campaign database")->capture_default_str();
  report_cmd->add_option("--run", run_id, "Run id (default: the latest)");
  report_cmd->add_option("--format", format, "text, json, junit, markdown or html")
      ->check(CLI::IsMember({"text", "json", "junit", "markdown", "html"}))
      ->capture_default_str();
  report_cmd->add_option("-o,--output", output, "Write to this file instead of stdout");
  size_t examples = 10;
  report_cmd->add_option("--examples", examples, "Signatures shown with an example case (text)")
      ->capture_default_str();

  std::string known_path;
  report_cmd->add_option("--known", known_path,
                         "Known divergences (file or directory; default: corpus/known when "
                         "it exists here)");

  // gate
  GateOptions gate_opts;
  CLI::App* gate_cmd = app.add_subcommand(
      "gate",
      "CI gate: exit 1 when a run has a divergence that is neither known nor in a baseline");
  gate_cmd->add_option("--db", gate_opts.db_path, "Campaign database")->capture_default_str();
  gate_cmd->add_option("--run", gate_opts.run_id, "Run id (default: the latest)");
  gate_cmd->add_option("--known", gate_opts.known_path,
                       "Known divergences (file or directory of .jsonl)");
  gate_cmd->add_option("--baseline", gate_opts.baseline_path,
                       "Earlier campaign database whose signatures are accepted");
  gate_cmd->add_option("--junit", gate_opts.junit_path, "Write JUnit XML here");
  gate_cmd->add_option("--markdown", gate_opts.markdown_path, "Write a Markdown summary here");
  gate_cmd->add_option("--minimize", gate_opts.minimize_path,
                       "Minimize each new signature's example and append it to this corpus file");

  // triage
  std::string triage_known;
  CLI::App* triage_cmd = app.add_subcommand(
      "triage", "Every divergence signature of the database: count, first seen, example, status");
  triage_cmd->add_option("--db", db_path, "Campaign database")->capture_default_str();
  triage_cmd->add_option("--known", triage_known,
                         "Known divergences (default: corpus/known when it exists here)");

  // show
  std::string case_key;
  CLI::App* show_cmd =
      app.add_subcommand("show", "Show one case: disassembly and every engine's end state");
  show_cmd->add_option("case", case_key, "Case id, hash prefix or name")->required();
  show_cmd->add_option("--db", db_path, "Campaign database")->capture_default_str();
  show_cmd->add_option("--run", run_id, "Run id (default: the latest)");
  bool lockstep = false;
  std::string lockstep_engines;
  show_cmd->add_flag("--lockstep", lockstep,
                     "Run each prefix of the instruction list on the engines and name the first "
                     "instruction after which states differ");
  show_cmd->add_option("--engines", lockstep_engines,
                       "Engines for --lockstep (default: the run's engines available here)");

  // minimize
  MinimizeOptions min_opts;
  CLI::App* min_cmd = app.add_subcommand(
      "minimize", "Shrink a divergent case (instructions, then state) keeping its signature");
  min_cmd->add_option("case", min_opts.case_key, "Case id, hash prefix or name")->required();
  min_cmd->add_option("--db", min_opts.db_path, "Campaign database")->capture_default_str();
  min_cmd->add_option("--run", min_opts.run_id, "Run id (default: the latest)");
  min_cmd->add_option("--signature", min_opts.signature,
                      "Signature to keep (default: the case's first divergence between engines)");
  min_cmd->add_option("-o,--output", min_opts.output,
                      "Append the minimized case to this corpus file (default: stdout)");

  // bench
  BenchOptions bench_opts;
  std::string bench_engines;
  CLI::App* bench_cmd = app.add_subcommand("bench", "Measure cases per second per engine");
  bench_cmd->add_option("--engines", bench_engines,
                        "Comma-separated engine names (plugin:PATH.so, exec:'COMMAND ARGS' too)");
  bench_cmd->add_option("--seed-corpus", bench_opts.seed_corpus, "Corpus measured as is")
      ->capture_default_str();
  bench_cmd->add_option("--cases", bench_opts.cases, "Generated cases per measurement")
      ->capture_default_str();
  bench_cmd->add_option("--json", bench_opts.json_path, "Also write the figures as JSON here");
  bench_cmd->add_option("--seed", bench_opts.seed, "Generator seed")->capture_default_str();
  bench_cmd->add_option("--write-corpus", bench_opts.write_corpus,
                        "Also write the generated new-code cases to this corpus file");
  bench_cmd
      ->add_option("--campaign-cases", bench_opts.campaign_cases,
                   "Cases of the end-to-end campaign measurement (0: skip)")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitAgree : kExitUsage;
  }

  auto split = [](const std::string& csv) {
    std::vector<std::string> v;
    std::stringstream ss(csv);
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (!item.empty()) v.push_back(item);
    }
    return v;
  };

  try {
    if (engines_cmd->parsed()) return CmdEngines(split(list_engines));
    if (run_cmd->parsed()) {
      run_opts.keep_all = !run_compact;
      run_opts.engines = split(engines_csv);
      run_opts.corpus_files = ExpandCorpusPaths(run_opts.corpus_files);
      run_opts.command_line = JoinArgs(argc, argv);
      std::signal(SIGINT, OnStopSignal);
      std::signal(SIGTERM, OnStopSignal);
      return RunCampaign(run_opts, std::cout, std::cerr);
    }
    if (fuzz_cmd->parsed()) {
      fuzz_opts.campaign.engines = split(fuzz_engines);
      fuzz_opts.generator.forms.isa = split(fuzz_isa);
      for (const std::string& name : split(fuzz_shapes)) {
        Shape shape;
        if (!ParseShape(name, &shape)) {
          std::cerr << "cpudiff: --shapes: unknown shape '" << name
                    << "' (known: single, random, branch, memory, raw, mutate)\n";
          return kExitUsage;
        }
        fuzz_opts.generator.shapes.push_back(shape);
      }
      if (!fuzz_time.empty() && !ParseDuration(fuzz_time, &fuzz_opts.seconds)) {
        std::cerr << "cpudiff: --time: '" << fuzz_time
                  << "' is not a duration (90, 90s, 15m, 2h)\n";
        return kExitUsage;
      }
      fuzz_opts.campaign.command_line = JoinArgs(argc, argv);
      std::signal(SIGINT, OnStopSignal);
      std::signal(SIGTERM, OnStopSignal);
      return RunFuzz(std::move(fuzz_opts), std::cout, std::cerr);
    }
    if (gate_cmd->parsed()) return RunGate(gate_opts, std::cout, std::cerr);
    if (min_cmd->parsed()) return RunMinimize(min_opts, std::cout, std::cerr);
    if (show_cmd->parsed() && lockstep) {
      LockstepOptions lo;
      lo.db_path = db_path;
      lo.run_id = run_id;
      lo.case_key = case_key;
      lo.engines = split(lockstep_engines);
      return RunLockstep(lo, std::cout, std::cerr);
    }
    if (triage_cmd->parsed()) {
      std::unique_ptr<Store> store = OpenExistingStore(db_path);
      if (triage_known.empty() && std::filesystem::is_directory("corpus/known")) {
        triage_known = "corpus/known";
      }
      KnownList known;
      if (!triage_known.empty()) known = KnownList::Load(triage_known);
      WriteTriage(*store, triage_known.empty() ? nullptr : &known, std::cout);
      return kExitAgree;
    }
    if (report_cmd->parsed() || show_cmd->parsed()) {
      std::unique_ptr<Store> store = OpenExistingStore(db_path);
      int64_t id = PickRun(*store, run_id, db_path);
      std::ofstream file;
      std::ostream* out = &std::cout;
      if (!output.empty()) {
        file.open(output);
        if (!file) throw std::runtime_error("cannot write " + output);
        out = &file;
      }
      if (show_cmd->parsed()) {
        std::optional<StoredCase> c = store->FindCase(case_key);
        if (!c) {
          std::cerr << "cpudiff: " << db_path << ": no case '" << case_key << "'\n";
          return kExitUsage;
        }
        WriteCaseDetails(*store, id, *c, *out);
        return kExitAgree;
      }
      // The project's own list applies by default when run from a checkout.
      KnownList known;
      if (known_path.empty() && std::filesystem::is_directory("corpus/known")) {
        known_path = "corpus/known";
      }
      if (!known_path.empty()) known = KnownList::Load(known_path);
      const KnownList* k = known_path.empty() ? nullptr : &known;
      if (format == "json") {
        WriteJsonReport(*store, id, *out, k);
      } else if (format == "junit") {
        WriteJUnitReport(*store, id, *out, k);
      } else if (format == "markdown") {
        WriteMarkdownReport(*store, id, *out, k);
      } else if (format == "html") {
        WriteHtmlReport(*store, id, *out, k);
      } else {
        WriteTextReport(*store, id, *out, examples, k);
      }
      return kExitAgree;
    }
    if (bench_cmd->parsed()) {
      bench_opts.engines = split(bench_engines);
      return RunBench(bench_opts, std::cout, std::cerr);
    }
  } catch (const std::runtime_error& e) {
    std::cerr << "cpudiff: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "cpudiff: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
  return kExitUsage;
}

}  // namespace cpudiff

#include "harness/cli.h"

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "engines/translator/translator_engine.h"
#include "harness/bench.h"
#include "harness/campaign.h"
#include "harness/corpus/corpus.h"
#include "harness/store/store.h"
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

int CmdEngines() {
  std::printf("%-11s %-15s %-10s %s\n", "ENGINE", "KIND", "AVAILABLE", "VERSION / REASON");
  for (const EngineDesc& d : BuiltinEngines()) {
    Availability a = d.probe();
    std::printf("%-11s %-15s %-10s %s\n", std::string(d.name).c_str(),
                std::string(EngineKindName(d.kind)).c_str(), a.available ? "yes" : "no",
                (a.available ? a.version : a.reason).c_str());
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
    if (!store.GetRun(requested)) throw std::runtime_error(path + ": no run " + std::to_string(requested));
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
  app.set_version_flag("--version", std::string("cpudiff ") + CPUDIFF_VERSION + " (" +
                                        CPUDIFF_GIT_REV + ")");

  // engines
  CLI::App* engines_cmd = app.add_subcommand("engines", "List the engines, whether they are "
                                                        "available here, and why not");

  // run
  CampaignOptions run_opts;
  std::string engines_csv;
  CLI::App* run_cmd =
      app.add_subcommand("run", "Run corpus files on engines side by side and record divergences");
  run_cmd->add_option("corpus", run_opts.corpus_files, "Corpus v1 files (.jsonl)")->required();
  run_cmd->add_option("--engines", engines_csv,
                      "Comma-separated engine names (default: every available engine)");
  run_cmd->add_option("--reference", run_opts.reference,
                      "Engine every other engine is compared with (default: native)");
  run_cmd->add_option("--db", run_opts.db_path, "Campaign database")->capture_default_str();
  run_cmd->add_flag("--strict", run_opts.strict,
                    "Compare undefined flags too, and refuse to start on a malformed line");
  run_cmd->add_flag("--resume", run_opts.resume,
                    "Continue the last run in --db, skipping the cases it has done");
  run_cmd->add_flag("-q,--quiet", run_opts.quiet, "No progress line and no summary");
  run_cmd->add_option("--timeout-ms", run_opts.engine_options.timeout_ms,
                      "Wall-time limit per case for real-time engines")
      ->capture_default_str();
  run_cmd->add_option("--max-instructions", run_opts.engine_options.max_instructions,
                      "Instruction budget per case for counting engines")
      ->capture_default_str();
  run_cmd->add_option("--batch", run_opts.batch_size, "Cases per batch")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  run_cmd->add_option("--write-expect", run_opts.write_expect,
                      "Write every case to this file with the reference engine's end state as "
                      "its expect");

  // report
  std::string db_path = "cpudiff.db";
  int64_t run_id = 0;
  std::string format = "text";
  std::string output;
  CLI::App* report_cmd = app.add_subcommand("report", "Summarize a run and its divergences");
  report_cmd->add_option("--db", db_path, "Campaign database")->capture_default_str();
  report_cmd->add_option("--run", run_id, "Run id (default: the latest)");
  report_cmd->add_option("--format", format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  report_cmd->add_option("-o,--output", output, "Write to this file instead of stdout");
  size_t examples = 10;
  report_cmd->add_option("--examples", examples, "Signatures shown with an example case (text)")
      ->capture_default_str();

  // show
  std::string case_key;
  CLI::App* show_cmd =
      app.add_subcommand("show", "Show one case: disassembly and every engine's end state");
  show_cmd->add_option("case", case_key, "Case id, hash prefix or name")->required();
  show_cmd->add_option("--db", db_path, "Campaign database")->capture_default_str();
  show_cmd->add_option("--run", run_id, "Run id (default: the latest)");
  bool show_ir = false;
  show_cmd->add_flag("--ir", show_ir, "Also print the translator's IR of the case's blocks");

  // bench
  BenchOptions bench_opts;
  std::string bench_engines;
  CLI::App* bench_cmd = app.add_subcommand("bench", "Measure cases per second per engine");
  bench_cmd->add_option("--engines", bench_engines, "Comma-separated engine names");
  bench_cmd->add_option("--seed-corpus", bench_opts.seed_corpus, "Corpus measured as is")
      ->capture_default_str();
  bench_cmd->add_option("--cases", bench_opts.cases, "Generated cases per measurement")
      ->capture_default_str();
  bench_cmd->add_option("--json", bench_opts.json_path, "Also write the figures as JSON here");
  bench_cmd->add_option("--seed", bench_opts.seed, "Generator seed")->capture_default_str();

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
    if (engines_cmd->parsed()) return CmdEngines();
    if (run_cmd->parsed()) {
      run_opts.engines = split(engines_csv);
      run_opts.command_line = JoinArgs(argc, argv);
      std::signal(SIGINT, OnStopSignal);
      std::signal(SIGTERM, OnStopSignal);
      return RunCampaign(run_opts, std::cout, std::cerr);
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
        if (show_ir) {
          TestCase tc;
          CorpusError cerr;
          if (!ParseCaseLine(c->line, "case " + std::to_string(c->id), &tc, &cerr)) {
            throw std::runtime_error(cerr.ToString());
          }
          *out << "\ntranslator IR (before and after optimization):\n"
               << TranslatorIrListing(tc);
        }
      } else if (format == "json") {
        WriteJsonReport(*store, id, *out);
      } else {
        WriteTextReport(*store, id, *out, examples);
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

// Campaign orchestration: read corpora, run every case on the selected
// engines in batches, compare with the reference and with `expect`, record
// everything in the store.
#pragma once

#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "engines/engine.h"

namespace cpudiff {

// Exit codes of every command (README "Exit codes").
inline constexpr int kExitAgree = 0;
inline constexpr int kExitDiverged = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInternal = 3;
// Stopped by SIGINT/SIGTERM after committing what was done (128 + SIGINT).
inline constexpr int kExitInterrupted = 130;

struct CampaignOptions {
  std::vector<std::string> corpus_files;
  std::vector<std::string> engines;  // empty: every available engine
  std::string reference;             // empty: native, else the first by DESIGN order
  std::string db_path = "cpudiff.db";
  bool strict = false;
  bool resume = false;
  bool quiet = false;
  bool progress = true;  // a progress line when stderr is a terminal
  size_t batch_size = 256;
  std::string write_expect;  // write every case with the reference's end state as `expect`
  std::string command_line;  // recorded in the run's config
  EngineOptions engine_options;
  // Store every case in full. Otherwise a case on which every engine agreed
  // (no divergence, no crash) is recorded by hash and seed only.
  bool keep_all = false;
  // Independent sets of engine instances, each running its own batches;
  // the harness compares and stores one batch while the engines run others.
  size_t jobs = 1;
  // JSON object text merged into the run's config (a generator's options).
  std::string extra_config;
};

// Where a campaign's cases come from: corpus files (read up front) or a
// generator.
class CaseSource {
 public:
  virtual ~CaseSource() = default;
  // Writes the next case into *out (which may hold an earlier case: every
  // field is overwritten); false when there is none left.
  virtual bool Next(TestCase* out) = 0;
  // Fraction of the campaign done after `done` cases, for the ETA; negative
  // when unknown.
  virtual double FractionDone(size_t done) const = 0;
};

// Set from a signal handler: the campaign stops after the current batch and
// commits what it has.
extern std::atomic<bool> g_stop_requested;

// One engine chosen for a campaign.
struct SelectedEngine {
  const EngineDesc* desc = nullptr;
  Availability availability;
};

// Resolves engine names (empty list: every available engine) and the
// reference. Returns false with a message in `error` on an unknown or
// unavailable engine. The reference is first in `out`.
bool SelectEngines(const std::vector<std::string>& names, const std::string& reference,
                   std::vector<SelectedEngine>* out, std::string* error, std::ostream& note);

// Runs a campaign over the corpus files of `opts`; returns the exit code.
// Messages go to `err`, the summary to `out`.
int RunCampaign(const CampaignOptions& opts, std::ostream& out, std::ostream& err);

// Runs every case of `source` (opts.corpus_files only goes into the run's
// config). `rejected` malformed input lines are reported in the summary and
// the exit code.
int RunCases(const CampaignOptions& opts, CaseSource& source, size_t rejected, std::ostream& out,
             std::ostream& err);

// Model name of the host CPU, from /proc/cpuinfo.
std::string HostCpuName();

}  // namespace cpudiff

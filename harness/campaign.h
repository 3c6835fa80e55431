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
  bool progress = true;        // a progress line when stderr is a terminal
  size_t batch_size = 256;
  std::string write_expect;    // write every case with the reference's end state as `expect`
  std::string command_line;    // recorded in the run's config
  EngineOptions engine_options;
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

// Runs a campaign; returns the exit code. Messages go to `err`, the summary
// to `out`.
int RunCampaign(const CampaignOptions& opts, std::ostream& out, std::ostream& err);

// Model name of the host CPU, from /proc/cpuinfo.
std::string HostCpuName();

}  // namespace cpudiff

#include "engines/native/native_engine.h"

#include <fstream>
#include <string>

#include "engines/native/runner_host.h"

namespace cpudiff {
namespace {

// Owns one runner process; not thread-safe (one engine per worker thread).
class NativeEngine : public Engine {
 public:
  explicit NativeEngine(const EngineOptions& options) : host_(MakeOptions(options)) {}

  void Run(std::span<const TestCase* const> cases, std::span<RunResult> results) override {
    host_.Run(cases, results);
  }
  uint32_t Observes() const override { return kObserveAll; }

 private:
  static RunnerOptions MakeOptions(const EngineOptions& options) {
    RunnerOptions r;
    r.timeout_ms = options.timeout_ms;
    r.skip_unwritten_regions = true;
    return r;
  }

  RunnerHost host_;
};

std::string CpuModelName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        size_t start = line.find_first_not_of(" \t", colon + 1);
        return start == std::string::npos ? "" : line.substr(start);
      }
    }
  }
  return "unknown x86-64 CPU";
}

}  // namespace

Availability ProbeNative() {
#if defined(__x86_64__) && defined(__linux__)
  return {true, "", CpuModelName()};
#else
  return {false, "the native engine needs an x86-64 Linux host", ""};
#endif
}

std::unique_ptr<Engine> CreateNativeEngine(const EngineOptions& options) {
  return std::make_unique<NativeEngine>(options);
}

}  // namespace cpudiff

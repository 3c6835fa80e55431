#include "engines/emulator/emulator_engine.h"

#include <cpuid.h>
#include <time.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "engines/emulator/cpu.h"
#include "engines/worker/worker_engine.h"

namespace cpudiff {
namespace {

emu::Vendor HostVendor() {
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return emu::Vendor::kIntel;
  char v[13];
  std::memcpy(v, &b, 4);
  std::memcpy(v + 4, &d, 4);
  std::memcpy(v + 8, &c, 4);
  v[12] = 0;
  return std::strcmp(v, "AuthenticAMD") == 0 || std::strcmp(v, "HygonGenuine") == 0
             ? emu::Vendor::kAmd
             : emu::Vendor::kIntel;
}

emu::Vendor SelectedVendor() {
  const char* e = std::getenv("CPUDIFF_EMULATOR_VENDOR");
  if (e != nullptr && std::strcmp(e, "amd") == 0) return emu::Vendor::kAmd;
  if (e != nullptr && std::strcmp(e, "intel") == 0) return emu::Vendor::kIntel;
  return HostVendor();
}

class EmulatorEngine : public Engine {
 public:
  explicit EmulatorEngine(const EngineOptions& options) : budget_(options.max_instructions) {
    cpu_.vendor = SelectedVendor();
    const char* plant = std::getenv("CPUDIFF_EMULATOR_TEST_PLANT");
    emu::g_test_plant_add_cf = plant != nullptr && std::strcmp(plant, "add-cf") == 0;
  }

  void Run(std::span<const TestCase* const> cases, std::span<RunResult> results) override {
    for (size_t i = 0; i < cases.size(); ++i) {
      int64_t t0 = NowNs();
      RunOne(*cases[i], &results[i]);
      results[i].ns = static_cast<uint64_t>(NowNs() - t0);
    }
  }

 private:
  void RunOne(const TestCase& tc, RunResult* r) {
    cpu_.s = tc.init;
    cpu_.mem.Reset(tc);
    r->outcome = cpu_.Run(budget_);
    r->state = cpu_.s;
    cpu_.mem.ChangedPages(tc, &r->pages);
  }

  uint64_t budget_;
  emu::Cpu cpu_;
};

}  // namespace

std::string_view EmulatorVendor() {
  return SelectedVendor() == emu::Vendor::kAmd ? "amd" : "intel";
}

bool EmulatorImplements(InsnId id) { return emu::Handlers().h[static_cast<int>(id)] != nullptr; }

Availability ProbeEmulator() {
  Availability a;
  a.available = true;
  a.version = "emulator (" + std::string(EmulatorVendor()) + " profile)";
  return a;
}

std::unique_ptr<Engine> CreateEmulatorEngineInProcess(const EngineOptions& options) {
  return std::make_unique<EmulatorEngine>(options);
}

std::unique_ptr<Engine> CreateEmulatorEngine(const EngineOptions& options) {
  return MakeWorkerEngine([options] { return CreateEmulatorEngineInProcess(options); }, options,
                          "emulator");
}

}  // namespace cpudiff

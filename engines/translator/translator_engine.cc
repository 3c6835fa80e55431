#include "engines/translator/translator_engine.h"

#include <time.h>

#include <cstdlib>
#include <string>

#include "engines/emulator/cpu.h"
#include "engines/emulator/emulator_engine.h"
#include "engines/translator/translator.h"
#include "engines/worker/worker_engine.h"

namespace cpudiff {
namespace {

class TranslatorEngine : public Engine {
 public:
  explicit TranslatorEngine(const EngineOptions& options)
      : budget_(options.max_instructions),
        translator_(jit::TranslatorOptions{TranslatorBlockInsnsFromEnv(), true}) {
    std::string_view v = EmulatorVendor();
    cpu_.vendor = v == "amd" ? emu::Vendor::kAmd : emu::Vendor::kIntel;
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
    translator_.BeginCase(cpu_);
    jit::TranslatorStats before = translator_.stats();
    r->outcome = translator_.Run(cpu_, budget_);
    const jit::TranslatorStats& after = translator_.stats();
    r->insns_translated = after.translated_insns - before.translated_insns;
    r->insns_executed = r->insns_translated + after.interpreted_insns - before.interpreted_insns;
    r->state = cpu_.s;
    std::vector<const uint8_t*> finals;
    for (size_t i = 0; i < tc.mem.size(); ++i) {
      finals.push_back(cpu_.mem.regions()[i + 1].bytes.data());
    }
    CollectChangedPages(tc, finals, &r->pages);
  }

  uint64_t budget_;
  emu::Cpu cpu_;
  jit::Translator translator_;
};

}  // namespace

uint32_t TranslatorBlockInsnsFromEnv() {
  const char* e = std::getenv("CPUDIFF_TRANSLATOR_BLOCK");
  if (e == nullptr || *e == 0) return 64;
  long n = std::strtol(e, nullptr, 10);
  return n >= 1 && n <= 1024 ? static_cast<uint32_t>(n) : 64;
}

std::string TranslatorIrListing(const TestCase& tc) {
  emu::Vendor v = EmulatorVendor() == "amd" ? emu::Vendor::kAmd : emu::Vendor::kIntel;
  return jit::DescribeCaseIr(tc, TranslatorBlockInsnsFromEnv(), 32, v);
}

Availability ProbeTranslator() {
  Availability a;
  a.available = true;
  uint32_t n = TranslatorBlockInsnsFromEnv();
  a.version = "translator (x86-64 -> IR -> x86-64, " +
              (n == 1 ? std::string("one instruction per block")
                      : "blocks of up to " + std::to_string(n) + " instructions") +
              ", " + std::string(EmulatorVendor()) + " profile)";
  return a;
}

std::unique_ptr<Engine> CreateTranslatorEngineInProcess(const EngineOptions& options) {
  return std::make_unique<TranslatorEngine>(options);
}

std::unique_ptr<Engine> CreateTranslatorEngine(const EngineOptions& options) {
  return MakeWorkerEngine([options] { return CreateTranslatorEngineInProcess(options); }, options,
                          "translator");
}

}  // namespace cpudiff

// plugin: engines, the C plugin ABI (include/cpudiff/engine.h) on the
// internal Engine interface. The library is dlopen'ed only inside a worker
// process (engines/worker/worker_engine.h), so its crash, abort or hang
// becomes a recorded `crash` or `timeout` and a new worker takes over.
#include <dlfcn.h>

#include <cstring>
#include <stdexcept>

#include "engines/outside/outside.h"
#include "engines/worker/worker_engine.h"

namespace cpudiff {
namespace {

std::string KindName(uint32_t kind) {
  return kind <= CPUDIFF_KIND_REFERENCE ? std::string(EngineKindName(static_cast<EngineKind>(kind)))
                                        : "kind " + std::to_string(kind);
}

class PluginEngine : public Engine {
 public:
  PluginEngine(const std::string& path, const EngineOptions& options) : path_(path) {
    // A bare file name would make dlopen search the library path.
    std::string open_path = path.find('/') == std::string::npos ? "./" + path : path;
    handle_ = dlopen(open_path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) throw std::runtime_error(std::string("cannot load: ") + dlerror());
    auto entry = reinterpret_cast<cpudiff_engine_entry_fn>(dlsym(handle_, CPUDIFF_ENGINE_ENTRY));
    if (entry == nullptr) {
      throw std::runtime_error("no symbol " CPUDIFF_ENGINE_ENTRY
                               " (not a cpudiff engine plugin, see include/cpudiff/engine.h)");
    }
    desc_ = entry(CPUDIFF_ENGINE_ABI_VERSION);
    if (desc_ == nullptr) {
      throw std::runtime_error("the plugin does not speak plugin ABI version " +
                               std::to_string(CPUDIFF_ENGINE_ABI_VERSION) +
                               " (its entry returned NULL)");
    }
    if (desc_->abi_version != CPUDIFF_ENGINE_ABI_VERSION) {
      throw std::runtime_error("plugin ABI version mismatch: the plugin was built for " +
                               std::to_string(desc_->abi_version) + ", this cpudiff speaks " +
                               std::to_string(CPUDIFF_ENGINE_ABI_VERSION));
    }
    if (desc_->create == nullptr || desc_->run == nullptr || desc_->destroy == nullptr) {
      throw std::runtime_error("the plugin lacks create, run or destroy");
    }
    cpudiff_engine_options o{};
    o.timeout_ms = options.timeout_ms;
    o.max_instructions = options.max_instructions;
    char error[512] = {};
    instance_ = desc_->create(&o, error, sizeof(error));
    if (instance_ == nullptr) {
      error[sizeof(error) - 1] = 0;
      throw std::runtime_error("the plugin's create failed: " +
                               (error[0] ? std::string(error) : "(no message)"));
    }
  }

  ~PluginEngine() override {
    if (instance_ != nullptr) desc_->destroy(instance_);
    // The library stays loaded: the process is a worker that ends with it.
  }

  uint32_t Observes() const override { return desc_->observes & kObserveAll; }

  std::string Version() const override {
    auto str = [](const char* s) { return s ? std::string(s) : std::string(); };
    return str(desc_->name) + " " + str(desc_->version) + " (" + KindName(desc_->kind) +
           ", observes " + ObserveNames(Observes()) + ")";
  }

  void Run(std::span<const TestCase* const> cases, std::span<RunResult> results) override {
    const size_t n = cases.size();
    regions_.resize(n);
    finals_.resize(n);
    code_regions_.resize(n);
    std::vector<cpudiff_case> in(n);
    std::vector<cpudiff_result> out(n);
    for (size_t i = 0; i < n; ++i) {
      const TestCase& tc = *cases[i];
      code_regions_[i] = tc.CodeRegion();
      auto& regs = regions_[i];
      auto& finals = finals_[i];
      regs.assign(tc.mem.size() + 1, cpudiff_region{});
      finals.resize(tc.mem.size());
      auto fill = [](const MemRegion& m, cpudiff_region* r) {
        r->addr = m.addr;
        r->size = m.size;
        r->perm = m.perm;
        r->data = m.data.data();
        r->data_len = m.data.size();
      };
      fill(code_regions_[i], &regs[0]);
      for (size_t k = 0; k < tc.mem.size(); ++k) {
        const MemRegion& m = tc.mem[k];
        fill(m, &regs[k + 1]);
        if (m.perm & kPermW) {
          finals[k].assign(m.size, 0);
          std::memcpy(finals[k].data(), m.data.data(), std::min<size_t>(m.data.size(), m.size));
          regs[k + 1].final_bytes = finals[k].data();
        } else {
          finals[k].clear();
        }
      }
      cpudiff_case& c = in[i];
      c.name = tc.name.c_str();
      c.code_addr = tc.code_addr;
      c.code = tc.code.data();
      c.code_len = tc.code.size();
      std::memcpy(&c.init, &tc.init, sizeof(c.init));
      c.regions = regs.data();
      c.num_regions = static_cast<uint32_t>(regs.size());
      std::memset(&out[i], 0, sizeof(out[i]));
      out[i].outcome.kind = CPUDIFF_OUTCOME_HALT;
      std::memcpy(&out[i].state, &tc.init, sizeof(out[i].state));
    }
    desc_->run(instance_, in.data(), out.data(), n);
    for (size_t i = 0; i < n; ++i) Convert(*cases[i], out[i], finals_[i], &results[i]);
  }

 private:
  void Convert(const TestCase& tc, const cpudiff_result& o,
               const std::vector<std::vector<uint8_t>>& finals, RunResult* r) {
    r->pages.clear();
    r->ns = o.ns;
    r->unobserved = o.unobserved & kObserveAll;
    std::memcpy(static_cast<void*>(&r->state), &o.state, sizeof(r->state));
    const cpudiff_outcome& oc = o.outcome;
    std::string reason(oc.reason, strnlen(oc.reason, sizeof(oc.reason)));
    switch (oc.kind) {
      case CPUDIFF_OUTCOME_HALT:
        r->outcome = Outcome::Halt();
        break;
      case CPUDIFF_OUTCOME_SYSCALL:
        r->outcome = Outcome::Syscall();
        break;
      case CPUDIFF_OUTCOME_TIMEOUT:
        r->outcome = Outcome::Timeout(reason);
        break;
      case CPUDIFF_OUTCOME_UNSUPPORTED:
        r->outcome = Outcome::Unsupported(reason);
        break;
      case CPUDIFF_OUTCOME_CRASH:
        r->outcome = Outcome::Crash(reason);
        break;
      case CPUDIFF_OUTCOME_FAULT:
        if (oc.vector > 31) {
          r->outcome = Outcome::Crash(path_ + ": the plugin reported fault vector " +
                                      std::to_string(oc.vector));
          r->state = tc.init;
          return;
        }
        r->outcome = Outcome::Fault(static_cast<uint8_t>(oc.vector));
        r->outcome.has_error_code = oc.has_error_code != 0;
        r->outcome.error_code = oc.error_code;
        r->outcome.has_addr = oc.has_addr != 0;
        r->outcome.addr = oc.addr;
        break;
      default:
        r->outcome =
            Outcome::Crash(path_ + ": the plugin reported outcome kind " + std::to_string(oc.kind));
        r->state = tc.init;
        return;
    }
    std::vector<const uint8_t*> final_ptrs(tc.mem.size(), nullptr);
    for (size_t k = 0; k < tc.mem.size(); ++k) {
      if (!finals[k].empty()) final_ptrs[k] = finals[k].data();
    }
    CollectChangedPages(tc, final_ptrs, &r->pages);
  }

  std::string path_;
  void* handle_ = nullptr;
  const cpudiff_engine* desc_ = nullptr;
  void* instance_ = nullptr;
  std::vector<MemRegion> code_regions_;
  std::vector<std::vector<cpudiff_region>> regions_;
  std::vector<std::vector<std::vector<uint8_t>>> finals_;
};

}  // namespace

std::unique_ptr<Engine> LoadPluginInProcess(const std::string& path, const EngineOptions& options) {
  return std::make_unique<PluginEngine>(path, options);
}

std::unique_ptr<Engine> CreatePluginEngine(const std::string& path, const EngineOptions& options) {
  return MakeWorkerEngine([path, options] { return LoadPluginInProcess(path, options); }, options,
                          "plugin " + path);
}

Availability ProbePlugin(const std::string& path) {
  return ProbeByStarting([&] { return CreatePluginEngine(path, EngineOptions{}); });
}

}  // namespace cpudiff

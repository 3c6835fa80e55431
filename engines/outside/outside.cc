#include "engines/outside/outside.h"

#include <deque>
#include <mutex>

namespace cpudiff {
namespace {

constexpr std::string_view kPluginPrefix = "plugin:";
constexpr std::string_view kExecPrefix = "exec:";

struct OutsideDesc {
  std::string name;
  std::string arg;
  EngineDesc desc;
};

}  // namespace

bool IsOutsideEngine(std::string_view name) {
  return name.starts_with(kPluginPrefix) || name.starts_with(kExecPrefix);
}

const EngineDesc* OutsideEngine(std::string_view spec, std::string* error) {
  // Descriptors live as long as the process: campaigns hold pointers to them.
  static std::mutex mu;
  static std::deque<OutsideDesc> known;
  std::lock_guard<std::mutex> lock(mu);
  for (const OutsideDesc& d : known) {
    if (d.name == spec) return &d.desc;
  }
  const bool plugin = spec.starts_with(kPluginPrefix);
  if (!plugin && !spec.starts_with(kExecPrefix)) {
    *error = "'" + std::string(spec) + "' is not an outside engine (plugin:PATH or exec:COMMAND)";
    return nullptr;
  }
  std::string arg(spec.substr(plugin ? kPluginPrefix.size() : kExecPrefix.size()));
  if (arg.find_first_not_of(" \t") == std::string::npos) {
    *error = "engine '" + std::string(spec) +
             "': " + (plugin ? "no plugin path after 'plugin:'" : "no command after 'exec:'");
    return nullptr;
  }
  OutsideDesc& d = known.emplace_back();
  d.name = std::string(spec);
  d.arg = arg;
  d.desc.name = d.name;
  // Outside engines say what they are in their version line; the kind is
  // what cpudiff can tell without running them.
  d.desc.kind = EngineKind::kReference;
  d.desc.builtin = false;
  if (plugin) {
    d.desc.description = "plugin (C ABI, include/cpudiff/engine.h)";
    d.desc.probe = [arg] { return ProbePlugin(arg); };
    d.desc.create = [arg](const EngineOptions& o) { return CreatePluginEngine(arg, o); };
  } else {
    d.desc.description = "process protocol (docs/engine-protocol.md)";
    d.desc.probe = [arg] { return ProbeExec(arg); };
    d.desc.create = [arg](const EngineOptions& o) { return CreateExecEngine(arg, o); };
  }
  return &d.desc;
}

Availability ProbeByStarting(const std::function<std::unique_ptr<Engine>()>& start) {
  try {
    std::unique_ptr<Engine> e = start();
    Availability a{true, "", e->Version()};
    a.observes = e->Observes();
    return a;
  } catch (const std::exception& ex) {
    return {false, ex.what(), ""};
  }
}

}  // namespace cpudiff

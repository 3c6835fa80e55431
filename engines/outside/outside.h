// Outside engines: engines that are not built into cpudiff.
//
//   plugin:PATH.so       a shared library implementing the C plugin ABI
//                        (include/cpudiff/engine.h), loaded inside a
//                        forked worker process (engines/worker)
//   exec:COMMAND ARGS    a program speaking the process protocol
//                        (docs/engine-protocol.md) over its stdin/stdout
//
// An outside engine is named by its whole spec ("plugin:./libtiny.so"); that
// name is what runs, results and reports record.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "engines/engine.h"

namespace cpudiff {

// Whether `name` names an outside engine (starts with "plugin:" or "exec:").
bool IsOutsideEngine(std::string_view name);

// The descriptor of an outside engine, kept for the life of the process
// (the same spec gives the same descriptor). Returns nullptr with a message
// in *error when the spec is malformed (an empty path or command). Whether
// the engine loads and speaks our version is found out by its probe.
const EngineDesc* OutsideEngine(std::string_view spec, std::string* error);

// Starts an outside engine with default options to learn its version and
// what it observes; unavailable with the reason when it cannot start (the
// shared probe of plugin: and exec: engines).
Availability ProbeByStarting(const std::function<std::unique_ptr<Engine>()>& start);

// ---- plugin: ----------------------------------------------------------------
// Loads the plugin in a throw-away worker and reports its name, version and
// what it observes; unavailable with the reason when it does not load, lacks
// the entry symbol or speaks another ABI version.
Availability ProbePlugin(const std::string& path);
// The plugin in a worker process.
std::unique_ptr<Engine> CreatePluginEngine(const std::string& path, const EngineOptions& options);
// The plugin in this process (what the worker runs); throws
// std::runtime_error when it cannot be loaded.
std::unique_ptr<Engine> LoadPluginInProcess(const std::string& path, const EngineOptions& options);

// ---- exec: ------------------------------------------------------------------
Availability ProbeExec(const std::string& command);
std::unique_ptr<Engine> CreateExecEngine(const std::string& command, const EngineOptions& options);

}  // namespace cpudiff

#pragma once

#include <memory>

#include "engines/engine.h"

namespace cpudiff {

Availability ProbeQemu();
std::unique_ptr<Engine> CreateQemuEngine(const EngineOptions& options);

}  // namespace cpudiff

#pragma once

#include <memory>

#include "engines/engine.h"

namespace cpudiff {

Availability ProbeUnicorn();
std::unique_ptr<Engine> CreateUnicornEngine(const EngineOptions& options);

}  // namespace cpudiff

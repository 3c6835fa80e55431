#pragma once

#include <memory>

#include "engines/engine.h"

namespace cpudiff {

Availability ProbeNative();
std::unique_ptr<Engine> CreateNativeEngine(const EngineOptions& options);

}  // namespace cpudiff

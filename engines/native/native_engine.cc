#include "engines/native/native_engine.h"

#include <stdexcept>

namespace cpudiff {

Availability ProbeNative() { return {false, "not built yet", ""}; }

std::unique_ptr<Engine> CreateNativeEngine(const EngineOptions&) {
  throw std::runtime_error("native: not built yet");
}

}  // namespace cpudiff

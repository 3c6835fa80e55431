#include "engines/qemu/qemu_engine.h"

#include <stdexcept>

namespace cpudiff {

Availability ProbeQemu() { return {false, "not built yet", ""}; }

std::unique_ptr<Engine> CreateQemuEngine(const EngineOptions&) {
  throw std::runtime_error("qemu: not built yet");
}

}  // namespace cpudiff

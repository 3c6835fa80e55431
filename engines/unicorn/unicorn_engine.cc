#include "engines/unicorn/unicorn_engine.h"

#include <stdexcept>

namespace cpudiff {

Availability ProbeUnicorn() { return {false, "not built yet", ""}; }

std::unique_ptr<Engine> CreateUnicornEngine(const EngineOptions&) {
  throw std::runtime_error("unicorn: not built yet");
}

}  // namespace cpudiff

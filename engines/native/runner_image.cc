// The runner executable, embedded so that cpudiff stays one binary. .incbin
// rather than a generated C array: no generator step, and the bytes are
// exactly the linked file.
#include <cstdint>
#include <span>

#include "engines/native/runner_host.h"

__asm__(
    ".section .rodata.cpudiff_runner,\"a\"\n"
    ".balign 64\n"
    "cpudiff_runner_image_begin:\n"
    ".incbin \"" CPUDIFF_RUNNER_PATH
    "\"\n"
    "cpudiff_runner_image_end:\n"
    ".previous\n");

extern "C" const uint8_t cpudiff_runner_image_begin[] __asm__("cpudiff_runner_image_begin");
extern "C" const uint8_t cpudiff_runner_image_end[] __asm__("cpudiff_runner_image_end");

namespace cpudiff {

std::span<const uint8_t> NativeRunnerImage() {
  return {cpudiff_runner_image_begin,
          static_cast<size_t>(cpudiff_runner_image_end - cpudiff_runner_image_begin)};
}

}  // namespace cpudiff

// The jail executable (jail.c), embedded so that cpudiff stays one binary
// (the same .incbin scheme as engines/native/runner_image.cc).
#include <cstddef>
#include <cstdint>
#include <span>

#include "engines/qemu/qemu_engine.h"

__asm__(
    ".section .rodata.cpudiff_qemu_jail,\"a\"\n"
    ".balign 64\n"
    "cpudiff_qemu_jail_begin:\n"
    ".incbin \"" CPUDIFF_QEMU_JAIL_PATH
    "\"\n"
    "cpudiff_qemu_jail_end:\n"
    ".previous\n");

extern "C" const uint8_t cpudiff_qemu_jail_begin[] __asm__("cpudiff_qemu_jail_begin");
extern "C" const uint8_t cpudiff_qemu_jail_end[] __asm__("cpudiff_qemu_jail_end");

namespace cpudiff {

std::span<const uint8_t> QemuJailImage() {
  return {cpudiff_qemu_jail_begin,
          static_cast<size_t>(cpudiff_qemu_jail_end - cpudiff_qemu_jail_begin)};
}

}  // namespace cpudiff

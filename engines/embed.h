// Embedding helper executables (the native runner, the qemu jail) into the
// cpudiff binary, and starting them from a sealed memfd, so that cpudiff
// stays one file. .incbin rather than a generated C array: no generator
// step, and the bytes are exactly the linked file.
#pragma once

#include <cstdint>
#include <span>
#include <string>

// Defines `std::span<const uint8_t> FUNC()` in namespace cpudiff returning
// the bytes of the file at PATH (a string literal), placed in .rodata.
#define CPUDIFF_EMBED_FILE(FUNC, PATH)                                                   \
  __asm__(".section .rodata." #FUNC ",\"a\"\n.balign 64\n" #FUNC "_begin:\n.incbin \"" PATH \
          "\"\n" #FUNC "_end:\n.previous\n");                                           \
  extern "C" const uint8_t FUNC##_begin[] __asm__(#FUNC "_begin");                       \
  extern "C" const uint8_t FUNC##_end[] __asm__(#FUNC "_end");                           \
  namespace cpudiff {                                                                    \
  std::span<const uint8_t> FUNC() {                                                      \
    return {FUNC##_begin, static_cast<size_t>(FUNC##_end - FUNC##_begin)};               \
  }                                                                                      \
  }

namespace cpudiff {

// A memfd holding `image`, sealed against every change (close-on-exec).
// Returns the descriptor, or -1 with the reason in `error`.
int SealedMemfd(const char* name, std::span<const uint8_t> image, std::string* error);

// The first executable file `name` in $PATH (or the default search path),
// or empty when there is none.
std::string FindInPath(const std::string& name);

}  // namespace cpudiff

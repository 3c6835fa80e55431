// The Zydis decoder every Zydis user of cpudiff shares: 64-bit mode, 64-bit
// stack. Zydis is the independent reference decoder (disassembly, flag
// metadata for the comparer, the native end analysis, generators, triage);
// our own decoder (engines/x86/decoder.h) is checked against it.
#pragma once

#include <Zydis/Zydis.h>

namespace cpudiff {

// Decoding only reads the decoder, so one constant instance serves every
// thread. Callers link Zydis::Zydis themselves.
inline const ZydisDecoder& LongModeDecoder() {
  static const ZydisDecoder decoder = [] {
    ZydisDecoder d;
    ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    return d;
  }();
  return decoder;
}

}  // namespace cpudiff

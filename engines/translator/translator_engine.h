// The `translator` engine: the in-house dynamic binary translator
// (engines/translator/translator.h) in a worker process.
#pragma once

#include <memory>
#include <string>

#include "engines/engine.h"

namespace cpudiff {

Availability ProbeTranslator();
// In a forked worker (a crash of generated code is a recorded `crash`).
std::unique_ptr<Engine> CreateTranslatorEngine(const EngineOptions& options);
// In this process: only for tests and tools that run inside a worker.
std::unique_ptr<Engine> CreateTranslatorEngineInProcess(const EngineOptions& options);

// Block mode from the environment: CPUDIFF_TRANSLATOR_BLOCK=1 ends every
// block after one guest instruction (for lockstep comparison); a number N
// caps blocks at N instructions. Default 64.
uint32_t TranslatorBlockInsnsFromEnv();

// The IR of the blocks of `tc` reachable through direct exits from its start
// (up to 32), before and after optimization, lifted statically without
// running anything: `cpudiff show CASE --ir`.
std::string TranslatorIrListing(const TestCase& tc);

}  // namespace cpudiff

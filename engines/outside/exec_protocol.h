// The process protocol of exec: engines (docs/engine-protocol.md), version 1:
// frame encoding and decoding. Little-endian, fixed-width fields, one frame
// = u32 type, u32 payload length, payload.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engines/x86/testcase.h"

namespace cpudiff {

inline constexpr uint32_t kExecProtocolVersion = 1;
inline constexpr char kExecMagic[8] = {'C', 'P', 'U', 'D', 'I', 'F', 'F', 'X'};
inline constexpr int64_t kExecStartTimeoutMs = 30'000;
// Largest frame accepted from an engine (a result with many pages).
inline constexpr uint32_t kExecMaxFrame = 256u << 20;

enum ExecFrameType : uint32_t {
  kExecHello = 1,       // cpudiff -> engine
  kExecHelloReply = 2,  // engine -> cpudiff
  kExecBatch = 3,       // cpudiff -> engine
  kExecResult = 4,      // engine -> cpudiff, one per case of a batch, in order
  kExecError = 5,       // engine -> cpudiff: it gives up, with a message
};

struct ExecFrame {
  uint32_t type = 0;
  std::vector<uint8_t> payload;
};

struct ExecHello {
  uint32_t version = 0;
  uint32_t kind = 0;
  uint32_t observes = 0;
  std::string name;
  std::string version_text;  // the engine's own version
};

// A frame that breaks the protocol, with what is wrong.
struct ExecProtocolError {
  std::string what;
};

void AppendHelloFrame(uint32_t timeout_ms, uint64_t max_instructions, std::vector<uint8_t>* out);
void AppendBatchFrame(std::span<const TestCase* const> cases, std::vector<uint8_t>* out);

// Takes one complete frame off the front of `buf`; false when it holds less
// than one frame. The parsers throw ExecProtocolError on a frame that
// cannot be valid.
bool TakeFrame(std::vector<uint8_t>* buf, ExecFrame* frame);
ExecHello ParseHelloReply(const ExecFrame& f);
std::string ReadErrorFrame(const ExecFrame& f);
// Fills *r from a RESULT frame for case `tc`; *index is the case's index in
// its batch.
void ParseResultFrame(const ExecFrame& f, const TestCase& tc, uint32_t* index, RunResult* r);

// For tests and engines written in C++: encoders of the engine side.
void AppendHelloReplyFrame(const ExecHello& h, std::vector<uint8_t>* out);
void AppendResultFrame(uint32_t index, const RunResult& r, std::vector<uint8_t>* out);

}  // namespace cpudiff

// Memory-layout constants of corpus format v1, in one place.
#pragma once

#include <cstdint>

namespace cpudiff {

inline constexpr uint64_t kPageSize = 4096;
inline constexpr uint64_t kDefaultCodeAddr = 0x10000000;
inline constexpr uint64_t kDefaultDataAddr = 0x20000000;
inline constexpr uint64_t kDefaultDataSize = 64 * 1024;
inline constexpr uint64_t kDefaultStackAddr = 0x30000000;
inline constexpr uint64_t kDefaultStackSize = 64 * 1024;
inline constexpr uint64_t kDefaultRsp = 0x3000fff0;
inline constexpr uint8_t kHltByte = 0xf4;

// Test memory must stay in the user half and clear of the addresses the
// engines keep for themselves (runner code, shared memory, stacks). Cases
// are mapped below this address.
inline constexpr uint64_t kUserAddrLimit = 0x7ff000000000;
// Largest code stream and region accepted by the corpus reader.
inline constexpr uint64_t kMaxCodeBytes = 1 << 20;
inline constexpr uint64_t kMaxRegionBytes = 64ull << 20;

inline constexpr uint64_t PageFloor(uint64_t a) { return a & ~(kPageSize - 1); }
inline constexpr uint64_t PageCeil(uint64_t a) { return (a + kPageSize - 1) & ~(kPageSize - 1); }

}  // namespace cpudiff

/* The wire format between the native runner (runner/runner.c, freestanding C,
 * no libc) and its host (runner_host.cc). Plain C so that both sides compile
 * the same layout; every field has a fixed width and offset.
 *
 * Transport: one shared-memory file (memfd, fd kRunnerShmFd in the runner,
 * mapped at kRunnerShmAddr) holding a header and two batch slots, plus two
 * pipes that carry one small message per batch each way. The host fills slot
 * s^1 while the runner runs slot s (pipelining).
 *
 * Address map of the runner process (all at or above kUserAddrLimit of
 * engines/x86/layout.h, so no case region can overlap it):
 *   0x7ff010000000  runner ELF (text, data, bss incl. the signal stack)
 *   0x7ff100000000  shared memory with the host (kRunnerShmAddr)
 *   0x7ff200000000  writable alias of the case-memory arena (kRunnerArenaAddr)
 */
#ifndef CPUDIFF_ENGINES_NATIVE_RUNNER_PROTOCOL_H_
#define CPUDIFF_ENGINES_NATIVE_RUNNER_PROTOCOL_H_

#include <stdint.h>

#define CPUDIFF_RUNNER_MAGIC 0x31726e7566666463ull /* "cdffunr1" */
#define CPUDIFF_RUNNER_VERSION 3u

/* File descriptors the runner finds at start (the host closes all others). */
#define kRunnerCmdFd 3   /* host -> runner: struct RunnerCmd */
#define kRunnerReplyFd 4 /* runner -> host: struct RunnerReply */
#define kRunnerShmFd 5   /* shared memory */

#define kRunnerTextAddr 0x7ff010000000ull
#define kRunnerShmAddr 0x7ff100000000ull
#define kRunnerArenaAddr 0x7ff200000000ull
/* Case regions are backed by one memfd ("arena"), mapped once writable at
 * kRunnerArenaAddr for the runner and once per region at the case address
 * with the case's permissions. Sum of a case's region sizes must fit. */
#define kRunnerArenaSize (2ull << 30)

#define kRunnerMaxBatch 1024u
#define kRunnerMaxRegions 16u
#define kRunnerInDataSize (128ull << 20) /* per slot: region initial bytes */
#define kRunnerOutPages 32768u           /* per slot: changed pages (128 MiB) */

/* Header flags (host -> runner, written before the runner starts). */
#define kRunnerFlagNoSeccomp 1u /* e.g. under qemu-x86_64, which refuses it */
/* Map an executable region anew after changing its bytes: an emulator that
 * caches translations per guest page (QEMU) does not see writes made through
 * the arena alias, but drops its translations when the range is mapped. */
#define kRunnerFlagRemapExec 2u
/* The signal frame's trap number is not the vector (Valgrind leaves it 0):
 * derive the vector from the signal and si_code, the #PF address from
 * si_addr. */
#define kRunnerFlagDeriveVector 8u
/* RunnerCaseOut.detail of a case that ended through the end stub (a jump
 * to RunnerHeader.exit_addr put where the HLT would be, see
 * engines/native/stub_end.h). */
#define kRunnerEndedByStub 1

/* Same layout as cpudiff::CpuState (engines/x86/state.h); the host
 * static_asserts it. */
struct RunnerCpuState {
  uint64_t gpr[16];
  uint64_t rip;
  uint64_t rflags;
  uint64_t xmm[16][2]; /* lo, hi */
  uint32_t mxcsr;
  uint32_t reserved;
  uint64_t fs_base;
  uint64_t gs_base;
};

struct RunnerRegionIn {
  uint64_t addr;
  uint64_t size;     /* multiple of 4096 */
  uint64_t data_off; /* offset of the initial bytes in the slot's data heap */
  uint64_t data_len; /* bytes of initial data; the rest of the region is 0 */
  uint32_t perm;     /* 1 r, 2 w, 4 x */
  uint32_t pad;
};

struct RunnerCaseIn {
  uint64_t seq; /* host's sequence number, echoed in progress */
  /* Where the code ends: the address of the appended HLT, or of the jump
   * to the runner's exit routine that the host put there instead (see
   * engines/native/stub_end.h). A case ending there reports this RIP. */
  uint64_t end_addr;
  struct RunnerCpuState init;
  uint32_t num_regions; /* regions[0] is the code region */
  /* Bit r set: the case may write regions[r]. The runner compares only
   * those regions' pages with their initial image after the case (the host
   * clears a bit only when it proved the case cannot write there, see
   * engines/native/stub_end.h). */
  uint32_t write_mask;
  struct RunnerRegionIn regions[kRunnerMaxRegions];
};

/* RunnerCaseOut.status */
#define kRunnerHalt 0u
#define kRunnerFault 1u
#define kRunnerSyscall 2u
#define kRunnerSetupFailed 3u /* mmap of a region failed: detail = -errno */
#define kRunnerOutputFull 4u  /* changed pages did not fit the slot */

struct RunnerCaseOut {
  uint32_t done; /* written last (release); the host clears it */
  uint32_t status;
  uint32_t vector;   /* kRunnerFault */
  uint32_t has_error_code;
  uint64_t error_code;
  uint64_t has_addr;
  uint64_t addr;
  int64_t detail;
  uint32_t first_page; /* index into the slot's page heap */
  uint32_t num_pages;
  struct RunnerCpuState state;
};

struct RunnerPageOut {
  uint64_t addr;
  uint8_t pad[56];
  uint8_t bytes[4096];
};

struct RunnerSlot {
  struct RunnerCaseIn in[kRunnerMaxBatch];
  struct RunnerCaseOut out[kRunnerMaxBatch];
  uint8_t data[kRunnerInDataSize];
  struct RunnerPageOut pages[kRunnerOutPages];
};

struct RunnerHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t flags;
  /* Written by the runner: seq of the case it is running now (release). */
  uint64_t progress;
  /* Written by the runner at start-up: the routine that a case's end stub
   * jumps to. */
  uint64_t exit_addr;
  /* Written by the runner before it gives up: what went wrong. */
  char fail_reason[232];
};

struct RunnerShm {
  struct RunnerHeader header;
  uint8_t header_pad[4096 - sizeof(struct RunnerHeader)];
  struct RunnerSlot slots[2];
};

struct RunnerCmd {
  uint32_t slot;
  uint32_t count;
};

struct RunnerReply {
  uint32_t slot; /* 0xffffffff: "ready" after start-up */
  uint32_t count;
};

#define kRunnerReadySlot 0xffffffffu

#endif /* CPUDIFF_ENGINES_NATIVE_RUNNER_PROTOCOL_H_ */

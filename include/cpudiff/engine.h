/* cpudiff engine plugin ABI, version 1.
 *
 * A plugin is a shared library that exports one function,
 *
 *   const struct cpudiff_engine* cpudiff_engine_entry(uint32_t abi_version);
 *
 * and is used as `cpudiff run --engines plugin:PATH.so`. cpudiff calls the
 * entry with the ABI version it speaks (CPUDIFF_ENGINE_ABI_VERSION); the
 * plugin returns its description, whose `abi_version` must equal it (or NULL
 * when it cannot speak that version). Anything else is refused with a clear
 * error before a case runs.
 *
 * Everything here is plain C99 with fixed-width fields, so that engines in C,
 * C++, Rust or Zig can implement it from this file alone. The layouts are the
 * ones cpudiff uses internally (engines/x86/state.h, engines/engine.h check
 * them at compile time): there is one shape of a case and a result, not two.
 *
 * What a case is and what an engine must report is defined by corpus format
 * v1 (corpus/FORMAT.md): the case's code is mapped read+execute at
 * `code_addr` followed by one HLT byte (f4); the run ends at the first HLT
 * executed (outcome HALT, rip at the HLT), at a fault (rip at the faulting
 * instruction and the registers before it; after it for the traps #BP and
 * SYSCALL), or at the engine's limit (TIMEOUT). Code must never make a host
 * system call: `syscall`, `sysenter` and `int 0x80` end the run as SYSCALL.
 *
 * Containment: cpudiff loads the plugin inside a worker process of its own
 * and hands it one case at a time, so a plugin that crashes or hangs costs a
 * recorded `crash` or `timeout` for that case, never the campaign.
 * A plugin's functions are called from one thread. */
#ifndef CPUDIFF_ENGINE_H_
#define CPUDIFF_ENGINE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CPUDIFF_ENGINE_ABI_VERSION 1u

/* ---- What an engine can observe -------------------------------------------
 * A field group an engine does not observe is not compared for it, and
 * reports say so. */
#define CPUDIFF_OBSERVE_GPRS (1u << 0)       /* rax..r15 */
#define CPUDIFF_OBSERVE_RIP (1u << 1)        /* rip */
#define CPUDIFF_OBSERVE_RFLAGS (1u << 2)     /* rflags */
#define CPUDIFF_OBSERVE_XMM (1u << 3)        /* xmm0..xmm15 */
#define CPUDIFF_OBSERVE_MXCSR (1u << 4)      /* mxcsr */
#define CPUDIFF_OBSERVE_SEG_BASES (1u << 5)  /* fs_base, gs_base */
#define CPUDIFF_OBSERVE_MEMORY (1u << 6)     /* writable regions at the end */
#define CPUDIFF_OBSERVE_ERROR_CODE (1u << 7) /* the error code of a fault */
#define CPUDIFF_OBSERVE_FAULT_ADDR (1u << 8) /* the address of a #PF */
#define CPUDIFF_OBSERVE_ALL ((1u << 9) - 1)

/* ---- What kind of execution path the engine is (for reports) ---------- */
#define CPUDIFF_KIND_EMULATION 0u
#define CPUDIFF_KIND_TRANSLATION 1u
#define CPUDIFF_KIND_VIRTUALIZATION 2u
#define CPUDIFF_KIND_NATIVE 3u
#define CPUDIFF_KIND_REFERENCE 4u

/* ---- Architectural state (424 bytes) ---------------------------------------
 * gpr[] in x86 encoding order: rax rcx rdx rbx rsp rbp rsi rdi r8..r15. */
struct cpudiff_xmm {
  uint64_t lo;
  uint64_t hi;
};

struct cpudiff_state {
  uint64_t gpr[16];
  uint64_t rip;
  uint64_t rflags;
  struct cpudiff_xmm xmm[16];
  uint32_t mxcsr;
  uint32_t reserved; /* 0 */
  uint64_t fs_base;
  uint64_t gs_base;
};

/* Register indices into cpudiff_state.gpr. */
enum {
  CPUDIFF_RAX = 0, CPUDIFF_RCX, CPUDIFF_RDX, CPUDIFF_RBX,
  CPUDIFF_RSP, CPUDIFF_RBP, CPUDIFF_RSI, CPUDIFF_RDI,
  CPUDIFF_R8, CPUDIFF_R9, CPUDIFF_R10, CPUDIFF_R11,
  CPUDIFF_R12, CPUDIFF_R13, CPUDIFF_R14, CPUDIFF_R15
};

/* ---- A case ---------------------------------------------------------------- */
#define CPUDIFF_PERM_R 1u
#define CPUDIFF_PERM_W 2u
#define CPUDIFF_PERM_X 4u

struct cpudiff_region {
  uint64_t addr; /* page aligned */
  uint64_t size; /* multiple of 4096 */
  uint32_t perm; /* CPUDIFF_PERM_* */
  uint32_t reserved;
  const uint8_t* data; /* the first data_len bytes; the rest is zero */
  uint64_t data_len;
  /* Writable regions: `size` bytes that cpudiff has filled with the initial
   * contents; the engine leaves the region's contents at the end of the run
   * here (it may write only what changed). NULL for read-only regions. */
  uint8_t* final_bytes;
};

struct cpudiff_case {
  const char* name; /* NUL-terminated, for messages */
  uint64_t code_addr;
  const uint8_t* code; /* the case's code, without the appended HLT */
  uint64_t code_len;
  struct cpudiff_state init; /* rflags has bit 1 and IF set */
  /* Every mapped region, non-overlapping. regions[0] is the code region as
   * mapped: the code, one HLT byte, zeros up to a page boundary, r-x. */
  const struct cpudiff_region* regions;
  uint32_t num_regions;
  uint32_t reserved;
};

/* ---- A result -------------------------------------------------------------- */
#define CPUDIFF_OUTCOME_HALT 0u
#define CPUDIFF_OUTCOME_FAULT 1u
#define CPUDIFF_OUTCOME_TIMEOUT 2u
#define CPUDIFF_OUTCOME_SYSCALL 3u     /* syscall, sysenter or int 0x80 */
#define CPUDIFF_OUTCOME_UNSUPPORTED 4u /* this engine cannot run this case */
#define CPUDIFF_OUTCOME_CRASH 5u       /* the engine failed on this case */

/* Exception vectors used in outcomes. */
#define CPUDIFF_VEC_DE 0u
#define CPUDIFF_VEC_BP 3u
#define CPUDIFF_VEC_UD 6u
#define CPUDIFF_VEC_SS 12u
#define CPUDIFF_VEC_GP 13u
#define CPUDIFF_VEC_PF 14u
#define CPUDIFF_VEC_AC 17u
#define CPUDIFF_VEC_XM 19u

struct cpudiff_outcome {
  uint32_t kind;   /* CPUDIFF_OUTCOME_* */
  uint32_t vector; /* FAULT: exception vector */
  uint32_t has_error_code; /* FAULT: 1 when error_code is set */
  uint32_t has_addr;       /* FAULT #PF: 1 when addr is set */
  uint64_t error_code;
  uint64_t addr;
  char reason[256]; /* UNSUPPORTED, CRASH, TIMEOUT: why (NUL-terminated) */
};

struct cpudiff_result {
  struct cpudiff_outcome outcome;
  /* End state. At a fault: the state before the faulting instruction, rip
   * at it (after it for #BP and SYSCALL). */
  struct cpudiff_state state;
  /* CPUDIFF_OBSERVE_* groups this result could not observe beyond what the
   * engine declares for every case (e.g. rflags at a fault). */
  uint32_t unobserved;
  uint32_t reserved;
  /* Nanoseconds the case took, or 0 to let cpudiff measure. */
  uint64_t ns;
};

/* ---- The engine ------------------------------------------------------------ */
struct cpudiff_engine_options {
  uint32_t timeout_ms;       /* wall-time limit per case (cpudiff enforces it) */
  uint32_t reserved;
  uint64_t max_instructions; /* budget for engines that count instructions */
};

struct cpudiff_engine {
  uint32_t abi_version; /* CPUDIFF_ENGINE_ABI_VERSION the plugin was built for */
  uint32_t kind;        /* CPUDIFF_KIND_* */
  uint32_t observes;    /* CPUDIFF_OBSERVE_* the engine reports */
  uint32_t reserved;
  const char* name;        /* short name, e.g. "tiny" */
  const char* version;     /* e.g. "1.0" */
  const char* description; /* one line */
  /* Creates an engine instance. On failure returns NULL and writes a
   * NUL-terminated message (at most error_size bytes) to `error`. */
  void* (*create)(const struct cpudiff_engine_options* options, char* error, size_t error_size);
  /* Runs cases[i] into results[i] for i < count. cpudiff has set every
   * results[i] to outcome HALT, state = cases[i].init, everything else 0.
   * A problem with one case is reported in its outcome (UNSUPPORTED or
   * CRASH with a reason), never by aborting. */
  void (*run)(void* engine, const struct cpudiff_case* cases, struct cpudiff_result* results,
              size_t count);
  void (*destroy)(void* engine);
};

/* The symbol cpudiff looks up. */
#define CPUDIFF_ENGINE_ENTRY "cpudiff_engine_entry"
typedef const struct cpudiff_engine* (*cpudiff_engine_entry_fn)(uint32_t abi_version);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CPUDIFF_ENGINE_H_ */

/* cpudiff native runner: a freestanding (libc-free) static executable that
 * runs test cases at their own addresses on the host CPU.
 *
 * Why freestanding: the runner shares its address space with arbitrary test
 * code, so it must own every byte of it. No libc means no TLS (a case may
 * load any FS base), no hidden allocations or threads, and exactly two
 * `syscall` instructions in the whole process, which is what the seccomp
 * filter keys on.
 *
 * Life of a case (see runner_protocol.h for the data):
 *   dispatch() -> prepare() maps the case's regions (only when the layout
 *   changed), brings their contents to the initial image (only pages that
 *   can differ), touches every page, then enter_case loads the full state
 *   and jumps to the case. The case ends in one of two ways:
 *   - a fault (HLT is #GP) whose signal lands in on_signal(), which saves
 *     the end state from the ucontext, reports changed pages, and calls
 *     dispatch() again without returning: the signal frame is simply
 *     abandoned (SA_NODEFER keeps the signals unblocked, and the next fault
 *     starts a new frame at the top of the alternate stack). This saves an
 *     rt_sigreturn per case, about half the kernel work.
 *   - a jump to case_exit, which the host puts at the end of the code in
 *     place of the HLT when the case provably cannot tell the difference
 *     (engines/native/stub_end.h): the state is saved by hand-written code
 *     without entering the kernel at all.
 *
 * Build flags (engines/native/CMakeLists.txt): -nostdlib -static
 * -ffreestanding -fno-tree-loop-distribute-patterns -fno-stack-protector
 * -no-pie, linked at kRunnerTextAddr. */

#include <asm/unistd_64.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>

#include "engines/native/runner_protocol.h"

/* Every symbol is local to this static executable: lets gcc address them
 * RIP-relative instead of through a GOT entry. */
#pragma GCC visibility push(hidden)

#define NORETURN __attribute__((noreturn))

/* ---- Kernel ABI pieces (no libc headers here) ---------------------------- */

#define SIGILL 4
#define SIGTRAP 5
#define SIGBUS 7
#define SIGFPE 8
#define SIGSEGV 11
#define SIGSYS 31
#define SA_SIGINFO 0x4u
#define SA_ONSTACK 0x08000000u
#define SA_RESTORER 0x04000000u
#define SA_NODEFER 0x40000000u
#define PROT_READ 1
#define PROT_WRITE 2
#define PROT_EXEC 4
#define MAP_SHARED 0x01
#define MAP_FIXED 0x10
#define MAP_PRIVATE 0x02
#define MAP_ANONYMOUS 0x20
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define PR_SET_NO_NEW_PRIVS 38
#define AT_HWCAP2 26
#define HWCAP2_FSGSBASE (1u << 1)
#define EINTR 4

struct KSigaction {
  void* handler;
  uint64_t flags;
  void* restorer;
  uint64_t mask;
};

struct KStack {
  void* sp;
  int32_t flags;
  int32_t pad;
  uint64_t size;
};

struct KFpstate {
  uint16_t cwd, swd, twd, fop;
  uint64_t rip, rdp;
  uint32_t mxcsr, mxcsr_mask;
  uint32_t st_space[32];
  uint64_t xmm[16][2];
};

struct KSigcontext {
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
  uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2;
  struct KFpstate* fpstate;
  uint64_t reserved[8];
};

struct KUcontext {
  uint64_t flags;
  void* link;
  struct KStack stack;
  struct KSigcontext mc;
};

struct KSiginfo {
  int32_t signo, err, code, pad;
  uint64_t addr; /* si_addr for SIGSEGV/SIGBUS/SIGFPE/SIGILL/SIGTRAP */
};

/* ---- The only two system-call instructions of the process ------------------
 * rsys_ip / restorer_ip label the addresses right after them: that is what
 * seccomp_data.instruction_pointer holds for a call made there. */
long rsys(long nr, long a, long b, long c, long d, long e, long f);
void restorer(void);
extern char rsys_ip[], restorer_ip[];
void enter_case(void) NORETURN;

__asm__(
    ".text\n"
    ".globl rsys\n"
    "rsys:\n"
    "  mov %rdi, %rax\n"
    "  mov %rsi, %rdi\n"
    "  mov %rdx, %rsi\n"
    "  mov %rcx, %rdx\n"
    "  mov %r8, %r10\n"
    "  mov %r9, %r8\n"
    "  mov 8(%rsp), %r9\n"
    "  syscall\n"
    ".globl rsys_ip\n"
    "rsys_ip:\n"
    "  ret\n"
    ".globl restorer\n"
    "restorer:\n"
    "  mov $15, %eax\n" /* rt_sigreturn; never used: handlers do not return */
    "  syscall\n"
    ".globl restorer_ip\n"
    "restorer_ip:\n"
    "  hlt\n");

/* ---- Small freestanding helpers ------------------------------------------- */

/* gcc may emit calls to these for struct copies even when freestanding. */
void* memcpy(void* d, const void* s, size_t n) {
  uint8_t* dd = d;
  const uint8_t* ss = s;
  for (size_t i = 0; i < n; ++i) dd[i] = ss[i];
  return d;
}
void* memset(void* d, int c, size_t n) {
  uint8_t* dd = d;
  for (size_t i = 0; i < n; ++i) dd[i] = (uint8_t)c;
  return d;
}
int memcmp(const void* a, const void* b, size_t n) {
  const uint8_t* x = a;
  const uint8_t* y = b;
  for (size_t i = 0; i < n; ++i) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}

/* Helpers for page contents. differs() and nonzero() read 64 bytes per
 * step as four 16-byte vectors (SSE2, which every x86-64 has) with no early
 * exit inside a step: comparing 4 KiB pages is the bulk of a case's work in
 * the runner, and gcc -O2 leaves a plain word loop scalar. Both pointers
 * are 8-byte aligned (pages, and data heap offsets aligned by the host); n
 * may have a tail. */
typedef uint64_t V2 __attribute__((vector_size(16), aligned(8)));

static int differs(const uint8_t* a, const uint8_t* b, uint64_t n) {
  uint64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const V2* x = (const V2*)(a + i);
    const V2* y = (const V2*)(b + i);
    V2 acc = ((x[0] ^ y[0]) | (x[1] ^ y[1])) | ((x[2] ^ y[2]) | (x[3] ^ y[3]));
    if (acc[0] | acc[1]) return 1;
  }
  uint64_t rest = 0;
  for (; i < n; ++i) rest |= (uint64_t)(a[i] ^ b[i]);
  return rest != 0;
}
static int nonzero(const uint8_t* a, uint64_t n) {
  uint64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const V2* x = (const V2*)(a + i);
    V2 acc = (x[0] | x[1]) | (x[2] | x[3]);
    if (acc[0] | acc[1]) return 1;
  }
  uint64_t rest = 0;
  for (; i < n; ++i) rest |= a[i];
  return rest != 0;
}
static void copy_bytes(uint8_t* d, const uint8_t* s, uint64_t n) {
  uint64_t* x = (uint64_t*)d;
  const uint64_t* y = (const uint64_t*)s;
  uint64_t w = n / 8;
  for (uint64_t i = 0; i < w; ++i) x[i] = y[i];
  for (uint64_t i = w * 8; i < n; ++i) d[i] = s[i];
}
static void zero_bytes(uint8_t* d, uint64_t n) {
  uint64_t* x = (uint64_t*)d;
  uint64_t w = n / 8;
  for (uint64_t i = 0; i < w; ++i) x[i] = 0;
  for (uint64_t i = w * 8; i < n; ++i) d[i] = 0;
}

static struct RunnerShm* const g_shm = (struct RunnerShm*)kRunnerShmAddr;
static uint8_t* const g_arena = (uint8_t*)kRunnerArenaAddr;

static void append(char** p, char* end, const char* s) {
  while (*s && *p < end) *(*p)++ = *s++;
}
static void append_hex(char** p, char* end, uint64_t v) {
  static const char kHex[] = "0123456789abcdef";
  append(p, end, "0x");
  int started = 0;
  for (int i = 60; i >= 0; i -= 4) {
    int d = (int)((v >> i) & 15);
    if (d || started || i == 0) {
      started = 1;
      if (*p < end) *(*p)++ = kHex[d];
    }
  }
}

/* Records why the runner gives up, for the host's crash message, and exits. */
static NORETURN void fatal3(const char* what, uint64_t a, uint64_t b, uint64_t c) {
  char* p = g_shm->header.fail_reason;
  char* end = p + sizeof(g_shm->header.fail_reason) - 1;
  append(&p, end, what);
  append(&p, end, " ");
  append_hex(&p, end, a);
  append(&p, end, " ");
  append_hex(&p, end, b);
  append(&p, end, " ");
  append_hex(&p, end, c);
  *p = 0;
  for (;;) rsys(__NR_exit_group, 3, 0, 0, 0, 0, 0);
}
static NORETURN void fatal(const char* what, uint64_t a) { fatal3(what, a, 0, 0); }

/* Before the shared memory is mapped there is nowhere to write a reason. */
static NORETURN void early_exit(int code) {
  for (;;) rsys(__NR_exit_group, code, 0, 0, 0, 0, 0);
}

/* ---- Runner state ------------------------------------------------------- */

/* The state enter_case loads; the layout is RunnerCpuState (offsets below). */
struct RunnerCpuState g_enter __attribute__((aligned(64)));
/* The state case_exit saves; same layout. */
struct RunnerCpuState g_exit __attribute__((aligned(64)));

static int g_fsgsbase;          /* wrfsbase & co. usable (HWCAP2_FSGSBASE) */
static uint64_t g_cur_fs, g_cur_gs; /* bases as set, when not using fsgsbase */
static int g_arena_fd;

/* Current batch. */
static uint32_t g_have_batch, g_slot, g_count, g_index, g_page_next;
static volatile int g_running; /* a case is executing */

/* Current memory layout: the regions mapped now. */
static uint32_t g_nregions;
static struct {
  uint64_t addr, size, arena_off, prev_len;
  uint32_t perm;
} g_layout[kRunnerMaxRegions];
/* Arena pages (index = arena offset / 4096) the last case changed. */
#define kMaxDirty (kRunnerArenaSize / 4096)
static uint32_t g_dirty[kMaxDirty];
static uint64_t g_ndirty;

/* Alternate signal stack: large enough for an AVX-512 xsave frame plus the
 * handler. A case may point RSP anywhere, so signals never use it. */
#define kSigstackSize (256 * 1024)
uint8_t g_sigstack[kSigstackSize] __attribute__((aligned(64)));

extern char __executable_start[], _etext[];

static void write_all(int fd, const void* buf, uint64_t n) {
  const uint8_t* p = buf;
  while (n > 0) {
    long r = rsys(__NR_write, fd, (long)p, (long)n, 0, 0, 0);
    if (r == -EINTR) continue;
    if (r <= 0) early_exit(4);
    p += r;
    n -= (uint64_t)r;
  }
}
static int read_all(int fd, void* buf, uint64_t n) {
  uint8_t* p = buf;
  while (n > 0) {
    long r = rsys(__NR_read, fd, (long)p, (long)n, 0, 0, 0);
    if (r == -EINTR) continue;
    if (r <= 0) return 0;
    p += r;
    n -= (uint64_t)r;
  }
  return 1;
}

/* ---- Memory --------------------------------------------------------------- */

static int same_layout(const struct RunnerCaseIn* in) {
  if (in->num_regions != g_nregions) return 0;
  for (uint32_t r = 0; r < g_nregions; ++r) {
    const struct RunnerRegionIn* ri = &in->regions[r];
    if (ri->addr != g_layout[r].addr || ri->size != g_layout[r].size ||
        ri->perm != g_layout[r].perm) {
      return 0;
    }
  }
  return 1;
}

static void unmap_all(void) {
  for (uint32_t r = 0; r < g_nregions; ++r) {
    rsys(__NR_munmap, (long)g_layout[r].addr, (long)g_layout[r].size, 0, 0, 0, 0);
  }
  g_nregions = 0;
}

/* Brings bytes [lo, hi) of page `off` of a region to the initial image
 * (data[0..len) then zeros), writing only what differs: an unchanged code
 * page must stay unwritten (a write to a code page costs a pipeline flush). */
static int g_wrote; /* sync_range changed something */
static int g_region_wrote[kRunnerMaxRegions];

static void sync_range(uint8_t* page, const uint8_t* data, uint64_t len, uint64_t off,
                       uint64_t lo, uint64_t hi) {
  /* Data bytes of this page: [off+lo, min(len, off+hi)). */
  uint64_t d_end = len > off ? len - off : 0;
  if (d_end > hi) d_end = hi;
  if (d_end > lo) {
    if (differs(page + lo, data + off + lo, d_end - lo)) {
      copy_bytes(page + lo, data + off + lo, d_end - lo);
      g_wrote = 1;
    }
  } else {
    d_end = lo;
  }
  if (hi > d_end && nonzero(page + d_end, hi - d_end)) {
    zero_bytes(page + d_end, hi - d_end);
    g_wrote = 1;
  }
}

static void sync_page(uint32_t r, uint64_t off, uint64_t lo, uint64_t hi,
                      const struct RunnerCaseIn* in, const uint8_t* heap) {
  const struct RunnerRegionIn* ri = &in->regions[r];
  g_wrote = 0;
  sync_range(g_arena + g_layout[r].arena_off + off, heap + ri->data_off, ri->data_len, off, lo,
             hi);
  g_region_wrote[r] |= g_wrote;
}

/* Maps the case's regions when the layout changed and brings memory to the
 * initial image. Returns 0 or -errno of a failed mmap. */
static long prepare(const struct RunnerCaseIn* in, const uint8_t* heap) {
  if (!same_layout(in)) {
    unmap_all();
    g_ndirty = 0;
    uint64_t arena_off = 0;
    for (uint32_t r = 0; r < in->num_regions; ++r) {
      const struct RunnerRegionIn* ri = &in->regions[r];
      long prot = ((ri->perm & 1) ? PROT_READ : 0) | ((ri->perm & 2) ? PROT_WRITE : 0) |
                  ((ri->perm & 4) ? PROT_EXEC : 0);
      long p = rsys(__NR_mmap, (long)ri->addr, (long)ri->size, prot, MAP_SHARED | MAP_FIXED,
                    g_arena_fd, (long)arena_off);
      if (p < 0 && p > -4096) {
        unmap_all();
        return p;
      }
      g_layout[r].addr = ri->addr;
      g_layout[r].size = ri->size;
      g_layout[r].perm = ri->perm;
      g_layout[r].arena_off = arena_off;
      g_nregions = r + 1;
      /* The arena's old contents here are unknown: sync every byte. */
      for (uint64_t off = 0; off < ri->size; off += 4096) {
        sync_page(r, off, 0, 4096, in, heap);
      }
      arena_off += ri->size;
    }
  } else {
    for (uint32_t r = 0; r < g_nregions; ++r) g_region_wrote[r] = 0;
    /* Pages the last case wrote: the whole page. */
    for (uint64_t i = 0; i < g_ndirty; ++i) {
      uint64_t aoff = (uint64_t)g_dirty[i] * 4096;
      for (uint32_t r = 0; r < g_nregions; ++r) {
        if (aoff >= g_layout[r].arena_off && aoff < g_layout[r].arena_off + g_layout[r].size) {
          sync_page(r, aoff - g_layout[r].arena_off, 0, 4096, in, heap);
          break;
        }
      }
    }
    g_ndirty = 0;
    /* Other pages hold the last case's initial image: only the bytes where
     * either image has data can differ. */
    for (uint32_t r = 0; r < g_nregions; ++r) {
      uint64_t len = in->regions[r].data_len;
      if (g_layout[r].prev_len > len) len = g_layout[r].prev_len;
      for (uint64_t off = 0; off < len; off += 4096) {
        uint64_t hi = len - off < 4096 ? len - off : 4096;
        sync_page(r, off, 0, hi, in, heap);
      }
    }
    for (uint32_t r = 0; r < g_nregions; ++r) {
      if (g_region_wrote[r] && (g_layout[r].perm & 4) &&
          (g_shm->header.flags & kRunnerFlagRemapExec)) {
        /* QEMU 7.2 drops the translated blocks of a page when the page
         * becomes writable (mprotect adding PROT_WRITE), not when the same
         * file pages are mapped again: toggle the protection. */
        long prot = ((g_layout[r].perm & 1) ? PROT_READ : 0) |
                    ((g_layout[r].perm & 2) ? PROT_WRITE : 0) | PROT_EXEC;
        long p = rsys(__NR_mprotect, (long)g_layout[r].addr, (long)g_layout[r].size,
                      PROT_READ | PROT_WRITE, 0, 0, 0);
        if (p == 0) {
          p = rsys(__NR_mprotect, (long)g_layout[r].addr, (long)g_layout[r].size, prot, 0, 0, 0);
        }
        if (p < 0 && p > -4096) {
          unmap_all();
          return p;
        }
      }
    }
  }
  for (uint32_t r = 0; r < g_nregions; ++r) g_layout[r].prev_len = in->regions[r].data_len;
  /* Touch every page through the case's own mapping so that its page-table
   * entry exists: a write to a read-only page then reports #PF error 7, as
   * silicon does for a present page (PLATFORM-NOTES). */
  for (uint32_t r = 0; r < g_nregions; ++r) {
    for (uint64_t off = 0; off < g_layout[r].size; off += 4096) {
      (void)*(volatile uint8_t*)(g_layout[r].addr + off);
    }
  }
  return 0;
}

/* After a case: report and remember every writable page that differs from
 * the case's initial image. */
static int collect_pages(const struct RunnerCaseIn* in, struct RunnerCaseOut* out,
                         struct RunnerSlot* slot) {
  out->first_page = g_page_next;
  out->num_pages = 0;
  for (uint32_t r = 0; r < g_nregions; ++r) {
    if (!(g_layout[r].perm & 2) || !((in->write_mask >> r) & 1)) continue;
    const struct RunnerRegionIn* ri = &in->regions[r];
    const uint8_t* data = slot->data + ri->data_off;
    for (uint64_t off = 0; off < ri->size; off += 4096) {
      const uint8_t* page = g_arena + g_layout[r].arena_off + off;
      uint64_t d = ri->data_len > off ? ri->data_len - off : 0;
      if (d > 4096) d = 4096;
      if (!differs(page, data + off, d) && !nonzero(page + d, 4096 - d)) continue;
      if (g_page_next >= kRunnerOutPages) return 0;
      struct RunnerPageOut* po = &slot->pages[g_page_next++];
      po->addr = g_layout[r].addr + off;
      copy_bytes(po->bytes, page, 4096);
      out->num_pages++;
      g_dirty[g_ndirty++] = (uint32_t)((g_layout[r].arena_off + off) / 4096);
    }
  }
  return 1;
}

/* ---- Running cases -------------------------------------------------------- */

static void set_bases(uint64_t fs, uint64_t gs) {
  if (g_fsgsbase) {
    __asm__ volatile("wrfsbase %0\n\twrgsbase %1" : : "r"(fs), "r"(gs) : "memory");
    return;
  }
  if (fs != g_cur_fs) {
    long r = rsys(__NR_arch_prctl, ARCH_SET_FS, (long)fs, 0, 0, 0, 0);
    if (r != 0) fatal("arch_prctl(ARCH_SET_FS) failed", (uint64_t)r);
    g_cur_fs = fs;
  }
  if (gs != g_cur_gs) {
    long r = rsys(__NR_arch_prctl, ARCH_SET_GS, (long)gs, 0, 0, 0, 0);
    if (r != 0) fatal("arch_prctl(ARCH_SET_GS) failed", (uint64_t)r);
    g_cur_gs = gs;
  }
}

/* Loads g_enter completely and jumps to its RIP. Offsets follow
 * RunnerCpuState: gpr 0, rip 128, rflags 136, xmm 144, mxcsr 400. The GPR
 * loads come after popfq, so a case that sets AC only sees aligned accesses
 * here. */
__asm__(
    ".text\n"
    ".globl enter_case\n"
    "enter_case:\n"
    "  lea g_enter(%rip), %rax\n"
    "  ldmxcsr 400(%rax)\n"
    "  movdqu 144(%rax), %xmm0\n"
    "  movdqu 160(%rax), %xmm1\n"
    "  movdqu 176(%rax), %xmm2\n"
    "  movdqu 192(%rax), %xmm3\n"
    "  movdqu 208(%rax), %xmm4\n"
    "  movdqu 224(%rax), %xmm5\n"
    "  movdqu 240(%rax), %xmm6\n"
    "  movdqu 256(%rax), %xmm7\n"
    "  movdqu 272(%rax), %xmm8\n"
    "  movdqu 288(%rax), %xmm9\n"
    "  movdqu 304(%rax), %xmm10\n"
    "  movdqu 320(%rax), %xmm11\n"
    "  movdqu 336(%rax), %xmm12\n"
    "  movdqu 352(%rax), %xmm13\n"
    "  movdqu 368(%rax), %xmm14\n"
    "  movdqu 384(%rax), %xmm15\n"
    "  lea 136(%rax), %rsp\n"
    "  popfq\n"
    "  mov 8(%rax), %rcx\n"
    "  mov 16(%rax), %rdx\n"
    "  mov 24(%rax), %rbx\n"
    "  mov 32(%rax), %rsp\n"
    "  mov 40(%rax), %rbp\n"
    "  mov 48(%rax), %rsi\n"
    "  mov 56(%rax), %rdi\n"
    "  mov 64(%rax), %r8\n"
    "  mov 72(%rax), %r9\n"
    "  mov 80(%rax), %r10\n"
    "  mov 88(%rax), %r11\n"
    "  mov 96(%rax), %r12\n"
    "  mov 104(%rax), %r13\n"
    "  mov 112(%rax), %r14\n"
    "  mov 120(%rax), %r15\n"
    "  mov 0(%rax), %rax\n"
    "  jmp *g_enter+128(%rip)\n");

_Static_assert(offsetof(struct RunnerCpuState, rip) == 128, "layout");
_Static_assert(offsetof(struct RunnerCpuState, rflags) == 136, "layout");
_Static_assert(offsetof(struct RunnerCpuState, xmm) == 144, "layout");
_Static_assert(offsetof(struct RunnerCpuState, mxcsr) == 400, "layout");

static NORETURN void dispatch(void);
static NORETURN void finish_case(const struct RunnerCaseIn* in, struct RunnerCaseOut* out,
                                 struct RunnerSlot* slot);
void case_exit(void) NORETURN;

static int is_legacy_or_rex_prefix(uint8_t b) {
  return b == 0x66 || b == 0x67 || b == 0xf0 || b == 0xf2 || b == 0xf3 || b == 0x2e ||
         b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 || b == 0x65 || (b & 0xf0) == 0x40;
}

/* The address of the opcode of the instruction at rip, past its prefixes.
 * Only bytes the CPU already fetched are read (it fetched the prefixes and
 * the first non-prefix byte before raising #GP/#UD). */
static const uint8_t* opcode_at(uint64_t rip) {
  const uint8_t* p = (const uint8_t*)rip;
  for (int i = 0; i < 14 && is_legacy_or_rex_prefix(*p); ++i) ++p;
  return p;
}

static void save_bases(struct RunnerCpuState* s);

static void save_state(struct RunnerCpuState* s, const struct KSigcontext* mc) {
  s->gpr[0] = mc->rax;
  s->gpr[1] = mc->rcx;
  s->gpr[2] = mc->rdx;
  s->gpr[3] = mc->rbx;
  s->gpr[4] = mc->rsp;
  s->gpr[5] = mc->rbp;
  s->gpr[6] = mc->rsi;
  s->gpr[7] = mc->rdi;
  s->gpr[8] = mc->r8;
  s->gpr[9] = mc->r9;
  s->gpr[10] = mc->r10;
  s->gpr[11] = mc->r11;
  s->gpr[12] = mc->r12;
  s->gpr[13] = mc->r13;
  s->gpr[14] = mc->r14;
  s->gpr[15] = mc->r15;
  s->rip = mc->rip;
  s->rflags = mc->eflags;
  if (mc->fpstate) {
    s->mxcsr = mc->fpstate->mxcsr;
    for (int i = 0; i < 16; ++i) {
      s->xmm[i][0] = mc->fpstate->xmm[i][0];
      s->xmm[i][1] = mc->fpstate->xmm[i][1];
    }
  }
  save_bases(s);
}

static void save_bases(struct RunnerCpuState* s) {
  s->reserved = 0;
  if (g_fsgsbase) {
    uint64_t fs, gs;
    __asm__ volatile("rdfsbase %0\n\trdgsbase %1" : "=r"(fs), "=r"(gs));
    s->fs_base = fs;
    s->gs_base = gs;
  } else {
    /* Without FSGSBASE a case cannot change the bases. */
    s->fs_base = g_cur_fs;
    s->gs_base = g_cur_gs;
  }
}

/* Vector from signal and si_code when REG_TRAPNO is not usable (qemu-x86_64
 * reports -1). */
static uint32_t derive_vector(int sig, int code) {
  switch (sig) {
    case SIGSEGV: return (code == 1 || code == 2 || code == 4) ? 14 : 13; /* MAPERR ACCERR PKUERR */
    case SIGBUS: return code == 1 ? 17 : 12;                             /* BUS_ADRALN: #AC */
    case SIGILL: return 6;
    case SIGFPE: return (code == 1 || code == 2) ? 0 : 19; /* FPE_INTDIV, FPE_INTOVF: #DE */
    case SIGTRAP: return (code == 2 || code == 4) ? 1 : 3; /* TRAP_TRACE, TRAP_HWBKPT: #DB */
  }
  return 13;
}

static void on_signal(int sig, struct KSiginfo* si, struct KUcontext* uc) {
  /* Linux clears DF, TF and RF for a handler but not AC: with a case's AC
   * still set, any misaligned access of the runner would raise #AC. And
   * qemu-x86_64 7.2 does not clear DF: a case that ended with DF set made
   * the runner's own string copies (gcc inlines struct copies as rep movs)
   * run backwards and load the next case with garbage. Clear both. */
  __asm__ volatile("pushfq\n\tandq $~0x40400, (%%rsp)\n\tpopfq" : : : "memory", "cc");
  struct KSigcontext* mc = &uc->mc;
  if (!g_running || (mc->rip >= (uint64_t)__executable_start && mc->rip < (uint64_t)_etext)) {
    fatal3("runner fault: signal, rip, addr", (uint64_t)sig, mc->rip, si->addr);
  }
  g_running = 0;
  struct RunnerSlot* slot = &g_shm->slots[g_slot];
  const struct RunnerCaseIn* in = &slot->in[g_index];
  struct RunnerCaseOut* out = &slot->out[g_index];
  save_state(&out->state, mc);
  out->has_error_code = 0;
  out->error_code = 0;
  out->has_addr = 0;
  out->addr = 0;
  out->detail = 0;
  if (sig == SIGSYS) {
    /* seccomp trapped a `syscall` or `int 0x80` of the case: RIP is past it. */
    out->status = kRunnerSyscall;
  } else {
    const int trapno_ok = mc->trapno < 32 && !(g_shm->header.flags & kRunnerFlagDeriveVector);
    uint32_t vector = trapno_ok ? (uint32_t)mc->trapno : derive_vector(sig, si->code);
    const uint8_t* op = (vector == 13 || vector == 6) ? opcode_at(mc->rip) : 0;
    if ((vector == 13 || (vector == 6 && (g_shm->header.flags & kRunnerFlagDeriveVector))) &&
        op[0] == 0xf4) {
      /* HLT at CPL3 is #GP with RIP at the HLT. Valgrind raises SIGILL for
       * it; on silicon a #UD at an f4 is `lock hlt`, a real #UD. */
      out->status = kRunnerHalt;
    } else if (vector == 13 && op[0] == 0xcd && op[1] == 0x80) {
      /* int 0x80 on a kernel without IA32 emulation: the gate is absent and
       * the CPU raises #GP(0x402). Still the system call it is meant as. */
      out->status = kRunnerSyscall;
      out->state.rip = (uint64_t)(op + 2);
    } else if (vector == 6 && op[0] == 0x0f && op[1] == 0x34) {
      /* sysenter: #UD on AMD in long mode, a garbled vDSO entry on Intel;
       * reported as the system call it is, RIP past it. */
      out->status = kRunnerSyscall;
      out->state.rip = (uint64_t)(op + 2);
    } else {
      out->status = kRunnerFault;
      out->vector = vector;
      out->has_error_code = 1;
      out->error_code = mc->err;
      if (vector == 14) {
        out->has_addr = 1;
        out->addr = trapno_ok ? mc->cr2 : si->addr;
      }
    }
  }
  finish_case(in, out, slot);
}

/* Reports the changed pages, publishes the result and runs the next case. */
static NORETURN void finish_case(const struct RunnerCaseIn* in, struct RunnerCaseOut* out,
                                 struct RunnerSlot* slot) {
  if (!collect_pages(in, out, slot)) {
    out->status = kRunnerOutputFull;
    unmap_all(); /* the dirty list is incomplete: start the next case afresh */
    g_ndirty = 0;
  }
  __atomic_store_n(&out->done, 1, __ATOMIC_RELEASE);
  g_index++;
  dispatch();
}

/* A case reached the stub at its end: case_exit saved everything but the
 * segment bases into g_exit. The RIP is where the HLT would have been. */
NORETURN void stub_exit(void) {
  g_running = 0;
  struct RunnerSlot* slot = &g_shm->slots[g_slot];
  const struct RunnerCaseIn* in = &slot->in[g_index];
  struct RunnerCaseOut* out = &slot->out[g_index];
  out->state = g_exit;
  out->state.rip = in->end_addr;
  /* Bit 1 and IF are 1 in user mode; Valgrind's pushfq leaves both clear. */
  out->state.rflags |= 0x202;
  save_bases(&out->state);
  out->status = kRunnerHalt;
  out->vector = 0;
  out->has_error_code = 0;
  out->error_code = 0;
  out->has_addr = 0;
  out->addr = 0;
  out->detail = kRunnerEndedByStub;
  finish_case(in, out, slot);
}

/* The end stub's target. Saves the case's registers without touching its
 * memory (a case may point RSP anywhere), moves to the top of the signal
 * stack (no signal frame is live while a case runs), clears AC and DF (the
 * C code below assumes both clear) and goes on in stub_exit. Offsets follow
 * RunnerCpuState as in enter_case. */
__asm__(
    ".text\n"
    ".globl case_exit\n"
    "case_exit:\n"
    "  mov %rsp, g_exit+32(%rip)\n"
    "  lea g_sigstack+262144(%rip), %rsp\n"
    "  mov %rax, g_exit+0(%rip)\n"
    "  mov %rcx, g_exit+8(%rip)\n"
    "  mov %rdx, g_exit+16(%rip)\n"
    "  mov %rbx, g_exit+24(%rip)\n"
    "  mov %rbp, g_exit+40(%rip)\n"
    "  mov %rsi, g_exit+48(%rip)\n"
    "  mov %rdi, g_exit+56(%rip)\n"
    "  mov %r8, g_exit+64(%rip)\n"
    "  mov %r9, g_exit+72(%rip)\n"
    "  mov %r10, g_exit+80(%rip)\n"
    "  mov %r11, g_exit+88(%rip)\n"
    "  mov %r12, g_exit+96(%rip)\n"
    "  mov %r13, g_exit+104(%rip)\n"
    "  mov %r14, g_exit+112(%rip)\n"
    "  mov %r15, g_exit+120(%rip)\n"
    "  pushfq\n"
    "  pop %rax\n"
    "  mov %rax, g_exit+136(%rip)\n"
    "  and $~0x40400, %rax\n"
    "  push %rax\n"
    "  popfq\n"
    "  movdqu %xmm0, g_exit+144(%rip)\n"
    "  movdqu %xmm1, g_exit+160(%rip)\n"
    "  movdqu %xmm2, g_exit+176(%rip)\n"
    "  movdqu %xmm3, g_exit+192(%rip)\n"
    "  movdqu %xmm4, g_exit+208(%rip)\n"
    "  movdqu %xmm5, g_exit+224(%rip)\n"
    "  movdqu %xmm6, g_exit+240(%rip)\n"
    "  movdqu %xmm7, g_exit+256(%rip)\n"
    "  movdqu %xmm8, g_exit+272(%rip)\n"
    "  movdqu %xmm9, g_exit+288(%rip)\n"
    "  movdqu %xmm10, g_exit+304(%rip)\n"
    "  movdqu %xmm11, g_exit+320(%rip)\n"
    "  movdqu %xmm12, g_exit+336(%rip)\n"
    "  movdqu %xmm13, g_exit+352(%rip)\n"
    "  movdqu %xmm14, g_exit+368(%rip)\n"
    "  movdqu %xmm15, g_exit+384(%rip)\n"
    "  stmxcsr g_exit+400(%rip)\n"
    "  call stub_exit\n"
    "  hlt\n");
_Static_assert(kSigstackSize == 262144, "case_exit's stack top");

static NORETURN void dispatch(void) {
  for (;;) {
    if (g_index >= g_count) {
      if (g_have_batch) {
        struct RunnerReply reply = {g_slot, g_count};
        write_all(kRunnerReplyFd, &reply, sizeof(reply));
        g_have_batch = 0;
      }
      struct RunnerCmd cmd;
      if (!read_all(kRunnerCmdFd, &cmd, sizeof(cmd))) early_exit(0); /* host closed */
      if (cmd.slot > 1 || cmd.count > kRunnerMaxBatch) fatal3("bad command", cmd.slot, cmd.count, 0);
      g_slot = cmd.slot;
      g_count = cmd.count;
      g_index = 0;
      g_page_next = 0;
      g_have_batch = 1;
      continue;
    }
    struct RunnerSlot* slot = &g_shm->slots[g_slot];
    const struct RunnerCaseIn* in = &slot->in[g_index];
    struct RunnerCaseOut* out = &slot->out[g_index];
    __atomic_store_n(&g_shm->header.progress, in->seq, __ATOMIC_RELEASE);
    if (in->num_regions == 0 || in->num_regions > kRunnerMaxRegions) {
      fatal("bad region count", in->num_regions);
    }
    long rc = prepare(in, slot->data);
    if (rc != 0) {
      out->status = kRunnerSetupFailed;
      out->detail = rc;
      out->num_pages = 0;
      __atomic_store_n(&out->done, 1, __ATOMIC_RELEASE);
      g_index++;
      continue;
    }
    g_enter = in->init;
    set_bases(in->init.fs_base, in->init.gs_base);
    g_running = 1;
    enter_case();
  }
}

/* ---- Start-up ------------------------------------------------------------- */

static void install_seccomp(void) {
  /* Hand-built BPF rather than libseccomp: libseccomp's rule language only
   * matches the syscall number and arguments, not
   * seccomp_data.instruction_pointer, which is the point of this filter
   * (and the runner links no library at all). Jump targets are absolute
   * indices here and made relative below. */
  enum { kTrap = 100, kAllow = 101, kKill = 102, kNr = 103 };
  uint64_t ip1 = (uint64_t)rsys_ip, ip2 = (uint64_t)restorer_ip;
  if ((ip1 >> 32) != (ip2 >> 32)) fatal("syscall sites in different 4 GiB blocks", ip1);
  static const uint32_t kAllowed[] = {__NR_read,   __NR_write,      __NR_mmap, __NR_munmap,
                                      __NR_arch_prctl, __NR_exit_group};
  struct {
    uint16_t code;
    uint32_t k;
    int jt, jf;
  } prog[32];
  int n = 0;
#define OP(c, kk, t, f) prog[n].code = (c), prog[n].k = (kk), prog[n].jt = (t), prog[n].jf = (f), n++
  OP(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
  OP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, -1, kTrap); /* int 0x80 is AUDIT_ARCH_I386 */
  OP(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
  OP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, kTrap, -1); /* x32 */
  OP(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4, 0, 0);
  OP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(ip1 >> 32), -1, kTrap);
  OP(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer), 0, 0);
  OP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)ip1, kNr, -1);
  OP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)ip2, -1, kTrap);
  OP(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
  OP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigreturn, kAllow, kKill);
  int nr_at = n;
  OP(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
  for (unsigned i = 0; i < sizeof(kAllowed) / sizeof(kAllowed[0]); ++i) {
    OP(BPF_JMP | BPF_JEQ | BPF_K, kAllowed[i], kAllow, -1);
  }
  /* From the runner's own syscall site but not a call it makes: a case that
   * jumped there. Kill rather than let it through; the host reports crash. */
  OP(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS, 0, 0);
  int allow_at = n;
  OP(BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
  int trap_at = n;
  OP(BPF_RET | BPF_K, SECCOMP_RET_TRAP, 0, 0);
  int kill_at = n;
  OP(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS, 0, 0);
#undef OP
  struct sock_filter filter[32];
  for (int i = 0; i < n; ++i) {
    int t[2] = {prog[i].jt, prog[i].jf};
    for (int j = 0; j < 2; ++j) {
      int target = t[j] == -1          ? i + 1
                   : t[j] == kTrap     ? trap_at
                   : t[j] == kAllow    ? allow_at
                   : t[j] == kKill     ? kill_at
                   : t[j] == kNr       ? nr_at
                                       : i + 1;
      t[j] = (prog[i].code & 0x07) == BPF_JMP ? target - (i + 1) : 0;
    }
    filter[i].code = prog[i].code;
    filter[i].jt = (uint8_t)t[0];
    filter[i].jf = (uint8_t)t[1];
    filter[i].k = prog[i].k;
  }
  struct sock_fprog fprog = {(unsigned short)n, filter};
  long r = rsys(__NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0);
  if (r != 0) fatal("PR_SET_NO_NEW_PRIVS failed", (uint64_t)r);
  r = rsys(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, (long)&fprog, 0, 0, 0);
  if (r != 0) fatal("seccomp(SECCOMP_SET_MODE_FILTER) failed", (uint64_t)r);
}

NORETURN void runner_main(uint64_t* sp) {
  /* Initial stack: argc, argv[], NULL, envp[], NULL, auxv pairs. */
  uint64_t argc = sp[0];
  uint64_t* p = sp + 1 + argc + 1;
  while (*p) ++p;
  ++p;
  for (; p[0] != 0; p += 2) {
    if (p[0] == AT_HWCAP2 && (p[1] & HWCAP2_FSGSBASE)) g_fsgsbase = 1;
  }

  long r = rsys(__NR_mmap, (long)kRunnerShmAddr, sizeof(struct RunnerShm), PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_FIXED, kRunnerShmFd, 0);
  if (r != (long)kRunnerShmAddr) early_exit(5);
  if (g_shm->header.magic != CPUDIFF_RUNNER_MAGIC ||
      g_shm->header.version != CPUDIFF_RUNNER_VERSION) {
    early_exit(6);
  }

  g_arena_fd = (int)rsys(__NR_memfd_create, (long)"cpudiff-arena", 0, 0, 0, 0, 0);
  if (g_arena_fd < 0) fatal("memfd_create failed", (uint64_t)g_arena_fd);
  r = rsys(__NR_ftruncate, g_arena_fd, (long)kRunnerArenaSize, 0, 0, 0, 0);
  if (r != 0) fatal("ftruncate(arena) failed", (uint64_t)r);
  r = rsys(__NR_mmap, (long)kRunnerArenaAddr, (long)kRunnerArenaSize, PROT_READ | PROT_WRITE,
           MAP_SHARED | MAP_FIXED, g_arena_fd, 0);
  if (r != (long)kRunnerArenaAddr) fatal("mmap(arena) failed", (uint64_t)r);

  struct KStack ss = {g_sigstack, 0, 0, kSigstackSize};
  r = rsys(__NR_sigaltstack, (long)&ss, 0, 0, 0, 0, 0);
  if (r != 0) fatal("sigaltstack failed", (uint64_t)r);
  static const int kSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS};
  for (unsigned i = 0; i < sizeof(kSignals) / sizeof(kSignals[0]); ++i) {
    /* SA_NODEFER: the handler never returns (see the top of the file), so
     * the signal must not stay blocked while it runs. */
    struct KSigaction sa = {(void*)on_signal, SA_SIGINFO | SA_ONSTACK | SA_RESTORER | SA_NODEFER,
                            (void*)restorer, 0};
    r = rsys(__NR_rt_sigaction, kSignals[i], (long)&sa, 0, 8, 0, 0);
    if (r != 0) fatal("rt_sigaction failed", (uint64_t)r);
  }

  if (!(g_shm->header.flags & kRunnerFlagNoSeccomp)) install_seccomp();

  g_shm->header.exit_addr = (uint64_t)case_exit;
  struct RunnerReply ready = {kRunnerReadySlot, g_fsgsbase ? 1u : 0u};
  write_all(kRunnerReplyFd, &ready, sizeof(ready));
  dispatch();
}

__asm__(
    ".text\n"
    ".globl _start\n"
    "_start:\n"
    "  xor %ebp, %ebp\n"
    "  mov %rsp, %rdi\n"
    "  and $-16, %rsp\n"
    "  call runner_main\n"
    "  hlt\n");

/* tiny: an EXAMPLE cpudiff engine plugin, built against
 * include/cpudiff/engine.h alone.
 *
 * It is a deliberately tiny x86-64 interpreter that shows how the plugin ABI
 * is used; it is not an emulator anyone should test against. It knows these
 * instructions and answers `unsupported` for everything else:
 *
 *   90             nop
 *   f4             hlt                  -> outcome halt, rip at the hlt
 *   b8+r id        mov r32, imm32       (zero-extends, like silicon)
 *   48 c7 /0 id    mov r64, simm32      (register form only)
 *   48 01 /r       add r64, r64         (register form only; CF PF AF ZF SF OF)
 *   48 29 /r       sub r64, r64         (register form only; CF PF AF ZF SF OF)
 *   48 31 /r       xor r64, r64         (register form only; CF=OF=0, PF ZF SF;
 *                                         AF is left as it was: undefined)
 *   48 ff /0       inc r64              (register form only; CF unchanged)
 *   0f 0b          ud2                  -> fault #UD, rip at the ud2
 *   cc             int3                 -> fault #BP, rip after it
 *   0f 05          syscall              -> outcome syscall, rip after it (rcx = that
 *                                         rip, r11 = rflags, as the instruction does)
 *
 * Only r8-r15 need REX.B/REX.R, which the register forms above accept
 * (REX 0x48-0x4f). It never touches XMM or MXCSR, so it says it does not
 * observe them: cpudiff then does not compare them for this engine.
 *
 * Build on its own:
 *   cc -O2 -shared -fPIC -I include examples/engines/tiny_engine.c -o libtiny_engine.so
 */
#include <cpudiff/engine.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tiny {
  uint64_t max_instructions;
};

static void* tiny_create(const struct cpudiff_engine_options* options, char* error,
                         size_t error_size) {
  struct tiny* t = calloc(1, sizeof(*t));
  if (t == NULL) {
    snprintf(error, error_size, "out of memory");
    return NULL;
  }
  t->max_instructions = options->max_instructions;
  return t;
}

static void tiny_destroy(void* engine) { free(engine); }

/* Fetches the byte at `addr` from an executable region; -1 when there is none. */
static int fetch(const struct cpudiff_case* c, uint64_t addr) {
  for (uint32_t i = 0; i < c->num_regions; ++i) {
    const struct cpudiff_region* r = &c->regions[i];
    if (!(r->perm & CPUDIFF_PERM_X) || addr < r->addr || addr - r->addr >= r->size) continue;
    uint64_t off = addr - r->addr;
    return off < r->data_len ? r->data[off] : 0;
  }
  return -1;
}

static int parity(uint64_t v) {
  uint8_t b = (uint8_t)v;
  b ^= b >> 4;
  b ^= b >> 2;
  b ^= b >> 1;
  return !(b & 1); /* PF is set for an even number of ones */
}

#define CF (1ull << 0)
#define PF (1ull << 2)
#define AF (1ull << 4)
#define ZF (1ull << 6)
#define SF (1ull << 7)
#define OF (1ull << 11)

/* PF ZF SF of a 64-bit result, into rflags. */
static uint64_t szp(uint64_t flags, uint64_t res) {
  flags &= ~(PF | ZF | SF);
  if (parity(res)) flags |= PF;
  if (res == 0) flags |= ZF;
  if (res >> 63) flags |= SF;
  return flags;
}

static void unsupported(struct cpudiff_result* out, const struct cpudiff_case* c, uint64_t rip,
                        const char* why) {
  out->outcome.kind = CPUDIFF_OUTCOME_UNSUPPORTED;
  snprintf(out->outcome.reason, sizeof(out->outcome.reason), "tiny: %s at 0x%llx", why,
           (unsigned long long)rip);
  out->state = c->init;
}

static void run_one(const struct tiny* t, const struct cpudiff_case* c,
                    struct cpudiff_result* out) {
  struct cpudiff_state s = c->init;
  uint64_t* g = s.gpr;
  for (uint64_t n = 0; n < t->max_instructions; ++n) {
    uint64_t rip = s.rip;
    int b[8];
    for (int i = 0; i < 8; ++i) b[i] = fetch(c, rip + (uint64_t)i);
    if (b[0] < 0) {
      unsupported(out, c, rip, "execution left the executable regions");
      return;
    }
    int rex = 0, p = 0;
    if (b[0] >= 0x40 && b[0] <= 0x4f) rex = b[p++];
    int op = b[p];
    int modrm = b[p + 1];
    int reg = ((modrm >> 3) & 7) | ((rex & 4) ? 8 : 0);
    int rm = (modrm & 7) | ((rex & 1) ? 8 : 0);
    int w = rex & 8;
    if (!rex && op == 0x90) {
      s.rip += 1;
    } else if (!rex && op == 0xf4) {
      out->outcome.kind = CPUDIFF_OUTCOME_HALT;
      out->state = s;
      return;
    } else if (op >= 0xb8 && op <= 0xbf && !w) {
      uint32_t imm = 0;
      for (int i = 0; i < 4; ++i) imm |= (uint32_t)(b[p + 1 + i] & 0xff) << (8 * i);
      g[(op - 0xb8) | ((rex & 1) ? 8 : 0)] = imm;
      s.rip += (uint64_t)p + 5;
    } else if (w && op == 0xc7 && (modrm >> 6) == 3 && ((modrm >> 3) & 7) == 0) {
      uint32_t imm = 0;
      for (int i = 0; i < 4; ++i) imm |= (uint32_t)(b[p + 2 + i] & 0xff) << (8 * i);
      g[rm] = (uint64_t)(int64_t)(int32_t)imm;
      s.rip += (uint64_t)p + 6;
    } else if (w && (op == 0x01 || op == 0x29) && (modrm >> 6) == 3) {
      uint64_t a = g[rm], v = g[reg];
      uint64_t res = op == 0x01 ? a + v : a - v;
      uint64_t f = s.rflags & ~(CF | AF | OF);
      if (op == 0x01) {
        if (res < a) f |= CF;
        if (((a ^ res) & (v ^ res)) >> 63) f |= OF;
      } else {
        if (a < v) f |= CF;
        if (((a ^ v) & (a ^ res)) >> 63) f |= OF;
      }
      if ((a ^ v ^ res) & 0x10) f |= AF;
      s.rflags = szp(f, res);
      g[rm] = res;
      s.rip += (uint64_t)p + 2;
    } else if (w && op == 0x31 && (modrm >> 6) == 3) {
      uint64_t res = g[rm] ^ g[reg];
      s.rflags = szp(s.rflags & ~(CF | OF), res);
      g[rm] = res;
      s.rip += (uint64_t)p + 2;
    } else if (w && op == 0xff && (modrm >> 6) == 3 && ((modrm >> 3) & 7) == 0) {
      uint64_t a = g[rm], res = a + 1;
      uint64_t f = s.rflags & ~(AF | OF);
      if (res == 0x8000000000000000ull) f |= OF;
      if ((a ^ res) & 0x10) f |= AF;
      s.rflags = szp(f, res);
      g[rm] = res;
      s.rip += (uint64_t)p + 2;
    } else if (!rex && op == 0x0f && modrm == 0x0b) {
      out->outcome.kind = CPUDIFF_OUTCOME_FAULT;
      out->outcome.vector = CPUDIFF_VEC_UD;
      out->state = s;
      return;
    } else if (!rex && op == 0xcc) {
      s.rip += 1;
      out->outcome.kind = CPUDIFF_OUTCOME_FAULT;
      out->outcome.vector = CPUDIFF_VEC_BP;
      out->state = s;
      return;
    } else if (!rex && op == 0x0f && modrm == 0x05) {
      s.rip += 2;
      g[CPUDIFF_RCX] = s.rip;
      g[CPUDIFF_R11] = s.rflags;
      out->outcome.kind = CPUDIFF_OUTCOME_SYSCALL;
      out->state = s;
      return;
    } else {
      char why[64];
      snprintf(why, sizeof(why), "instruction %02x %02x %02x not implemented", b[0] & 0xff,
               b[1] & 0xff, b[2] & 0xff);
      unsupported(out, c, rip, why);
      return;
    }
  }
  out->outcome.kind = CPUDIFF_OUTCOME_TIMEOUT;
  snprintf(out->outcome.reason, sizeof(out->outcome.reason), "tiny: %llu instructions",
           (unsigned long long)t->max_instructions);
  out->state = s;
}

static void tiny_run(void* engine, const struct cpudiff_case* cases,
                     struct cpudiff_result* results, size_t count) {
  for (size_t i = 0; i < count; ++i) run_one(engine, &cases[i], &results[i]);
}

static const struct cpudiff_engine kTiny = {
    .abi_version = CPUDIFF_ENGINE_ABI_VERSION,
    .kind = CPUDIFF_KIND_EMULATION,
    .observes = CPUDIFF_OBSERVE_ALL & ~(CPUDIFF_OBSERVE_XMM | CPUDIFF_OBSERVE_MXCSR),
    .name = "tiny",
    .version = "1.0 (example)",
    .description = "example plugin: a handful of instructions, unsupported for the rest",
    .create = tiny_create,
    .run = tiny_run,
    .destroy = tiny_destroy,
};

__attribute__((visibility("default"))) const struct cpudiff_engine* cpudiff_engine_entry(
    uint32_t abi_version) {
  return abi_version == CPUDIFF_ENGINE_ABI_VERSION ? &kTiny : NULL;
}

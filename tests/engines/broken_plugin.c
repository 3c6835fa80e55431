/* A deliberately broken engine plugin for tests/outside_test.cc.
 *
 * Per case, by name: "crash" dereferences NULL, "abort" calls abort(),
 * "hang" loops forever, "badkind" reports outcome kind 99, "liar" reports
 * rax one more than it was; any other case halts at the end of its code
 * with its initial state (right for a case made of NOPs).
 * Built in variants: -DWRONG_VERSION (claims ABI version 99), -DREFUSE
 * (its entry returns NULL), -DNO_ENTRY (exports no entry at all). */
#include <cpudiff/engine.h>
#include <stdlib.h>
#include <string.h>

static void* create(const struct cpudiff_engine_options* o, char* error, size_t n) {
  (void)o;
  (void)error;
  (void)n;
  static int instance;
  return &instance;
}

static void destroy(void* e) { (void)e; }

static void run(void* e, const struct cpudiff_case* cases, struct cpudiff_result* results,
                size_t count) {
  (void)e;
  for (size_t i = 0; i < count; ++i) {
    const struct cpudiff_case* c = &cases[i];
    struct cpudiff_result* r = &results[i];
    if (strcmp(c->name, "crash") == 0) *(volatile int*)0 = 1;
    if (strcmp(c->name, "abort") == 0) abort();
    if (strcmp(c->name, "hang") == 0) {
      for (volatile int k = 0;; ++k) {
      }
    }
    r->outcome.kind = strcmp(c->name, "badkind") == 0 ? 99u : CPUDIFF_OUTCOME_HALT;
    r->state.rip = c->code_addr + c->code_len;
    if (strcmp(c->name, "liar") == 0) r->state.gpr[CPUDIFF_RAX] += 1;
  }
}

static const struct cpudiff_engine kBroken = {
#ifdef WRONG_VERSION
    .abi_version = 99,
#else
    .abi_version = CPUDIFF_ENGINE_ABI_VERSION,
#endif
    .kind = CPUDIFF_KIND_EMULATION,
    .observes = CPUDIFF_OBSERVE_ALL,
    .name = "broken",
    .version = "0",
    .description = "deliberately broken test plugin",
    .create = create,
    .run = run,
    .destroy = destroy,
};

#ifndef NO_ENTRY
__attribute__((visibility("default"))) const struct cpudiff_engine* cpudiff_engine_entry(
    uint32_t abi_version) {
  (void)abi_version;
#ifdef REFUSE
  return NULL;
#else
  return &kBroken;
#endif
}
#endif

// Random cases on native (silicon) and the emulator, compared in strict mode
// (undefined flags included).
//
// ctest runs 20,000 generated cases; CPUDIFF_RANDOM_CASES=1000000 runs the
// campaign size of the emulator's acceptance. Divergences are grouped by
// signature and printed; any divergence fails.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engines/emulator/emulator_engine.h"
#include "engines/engine.h"
#include "engines/x86/isa.h"
#include "harness/compare/compare.h"
#include "testgen/generate.h"
#include "harness/triage/known.h"

namespace cpudiff {
namespace {

using namespace isa;

// Register-only forms of the ISA table that a random case may use: no
// memory, stack, branch, trap or system forms, nothing outside the modelled
// ISA extensions.
bool Usable(const IsaForm& f) {
  if (f.Has(NO64 | PRIV | NONDET | UD | SEG | BRANCH | TRAP | D64 | F64 | REP | REPC)) {
    return false;
  }
  switch (f.isa) {
    case X87:
    case MMX:
    case SYSTEM:
    case OTHER:
    case AES:
    case PCLMUL:
    case SHA:
    case SSE4A:
    case RDRAND:
    case CLFSH:
      return false;
    default:
      break;
  }
  if (f.mod == MEM) return false;
  if (f.id == InsnId::XLAT || f.id == InsnId::LEA_GvM) return false;
  for (Opnd o : f.operands) {
    switch (o) {
      case M:
      case Mb:
      case Mw:
      case Md:
      case Mq:
      case Mv:
      case My:
      case Mdq:
      case Mp:
      case Ob:
      case Ov:
      case Xb:
      case Xv:
      case Yb:
      case Yv:
      case Jb:
      case Jz:
      case Zq:
      case DX:
      case Sw:
      case Cq:
      case Dq:
      case Pq:
      case Qq:
      case Nq:
        return false;
      default:
        break;
    }
  }
  return true;
}

// One random instruction of a usable form, register operands only.
void EmitRandomForm(Rng& rng, const std::vector<const IsaForm*>& forms, std::vector<uint8_t>& out) {
  const IsaForm& f = *forms[rng.Below(forms.size())];
  bool w = f.w == W1 || (f.w == WIG && rng.Below(2));
  bool r = rng.Below(2), b = rng.Below(2);
  uint8_t op = f.opcode;
  if (f.Has(CC16)) op = static_cast<uint8_t>(op + rng.Below(16));
  bool plus_r = false;
  for (Opnd o : f.operands) plus_r |= o == Zb || o == Zv;
  if (plus_r) op = static_cast<uint8_t>(op + rng.Below(8));
  uint8_t modrm = static_cast<uint8_t>(0xc0 | rng.Below(64));
  if (f.has_reg_ext()) modrm = static_cast<uint8_t>((modrm & 0xc7) | (f.reg_ext() << 3));
  if (f.has_exact_modrm()) modrm = f.exact_modrm();
  if (f.enc == VEX) {
    out.push_back(0xc4);
    out.push_back(static_cast<uint8_t>((r ? 0 : 0x80) | 0x40 | (b ? 0 : 0x20) | f.map));
    uint8_t pp = f.pfx == P66 ? 1 : f.pfx == PF3 ? 2 : f.pfx == PF2 ? 3 : 0;
    uint8_t vvvv = f.Has(VVVV1) ? 0 : static_cast<uint8_t>(rng.Below(16));
    out.push_back(static_cast<uint8_t>((w ? 0x80 : 0) | ((~vvvv & 15) << 3) | pp));
  } else {
    bool opsize16 = f.pfx == P66 || (f.pfx == ANYP && rng.Below(4) == 0);
    if (opsize16) out.push_back(0x66);
    if (f.pfx == PF3) out.push_back(0xf3);
    if (f.pfx == PF2) out.push_back(0xf2);
    if (w || r || b || rng.Below(2)) {
      out.push_back(static_cast<uint8_t>(0x40 | (w ? 8 : 0) | (r ? 4 : 0) | (b ? 1 : 0)));
    }
    if (f.map != MAP1) out.push_back(0x0f);
    if (f.map == MAP0F38) out.push_back(0x38);
    if (f.map == MAP0F3A) out.push_back(0x3a);
  }
  out.push_back(op);
  if (f.has_modrm()) out.push_back(modrm);
  bool opsize16 = !out.empty() && out[0] == 0x66;
  for (Opnd o : f.operands) {
    int n = o == Ib || o == Ibs ? 1
            : o == Iw           ? 2
            : o == Iz           ? (opsize16 && !w ? 2 : 4)
            : o == Iv           ? (w          ? 8
                                   : opsize16 ? 2
                                              : 4)
                                : 0;
    for (int i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(rng.EdgeValue()));
  }
}

// The emulator's known divergences (corpus/known/emulator.jsonl): reported,
// but they do not fail the campaign.
KnownList EmulatorKnownDivergences() {
  return KnownList::Load(CPUDIFF_SOURCE_DIR "/corpus/known/emulator.jsonl");
}

TestCase GenerateFormCase(Rng& rng, const std::vector<const IsaForm*>& forms) {
  TestCase tc;
  tc.generator = "isa-forms";
  tc.mem = SmallLayout();
  tc.init.rip = tc.code_addr;
  RandomizeRegisters(rng, &tc);
  for (Xmm& x : tc.init.xmm) x = Xmm{rng.EdgeValue(), rng.Next()};
  int n = 1 + static_cast<int>(rng.Below(4));
  for (int i = 0; i < n; ++i) EmitRandomForm(rng, forms, tc.code);
  return tc;
}

std::vector<const IsaForm*> UsableForms() {
  std::vector<const IsaForm*> forms;
  for (const IsaForm& f : IsaForms()) {
    if (Usable(f)) forms.push_back(&f);
  }
  return forms;
}

void RunCampaign(const char* env, size_t default_n, bool forms) {
  const EngineDesc* native = FindEngine("native");
  Availability a = native->probe();
  if (!a.available) GTEST_SKIP() << "native is not available here: " << a.reason;
  size_t n = default_n;
  if (const char* e = std::getenv(env)) n = std::strtoull(e, nullptr, 10);
  EngineOptions opts;
  std::unique_ptr<Engine> silicon = native->create(opts);
  std::unique_ptr<Engine> emulator = CreateEmulatorEngineInProcess(opts);
  Rng rng(20261124);
  GenOptions gen;
  std::vector<const IsaForm*> form_list = UsableForms();
  size_t unsupported = 0, known_count = 0;
  const KnownList known = EmulatorKnownDivergences();
  std::map<std::string, std::pair<size_t, std::string>> by_signature;
  size_t diverged = 0, done = 0;
  const size_t kBatch = 4096;
  std::vector<TestCase> cases;
  std::vector<const TestCase*> ptrs;
  std::vector<RunResult> ra, rb;
  while (done < n) {
    size_t m = std::min(kBatch, n - done);
    cases.clear();
    for (size_t i = 0; i < m; ++i) {
      cases.push_back(forms ? GenerateFormCase(rng, form_list) : GenerateAluCase(rng, gen));
    }
    ptrs.clear();
    for (const TestCase& tc : cases) ptrs.push_back(&tc);
    ra.assign(m, RunResult{});
    rb.assign(m, RunResult{});
    silicon->Run(ptrs, ra);
    emulator->Run(ptrs, rb);
    CompareOptions co;
    co.strict = true;
    co.observes_a = silicon->Observes();
    co.observes_b = emulator->Observes();
    for (size_t i = 0; i < m; ++i) {
      // A case that runs past the emulator's instruction budget (a loop the
      // random bytes formed) ends on an engine limit, not on semantics:
      // native, limited by wall time instead, may finish it.
      if (rb[i].outcome.kind == OutcomeKind::kTimeout) {
        ++by_signature["(emulator instruction budget exhausted)"].first;
        continue;
      }
      if (rb[i].outcome.kind == OutcomeKind::kUnsupported) {
        ++unsupported;
        auto& slot = by_signature["(emulator unsupported) " + rb[i].outcome.reason];
        ++slot.first;
        continue;
      }
      std::vector<Mismatch> ms = CompareResults(cases[i], ra[i], rb[i], co);
      if (ms.empty()) continue;
      bool all_known = true;
      for (const Mismatch& mm : ms) {
        if (!known.Match(Signature(mm, "native", "emulator"))) {
          all_known = false;
          std::printf("divergence not in the known list: %s\n",
                      Signature(mm, "native", "emulator").c_str());
        }
      }
      if (all_known) {
        ++known_count;
      } else {
        ++diverged;
      }
      for (const Mismatch& mm : ms) {
        auto& slot = by_signature[Signature(mm, "native", "emulator")];
        if (slot.first++ == 0) {
          slot.second = HexBytes(cases[i].code) + " " + mm.field + ": " + mm.a + " vs " + mm.b;
        }
      }
    }
    done += m;
  }
  for (const auto& [sig, v] : by_signature) {
    std::printf("%zu x %s  e.g. %s\n", v.first, sig.c_str(), v.second.c_str());
  }
  std::printf("%zu cases, %zu diverged, %zu known divergences, %zu unsupported on the emulator\n",
              n, diverged, known_count, unsupported);
  EXPECT_EQ(diverged, 0u);
}

TEST(EmulatorVsNative, RandomAluCasesStrict) { RunCampaign("CPUDIFF_RANDOM_CASES", 20000, false); }

// Every register-only form of the ISA table, with random registers.
TEST(EmulatorVsNative, RandomIsaFormsStrict) {
  RunCampaign("CPUDIFF_RANDOM_FORM_CASES", 20000, true);
}

}  // namespace
}  // namespace cpudiff

#include "harness/triage/rootcause.h"

#include <Zydis/Zydis.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "engines/x86/layout.h"
#include "engines/x86/zydis_decoder.h"
#include "harness/corpus/corpus.h"
#include "harness/store/store.h"
#include "harness/triage/minimize.h"
#include "reports/table.h"

namespace cpudiff {

// Defined in compare.cc (not in compare.h, which keeps Zydis out of its
// users).
std::string InstructionForm(const ZydisDecodedInstruction& in, const ZydisDecodedOperand* ops);

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

struct Decoded {
  bool ok = false;
  std::string form;
  int mem_bits = 0;  // width of the explicit memory operand, 0 when none
};

Decoded DecodeAt(std::vector<uint8_t> code, size_t off) {
  // What executes after the code: the loader's HLT, then the page's zero
  // padding. A generated instruction may be cut short and take its last
  // bytes from there ("ff" + HLT is push rsp).
  code.push_back(kHltByte);
  code.resize(code.size() + 15, 0);
  Decoded d;
  const ZydisDecoder& decoder = LongModeDecoder();
  ZydisDecodedInstruction in;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  if (off >= code.size() || !ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder, code.data() + off,
                                                                 code.size() - off, &in, ops))) {
    return d;
  }
  d.ok = true;
  d.form = InstructionForm(in, ops);
  for (int i = 0; i < in.operand_count_visible; ++i) {
    // lea computes an address and never accesses it.
    if (ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY && ops[i].mem.type == ZYDIS_MEMOP_TYPE_MEM) {
      d.mem_bits = ops[i].size;
    }
  }
  return d;
}

bool MemoryFault(const Outcome& o) {
  return o.kind == OutcomeKind::kFault &&
         (o.vector == 12 || o.vector == 13 || o.vector == 14 || o.vector == 17);
}

bool Comparable(const RunResult& r) { return r.outcome.kind != OutcomeKind::kUnsupported; }

// The field part of a signature ("gpr", "flags.CF", "outcome.#GP->#PF").
std::string FieldOf(const std::string& signature) {
  SignatureParts p;
  return SplitSignature(signature, &p) ? p.field : std::string();
}

}  // namespace

TestCase InstructionPrefix(const TestCase& tc, size_t count) {
  std::vector<std::pair<size_t, size_t>> bounds = InstructionBounds(tc.code);
  TestCase out = tc;
  out.expect.reset();
  // A HLT over the first byte of the next instruction, every other byte
  // as it was: code that reads its own bytes (rip-relative loads from the
  // code page) sees the same values as in the whole case.
  if (count < bounds.size()) out.code[bounds[count].first] = kHltByte;
  return out;
}

std::vector<TestCase> InstructionPrefixes(const TestCase& tc) {
  const size_t n = InstructionBounds(tc.code).size();
  std::vector<TestCase> out;
  out.reserve(n);
  for (size_t k = 1; k <= n; ++k) out.push_back(InstructionPrefix(tc, k));
  return out;
}

std::optional<RootCause> RootCauseFromPrefixes(const std::vector<TestCase>& prefixes,
                                               const std::vector<RunResult>& ref,
                                               const std::vector<RunResult>& other,
                                               const std::string& ref_name,
                                               const std::string& other_name,
                                               const CompareOptions& opts) {
  for (size_t k = 0; k < prefixes.size(); ++k) {
    if (!Comparable(ref[k]) || !Comparable(other[k])) continue;
    CompareOptions co = opts;
    co.observes_a &= ~ref[k].unobserved;
    co.observes_b &= ~other[k].unobserved;
    std::vector<Mismatch> ms = CompareResults(prefixes[k], ref[k], other[k], co);
    if (ms.empty()) continue;
    auto first = std::find_if(ms.begin(), ms.end(),
                              [](const Mismatch& m) { return m.kind == FieldKind::kOutcome; });
    if (first == ms.end()) first = ms.begin();
    Mismatch m = *first;
    // Prefix k ends with instruction k: the engines agreed before it. The
    // last prefix is the whole case.
    const std::vector<uint8_t>& code = prefixes.back().code;
    std::vector<std::pair<size_t, size_t>> bounds = InstructionBounds(code);
    Decoded d = k < bounds.size() ? DecodeAt(code, bounds[k].first) : Decoded{};
    m.insn_index = static_cast<int>(k);
    m.insn_form = d.ok ? d.form : "(bad)";
    const Outcome& ro = ref[k].outcome;
    if (m.kind == FieldKind::kOutcome && MemoryFault(ro)) {
      if (ro.vector == 14 && ro.has_error_code && (ro.error_code & 0x10) != 0) {
        // An instruction fetch (#PF with I/D set): the instruction that
        // was fetched or branched there does not matter.
        m.insn_form = "any fetch";
      } else if (d.mem_bits > 0) {
        m.insn_form = "any m" + std::to_string(d.mem_bits);
      }
    } else if ((m.kind == FieldKind::kOutcome && ro.kind == OutcomeKind::kFault &&
                ro.vector == 19) ||
               m.kind == FieldKind::kMxcsr) {
      // MXCSR's status flags and #XM delivery are one mechanism shared by
      // every SIMD floating-point instruction.
      m.insn_form = "any simd-fp";
    }
    RootCause rc;
    rc.signature = Signature(m, ref_name, other_name);
    rc.insn_form = m.insn_form;
    rc.field = FieldOf(rc.signature);
    rc.insn_index = static_cast<int>(k);
    return rc;
  }
  return std::nullopt;
}

std::optional<RootCause> FindRootCause(const TestCase& tc, Engine& ref, Engine& other,
                                       const std::string& ref_name, const std::string& other_name,
                                       const CompareOptions& opts) {
  std::vector<TestCase> prefixes = InstructionPrefixes(tc);
  std::vector<const TestCase*> ptrs;
  for (const TestCase& p : prefixes) ptrs.push_back(&p);
  std::vector<RunResult> a(prefixes.size()), b(prefixes.size());
  ref.Run(ptrs, a);
  other.Run(ptrs, b);
  return RootCauseFromPrefixes(prefixes, a, b, ref_name, other_name, opts);
}

std::optional<MinimizedRoot> MinimizeRoot(const TestCase& tc, const std::string& signature,
                                          Engine& ref, Engine& other, const std::string& ref_name,
                                          const std::string& other_name, const CompareOptions& opts,
                                          double seconds) {
  const Clock::time_point start = Clock::now();
  MinimizedRoot r;
  auto shows = [&](const TestCase& c) {
    ++r.runs;
    std::optional<RootCause> rc = FindRootCause(c, ref, other, ref_name, other_name, opts);
    return rc && rc->signature == signature;
  };
  TestCase best = tc;
  best.expect.reset();
  if (!shows(best)) return std::nullopt;

  // Delta debugging (ddmin) over whole instructions. The root instruction
  // cannot go, so the candidates most likely to work (the root alone, then
  // with its one or two predecessors) are tried first.
  std::vector<std::pair<size_t, size_t>> bounds = InstructionBounds(best.code);
  auto with = [&](const std::vector<size_t>& keep) {
    TestCase c = best;
    c.code.clear();
    for (size_t i : keep) {
      c.code.insert(c.code.end(), best.code.begin() + static_cast<ptrdiff_t>(bounds[i].first),
                    best.code.begin() + static_cast<ptrdiff_t>(bounds[i].first + bounds[i].second));
    }
    return c;
  };
  std::vector<size_t> keep(bounds.size());
  for (size_t i = 0; i < keep.size(); ++i) keep[i] = i;
  std::optional<RootCause> root = FindRootCause(best, ref, other, ref_name, other_name, opts);
  bool transplanted = false;
  if (root && root->insn_index > 0 && static_cast<size_t>(root->insn_index) < bounds.size()) {
    // The root instruction alone, started from the state silicon had just
    // before it (registers and memory after the instructions before it):
    // exact unless the instruction reads its own address (rip-relative
    // operands, relative branches), and checked like every candidate.
    const size_t k = static_cast<size_t>(root->insn_index);
    TestCase before = InstructionPrefix(best, k);
    const TestCase* ptr[1] = {&before};
    RunResult end[1];
    ref.Run(ptr, end);
    if (end[0].outcome.kind == OutcomeKind::kHalt) {
      TestCase c = best;
      c.code.assign(best.code.begin() + static_cast<ptrdiff_t>(bounds[k].first),
                    best.code.begin() + static_cast<ptrdiff_t>(bounds[k].first + bounds[k].second));
      c.init = end[0].state;
      c.init.rip = c.code_addr;
      for (MemRegion& region : c.mem) {
        region.data.resize(region.size);
        for (uint64_t i = 0; i < region.size; ++i) {
          FinalByte(before, end[0], region.addr + i, &region.data[i]);
        }
        while (!region.data.empty() && region.data.back() == 0) region.data.pop_back();
      }
      if (shows(c)) {
        best = c;
        transplanted = true;
      }
    }
  }
  if (transplanted) {
    keep.assign(1, 0);
    bounds = InstructionBounds(best.code);
  } else if (root && root->insn_index >= 0 && keep.size() > 1) {
    const size_t k = static_cast<size_t>(root->insn_index);
    for (size_t before = 0; before <= std::min<size_t>(k, 2); ++before) {
      std::vector<size_t> cand;
      for (size_t i = k - before; i <= k; ++i) cand.push_back(i);
      if (cand.size() < keep.size() && shows(with(cand))) {
        keep = cand;
        break;
      }
    }
  }
  keep = DeltaDebug(
      std::move(keep), [&](const std::vector<size_t>& cand) { return shows(with(cand)); },
      [&] { return Seconds(start) < seconds; });
  best = with(keep);
  // General registers (not rsp: the stack is where it points) to zero, else
  // to their low 32 bits: fewer values to read in the example.
  for (int reg = 0; reg < 16 && Seconds(start) < seconds; ++reg) {
    if (reg == kRsp || best.init.gpr[reg] == 0) continue;
    TestCase c = best;
    c.init.gpr[reg] = 0;
    if (shows(c)) {
      best = c;
      continue;
    }
    c.init.gpr[reg] = best.init.gpr[reg] & 0xffffffffull;
    if (c.init.gpr[reg] != best.init.gpr[reg] && shows(c)) best = c;
  }
  r.timed_out = Seconds(start) >= seconds;
  r.instructions = static_cast<int>(InstructionBounds(best.code).size());
  const TestCase* ptr[1] = {&best};
  RunResult end[1];
  ref.Run(ptr, end);
  best.expect = ExpectFromResult(best, end[0]);
  r.tc = std::move(best);
  return r;
}

namespace {

struct Group {
  RootCauseRow row;
  std::set<int64_t> cases;
  TestCase example;
};

std::unique_ptr<Engine> MakeEngine(const std::string& name, const EngineOptions& eo,
                                   std::string* why) {
  const EngineDesc* d = FindEngine(name);
  if (!d) {
    *why = "no engine '" + name + "'";
    return nullptr;
  }
  Availability a = d->probe();
  if (!a.available) {
    *why = name + " is not available here: " + a.reason;
    return nullptr;
  }
  return d->create(eo);
}

}  // namespace

int RunCollapse(const CollapseOptions& opts, std::ostream& out, std::ostream& err) {
  const Clock::time_point start = Clock::now();
  std::unique_ptr<Store> store;
  int64_t run_id = opts.run_id;
  std::string reference = "native";
  bool strict = false;
  try {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(opts.db_path, ec)) {
      throw std::runtime_error(opts.db_path + ": no such database");
    }
    store = Store::Open(opts.db_path);
    if (run_id == 0) {
      std::optional<RunInfo> last = store->LatestRun();
      if (!last) throw std::runtime_error(opts.db_path + ": the database holds no run yet");
      run_id = last->id;
    }
    std::optional<RunInfo> run = store->GetRun(run_id);
    if (!run) throw std::runtime_error(opts.db_path + ": no run " + std::to_string(run_id));
    nlohmann::json config = nlohmann::json::parse(run->config, nullptr, false);
    if (config.is_object()) {
      reference = config.value("reference", "native");
      strict = config.value("strict", false);
    }
  } catch (const std::exception& e) {
    err << "cpudiff triage --collapse: " << e.what() << "\n";
    return 2;
  }

  // Which engines diverged from the reference on which case, and the
  // first signature recorded for each (the fallback when lockstep does not
  // reproduce the divergence).
  std::map<int64_t, std::map<std::string, std::string>> by_case;
  for (const StoredDivergence& d : store->Divergences(run_id)) {
    if (d.engine_a == "expect" || d.engine_a != reference) continue;
    by_case[d.case_id].emplace(d.engine_b, d.signature);
  }
  std::map<std::string, std::unique_ptr<Engine>> engines;
  EngineOptions eo;
  eo.timeout_ms = opts.timeout_ms;
  eo.max_instructions = opts.max_instructions;
  std::set<std::string> wanted;
  for (const auto& [id, m] : by_case) {
    for (const auto& [e, s] : m) wanted.insert(e);
  }
  wanted.insert(reference);
  for (const std::string& name : wanted) {
    std::string why;
    std::unique_ptr<Engine> e = MakeEngine(name, eo, &why);
    if (!e) {
      if (name == reference) {
        err << "cpudiff triage --collapse: " << why << "\n";
        return 2;
      }
      err << "(" << why << ": its divergences are not collapsed)\n";
      continue;
    }
    engines[name] = std::move(e);
  }
  Engine& ref = *engines.at(reference);
  auto copts_for = [&](const std::string& other) {
    CompareOptions co;
    co.strict = strict;
    co.observes_a = ref.Observes();
    co.observes_b = engines.at(other)->Observes();
    return co;
  };

  // Lockstep of every divergent case, in batches: every prefix of every
  // case of a batch goes to each engine in one Run call.
  std::map<std::string, Group> groups;
  int64_t not_reproduced = 0, done = 0;
  const int64_t total = static_cast<int64_t>(by_case.size());
  err << "lockstep of " << total << " divergent case(s) of run " << run_id << " on "
      << engines.size() << " engine(s)\n";
  Clock::time_point last_progress = Clock::now();
  constexpr size_t kBatch = 256;
  auto it = by_case.begin();
  while (it != by_case.end()) {
    struct Item {
      int64_t case_id;
      TestCase tc;
      std::vector<TestCase> prefixes;
      size_t first = 0;  // index of its first prefix in the batch
    };
    std::vector<Item> items;
    std::vector<const TestCase*> ptrs;
    for (; it != by_case.end() && items.size() < kBatch; ++it) {
      std::optional<TestCase> tc = store->LoadCase(it->first);
      if (!tc) continue;
      Item& item = items.emplace_back();
      item.case_id = it->first;
      item.tc = std::move(*tc);
      item.prefixes = InstructionPrefixes(item.tc);
    }
    for (Item& item : items) {
      item.first = ptrs.size();
      for (const TestCase& p : item.prefixes) ptrs.push_back(&p);
    }
    std::map<std::string, std::vector<RunResult>> results;
    for (auto& [name, engine] : engines) {
      std::vector<RunResult>& r = results[name];
      r.resize(ptrs.size());
      engine->Run(ptrs, r);
    }
    for (Item& item : items) {
      const size_t n = item.prefixes.size();
      auto slice = [&](const std::string& name) {
        const std::vector<RunResult>& all = results[name];
        return std::vector<RunResult>(all.begin() + static_cast<ptrdiff_t>(item.first),
                                      all.begin() + static_cast<ptrdiff_t>(item.first + n));
      };
      std::vector<RunResult> a = slice(reference);
      for (const auto& [other, recorded] : by_case[item.case_id]) {
        if (!engines.count(other)) continue;
        std::optional<RootCause> rc = RootCauseFromPrefixes(item.prefixes, a, slice(other),
                                                            reference, other, copts_for(other));
        std::string sig;
        RootCause fallback;
        if (!rc) {
          // Not reproduced (a flaky engine, a timing-dependent outcome):
          // keep the recorded signature so that nothing disappears.
          ++not_reproduced;
          fallback.signature = recorded;
          SignatureParts p;
          SplitSignature(recorded, &p);
          fallback.insn_form = p.insn;
          fallback.field = p.field;
          rc = fallback;
        }
        Group& g = groups[rc->signature];
        if (g.cases.empty()) {
          SignatureParts p;
          SplitSignature(rc->signature, &p);
          g.row.signature = rc->signature;
          g.row.engine_a = p.engine_a;
          g.row.engine_b = p.engine_b;
          g.row.insn_form = rc->insn_form;
          g.row.field = rc->field;
          g.row.example_case = item.case_id;
          g.row.insn_index = rc->insn_index;
          std::vector<std::string> dis = Disassemble(item.tc);
          g.row.root_insn = rc->insn_index >= 0 && static_cast<size_t>(rc->insn_index) < dis.size()
                                ? dis[static_cast<size_t>(rc->insn_index)]
                                : std::string("(not reproduced by lockstep)");
          g.example = item.tc;
        }
        g.cases.insert(item.case_id);
        ++g.row.divergent;
      }
      ++done;
    }
    if (Seconds(last_progress) >= 5 || it == by_case.end()) {
      last_progress = Clock::now();
      err << "  " << done << "/" << total << " cases, " << groups.size() << " root cause(s), "
          << static_cast<int>(Seconds(start)) << " s\n";
    }
  }

  std::vector<RootCauseRow> rows;
  std::vector<Group*> order;
  for (auto& [sig, g] : groups) {
    g.row.cases = static_cast<int64_t>(g.cases.size());
    order.push_back(&g);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const Group* x, const Group* y) { return x->row.cases > y->row.cases; });

  // The lockstep result is stored first: minimizing takes longer, and an
  // interrupted one keeps it.
  for (Group* g : order) rows.push_back(g->row);
  store->ReplaceRootCauses(run_id, rows);
  rows.clear();

  // One representative per root signature minimized, most frequent first,
  // within the time budget.
  if (opts.minimize) {
    const Clock::time_point min_start = Clock::now();
    size_t minimized = 0;
    for (size_t i = 0; i < order.size(); ++i) {
      Group& g = *order[i];
      const double left = opts.minimize_seconds - Seconds(min_start);
      if (left <= 0) {
        g.row.min_note = "not minimized: time budget spent";
        continue;
      }
      if (g.row.insn_index < 0) {
        g.row.min_note = "not minimized: lockstep did not reproduce the divergence";
        continue;
      }
      const std::string other = g.row.engine_a == reference ? g.row.engine_b : g.row.engine_a;
      std::optional<MinimizedRoot> m =
          MinimizeRoot(g.example, g.row.signature, ref, *engines.at(other), reference, other,
                       copts_for(other), std::min(left, opts.per_signature_seconds));
      if (!m) {
        g.row.min_note = "not minimized: the example does not show it when run again";
        continue;
      }
      ++minimized;
      m->tc.name = "root-" + std::to_string(g.row.example_case) + "-min";
      m->tc.source.clear();
      m->tc.tags = {"minimized", g.row.signature};
      g.row.minimized = WriteCaseLine(m->tc);
      g.row.min_insns = m->instructions;
      std::string dis;
      for (const std::string& line : Disassemble(m->tc)) dis += line + "\n";
      g.row.min_disasm = dis;
      if (m->timed_out) g.row.min_note = "minimization stopped at its time bound";
      if (Seconds(last_progress) >= 5 || i + 1 == order.size()) {
        last_progress = Clock::now();
        err << "  minimized " << minimized << "/" << order.size() << " signature(s), "
            << static_cast<int>(Seconds(start)) << " s\n";
      }
    }
  }
  for (Group* g : order) rows.push_back(g->row);
  store->ReplaceRootCauses(run_id, rows);

  // The list.
  int64_t divergent = 0;
  for (const RootCauseRow& r : rows) divergent += r.divergent;
  int64_t recorded = static_cast<int64_t>(store->RunSignatures(run_id).size());
  out << "run " << run_id << ": " << total << " divergent case(s), " << recorded
      << " recorded signature(s) -> " << rows.size() << " root cause(s)";
  if (not_reproduced > 0) out << " (" << not_reproduced << " divergence(s) not reproduced)";
  out << ", " << static_cast<int>(Seconds(start)) << " s\n";
  int short_examples = 0;
  for (const RootCauseRow& r : rows) short_examples += r.min_insns >= 1 && r.min_insns <= 3;
  out << "minimized examples of at most 3 instructions: " << short_examples << "/" << rows.size()
      << "\n\n";
  TextTable t({"cases", "engine", "instruction", "field", "min", "status", "example"});
  size_t listed = 0;
  for (const RootCauseRow& r : rows) {
    if (listed++ >= opts.max_list) break;
    const std::string other = r.engine_a == reference ? r.engine_b : r.engine_a;
    std::string status = "new";
    if (opts.known) {
      if (const KnownEntry* k = opts.known->Match(r.signature)) status = "known: " + k->id;
    }
    std::string ex;
    if (!r.min_disasm.empty()) {
      // The instructions without addresses and bytes: "bsr eax, ebx; hlt".
      size_t pos = 0;
      while (pos < r.min_disasm.size()) {
        size_t nl = r.min_disasm.find('\n', pos);
        std::string line = r.min_disasm.substr(pos, nl - pos);
        size_t text = line.find("  ");
        while (text != std::string::npos && text < line.size() && line[text] == ' ') ++text;
        if (!ex.empty()) ex += "; ";
        ex += text == std::string::npos ? line : line.substr(text);
        if (nl == std::string::npos) break;
        pos = nl + 1;
      }
    } else {
      ex = r.min_note;
    }
    t.AddRow({std::to_string(r.cases), other, r.insn_form, r.field,
              r.min_insns >= 0 ? std::to_string(r.min_insns) : "-", status, ex});
  }
  t.Print(out);
  if (listed < rows.size()) out << "... " << rows.size() - listed << " more\n";
  return 0;
}

}  // namespace cpudiff

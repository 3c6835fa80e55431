#include "engines/x86/decoder.h"

#include <array>
#include <vector>

namespace cpudiff {
namespace {

using namespace isa;

constexpr size_t kMaxInsnLength = 15;

// Rows by (encoding, map, opcode byte). Rows covering several opcodes (+r,
// condition codes) are listed under each.
class Index {
 public:
  Index() {
    for (const IsaForm& f : IsaForms()) {
      int n = 1;
      if (f.Has(CC16)) n = 16;
      for (Opnd o : f.operands) {
        if (o == Zb || o == Zv || o == Zq) n = 8;
      }
      for (int i = 0; i < n; ++i) {
        slots_[Slot(f.enc, f.map, static_cast<uint8_t>(f.opcode + i))].push_back(&f);
      }
    }
  }
  const std::vector<const IsaForm*>& Rows(Enc e, Map m, uint8_t op) const {
    return slots_[Slot(e, m, op)];
  }

 private:
  static size_t Slot(Enc e, Map m, uint8_t op) { return (e * 4u + m) * 256u + op; }
  std::array<std::vector<const IsaForm*>, 2 * 4 * 256> slots_;
};

const Index& TheIndex() {
  static const Index index;
  return index;
}

// Reads bytes with the length limits.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  // False when the byte is missing; status says why.
  bool Next(uint8_t* b) {
    if (pos_ >= kMaxInsnLength) {
      status_ = DecodeStatus::kTooLong;
      return false;
    }
    if (pos_ >= n_) {
      status_ = DecodeStatus::kNeedMore;
      return false;
    }
    *b = p_[pos_++];
    return true;
  }
  bool Peek(uint8_t* b) {
    if (pos_ >= kMaxInsnLength) {
      status_ = DecodeStatus::kTooLong;
      return false;
    }
    if (pos_ >= n_) {
      status_ = DecodeStatus::kNeedMore;
      return false;
    }
    *b = p_[pos_];
    return true;
  }
  bool Read(int bytes, uint64_t* v) {
    uint64_t x = 0;
    for (int i = 0; i < bytes; ++i) {
      uint8_t b;
      if (!Next(&b)) return false;
      x |= uint64_t{b} << (8 * i);
    }
    *v = x;
    return true;
  }
  size_t pos() const { return pos_; }
  DecodeStatus status() const { return status_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  DecodeStatus status_ = DecodeStatus::kOk;
};

int64_t SignExtend(uint64_t v, int bytes) {
  int shift = 64 - 8 * bytes;
  return static_cast<int64_t>(v << shift) >> shift;
}

// ModRM, SIB and displacement.
bool ReadModrm(Cursor& c, uint8_t rex_r, uint8_t rex_x, uint8_t rex_b, DecodedInsn* d) {
  uint8_t m;
  if (!c.Next(&m)) return false;
  d->has_modrm = true;
  d->modrm = m;
  d->mod = m >> 6;
  d->reg = static_cast<uint8_t>(((m >> 3) & 7) | (rex_r << 3));
  d->rm = static_cast<uint8_t>((m & 7) | (rex_b << 3));
  if (d->mod == 3) return true;
  d->has_mem = true;
  int disp_bytes = d->mod == 1 ? 1 : d->mod == 2 ? 4 : 0;
  if ((m & 7) == 4) {
    uint8_t sib;
    if (!c.Next(&sib)) return false;
    d->scale = static_cast<uint8_t>(1u << (sib >> 6));
    int index = ((sib >> 3) & 7) | (rex_x << 3);
    d->index = static_cast<int8_t>(index == 4 ? -1 : index);
    int base = (sib & 7) | (rex_b << 3);
    if ((sib & 7) == 5 && d->mod == 0) {
      d->base = -1;
      disp_bytes = 4;
    } else {
      d->base = static_cast<int8_t>(base);
    }
  } else if ((m & 7) == 5 && d->mod == 0) {
    d->base = kRipBase;
    disp_bytes = 4;
  } else {
    d->base = static_cast<int8_t>(d->rm);
  }
  if (disp_bytes != 0) {
    uint64_t v;
    if (!c.Read(disp_bytes, &v)) return false;
    d->disp = SignExtend(v, disp_bytes);
  }
  return true;
}

bool Matches(const IsaForm& f, const DecodedInsn& d, bool w) {
  if (f.has_modrm()) {
    if (f.mod == MEM && d.mod == 3) return false;
    if (f.mod == REG && d.mod != 3) return false;
    if (f.has_exact_modrm() && d.modrm != f.exact_modrm()) return false;
    if (f.has_reg_ext() && ((d.modrm >> 3) & 7) != f.reg_ext()) return false;
  }
  if (f.w == W0 && w) return false;
  if (f.w == W1 && !w) return false;
  return true;
}

int ImmBytes(Opnd o, const DecodedInsn& d) {
  switch (o) {
    case Ib:
    case Ibs:
    case Jb:
      return 1;
    case Iw:
      return 2;
    case Iz:
    case Jz:
      return d.opsize == 2 ? 2 : 4;
    case Iv:
      return d.opsize;
    case Ob:
    case Ov:
      return d.addrsize;
    default:
      return 0;
  }
}

}  // namespace

DecodeStatus Decode(const uint8_t* bytes, size_t available, DecodedInsn* out,
                    bool amd_branch_opsize) {
  DecodedInsn d;
  Cursor c(bytes, available);
  auto fail = [&](DecodeStatus s) {
    d.length = static_cast<uint8_t>(c.pos());
    d.id = InsnId::kInvalid;
    *out = d;
    return s;
  };
  auto need = [&]() { return fail(c.status()); };

  // Legacy prefixes, then REX (a REX followed by another prefix is ignored).
  uint8_t last_rep = 0;  // F2 or F3, the later one
  uint8_t rex = 0;
  uint8_t b;
  for (;;) {
    if (!c.Next(&b)) return need();
    if (b == 0xf0) {
      d.lock = true;
    } else if (b == 0xf2 || b == 0xf3) {
      last_rep = b;
    } else if (b == 0x66) {
      d.opsize_prefix = true;
    } else if (b == 0x67) {
      d.addrsize = 4;
    } else if (b == 0x26) {
      d.seg = SegPrefix::kEs;
    } else if (b == 0x2e) {
      d.seg = SegPrefix::kCs;
    } else if (b == 0x36) {
      d.seg = SegPrefix::kSs;
    } else if (b == 0x3e) {
      d.seg = SegPrefix::kDs;
    } else if (b == 0x64) {
      d.seg = SegPrefix::kFs;
    } else if (b == 0x65) {
      d.seg = SegPrefix::kGs;
    } else if ((b & 0xf0) == 0x40) {
      rex = b;
      continue;  // must be last: the next byte decides
    } else {
      break;
    }
    rex = 0;
  }
  d.has_rex = rex != 0;
  uint8_t rex_w = (rex >> 3) & 1, rex_r = (rex >> 2) & 1, rex_x = (rex >> 1) & 1, rex_b = rex & 1;

  Enc enc = LEG;
  Map map = MAP1;
  Pfx mp = last_rep == 0xf3 ? PF3 : last_rep == 0xf2 ? PF2 : d.opsize_prefix ? P66 : NP;
  bool evex = false;
  if (b == 0xc4 || b == 0xc5 || b == 0x62) {
    // VEX / EVEX: no legacy 66/F2/F3/LOCK or REX may precede them.
    if (rex != 0 || last_rep != 0 || d.opsize_prefix || d.lock) return fail(DecodeStatus::kInvalid);
    uint8_t p1, p2 = 0, p3 = 0;
    if (!c.Next(&p1)) return need();
    uint8_t mmmmm, pp;
    if (b == 0xc5) {
      rex_r = !(p1 >> 7);
      rex_x = rex_b = 0;
      rex_w = 0;
      d.vvvv = static_cast<uint8_t>((~p1 >> 3) & 15);
      d.vex_l = (p1 >> 2) & 1;
      pp = p1 & 3;
      mmmmm = 1;
    } else if (b == 0xc4) {
      if (!c.Next(&p2)) return need();
      rex_r = !(p1 >> 7);
      rex_x = !((p1 >> 6) & 1);
      rex_b = !((p1 >> 5) & 1);
      mmmmm = p1 & 31;
      rex_w = p2 >> 7;
      d.vvvv = static_cast<uint8_t>((~p2 >> 3) & 15);
      d.vex_l = (p2 >> 2) & 1;
      pp = p2 & 3;
    } else {
      // EVEX: P0 R X B R' 0 mmm, P1 W vvvv 1 pp, P2 z L'L b V' aaa.
      if (!c.Next(&p2) || !c.Next(&p3)) return need();
      evex = true;
      rex_r = !(p1 >> 7);
      rex_x = !((p1 >> 6) & 1);
      rex_b = !((p1 >> 5) & 1);
      mmmmm = p1 & 7;
      if ((p1 & 8) != 0 || (p2 & 4) == 0) return fail(DecodeStatus::kInvalid);
      if (mmmmm == 0 || mmmmm == 4 || mmmmm == 7) return fail(DecodeStatus::kInvalid);
      rex_w = p2 >> 7;
      pp = p2 & 3;
    }
    if (!evex && (mmmmm < 1 || mmmmm > 3)) return fail(DecodeStatus::kInvalid);
    enc = VEX;
    d.vex = true;
    map = static_cast<Map>(mmmmm > 3 ? 1 : mmmmm);
    if (evex && mmmmm > 3) map = MAP0F38;  // maps 5/6: ModRM, no immediate
    mp = pp == 1 ? P66 : pp == 2 ? PF3 : pp == 3 ? PF2 : NP;
    if (!c.Next(&b)) return need();
  } else if (b == 0x0f) {
    map = MAP0F;
    if (!c.Next(&b)) return need();
    if (b == 0x38 || b == 0x3a) {
      map = b == 0x38 ? MAP0F38 : MAP0F3A;
      if (!c.Next(&b)) return need();
    }
  }
  d.opcode = b;
  d.rex_w = rex_w;

  const std::vector<const IsaForm*>& rows = TheIndex().Rows(enc, map, b);
  if (rows.empty() || evex) {
    if (enc == VEX) {
      // AVX / AVX-512 outside the table: every form has ModRM except
      // vzeroupper/vzeroall, and an imm8 in map 0F3A and a few 0F opcodes.
      d.opsize = 4;
      if (!(map == MAP0F && b == 0x77 && !evex)) {
        if (!ReadModrm(c, rex_r, rex_x, rex_b, &d)) return need();
      }
      bool imm8 = map == MAP0F3A || (map == MAP0F && ((b >= 0x70 && b <= 0x73) || b == 0xc2 ||
                                                      b == 0xc4 || b == 0xc5 || b == 0xc6));
      if (imm8) {
        uint64_t v;
        if (!c.Read(1, &v)) return need();
      }
      return fail(DecodeStatus::kUnknown);
    }
    return fail(DecodeStatus::kInvalid);
  }
  if (rows.front()->has_modrm()) {
    // mov to/from control and debug registers ignore the mod bits: the
    // operand is always a register.
    Opnd o0 = rows.front()->operands[0], o1 = rows.front()->operands[1];
    if (o0 == Cq || o0 == Dq || o1 == Cq || o1 == Dq) {
      uint8_t m;
      if (!c.Next(&m)) return need();
      d.has_modrm = true;
      d.modrm = m;
      d.mod = 3;
      d.reg = static_cast<uint8_t>(((m >> 3) & 7) | (rex_r << 3));
      d.rm = static_cast<uint8_t>((m & 7) | (rex_b << 3));
    } else if (!ReadModrm(c, rex_r, rex_x, rex_b, &d)) {
      return need();
    }
  }

  // Pick the form: an exact mandatory-prefix match wins over an ANYP row.
  const IsaForm* form = nullptr;
  const IsaForm* any = nullptr;
  for (const IsaForm* f : rows) {
    if (!Matches(*f, d, rex_w)) continue;
    if (f->pfx == mp) {
      form = f;
      break;
    }
    if (f->pfx == ANYP && any == nullptr && enc == LEG) any = f;
  }
  if (form == nullptr) form = any;
  // F3 90 is pause only for rax: with REX.B it is xchg r8, rax.
  if (form != nullptr && form->id == InsnId::PAUSE && rex_b) {
    form = nullptr;
    for (const IsaForm* f : rows) {
      if (f->pfx == ANYP && Matches(*f, d, rex_w)) form = f;
    }
    if (form == nullptr) return fail(DecodeStatus::kInvalid);
  }
  if (form == nullptr) return fail(DecodeStatus::kInvalid);
  d.id = form->id;
  if (form->pfx == PF3 && enc == LEG) last_rep = 0;  // mandatory, not a REP
  if (form->pfx == PF2 && enc == LEG) last_rep = 0;
  d.rep = last_rep == 0xf3;
  d.repne = last_rep == 0xf2;

  // Operand size.
  if (form->Has(F64)) {
    d.opsize = 8;
  } else if (form->Has(D64)) {
    d.opsize = d.opsize_prefix && !rex_w && form->pfx != P66 ? 2 : 8;
  } else if (rex_w) {
    d.opsize = 8;
  } else if (d.opsize_prefix && form->pfx != P66) {
    d.opsize = 2;
  } else {
    d.opsize = 4;
  }
  if (amd_branch_opsize && form->Has(F64) && form->Has(BRANCH) && d.opsize_prefix && !rex_w) {
    d.opsize = 2;
  }
  d.opreg = static_cast<uint8_t>((b & 7) | (rex_b << 3));
  d.cond = b & 15;

  // Immediates and moffs.
  bool first = true;
  for (Opnd o : form->operands) {
    int n = ImmBytes(o, d);
    if (n == 0) continue;
    uint64_t v;
    if (!c.Read(n, &v)) return need();
    if (o == Ob || o == Ov) {
      d.has_mem = true;
      d.base = -1;
      d.index = -1;
      d.disp = static_cast<int64_t>(v);
      continue;
    }
    bool sign = o == Ibs || o == Iz || o == Jb || o == Jz;
    uint64_t x = sign ? static_cast<uint64_t>(SignExtend(v, n)) : v;
    if (first) {
      d.imm = x;
      first = false;
    } else {
      d.imm2 = x;
    }
  }
  d.length = static_cast<uint8_t>(c.pos());

  // Encodings that decode but are invalid.
  if (form->Has(NO64)) return fail(DecodeStatus::kInvalid);
  if (d.lock && (!form->Has(LOCK) || d.mod == 3 || !d.has_modrm)) {
    return fail(DecodeStatus::kInvalid);
  }
  if (enc == VEX && d.vex_l != 0) return fail(DecodeStatus::kInvalid);
  if (form->Has(VVVV1) && d.vvvv != 0) return fail(DecodeStatus::kInvalid);
  if (form->operands[0] == Sw && (d.reg & 7) > 5) return fail(DecodeStatus::kInvalid);
  if (form->operands[1] == Sw && (d.reg & 7) > 5) return fail(DecodeStatus::kInvalid);
  for (Opnd o : form->operands) {
    if (o == Cq && d.reg != 0 && d.reg != 2 && d.reg != 3 && d.reg != 4 && d.reg != 8) {
      return fail(DecodeStatus::kInvalid);
    }
    if (o == Dq && d.reg > 7) return fail(DecodeStatus::kInvalid);
  }
  if (form->operands[0] == Sw && (d.reg & 7) == 1) return fail(DecodeStatus::kInvalid);  // mov cs
  d.length = static_cast<uint8_t>(c.pos());
  *out = d;
  return DecodeStatus::kOk;
}

}  // namespace cpudiff

// Bit operations: bt/bts/btr/btc, bsf/bsr, tzcnt/lzcnt/popcnt, BMI1/BMI2
// (andn, blsi, blsmsk, blsr, bzhi, bextr, pdep, pext), bswap, movbe, crc32.
#include "engines/emulator/operands.h"

namespace cpudiff::emu {
namespace {

using namespace isa;

enum BtOp { kBt, kBts, kBtr, kBtc };

template <int kOp>
void Bt(Cpu& c, const DecodedInsn& d) {
  int size = d.opsize;
  int bits = size * 8;
  bool imm = d.form().operands[1] == Ib;
  uint64_t off = imm ? d.imm : c.GetReg(d.reg, size);
  Loc dst;
  unsigned bit;
  if (d.mod == 3 || imm) {
    dst = c.ELoc(d, size);
    bit = static_cast<unsigned>(off) & (bits - 1);
  } else {
    // A register bit offset reaches outside the operand: signed, in units
    // of the operand size.
    int64_t so = SignExtendTo64(off, size);
    int64_t unit = so >> (size == 8 ? 6 : size == 4 ? 5 : 4);
    bool stack;
    uint64_t base = c.EffAddr(d, &stack);
    dst.mem = true;
    dst.stack = stack;
    dst.size = size;
    dst.addr = c.Linear(base + static_cast<uint64_t>(unit * size), stack);
    bit = static_cast<unsigned>(so) & (bits - 1);
  }
  uint64_t v = c.Read(dst, kOp != kBt);
  bool cf = (v >> bit) & 1;
  if (kOp == kBts) c.Write(dst, v | (1ull << bit));
  if (kOp == kBtr) c.Write(dst, v & ~(1ull << bit));
  if (kOp == kBtc) c.Write(dst, v ^ (1ull << bit));
  c.SetFlag(kFlagCF, cf);
}

void Bsf(Cpu& c, const DecodedInsn& d, bool reverse) {
  int size = d.opsize;
  uint64_t v = c.Read(c.ELoc(d, size));
  // Undefined flags: AMD Zen clears CF, OF, SF, AF and sets PF from the
  // index (from 0 for a zero source) -- seed corpus bsf-*/bsr-*.
  bool amd = true;  // Intel behaves the same (samples 00155, 00459)
  uint64_t f = amd ? 0 : c.flags() & kStatusFlags & ~kFlagZF;
  if (v == 0) {
    // Destination unchanged (all 64 bits, even for a 32-bit operand).
    c.SetStatus(f | kFlagZF | (amd ? kFlagPF : 0));
    return;
  }
  int r = reverse ? 63 - __builtin_clzll(v) : __builtin_ctzll(v);
  c.SetReg(d.reg, size, static_cast<uint64_t>(r));
  if (amd && Parity(static_cast<uint64_t>(r))) f |= kFlagPF;
  c.SetStatus(f);
}
void BsfH(Cpu& c, const DecodedInsn& d) { Bsf(c, d, false); }
void BsrH(Cpu& c, const DecodedInsn& d) { Bsf(c, d, true); }

void CountBits(Cpu& c, const DecodedInsn& d, int kind) {
  int size = d.opsize;
  int bits = size * 8;
  uint64_t v = c.Read(c.ELoc(d, size));
  uint64_t r;
  // Undefined SF, AF, PF: cleared on AMD Zen (seed corpus tzcnt-*/lzcnt-*);
  // OF keeps its value.
  uint64_t f = c.flags() & kStatusFlags & ~(kFlagCF | kFlagZF);
  f &= c.vendor == Vendor::kAmd ? kFlagOF : 0;
  if (kind == 0) {  // tzcnt
    r = v == 0 ? bits : __builtin_ctzll(v);
    if (v == 0) f |= kFlagCF;
  } else if (kind == 1) {  // lzcnt
    r = v == 0 ? bits : __builtin_clzll(v) - (64 - bits);
    if (v == 0) f |= kFlagCF;
  } else {  // popcnt: all other flags cleared
    r = __builtin_popcountll(v);
    f = 0;
  }
  if (r == 0 || (kind == 2 && v == 0)) f |= kFlagZF;
  c.SetReg(d.reg, size, r);
  c.SetStatus(f);
}
void Tzcnt(Cpu& c, const DecodedInsn& d) { CountBits(c, d, 0); }
void Lzcnt(Cpu& c, const DecodedInsn& d) { CountBits(c, d, 1); }
void Popcnt(Cpu& c, const DecodedInsn& d) { CountBits(c, d, 2); }

int YSize(const DecodedInsn& d) { return d.rex_w ? 8 : 4; }

// Flags of the BMI1 logic forms: SF, ZF from the result, OF cleared, CF as
// given; AF and PF undefined: AMD Zen clears AF and sets PF from the result
// (seed corpus andn-*, blsi-*, blsmsk-*, blsr-*, bzhi-*).
void BmiFlags(Cpu& c, uint64_t r, int size, bool cf) {
  uint64_t f = c.flags() & (kFlagAF | kFlagPF);
  f = c.vendor == Vendor::kAmd && Parity(r) ? kFlagPF : 0;
  if ((r & SizeMask(size)) == 0) f |= kFlagZF;
  if (r & SignBit(size)) f |= kFlagSF;
  if (cf) f |= kFlagCF;
  c.SetStatus(f);
}

void Andn(Cpu& c, const DecodedInsn& d) {
  int size = YSize(d);
  uint64_t b = c.Read(c.ELoc(d, size));
  uint64_t r = ~c.GetReg(d.vvvv, size) & b & SizeMask(size);
  c.SetReg(d.reg, size, r);
  BmiFlags(c, r, size, false);
}

template <int kKind>
void Blsx(Cpu& c, const DecodedInsn& d) {
  int size = YSize(d);
  uint64_t a = c.Read(c.ELoc(d, size));
  uint64_t m = SizeMask(size);
  uint64_t r;
  bool cf;
  if (kKind == 0) {  // blsi
    r = (0 - a) & a & m;
    cf = a != 0;
  } else if (kKind == 1) {  // blsmsk
    r = (a ^ (a - 1)) & m;
    cf = a == 0;
  } else {  // blsr
    r = (a & (a - 1)) & m;
    cf = a == 0;
  }
  c.SetReg(d.vvvv, size, r);
  BmiFlags(c, r, size, cf);
}

void Bzhi(Cpu& c, const DecodedInsn& d) {
  int size = YSize(d);
  int bits = size * 8;
  uint64_t a = c.Read(c.ELoc(d, size));
  unsigned n = static_cast<unsigned>(c.GetReg(d.vvvv, size) & 0xff);
  uint64_t r = n < static_cast<unsigned>(bits) ? a & ((1ull << n) - 1) : a;
  c.SetReg(d.reg, size, r);
  BmiFlags(c, r, size, n > static_cast<unsigned>(bits - 1));
}

void Bextr(Cpu& c, const DecodedInsn& d) {
  int size = YSize(d);
  int bits = size * 8;
  uint64_t a = c.Read(c.ELoc(d, size));
  uint64_t ctl = c.GetReg(d.vvvv, size);
  unsigned start = ctl & 0xff, len = (ctl >> 8) & 0xff;
  uint64_t r = start >= static_cast<unsigned>(bits) ? 0 : a >> start;
  if (len < 64) r &= (1ull << len) - 1;
  r &= SizeMask(size);
  c.SetReg(d.reg, size, r);
  uint64_t f = c.flags() & (kFlagAF | kFlagPF | kFlagSF);
  // AMD Zen: AF set, SF clear, PF from the result (seed corpus bextr-*).
  f = c.vendor == Vendor::kAmd ? kFlagAF | (Parity(r) ? kFlagPF : 0) : 0;
  if (r == 0) f |= kFlagZF;
  c.SetStatus(f);
}

void Pdep(Cpu& c, const DecodedInsn& d) {
  int size = YSize(d);
  uint64_t mask = c.Read(c.ELoc(d, size));
  uint64_t src = c.GetReg(d.vvvv, size);
  uint64_t r = 0;
  for (uint64_t bit = 1, k = 0; bit != 0 && mask != 0; bit <<= 1) {
    if (mask & bit) {
      if ((src >> k) & 1) r |= bit;
      ++k;
      mask &= ~bit;
    }
  }
  c.SetReg(d.reg, size, r);
}

void Pext(Cpu& c, const DecodedInsn& d) {
  int size = YSize(d);
  uint64_t mask = c.Read(c.ELoc(d, size));
  uint64_t src = c.GetReg(d.vvvv, size);
  uint64_t r = 0;
  int k = 0;
  for (int i = 0; i < 64; ++i) {
    if ((mask >> i) & 1) {
      if ((src >> i) & 1) r |= 1ull << k;
      ++k;
    }
  }
  c.SetReg(d.reg, size, r);
}

void Bswap(Cpu& c, const DecodedInsn& d) {
  int size = d.opsize;
  uint64_t v = c.GetReg(d.opreg, size);
  if (size == 8) {
    c.SetReg(d.opreg, 8, __builtin_bswap64(v));
  } else if (size == 4) {
    c.SetReg(d.opreg, 4, __builtin_bswap32(static_cast<uint32_t>(v)));
  } else {
    // bswap r16 is undefined; Intel and AMD Zen both clear the low 16 bits.
    c.SetReg(d.opreg, 2, 0);
  }
}

uint64_t ByteSwap(uint64_t v, int size) {
  if (size == 8) return __builtin_bswap64(v);
  if (size == 4) return __builtin_bswap32(static_cast<uint32_t>(v));
  return __builtin_bswap16(static_cast<uint16_t>(v));
}

int MovbeSize(const DecodedInsn& d) {
  return d.id == InsnId::MOVBE_GwMw || d.id == InsnId::MOVBE_MwGw ? 2 : d.opsize;
}

void MovbeLoad(Cpu& c, const DecodedInsn& d) {
  int size = MovbeSize(d);
  uint64_t v = c.Read(c.ELoc(d, size));
  c.SetReg(d.reg, size, ByteSwap(v, size));
}
void MovbeStore(Cpu& c, const DecodedInsn& d) {
  int size = MovbeSize(d);
  Loc dst = c.ELoc(d, size);
  c.Write(dst, ByteSwap(c.GetReg(d.reg, size), size));
}

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) as crc32 computes it.
uint32_t Crc32c(uint32_t crc, uint64_t data, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    crc ^= static_cast<uint8_t>(data >> (8 * i));
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
  }
  return crc;
}

void Crc32(Cpu& c, const DecodedInsn& d) {
  int size = d.id == InsnId::CRC32_GdEb ? 1 : d.opsize;
  uint64_t v = c.Read(c.ELoc(d, size));
  uint32_t crc = static_cast<uint32_t>(c.GetReg(d.reg, 4));
  c.SetReg(d.reg, 8, Crc32c(crc, v, size));
}

}  // namespace

void RegisterBitops(HandlerTable& t) {
  t.Set(InsnId::BT_EvGv, Bt<kBt>);
  t.Set(InsnId::BT_EvIb, Bt<kBt>);
  t.Set(InsnId::BTS_EvGv, Bt<kBts>);
  t.Set(InsnId::BTS_EvIb, Bt<kBts>);
  t.Set(InsnId::BTR_EvGv, Bt<kBtr>);
  t.Set(InsnId::BTR_EvIb, Bt<kBtr>);
  t.Set(InsnId::BTC_EvGv, Bt<kBtc>);
  t.Set(InsnId::BTC_EvIb, Bt<kBtc>);
  t.Set(InsnId::BSF_GvEv, BsfH);
  t.Set(InsnId::BSR_GvEv, BsrH);
  t.Set(InsnId::TZCNT_GvEv, Tzcnt);
  t.Set(InsnId::LZCNT_GvEv, Lzcnt);
  t.Set(InsnId::POPCNT_GvEv, Popcnt);
  t.Set(InsnId::ANDN_GyByEy, Andn);
  t.Set(InsnId::BLSI_ByEy, Blsx<0>);
  t.Set(InsnId::BLSMSK_ByEy, Blsx<1>);
  t.Set(InsnId::BLSR_ByEy, Blsx<2>);
  t.Set(InsnId::BZHI_GyEyBy, Bzhi);
  t.Set(InsnId::BEXTR_GyEyBy, Bextr);
  t.Set(InsnId::PDEP_GyByEy, Pdep);
  t.Set(InsnId::PEXT_GyByEy, Pext);
  t.Set(InsnId::BSWAP_Zv, Bswap);
  t.Set(InsnId::MOVBE_GvMv, MovbeLoad);
  t.Set(InsnId::MOVBE_GwMw, MovbeLoad);
  t.Set(InsnId::MOVBE_MvGv, MovbeStore);
  t.Set(InsnId::MOVBE_MwGw, MovbeStore);
  t.Set(InsnId::CRC32_GdEb, Crc32);
  t.Set(InsnId::CRC32_GdEv, Crc32);
}

}  // namespace cpudiff::emu

#!/usr/bin/env python3
"""Writes the inputs of cpudiff's seed corpus (corpus format v1, no `expect`).

Usage: make_seed.py OUTDIR

One JSON Lines file per instruction family is written into OUTDIR
(movement.jsonl, arith.jsonl, ...). The expected end states are not written
here: they are recorded on silicon afterwards with
`cpudiff run FILE --engines native --write-expect OUT` (see README.md), so
nothing in this file is a guess about what the CPU computes.

Code snippets are assembled with GNU as (Intel syntax). Every case goes into
its own section of one assembly file, so one `as` run assembles the whole
corpus; the section contents are then read straight from the ELF object
(a few lines of `struct`, standard library only), and any relocation left in
the object is an error, which guarantees every snippet is position
independent and self-contained. Output is deterministic for a given binutils
version: cases are emitted in program order with a fixed key order.
"""

import json
import os
import re
import struct
import subprocess
import sys
import tempfile

# Default layout (DESIGN.md): data 64 KiB rw at D, stack 64 KiB rw at S.
D = 0x20000000
S = 0x30000000
RSP = 0x3000FFF0
UNMAPPED = 0x50000000  # never mapped by any case
RO = 0x40000000  # read-only / executable extra regions live here
NONCANON = 0x8000000000000000
M64 = (1 << 64) - 1

# rflags bits
CF, PF, AF, ZF, SF, TF, DF, OF, AC, ID = (0x1, 0x4, 0x10, 0x40, 0x80, 0x100,
                                          0x400, 0x800, 0x40000, 0x200000)
BASE = 0x202  # bit 1 and IF
ALLSTAT = CF | PF | AF | ZF | SF | OF  # 0x8d5

FAMILIES = ["movement", "arith", "logic", "shift", "bitops", "muldiv",
            "string", "control", "stack", "atomic", "flags", "faults", "sse"]


def pattern(n, mul=0x9D, add=0x3B):
  """Deterministic byte pattern with every byte value spread around."""
  return bytes((i * mul + add) & 0xFF for i in range(n))


PAT = pattern(0x400)


class Corpus:
  """Collects cases per family; names must be unique across the corpus."""

  def __init__(self):
    self.cases = {f: [] for f in FAMILIES}
    self.names = set()
    self.family = None

  def add(self, name, asm, regs=None, mem=None, mn=None, tags=(),
          family=None):
    family = family or self.family
    if name in self.names:
      raise ValueError("duplicate case name " + name)
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", name):
      raise ValueError("bad case name " + name)
    self.names.add(name)
    regs = dict(regs or {})
    if mem is not None and "rsp" not in regs:
      # A case with its own "mem" has no default rsp: keep the usual one.
      regs["rsp"] = RSP
    mn = mn or name.split("-")[0]
    self.cases[family].append({
        "name": name,
        "asm": asm,
        "regs": regs,
        "mem": mem,
        "tags": [family, mn] + [t for t in tags if t not in (family, mn)],
    })


def hx(v, bits=64):
  return "0x%x" % (v & ((1 << bits) - 1))


def data_mem(data=b"", extra=()):
  """Default layout with prefilled data at D, plus extra regions."""
  regions = [{"addr": hx(D), "size": 0x10000, "perm": "rw"}]
  if data:
    regions[0]["data"] = bytes(data).hex()
  regions.append({"addr": hx(S), "size": 0x10000, "perm": "rw"})
  regions.extend(extra)
  return regions


def region(addr, perm, data=b"", size=0x1000):
  r = {"addr": hx(addr), "size": size, "perm": perm}
  if data:
    r["data"] = bytes(data).hex()
  return r


def raw(*bs):
  """Exact bytes for encodings the assembler would not pick by itself."""
  return ".byte " + ", ".join("0x%02x" % b for b in bs)


# Register names by width: (rax-like, rbx-like, rcx-like, rdx-like, ptr).
R = {
    8: ("al", "bl", "cl", "dl", "byte"),
    16: ("ax", "bx", "cx", "dx", "word"),
    32: ("eax", "ebx", "ecx", "edx", "dword"),
    64: ("rax", "rbx", "rcx", "rdx", "qword"),
}
WIDTHS = (8, 16, 32, 64)


def mask(w):
  return (1 << w) - 1


def smax(w):
  return (1 << (w - 1)) - 1


def smin(w):
  return 1 << (w - 1)


# Bits above an 8/16-bit operand (and above a 32-bit one, which the CPU must
# zero) are filled so that a wrong merge or a missing zero-extension shows.
HI = {8: 0x5A5A5A5A5A5A5A00, 16: 0xA5A5A5A5A5A50000,
      32: 0xC3C3C3C300000000, 64: 0}
HI2 = {8: 0x3C3C3C3C3C3C3C00, 16: 0x6969696969690000,
       32: 0x9696969600000000, 64: 0}


def fill(w, v, hi=HI):
  return hi[w] | (v & mask(w))


# --------------------------------------------------------------------------
# data movement


def gen_movement(c):
  c.family = "movement"
  a = 0x1122334455667788
  b = 0x8899AABBCCDDEEFF
  rr = {"rax": a, "rbx": b, "rcx": 0x0123456789ABCDEF, "rsi": 0xFEDCBA9876543210}
  # mov r/r
  c.add("mov-r8-r8", "mov al, bl", rr)
  c.add("mov-r8h-r8h", "mov ah, bh", rr)
  c.add("mov-r8-r8h", "mov cl, ah", rr)
  c.add("mov-r8h-r8", "mov bh, cl", rr)
  c.add("mov-r8-sil-rex", "mov r8b, sil", rr)
  c.add("mov-r8-dil-from-r9b", "mov dil, r9b", dict(rr, r9=0xABCDEF0123456789))
  c.add("mov-r16-r16", "mov ax, bx", rr)
  c.add("mov-r32-r32-zero-extends", "mov eax, ebx", rr)
  c.add("mov-r64-r64", "mov rax, rbx", rr)
  c.add("mov-r64-r15", "mov r15, rax", rr)
  c.add("mov-r32-r32-alt-encoding-8b", raw(0x8B, 0xC3), rr)
  # mov r/imm
  c.add("mov-r8-imm8", "mov al, 0x80", rr)
  c.add("mov-r8h-imm8", "mov ah, 0x7f", rr)
  c.add("mov-r16-imm16", "mov ax, 0x8000", rr)
  c.add("mov-r32-imm32-zero-extends", "mov eax, 0xffffffff", rr)
  c.add("mov-r64-imm32-sign-extends", "mov rax, -2", rr)
  c.add("mov-r32-imm32-c7-form", raw(0xC7, 0xC0, 0x78, 0x56, 0x34, 0x92), rr)
  c.add("movabs-r64-imm64", "movabs rax, 0x8123456789abcdef", rr)
  c.add("movabs-r11-imm64", "movabs r11, 0xfedcba9876543210", rr)
  # moffs forms
  m = data_mem(PAT[:0x40])
  c.add("movabs-al-moffs", "movabs al, [0x20000010]", rr, m, mn="movabs")
  c.add("movabs-ax-moffs", "movabs ax, [0x20000011]", rr, m, mn="movabs")
  c.add("movabs-eax-moffs", "movabs eax, [0x20000012]", rr, m, mn="movabs")
  c.add("movabs-rax-moffs", "movabs rax, [0x20000013]", rr, m, mn="movabs")
  c.add("movabs-moffs-rax", "movabs [0x20000018], rax", rr, m, mn="movabs")
  c.add("movabs-moffs-al", "movabs [0x20000021], al", rr, m, mn="movabs")
  # mov r/m and m/r
  mr = dict(rr, rbx=D + 0x10)
  for w in WIDTHS:
    ra, _, _, _, p = R[w]
    c.add("mov-r%d-m%d" % (w, w), "mov %s, %s ptr [rbx+3]" % (ra, p), mr, m)
    c.add("mov-m%d-r%d" % (w, w), "mov %s ptr [rbx+5], %s" % (p, ra), mr, m)
  c.add("mov-r8h-m8", "mov ah, byte ptr [rbx]", mr, m)
  c.add("mov-m8-r8h", "mov byte ptr [rbx+1], ch", mr, m)
  c.add("mov-m8-imm8", "mov byte ptr [rbx], 0x80", mr, m)
  c.add("mov-m16-imm16", "mov word ptr [rbx], 0xbeef", mr, m)
  c.add("mov-m32-imm32", "mov dword ptr [rbx], 0xdeadbeef", mr, m)
  c.add("mov-m64-imm32-sign-extends", "mov qword ptr [rbx], -3", mr, m)
  c.add("mov-r64-m64-sib-disp32",
        "mov rax, qword ptr [rbx+rcx*8+0x100]", dict(mr, rcx=3), m)
  c.add("mov-r64-m64-absolute-disp32", "mov rax, qword ptr [0x20000008]", rr, m)
  c.add("mov-r64-rip-relative-reads-own-bytes", "mov rax, qword ptr [rip-7]", rr)
  c.add("mov-r32-m32-index-only", "mov eax, dword ptr [rcx*4+0x20000000]",
        dict(rr, rcx=5), m)
  c.add("mov-r64-m64-r12-base-r13-index",
        "mov r8, qword ptr [r12+r13*2+1]", dict(rr, r12=D, r13=4), m)
  c.add("mov-r64-m64-rbp-base-disp8", "mov rax, qword ptr [rbp-8]",
        dict(rr, rbp=D + 0x20), m)
  c.add("mov-r64-m64-addr32-ignores-upper", "mov rax, qword ptr [ebx+ecx]",
        dict(rr, rbx=0xFFFFFFFF20000010, rcx=0x100000000), m)
  # movzx / movsx / movsxd
  zs = {"rax": a, "rbx": 0x00000000000080FF, "rcx": 0x000000000000807F}
  c.add("movzx-r16-r8", "movzx ax, bl", zs)
  c.add("movzx-r32-r8", "movzx eax, bl", zs)
  c.add("movzx-r64-r8", "movzx rax, bl", zs)
  c.add("movzx-r32-r8h", "movzx eax, bh", zs)
  c.add("movzx-r32-r16", "movzx eax, bx", zs)
  c.add("movzx-r64-r16", "movzx rax, bx", zs)
  c.add("movzx-r32-m8", "movzx eax, byte ptr [rdx]", dict(zs, rdx=D + 1), m)
  c.add("movzx-r64-m16", "movzx rax, word ptr [rdx]", dict(zs, rdx=D + 3), m)
  c.add("movsx-r16-r8-neg", "movsx ax, bl", zs)
  c.add("movsx-r32-r8-neg", "movsx eax, bl", zs)
  c.add("movsx-r64-r8-pos", "movsx rax, cl", zs)
  c.add("movsx-r32-r8h-neg", "movsx eax, ch", zs)
  c.add("movsx-r32-r16-neg", "movsx eax, bx", zs)
  c.add("movsx-r64-r16-neg", "movsx rax, cx", zs)
  c.add("movsx-r64-m8", "movsx rax, byte ptr [rdx]", dict(zs, rdx=D + 2), m)
  c.add("movsx-r32-m16", "movsx eax, word ptr [rdx]", dict(zs, rdx=D + 6), m)
  c.add("movsxd-r64-r32-neg", "movsxd rax, ebx",
        dict(zs, rbx=0x1234567880000001))
  c.add("movsxd-r64-r32-pos", "movsxd rax, ebx",
        dict(zs, rbx=0xFFFFFFFF7FFFFFFF))
  c.add("movsxd-r64-m32", "movsxd rax, dword ptr [rdx]", dict(zs, rdx=D + 1), m)
  # lea
  lr = {"rax": a, "rbx": 0x0000000020001000, "rcx": 0x10, "rbp": 0x7FFFFFFFFFFFFFF0,
        "r12": 0x40, "r13": 0xFFFFFFFFFFFFFFFF, "rsp": RSP}
  c.add("lea-r64-base-index-scale-disp8", "lea rax, [rbx+rcx*4+8]", lr)
  c.add("lea-r64-index-scale8-disp32-nobase", "lea rax, [rcx*8+0x12345678]", lr)
  c.add("lea-r64-wraps-64bit", "lea rax, [rbp+rcx*2+0x40]", lr)
  c.add("lea-r32-truncates", "lea eax, [rbp+rcx-1]", lr)
  c.add("lea-r16-truncates", "lea ax, [rbx+rcx*2+0x7fff]", lr)
  c.add("lea-r64-rip-relative", "lea rax, [rip+0x123]", lr)
  c.add("lea-r64-rip-relative-negative", "lea rax, [rip-0x10]", lr)
  c.add("lea-r64-r12-base-r13-index", "lea r8, [r12+r13*1+1]", lr)
  c.add("lea-r64-rsp-base", "lea rax, [rsp+0x18]", lr)
  c.add("lea-r64-rbx-times3", "lea rax, [rbx+rbx*2]", lr)
  c.add("lea-r32-addr32", "lea eax, [ebx+ecx*8-0x20]",
        dict(lr, rbx=0xFFFFFFFF00000010))
  c.add("lea-r64-addr32-zero-extends-address", "lea rax, [ebp+0x20]", lr)
  # xlat
  xm = data_mem(PAT[:0x100])
  c.add("xlat-al-index", "xlatb", {"rax": 0x1111111111111105, "rbx": D}, xm)
  c.add("xlat-al-ff-unsigned-index", "xlatb",
        {"rax": 0x11111111111111FF, "rbx": D}, xm)
  # sign-extension of the accumulator
  for mn, v in (("cbw", 0x1111111111111180), ("cbw", 0x111111111111117F),
                ("cwde", 0x1111111111118000), ("cwde", 0x1111111111117FFF),
                ("cdqe", 0x1111111180000000), ("cdqe", 0x111111117FFFFFFF),
                ("cwd", 0x1111111111118000), ("cwd", 0x1111111111117FFF),
                ("cdq", 0x1111111180000000), ("cdq", 0x111111117FFFFFFF),
                ("cqo", 0x8000000000000000), ("cqo", 0x7FFFFFFFFFFFFFFF)):
    sign = "neg" if (v >> {"cbw": 7, "cwde": 15, "cdqe": 31, "cwd": 15,
                           "cdq": 31, "cqo": 63}[mn]) & 1 else "pos"
    c.add("%s-%s" % (mn, sign), mn, {"rax": v, "rdx": 0x2222222222222222})
  # nop forms (the memory operand of a multi-byte nop is never accessed)
  nops = [
      ("nop-90", (0x90,)),
      ("nop-66-90", (0x66, 0x90)),
      ("nop-0f1f-modrm00", (0x0F, 0x1F, 0x00)),
      ("nop-0f1f-disp8", (0x0F, 0x1F, 0x40, 0x00)),
      ("nop-0f1f-sib-disp8", (0x0F, 0x1F, 0x44, 0x00, 0x00)),
      ("nop-66-0f1f-sib-disp8", (0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00)),
      ("nop-0f1f-disp32", (0x0F, 0x1F, 0x80, 0, 0, 0, 0)),
      ("nop-0f1f-sib-disp32", (0x0F, 0x1F, 0x84, 0, 0, 0, 0, 0)),
      ("nop-66-0f1f-sib-disp32", (0x66, 0x0F, 0x1F, 0x84, 0, 0, 0, 0, 0)),
      ("nop-66-2e-0f1f-sib-disp32",
       (0x66, 0x2E, 0x0F, 0x1F, 0x84, 0, 0, 0, 0, 0)),
      ("nop-0f1f-register-operand", (0x0F, 0x1F, 0xC0)),
      ("nop-rex-w-90-is-not-xchg", (0x48, 0x90)),
  ]
  for name, bs in nops:
    c.add(name, raw(*bs), {"rax": UNMAPPED, "rcx": 7}, mn="nop")
  c.add("nop-m32-unmapped-address-not-accessed",
        "nop dword ptr [rax]", {"rax": NONCANON}, mn="nop")
  c.add("pause", "pause", {"rax": 1})
  c.add("lfence", "lfence", {"rax": 1})
  c.add("sfence", "sfence", {"rax": 1})
  c.add("mfence", "mfence", {"rax": 1})
  c.add("lfence-between-stores", "mov [rbx], rax; lfence; mov rcx, [rbx]",
        {"rax": a, "rbx": D})
  for mn in ("prefetcht0", "prefetcht1", "prefetcht2", "prefetchnta",
             "prefetchw"):
    c.add(mn + "-m8", "%s byte ptr [rbx]" % mn, {"rbx": D + 0x40})
  c.add("prefetcht0-unmapped-no-fault", "prefetcht0 byte ptr [rbx]",
        {"rbx": UNMAPPED}, mn="prefetcht0")
  c.add("prefetchnta-noncanonical-no-fault", "prefetchnta byte ptr [rbx]",
        {"rbx": NONCANON}, mn="prefetchnta")
  c.add("movnti-m64-r64", "movnti qword ptr [rbx], rax", {"rax": a, "rbx": D})
  # byte swapping moves
  c.add("bswap-r32-zero-extends", "bswap eax", {"rax": a})
  c.add("bswap-r64", "bswap rax", {"rax": a})
  c.add("bswap-r9", "bswap r9", {"r9": b})
  c.add("bswap-r11d", "bswap r11d", {"r11": b})
  c.add("movbe-r16-m16", "movbe ax, word ptr [rbx+1]", dict(mr, rbx=D), m)
  c.add("movbe-r32-m32", "movbe eax, dword ptr [rbx+1]", dict(mr, rbx=D), m)
  c.add("movbe-r64-m64", "movbe rax, qword ptr [rbx+1]", dict(mr, rbx=D), m)
  c.add("movbe-m16-r16", "movbe word ptr [rbx+1], ax", dict(mr, rbx=D), m)
  c.add("movbe-m32-r32", "movbe dword ptr [rbx+1], eax", dict(mr, rbx=D), m)
  c.add("movbe-m64-r64", "movbe qword ptr [rbx+1], rax", dict(mr, rbx=D), m)


# --------------------------------------------------------------------------
# arithmetic


def gen_arith(c):
  c.family = "arith"
  # (label, a, b, carry-in) pairs per operation, values relative to width.
  def cases_for(op, w):
    M, MX, MN = mask(w), smax(w), smin(w)
    if op == "add":
      return [("zero", 0, 0, 0), ("neg1-plus-1", M, 1, 0),
              ("max-plus-1", MX, 1, 0), ("min-plus-neg1", MN, M, 0),
              ("af-0f-plus-1", 0x0F, 1, 0)]
    if op in ("sub", "cmp"):
      return [("equal", 1, 1, 0), ("0-minus-1", 0, 1, 0),
              ("min-minus-1", MN, 1, 0), ("max-minus-neg1", MX, M, 0),
              ("af-10-minus-1", 0x10, 1, 0)]
    if op == "adc":
      return [("cf1-neg1-plus-0", M, 0, 1), ("cf1-max-plus-0", MX, 0, 1),
              ("cf1-neg1-plus-neg1", M, M, 1), ("cf0-1-plus-1", 1, 1, 0)]
    if op == "sbb":
      return [("cf1-0-minus-0", 0, 0, 1), ("cf1-min-minus-0", MN, 0, 1),
              ("cf1-1-minus-0", 1, 0, 1), ("cf0-5-minus-3", 5, 3, 0)]
    raise ValueError(op)

  for op in ("add", "adc", "sub", "sbb", "cmp"):
    for w in WIDTHS:
      ra, rb, _, _, _ = R[w]
      for label, x, y, cin in cases_for(op, w):
        c.add("%s-r%d-%s" % (op, w, label), "%s %s, %s" % (op, ra, rb),
              {"rax": fill(w, x), "rbx": fill(w, y, HI2),
               "rflags": BASE | cin})
  # other operand forms
  m = data_mem(PAT[:0x40])
  c.add("add-r8h-r8h", "add ah, bh", {"rax": 0x11111111111180FF,
                                       "rbx": 0x2222222222228001})
  c.add("sub-r8-r8h", "sub cl, ah", {"rax": 0x1111111111117F00,
                                      "rcx": 0x3333333333333300})
  c.add("add-al-imm8-04", "add al, 0x7f", {"rax": fill(8, 1)})
  c.add("add-ax-imm16", "add ax, 0x8000", {"rax": fill(16, 0x8000)})
  c.add("add-eax-imm32", "add eax, 0x7fffffff", {"rax": fill(32, 1)})
  c.add("add-rax-imm32-sign-extended", "add rax, -0x80000000",
        {"rax": 0x80000000})
  c.add("add-r64-imm8-sign-extended-83", "add rcx, -1", {"rcx": 0})
  c.add("adc-r32-imm8-cf1", "adc edx, 0x7f", {"rdx": fill(32, 0xFFFFFF80),
                                              "rflags": BASE | CF})
  c.add("sub-r16-imm8-sign-extended", "sub dx, -1", {"rdx": fill(16, 0x7FFF)})
  c.add("sbb-r64-imm32-cf1", "sbb rax, 0x12345678", {"rax": 0x12345678,
                                                      "rflags": BASE | CF})
  c.add("cmp-r8-imm8-r10b", "cmp r10b, 0x80", {"r10": fill(8, 0x7F)})
  c.add("cmp-rax-imm32-sign-extended", "cmp rax, -0x80000000",
        {"rax": 0xFFFFFFFF80000000})
  mm = {"rax": 0x8000000000000001, "rbx": D + 8, "rflags": BASE | CF}
  for w in WIDTHS:
    ra, _, _, _, p = R[w]
    c.add("add-m%d-r%d" % (w, w), "add %s ptr [rbx], %s" % (p, ra), mm, m)
    c.add("sub-r%d-m%d" % (w, w), "sub %s, %s ptr [rbx]" % (ra, p), mm, m)
  c.add("adc-m32-imm32", "adc dword ptr [rbx], 0x7fffffff", mm, m)
  c.add("sbb-m8-imm8", "sbb byte ptr [rbx+1], 0x10", mm, m)
  c.add("cmp-m64-imm8", "cmp qword ptr [rbx], 1", mm, m)
  c.add("cmp-r64-m64", "cmp rax, qword ptr [rbx]", mm, m)
  # inc / dec / neg: edges; initial CF=1 shows inc/dec leave CF alone.
  for w in WIDTHS:
    ra, _, _, _, p = R[w]
    M, MX, MN = mask(w), smax(w), smin(w)
    for op, label, v in (("inc", "max", MX), ("inc", "neg1", M),
                         ("inc", "zero", 0), ("dec", "min", MN),
                         ("dec", "zero", 0), ("dec", "one", 1),
                         ("neg", "zero", 0), ("neg", "min", MN),
                         ("neg", "one", 1)):
      c.add("%s-r%d-%s" % (op, w, label), "%s %s" % (op, ra),
            {"rax": fill(w, v), "rflags": BASE | CF})
  c.add("inc-r8h", "inc ah", {"rax": 0x11111111111FFFF, "rflags": BASE})
  c.add("dec-r8-sil", "dec sil", {"rsi": 0x1111111111111100})
  c.add("neg-r8h", "neg bh", {"rbx": 0x1111111111118000})
  c.add("inc-m32", "inc dword ptr [rbx]", {"rbx": D}, m)
  c.add("dec-m16", "dec word ptr [rbx+2]", {"rbx": D}, m)
  c.add("neg-m64", "neg qword ptr [rbx]", {"rbx": D}, m)
  c.add("neg-m8", "neg byte ptr [rbx+3]", {"rbx": D}, m)
  # ADX
  adx = {"rax": 0xFFFFFFFFFFFFFFFF, "rbx": 0x1, "rcx": 0xFFFFFFFF00000000}
  c.add("adcx-r64-cf1-carry-out", "adcx rax, rbx",
        dict(adx, rflags=BASE | CF | OF | ZF))
  c.add("adcx-r64-cf0", "adcx rcx, rbx", dict(adx, rflags=BASE | SF))
  c.add("adcx-r32-cf1-zero-extends", "adcx eax, ebx",
        dict(adx, rax=0x12345678FFFFFFFE, rflags=BASE | CF))
  c.add("adox-r64-of1-carry-out", "adox rax, rbx",
        dict(adx, rflags=BASE | OF | CF))
  c.add("adox-r64-of0", "adox rcx, rbx", dict(adx, rflags=BASE | CF))
  c.add("adox-r32-of1-zero-extends", "adox eax, ebx",
        dict(adx, rax=0x12345678FFFFFFFE, rflags=BASE | OF))
  c.add("adcx-r64-m64", "adcx rax, qword ptr [rdx]",
        dict(adx, rdx=D, rflags=BASE | CF), m)
  c.add("adcx-adox-chain",
        "adcx rax, rbx; adox rcx, rbx; adcx rax, rbx; adox rcx, rcx",
        dict(adx, rflags=BASE | CF | OF), mn="adcx", tags=("adox",))
  # BMI2 mulx: rdx * src, flags untouched
  mx = {"rdx": 0xFFFFFFFFFFFFFFFF, "rcx": 0xFFFFFFFFFFFFFFFF,
        "rax": 0x1111, "rbx": 0x2222, "rflags": BASE | CF | ZF}
  c.add("mulx-r64", "mulx rax, rbx, rcx", mx)
  c.add("mulx-r32-zero-extends", "mulx eax, ebx, ecx",
        dict(mx, rdx=0x12345678DEADBEEF, rcx=0xAAAAAAAA87654321))
  c.add("mulx-r64-same-dest-gets-high", "mulx rax, rax, rcx",
        dict(mx, rdx=0x123456789ABCDEF0))
  c.add("mulx-r64-m64", "mulx r8, r9, qword ptr [rbx]",
        dict(mx, rbx=D, rdx=0xFEDCBA9876543210), m)
  # SSE4.2 crc32
  cr = {"rax": 0xFFFFFFFFFFFFFFFF, "rbx": 0x0123456789ABCDEF,
        "rsi": D, "rflags": BASE | ALLSTAT}
  c.add("crc32-r32-r8", "crc32 eax, bl", cr)
  c.add("crc32-r32-r16", "crc32 eax, bx", cr)
  c.add("crc32-r32-r32", "crc32 eax, ebx", cr)
  c.add("crc32-r64-r64", "crc32 rax, rbx", cr)
  c.add("crc32-r64-r8", "crc32 rax, bl", cr)
  c.add("crc32-r32-m32-init0", "crc32 eax, dword ptr [rsi]", dict(cr, rax=0), m)
  c.add("crc32-r32-m8-chain",
        "crc32 eax, byte ptr [rsi]; crc32 eax, byte ptr [rsi+1]", cr, m)


# --------------------------------------------------------------------------
# logic


def gen_logic(c):
  c.family = "logic"
  a, b = 0xF0F0F0F0F0F0F0F0, 0x8C8C8C8C8C8C8C8C
  for op in ("and", "or", "xor", "test"):
    for w in WIDTHS:
      ra, rb, _, _, _ = R[w]
      # Initial flags all set: logic ops clear CF/OF, write SF/ZF/PF.
      c.add("%s-r%d-r%d" % (op, w, w), "%s %s, %s" % (op, ra, rb),
            {"rax": fill(w, a), "rbx": fill(w, b, HI2),
             "rflags": BASE | ALLSTAT})
    c.add("%s-r32-zero-result" % op, "%s eax, ebx" % op,
          {"rax": 0xFFFFFFFF0F0F0F0F,
           "rbx": 0xF0F0F0F0 if op in ("and", "test") else 0x0F0F0F0F
           if op == "xor" else 0})
  c.add("xor-r32-self-zero-idiom", "xor eax, eax", {"rax": M64})
  c.add("xor-r64-self-zero-idiom", "xor r9, r9", {"r9": M64})
  c.add("or-r32-self-zero-extends", "or eax, eax", {"rax": 0xFFFFFFFF80000000})
  c.add("and-r8h-r8", "and ah, bl", {"rax": 0x1111111111FF11FF,
                                       "rbx": 0x00000000000000A5})
  c.add("or-r8-r8h", "or dl, ch", {"rcx": 0x80 << 8, "rdx": 0x01})
  c.add("xor-r8h-r8h", "xor bh, bh", {"rbx": 0xFFFFFFFFFFFFFFFF})
  c.add("test-r8h-imm8", "test ah, 0x80", {"rax": 0x8000})
  c.add("test-al-imm8-a8", "test al, 0x01", {"rax": 0x2})
  c.add("test-eax-imm32-a9", "test eax, 0x80000000", {"rax": 0x80000000})
  c.add("test-r64-imm32-sign-extended", "test rbx, -0x80000000",
        {"rbx": 0x8000000000000000})
  c.add("and-r64-imm8-sign-extended", "and rax, -16", {"rax": M64})
  c.add("and-r32-imm32-zero-extends", "and eax, 0x7fffffff", {"rax": M64})
  c.add("or-r16-imm16", "or ax, 0x8001", {"rax": 0x1111111111110000})
  c.add("xor-r8-imm8", "xor al, 0xff", {"rax": 0x111111111111110F})
  c.add("xor-r64-imm32", "xor rax, 0x7fffffff", {"rax": M64})
  m = data_mem(PAT[:0x40])
  mm = {"rax": 0x00FF00FF00FF00FF, "rbx": D + 8}
  c.add("and-m64-r64", "and qword ptr [rbx], rax", mm, m)
  c.add("or-r32-m32", "or eax, dword ptr [rbx]", mm, m)
  c.add("xor-m8-imm8", "xor byte ptr [rbx], 0x55", mm, m)
  c.add("test-m16-r16", "test word ptr [rbx], ax", mm, m)
  c.add("test-m32-imm32", "test dword ptr [rbx], 0x80000000", mm, m)
  for w in WIDTHS:
    ra = R[w][0]
    c.add("not-r%d" % w, "not %s" % ra, {"rax": fill(w, 0x0F0F0F0F0F0F0F0F),
                                          "rflags": BASE | CF | ZF})
  c.add("not-r8h", "not ah", {"rax": 0x1234})
  c.add("not-m32", "not dword ptr [rbx]", mm, m)


# --------------------------------------------------------------------------
# shifts and rotates


SHIFT_VALUE = {8: 0xB5, 16: 0x8D35, 32: 0x8BADF00D, 64: 0x8123456789ABCDEF}
# cl counts per width: 0, 1, >1, width-1, width, >= width (masked counts).
SHIFT_CL = {8: (0, 1, 3, 7, 8, 9, 17), 16: (0, 1, 5, 15, 16, 17),
            32: (0, 1, 13, 31, 32, 33), 64: (0, 1, 13, 63, 64, 65)}
SHIFT_IMM = {8: (3, 9), 16: (7, 17), 32: (31, 33), 64: (63, 64)}


def shift_flags(w, op, n):
  # Count 0 (after masking) must leave all flags alone: start with all set.
  eff = n & (0x3F if w == 64 else 0x1F)
  if op in ("rcl", "rcr") and w in (8, 16):
    eff %= w + 1
  return BASE | ALLSTAT if eff == 0 else BASE | CF


def gen_shift(c):
  c.family = "shift"
  ops = ("shl", "shr", "sar", "rol", "ror", "rcl", "rcr")
  for op in ops:
    for w in WIDTHS:
      ra = R[w][0]
      v = fill(w, SHIFT_VALUE[w])
      c.add("%s-r%d-1" % (op, w), "%s %s, 1" % (op, ra),
            {"rax": v, "rflags": BASE | CF})
      for n in SHIFT_CL[w]:
        c.add("%s-r%d-cl-%d" % (op, w, n), "%s %s, cl" % (op, ra),
              {"rax": v, "rcx": 0xFF00 | n, "rflags": shift_flags(w, op, n)})
      for n in SHIFT_IMM[w]:
        c.add("%s-r%d-imm-%d" % (op, w, n), "%s %s, %d" % (op, ra, n),
              {"rax": v, "rflags": shift_flags(w, op, n)})
  # by-1 with the c0/c1 imm8 encoding (count 1 as an immediate)
  c.add("shl-r32-imm8-encoded-1", raw(0xC1, 0xE0, 0x01),
        {"rax": 0xC0000000, "rflags": BASE})
  c.add("rcr-r8-imm8-encoded-1", raw(0xC0, 0xD8, 0x01),
        {"rax": 0x81, "rflags": BASE | CF})
  # sal alias (/6)
  c.add("sal-r32-alias-d1-f0", raw(0xD1, 0xF0), {"rax": 0x40000001},
        mn="sal")
  # high-byte and memory forms
  c.add("shl-r8h-cl-3", "shl ah, cl", {"rax": 0xB500, "rcx": 3})
  c.add("sar-r8h-1", "sar bh, 1", {"rbx": 0x8100})
  c.add("rol-r8h-imm-4", "rol ch, 4", {"rcx": 0xA500})
  m = data_mem(PAT[:0x40])
  c.add("shl-m32-cl-5", "shl dword ptr [rbx], cl", {"rbx": D, "rcx": 5}, m)
  c.add("sar-m64-1", "sar qword ptr [rbx+8], 1", {"rbx": D}, m)
  c.add("ror-m16-imm-9", "ror word ptr [rbx+2], 9", {"rbx": D}, m)
  c.add("rcl-m8-cl-9", "rcl byte ptr [rbx+3], cl",
        {"rbx": D, "rcx": 9, "rflags": BASE | CF}, m)
  c.add("shr-m64-cl-64-masked", "shr qword ptr [rbx], cl",
        {"rbx": D, "rcx": 64, "rflags": BASE | ALLSTAT}, m)
  # shld / shrd
  dv = {16: (0x8D35, 0x1EE7), 32: (0x8BADF00D, 0x12345678),
        64: (0x8123456789ABCDEF, 0x0FEDCBA987654321)}
  counts = {16: (0, 1, 4, 15, 16), 32: (0, 1, 12, 31, 32, 33),
            64: (0, 1, 12, 63, 64, 65)}
  for op in ("shld", "shrd"):
    for w in (16, 32, 64):
      ra, rb = R[w][0], R[w][1]
      x, y = dv[w]
      for n in counts[w]:
        eff = n & (0x3F if w == 64 else 0x1F)
        fl = BASE | ALLSTAT if eff == 0 else BASE
        tags = ("undefined-result",) if eff > w else ()
        c.add("%s-r%d-cl-%d" % (op, w, n), "%s %s, %s, cl" % (op, ra, rb),
              {"rax": fill(w, x), "rbx": fill(w, y, HI2), "rcx": n,
               "rflags": fl}, tags=tags)
      for n in (1, 7, w + 1):
        eff = n & (0x3F if w == 64 else 0x1F)
        tags = ("undefined-result",) if eff > w else ()
        c.add("%s-r%d-imm-%d" % (op, w, n), "%s %s, %s, %d" % (op, ra, rb, n),
              {"rax": fill(w, x), "rbx": fill(w, y, HI2), "rflags": BASE},
              tags=tags)
  c.add("shld-m32-r32-cl-8", "shld dword ptr [rdx], ebx, cl",
        {"rdx": D, "rbx": 0xCAFEBABE, "rcx": 8}, m)
  c.add("shrd-m64-r64-imm-20", "shrd qword ptr [rdx], rbx, 20",
        {"rdx": D, "rbx": 0xCAFEBABEDEADBEEF}, m)


# --------------------------------------------------------------------------
# bit operations


def gen_bitops(c):
  c.family = "bitops"
  m = data_mem(PAT[:0x400])
  mid = D + 0x200
  for op in ("bt", "bts", "btr", "btc"):
    for w in (16, 32, 64):
      ra, rb, rc, _, p = R[w]
      c.add("%s-r%d-r%d" % (op, w, w), "%s %s, %s" % (op, ra, rc),
            {"rax": 0x8000000000000001 | 0x0F0F00, "rcx": w + 3,
             "rflags": BASE | CF})
      c.add("%s-r%d-imm" % (op, w), "%s %s, %d" % (op, ra, w - 1),
            {"rax": 0x5A5A5A5A5A5A5A5A | (1 << (w - 1))})
      c.add("%s-m%d-imm-masked" % (op, w),
            "%s %s ptr [rbx], %d" % (op, p, w + 5), {"rbx": mid}, m)
      c.add("%s-m%d-r%d-positive-offset" % (op, w, w),
            "%s %s ptr [rbx], %s" % (op, p, rc), {"rbx": mid, "rcx": 100}, m)
      c.add("%s-m%d-r%d-negative-offset" % (op, w, w),
            "%s %s ptr [rbx], %s" % (op, p, rc),
            {"rbx": mid, "rcx": (-(w + 3)) & M64}, m)
  c.add("bt-m32-r32-offset-minus-1", "bt dword ptr [rbx], ecx",
        {"rbx": mid, "rcx": 0xFFFFFFFF}, m)
  c.add("bt-m64-r64-large-offset", "bt qword ptr [rbx], rcx",
        {"rbx": mid, "rcx": 0x10000 * 8 - 0x1100 * 8 - 1}, m)
  c.add("bts-m64-r64-offset-beyond-4k", "bts qword ptr [rbx], rcx",
        {"rbx": mid, "rcx": 0x8000 + 7}, m)
  c.add("bt-r32-r32-count-masked-33", "bt eax, ecx",
        {"rax": 0x2, "rcx": 33})
  c.add("btc-r64-r64-count-masked-127", "btc rax, rcx",
        {"rax": 0, "rcx": 127})
  # bsf / bsr / lzcnt / tzcnt / popcnt: zero and non-zero sources.
  src_nz = {16: 0x0FF0, 32: 0x00800100, 64: 0x0000400000000800}
  for op in ("bsf", "bsr", "lzcnt", "tzcnt", "popcnt"):
    for w in (16, 32, 64):
      ra, rb = R[w][0], R[w][1]
      for label, s in (("zero", 0), ("nonzero", src_nz[w]),
                       ("top-bit", 1 << (w - 1))):
        c.add("%s-r%d-%s" % (op, w, label), "%s %s, %s" % (op, ra, rb),
              {"rax": 0xDEADBEEFCAFEF00D, "rbx": fill(w, s, HI2),
               "rflags": BASE | ALLSTAT if s else BASE})
  c.add("bsf-r64-m64", "bsf rax, qword ptr [rbx]", {"rbx": D + 8}, m)
  c.add("bsr-r32-m32-zero", "bsr eax, dword ptr [rbx]",
        {"rax": 0xDEADBEEFCAFEF00D, "rbx": D + 0x800}, m)
  c.add("popcnt-r64-m64", "popcnt rax, qword ptr [rbx]", {"rbx": D}, m)
  c.add("lzcnt-r32-m32", "lzcnt eax, dword ptr [rbx]", {"rbx": D + 4}, m)
  c.add("tzcnt-r16-m16", "tzcnt ax, word ptr [rbx]", {"rbx": D + 0x800,
                                                       "rax": M64}, m)
  # BMI1
  c.add("andn-r64", "andn rax, rbx, rcx",
        {"rbx": 0xFF00FF00FF00FF00, "rcx": 0x0FF00FF00FF00FF0,
         "rflags": BASE | ALLSTAT})
  c.add("andn-r32-zero-result", "andn eax, ebx, ecx",
        {"rax": M64, "rbx": M64, "rcx": 0x12345678})
  c.add("andn-r64-sign", "andn rax, rbx, rcx", {"rbx": 0, "rcx": NONCANON})
  for label, ctl in (("start4-len8", 0x0804), ("start0-len0", 0x0000),
                     ("start60-len10", 0x0A3C), ("start70-len8", 0x0846),
                     ("start8-len255", 0xFF08)):
    c.add("bextr-r64-%s" % label, "bextr rax, rbx, rcx",
          {"rbx": 0xF123456789ABCDEF, "rcx": 0xFFFF0000 | ctl,
           "rflags": BASE | ALLSTAT})
  c.add("bextr-r32-start28-len8", "bextr eax, ebx, ecx",
        {"rax": M64, "rbx": 0xF0000000, "rcx": 0x081C})
  c.add("bextr-r64-m64", "bextr rax, qword ptr [rdx], rcx",
        {"rdx": D, "rcx": 0x1008}, m)
  for op in ("blsi", "blsmsk", "blsr"):
    for w in (32, 64):
      ra, rb = R[w][0], R[w][1]
      c.add("%s-r%d-zero" % (op, w), "%s %s, %s" % (op, ra, rb),
            {"rax": M64, "rbx": 0})
      c.add("%s-r%d-nonzero" % (op, w), "%s %s, %s" % (op, ra, rb),
            {"rax": M64, "rbx": fill(w, 0x00A05000A0500000 & mask(w), HI2),
             "rflags": BASE | ALLSTAT})
    c.add("%s-r64-top-bit" % op, "%s rax, rbx" % op, {"rbx": NONCANON})
  # BMI2
  for label, n in (("n8", 8), ("n0", 0), ("n63", 63), ("n64", 64),
                   ("n200", 200), ("n-bit8-only", 0x1FF03)):
    c.add("bzhi-r64-%s" % label, "bzhi rax, rbx, rcx",
          {"rbx": M64, "rcx": n, "rflags": BASE | ALLSTAT})
  c.add("bzhi-r32-n31", "bzhi eax, ebx, ecx", {"rax": M64, "rbx": M64,
                                               "rcx": 31})
  c.add("bzhi-r32-n32", "bzhi eax, ebx, ecx", {"rax": M64, "rbx": M64,
                                               "rcx": 32})
  for op in ("pdep", "pext"):
    c.add("%s-r64" % op, "%s rax, rbx, rcx" % op,
          {"rbx": 0x123456789ABCDEF0, "rcx": 0xF0F0FF00FF0000FF,
           "rflags": BASE | ALLSTAT})
    c.add("%s-r32" % op, "%s eax, ebx, ecx" % op,
          {"rax": M64, "rbx": 0x89ABCDEF, "rcx": 0xAAAA5555})
    c.add("%s-r64-mask-zero" % op, "%s rax, rbx, rcx" % op,
          {"rax": M64, "rbx": M64, "rcx": 0})
    c.add("%s-r64-mask-all" % op, "%s rax, rbx, rcx" % op,
          {"rbx": 0x8000000000000001, "rcx": M64})
  c.add("rorx-r64-imm-13", "rorx rax, rbx, 13",
        {"rbx": 0x8123456789ABCDEF, "rflags": BASE | ALLSTAT})
  c.add("rorx-r32-imm-33-masked", "rorx eax, ebx, 33",
        {"rax": M64, "rbx": 0x80000001})
  c.add("rorx-r64-m64", "rorx rax, qword ptr [rbx], 60", {"rbx": D}, m)
  for op in ("sarx", "shlx", "shrx"):
    for w, n in ((32, 4), (32, 36), (64, 4), (64, 68)):
      ra, rb, rc = R[w][0], R[w][1], R[w][2]
      c.add("%s-r%d-count-%d" % (op, w, n), "%s %s, %s, %s" % (op, ra, rb, rc),
            {"rax": M64, "rbx": fill(w, SHIFT_VALUE[w], HI2), "rcx": n,
             "rflags": BASE | ALLSTAT})


# --------------------------------------------------------------------------
# multiply and divide


def gen_muldiv(c):
  c.family = "muldiv"
  m = data_mem(PAT[:0x40])
  for w in WIDTHS:
    _, rb, _, _, p = R[w]
    for label, x, y in (("small", 7, 6), ("overflow", mask(w), mask(w)),
                        ("max-times-2", smax(w), 2)):
      c.add("mul-r%d-%s" % (w, label), "mul %s" % rb,
            {"rax": fill(w, x), "rbx": fill(w, y, HI2),
             "rdx": 0x7777777777777777, "rflags": BASE | ALLSTAT})
    for label, x, y in (("neg-times-pos", mask(w), 3),
                        ("overflow", smin(w), mask(w)),
                        ("min-times-1", smin(w), 1)):
      c.add("imul-r%d-%s" % (w, label), "imul %s" % rb,
            {"rax": fill(w, x), "rbx": fill(w, y, HI2),
             "rdx": 0x7777777777777777})
    c.add("mul-m%d" % w, "mul %s ptr [rbx]" % p,
          {"rax": fill(w, 0x9999999999999999), "rbx": D + 1}, m)
    c.add("imul-m%d" % w, "imul %s ptr [rbx]" % p,
          {"rax": fill(w, 0x9999999999999999), "rbx": D + 1}, m)
  for w in (16, 32, 64):
    ra, rb, _, _, p = R[w]
    c.add("imul-r%d-r%d-no-overflow" % (w, w), "imul %s, %s" % (ra, rb),
          {"rax": fill(w, mask(w)), "rbx": fill(w, 5, HI2)})
    c.add("imul-r%d-r%d-overflow" % (w, w), "imul %s, %s" % (ra, rb),
          {"rax": fill(w, smax(w)), "rbx": fill(w, 3, HI2)})
    c.add("imul-r%d-m%d" % (w, w), "imul %s, %s ptr [rdx]" % (ra, p),
          {"rax": fill(w, 0x1234567), "rdx": D + 2}, m)
    c.add("imul-r%d-r%d-imm8" % (w, w), "imul %s, %s, -3" % (ra, rb),
          {"rax": M64, "rbx": fill(w, 0x41, HI2)})
    c.add("imul-r%d-r%d-imm-overflow" % (w, w),
          "imul %s, %s, %d" % (ra, rb, 0x7FFF if w == 16 else 0x7FFFFFFF),
          {"rax": M64, "rbx": fill(w, 0x100, HI2)})
    c.add("imul-r%d-m%d-imm" % (w, w),
          "imul %s, %s ptr [rdx], 0x1234" % (ra, p), {"rdx": D + 3}, m)
  # div / idiv
  for w in WIDTHS:
    _, rb, _, _, p = R[w]
    if w == 8:
      # dividend is ax; quotient al, remainder ah
      norm = {"rax": 0x1111111111110407, "rbx": fill(8, 0x10, HI2)}
      ovf = {"rax": 0x1111111111111000, "rbx": fill(8, 0x10, HI2)}
      zero = {"rax": 0x1111111111110100, "rbx": fill(8, 0, HI2)}
      inorm = {"rax": fill(16, (-100) & 0xFFFF), "rbx": fill(8, 7, HI2)}
      iovf = {"rax": fill(16, 0xFF80), "rbx": fill(8, 0xFF, HI2)}
    else:
      hi, lo = mask(w), mask(w)
      norm = {"rax": fill(w, 0x1234567), "rdx": fill(w, 3, HI2),
              "rbx": fill(w, 0x10000 if w > 16 else 0x1000, HI2)}
      ovf = {"rax": fill(w, 0), "rdx": fill(w, 5, HI2), "rbx": fill(w, 5, HI2)}
      zero = {"rax": fill(w, 0x55), "rdx": fill(w, 0, HI2),
              "rbx": fill(w, 0, HI2)}
      inorm = {"rax": fill(w, (-1000) & lo), "rdx": fill(w, hi, HI2),
               "rbx": fill(w, 7, HI2)}
      iovf = {"rax": fill(w, smin(w)), "rdx": fill(w, hi, HI2),
              "rbx": fill(w, mask(w), HI2)}
    c.add("div-r%d" % w, "div %s" % rb, norm)
    c.add("div-r%d-by-zero-de" % w, "div %s" % rb, zero, tags=("fault", "#DE"))
    c.add("div-r%d-quotient-overflow-de" % w, "div %s" % rb, ovf,
          tags=("fault", "#DE"))
    c.add("idiv-r%d-negative" % w, "idiv %s" % rb, inorm)
    c.add("idiv-r%d-by-zero-de" % w, "idiv %s" % rb, zero,
          tags=("fault", "#DE"))
    c.add("idiv-r%d-min-by-neg1-de" % w, "idiv %s" % rb, iovf,
          tags=("fault", "#DE"))
    c.add("div-m%d" % w, "div %s ptr [rbx]" % p,
          {"rax": 0x1111111111111234, "rdx": 0, "rbx": D + 4}, m)
  c.add("idiv-r32-remainder-sign-follows-dividend", "idiv ebx",
        {"rax": 7, "rdx": 0, "rbx": (-2) & 0xFFFFFFFF})
  c.add("idiv-r64-neg-by-neg", "idiv rbx",
        {"rax": (-100) & M64, "rdx": M64, "rbx": (-7) & M64})
  c.add("div-r64-max-quotient", "div rbx",
        {"rax": M64, "rdx": 0xFFFFFFFFFFFFFFFE, "rbx": M64})


# --------------------------------------------------------------------------
# string operations


def gen_string(c):
  c.family = "string"
  SUF = {8: "b", 16: "w", 32: "d", 64: "q"}
  # Source buffer at D+0x100, destination at D+0x200; compare buffers:
  # D+0x300 equals D+0x100 except byte 0x10 and beyond.
  buf = bytearray(0x400)
  buf[0x100:0x140] = PAT[:0x40]
  buf[0x300:0x340] = PAT[:0x40]
  buf[0x310] ^= 0xFF
  m = data_mem(bytes(buf))
  src, dst, cmpb = D + 0x100, D + 0x200, D + 0x300
  for w in WIDTHS:
    s, n = SUF[w], w // 8
    base = {"rsi": src, "rdi": dst, "rax": 0xA1B2C3D4E5F60718, "rcx": 3}
    # movs
    c.add("movs%s-single" % s, "movs%s" % s, base, m, mn="movs")
    c.add("rep-movs%s-rcx3" % s, "rep movs%s" % s, base, m, mn="movs",
          tags=("rep",))
    c.add("rep-movs%s-rcx0" % s, "rep movs%s" % s, dict(base, rcx=0), m,
          mn="movs", tags=("rep",))
    c.add("rep-movs%s-rcx3-std" % s, "std; rep movs%s" % s,
          dict(base, rsi=src + 2 * n, rdi=dst + 2 * n), m, mn="movs",
          tags=("rep", "std"))
    # stos
    c.add("stos%s-single" % s, "stos%s" % s, base, m, mn="stos")
    c.add("rep-stos%s-rcx3" % s, "rep stos%s" % s, base, m, mn="stos",
          tags=("rep",))
    c.add("rep-stos%s-rcx0" % s, "rep stos%s" % s, dict(base, rcx=0), m,
          mn="stos", tags=("rep",))
    c.add("rep-stos%s-rcx3-df1" % s, "rep stos%s" % s,
          dict(base, rdi=dst + 2 * n, rflags=BASE | DF), m, mn="stos",
          tags=("rep", "df"))
    # lods
    c.add("lods%s-single" % s, "lods%s" % s, base, m, mn="lods")
    c.add("lods%s-std" % s, "std; lods%s" % s, base, m, mn="lods",
          tags=("std",))
    # scas: the byte pattern value at index 5 is searched for
    elem = int.from_bytes(PAT[5 * n:6 * n], "little")
    c.add("repne-scas%s-found" % s, "repne scas%s" % s,
          dict(base, rdi=src, rcx=16, rax=fill(w, elem)), m, mn="scas",
          tags=("repne",))
    c.add("repne-scas%s-not-found" % s, "repne scas%s" % s,
          dict(base, rdi=dst, rcx=4, rax=fill(w, elem)), m, mn="scas",
          tags=("repne",))
    c.add("repe-scas%s-zeroes" % s, "repe scas%s" % s,
          dict(base, rdi=dst, rcx=5, rax=0), m, mn="scas", tags=("repe",))
    c.add("scas%s-single" % s, "scas%s" % s, dict(base, rdi=src), m,
          mn="scas")
    # cmps: equal for 0x10 bytes, then a difference
    c.add("repe-cmps%s-mismatch" % s, "repe cmps%s" % s,
          dict(base, rsi=src, rdi=cmpb, rcx=0x40 // n), m, mn="cmps",
          tags=("repe",))
    c.add("repe-cmps%s-all-equal" % s, "repe cmps%s" % s,
          dict(base, rsi=src, rdi=cmpb, rcx=0x10 // n), m, mn="cmps",
          tags=("repe",))
    c.add("repne-cmps%s" % s, "repne cmps%s" % s,
          dict(base, rsi=src, rdi=dst, rcx=3), m, mn="cmps", tags=("repne",))
    c.add("repe-cmps%s-std" % s, "std; repe cmps%s" % s,
          dict(base, rsi=src + 0x18, rdi=cmpb + 0x18, rcx=0x18 // n), m,
          mn="cmps", tags=("repe", "std"))
  c.add("rep-cmpsb-rcx0-flags-unchanged", "repe cmpsb",
        {"rsi": src, "rdi": dst, "rcx": 0, "rflags": BASE | ALLSTAT}, m,
        mn="cmps", tags=("rep",))
  c.add("rep-movsb-overlap-forward", "rep movsb",
        {"rsi": src, "rdi": src + 1, "rcx": 16}, m, mn="movs", tags=("rep",))
  c.add("rep-movsq-rcx100", "rep movsq",
        {"rsi": src, "rdi": D + 0x1000, "rcx": 100}, m, mn="movs",
        tags=("rep",))
  c.add("rep-stosb-rcx300", "rep stosb",
        {"rdi": D + 0x1001, "rcx": 300, "rax": 0xAB}, m, mn="stos",
        tags=("rep",))
  c.add("rep-lodsw-rcx3", "rep lodsw", {"rsi": src, "rcx": 3}, m,
        mn="lods", tags=("rep",))
  c.add("movsb-addr32", raw(0x67, 0xA4),
        {"rsi": 0xFFFFFFFF00000000 | src, "rdi": 0xFFFFFFFF00000000 | dst}, m,
        mn="movs", tags=("addr32",))
  c.add("rep-stosd-addr32-ecx", raw(0x67, 0xF3, 0xAB),
        {"rdi": dst, "rcx": 0xFFFFFFFF00000002, "rax": 0x11223344}, m,
        mn="stos", tags=("rep", "addr32"))


# --------------------------------------------------------------------------
# control flow: cmovcc, setcc, jcc, loop, jmp


# condition, flags making it true, flags making it false
CONDS = [
    ("o", BASE | OF, BASE),
    ("no", BASE | CF, BASE | OF),
    ("b", BASE | CF, BASE | ZF),
    ("ae", BASE | ZF, BASE | CF),
    ("e", BASE | ZF, BASE | CF),
    ("ne", BASE | CF, BASE | ZF),
    ("be", BASE | ZF, BASE | SF),
    ("a", BASE | SF, BASE | CF),
    ("s", BASE | SF, BASE | PF),
    ("ns", BASE | PF, BASE | SF),
    ("p", BASE | PF, BASE | AF),
    ("np", BASE | AF, BASE | PF),
    ("l", BASE | SF, BASE | SF | OF),
    ("ge", BASE | SF | OF, BASE | OF),
    ("le", BASE | OF, BASE | SF | OF),
    ("g", BASE | SF | OF, BASE | SF | OF | ZF),
]


def gen_control(c):
  c.family = "control"
  rr = {"rax": 0x1111111111111111, "rbx": 0x2222222222222222}
  for cc, t, f in CONDS:
    c.add("cmov%s-r64-true" % cc, "cmov%s rax, rbx" % cc, dict(rr, rflags=t),
          mn="cmovcc", tags=("cmov" + cc,))
    c.add("cmov%s-r64-false" % cc, "cmov%s rax, rbx" % cc, dict(rr, rflags=f),
          mn="cmovcc", tags=("cmov" + cc,))
  c.add("cmove-r32-false-zero-extends", "cmove eax, ebx",
        dict(rr, rflags=BASE), mn="cmovcc")
  c.add("cmove-r32-true", "cmove eax, ebx", dict(rr, rflags=BASE | ZF),
        mn="cmovcc")
  c.add("cmovs-r16-true", "cmovs ax, bx", dict(rr, rflags=BASE | SF),
        mn="cmovcc")
  c.add("cmovs-r16-false", "cmovs ax, bx", dict(rr, rflags=BASE),
        mn="cmovcc")
  m = data_mem(PAT[:0x40])
  c.add("cmovb-r64-m64-true", "cmovb rax, qword ptr [rcx]",
        dict(rr, rcx=D, rflags=BASE | CF), m, mn="cmovcc")
  c.add("cmovb-r64-m64-false", "cmovb rax, qword ptr [rcx]",
        dict(rr, rcx=D, rflags=BASE), m, mn="cmovcc")
  for cc, t, f in CONDS:
    c.add("set%s-true" % cc, "set%s al" % cc, dict(rr, rflags=t),
          mn="setcc", tags=("set" + cc,))
    c.add("set%s-false" % cc, "set%s al" % cc, dict(rr, rflags=f),
          mn="setcc", tags=("set" + cc,))
  c.add("setc-r8h", "setc ah", dict(rr, rflags=BASE | CF), mn="setcc")
  c.add("setz-r8-r14b", "setz r14b", dict(rr, r14=M64, rflags=BASE),
        mn="setcc")
  c.add("setnz-m8", "setnz byte ptr [rcx+3]", dict(rr, rcx=D, rflags=BASE),
        m, mn="setcc")
  # jcc: the mov is skipped when the branch is taken.
  for cc, t, f in CONDS:
    c.add("j%s-rel8-taken" % cc, "j%s 1f; mov eax, 1; 1:" % cc,
          dict(rr, rflags=t), mn="jcc", tags=("j" + cc,))
    c.add("j%s-rel8-not-taken" % cc, "j%s 1f; mov eax, 1; 1:" % cc,
          dict(rr, rflags=f), mn="jcc", tags=("j" + cc,))
    c.add("j%s-rel32-taken" % cc, "{disp32} j%s 1f; mov eax, 1; 1:" % cc,
          dict(rr, rflags=t), mn="jcc", tags=("j" + cc,))
  c.add("jz-rel8-backward", "jmp 2f; 1: mov ecx, 5; jmp 3f; 2: jz 1b; 3:",
        dict(rr, rflags=BASE | ZF), mn="jcc", tags=("jz",))
  c.add("jnz-rel32-not-taken", "{disp32} jnz 1f; mov eax, 2; 1:",
        dict(rr, rflags=BASE | ZF), mn="jcc", tags=("jnz",))
  # loops: small counts only
  c.add("loop-rcx3", "1: inc eax; loop 1b", {"rcx": 3}, mn="loop")
  c.add("loop-rcx1", "1: inc eax; loop 1b", {"rcx": 1}, mn="loop")
  c.add("loop-flags-unchanged", "1: loop 1b",
        {"rcx": 2, "rflags": BASE | ALLSTAT}, mn="loop")
  c.add("loop-addr32-ecx", "1: inc eax; addr32 loop 1b",
        {"rcx": 0xFFFFFFFF00000002}, mn="loop", tags=("addr32",))
  c.add("loope-exits-on-zf0", "1: inc eax; cmp eax, 1; loope 1b",
        {"rcx": 5}, mn="loope")
  c.add("loope-exits-on-rcx0", "1: inc eax; test eax, 0; loope 1b",
        {"rcx": 3}, mn="loope")
  c.add("loopne-exits-on-zf1", "1: inc eax; cmp eax, 2; loopne 1b",
        {"rcx": 5}, mn="loopne")
  c.add("loopne-exits-on-rcx0", "1: inc eax; cmp eax, 100; loopne 1b",
        {"rcx": 4}, mn="loopne")
  c.add("jrcxz-taken", "jrcxz 1f; mov eax, 1; 1:", {"rcx": 0}, mn="jrcxz")
  c.add("jrcxz-not-taken", "jrcxz 1f; mov eax, 1; 1:", {"rcx": 0x100000000},
        mn="jrcxz")
  c.add("jecxz-taken-upper-ignored", "jecxz 1f; mov eax, 1; 1:",
        {"rcx": 0x100000000}, mn="jecxz")
  c.add("jecxz-not-taken", "jecxz 1f; mov eax, 1; 1:", {"rcx": 1},
        mn="jecxz")
  # unconditional jumps
  c.add("jmp-rel8", "jmp 1f; mov eax, 1; 1: mov ebx, 2", rr, mn="jmp")
  c.add("jmp-rel32", "{disp32} jmp 1f; mov eax, 1; 1: mov ebx, 2", rr,
        mn="jmp")
  c.add("jmp-rel8-backward", "jmp 2f; 1: mov eax, 1; jmp 3f; 2: jmp 1b; 3:",
        rr, mn="jmp")
  c.add("jmp-r64", "lea rcx, [rip+1f]; jmp rcx; mov eax, 1; 1:", rr,
        mn="jmp", tags=("indirect",))
  c.add("jmp-m64", "lea rcx, [rip+1f]; mov [rdx], rcx; "
        "jmp qword ptr [rdx]; mov eax, 1; 1:", dict(rr, rdx=D), mn="jmp",
        tags=("indirect",))
  # The table holds an absolute target: code_addr (default 0x10000000)
  # + 0x13, the end of this 19-byte snippet.
  c.add("jmp-m64-rip-relative-table", "jmp qword ptr [rip+0]; "
        ".quad 0x10000013; mov eax, 1", rr, mn="jmp", tags=("indirect",))
  # The first HLT ends a case, also one in the middle of the stream.
  c.add("hlt-mid-stream-ends-case", "mov eax, 5; hlt; mov eax, 6", rr,
        mn="hlt")
  # executing data: an rx region and a freshly written rwx region
  fn = bytes([0xB8, 0x34, 0x12, 0x00, 0x00, 0xC3])  # mov eax,0x1234; ret
  c.add("call-into-rx-data-region", "call rbx", {"rbx": RO},
        data_mem(b"", [region(RO, "rx", fn)]), mn="call",
        tags=("exec-data",))
  c.add("write-then-exec-rwx-region",
        "mov dword ptr [rbx], 0x90c3c031; call rbx", {"rbx": RO, "rax": 5},
        data_mem(b"", [region(RO, "rwx")]), mn="call",
        tags=("exec-data", "smc"))


# --------------------------------------------------------------------------
# stack


def gen_stack(c):
  c.family = "stack"
  rr = {"rax": 0x1122334455667788, "rbx": 0x8899AABBCCDDEEFF, "r15": 0xF15}
  m = data_mem(PAT[:0x40])
  c.add("push-r64", "push rax", rr)
  c.add("push-r15", "push r15", rr)
  c.add("push-r16", "push ax", rr)
  c.add("pop-r64", "push rbx; pop rax", rr)
  c.add("pop-r12", "push rbx; pop r12", rr)
  c.add("pop-r16", "push rbx; pop ax", rr)
  c.add("push-imm8-sign-extended", "push -2", rr)
  c.add("push-imm32-sign-extended", "push -0x7ffffff0", rr)
  c.add("push-imm16-66", raw(0x66, 0x68, 0x34, 0x12), rr, mn="push")
  c.add("push-m64", "push qword ptr [rbx]", dict(rr, rbx=D + 8), m)
  c.add("push-m16", "push word ptr [rbx]", dict(rr, rbx=D + 8), m)
  c.add("pop-m64", "push rax; pop qword ptr [rbx]", dict(rr, rbx=D), m)
  c.add("pop-m64-rsp-based-uses-new-rsp", "push rax; pop qword ptr [rsp]",
        rr)
  c.add("push-rsp-pushes-old-value", "push rsp", rr)
  c.add("pop-rsp", "push rbx; pop rsp", dict(rr, rbx=S + 0x8000))
  c.add("push-misaligned-rsp", "push rax", dict(rr, rsp=RSP - 3))
  c.add("push-pop-chain", "push rax; push rbx; pop rcx; pop rdx", rr)
  # call / ret
  c.add("call-rel32-ret", "call 1f; jmp 2f; 1: mov eax, 1; ret; 2:", rr,
        mn="call", tags=("ret",))
  c.add("call-r64", "lea rcx, [rip+1f]; call rcx; jmp 2f; 1: ret; 2:", rr,
        mn="call", tags=("ret", "indirect"))
  c.add("call-m64", "lea rcx, [rip+1f]; mov [rdx], rcx; "
        "call qword ptr [rdx]; jmp 2f; 1: ret; 2:", dict(rr, rdx=D),
        mn="call", tags=("ret", "indirect"))
  c.add("call-leaves-return-address", "call 1f; 1:", rr, mn="call")
  c.add("ret-imm16", "push 0x11; push 0x22; call 1f; jmp 2f; 1: ret 16; 2:",
        rr, mn="ret")
  c.add("ret-to-pushed-address", "lea rcx, [rip+1f]; push rcx; ret; "
        "mov eax, 1; 1:", rr, mn="ret")
  c.add("call-recursive-depth3",
        "mov ecx, 3; call 1f; jmp 2f; 1: dec ecx; jz 3f; call 1b; 3: ret; 2:",
        rr, mn="call", tags=("ret",))
  c.add("ret-imm16-zero", raw(0xE8, 2, 0, 0, 0, 0xEB, 3, 0xC2, 0, 0), rr,
        mn="ret", tags=("call",))
  # enter / leave
  fr = dict(rr, rbp=0x3000FF80)
  c.add("enter-nesting0", "enter 0x20, 0", fr, mn="enter")
  c.add("enter-nesting1", "enter 0x10, 1", fr, mn="enter")
  c.add("enter-nesting2", "enter 0x8, 2", fr, mn="enter")
  c.add("enter-size0-nesting0", "enter 0, 0", fr, mn="enter")
  c.add("enter-leave-nesting0", "enter 0x20, 0; leave", fr, mn="enter",
        tags=("leave",))
  c.add("enter-leave-nesting1", "enter 0x18, 1; push rax; leave", fr,
        mn="enter", tags=("leave",))
  c.add("leave", "leave", dict(rr, rbp=0x3000FF00))
  # pushf / popf
  c.add("pushf", "pushfq", dict(rr, rflags=BASE | ALLSTAT))
  c.add("pushf-df", "pushfq", dict(rr, rflags=BASE | DF | CF))
  c.add("pushfw", raw(0x66, 0x9C), dict(rr, rflags=BASE | SF | ZF),
        mn="pushf")
  c.add("popf-status-flags", "push 0x8d5; popfq", rr, mn="popf")
  c.add("popf-df", "push 0x603; popfq", rr, mn="popf")
  c.add("popf-if-clear-ignored-at-cpl3", "push 0; popfq",
        dict(rr, rflags=BASE | ALLSTAT), mn="popf")
  c.add("popf-ac-id", "push 0x240202; popfq", rr, mn="popf")
  c.add("popf-iopl-ignored-at-cpl3", "push 0x3202; popfq", rr, mn="popf")
  c.add("popfw", "push 0x08d5; " + raw(0x66, 0x9D), rr, mn="popf")
  c.add("pushf-popf-round-trip", "pushfq; pop rax; xor rax, 0x8d5; push rax; "
        "popfq", dict(rr, rflags=BASE | CF | ZF), mn="pushf",
        tags=("popf",))


# --------------------------------------------------------------------------
# exchange and atomic


def gen_atomic(c):
  c.family = "atomic"
  a, b = 0x1122334455667788, 0x8899AABBCCDDEEFF
  rr = {"rax": a, "rbx": b, "rcx": 0x0123456789ABCDEF}
  m = data_mem(PAT[:0x40])
  for w in WIDTHS:
    ra, rb, _, _, p = R[w]
    c.add("xchg-r%d-r%d" % (w, w), "xchg %s, %s" % (rb, ra), rr)
    c.add("xchg-m%d-r%d" % (w, w), "xchg %s ptr [rdx], %s" % (p, ra),
          dict(rr, rdx=D + 1), m)
  c.add("xchg-r8h-r8", "xchg ah, bl", rr)
  c.add("xchg-eax-eax-87-zero-extends", raw(0x87, 0xC0), rr, mn="xchg")
  c.add("xchg-r8-rax-49-90", raw(0x49, 0x90), dict(rr, r8=0xABCDEF), mn="xchg")
  c.add("xchg-eax-ebx-93", raw(0x93), rr, mn="xchg")
  # cmpxchg: accumulator equal / not equal to the destination
  for w in WIDTHS:
    ra, rb, rc, _, p = R[w]
    c.add("cmpxchg-r%d-equal" % w, "cmpxchg %s, %s" % (rc, rb),
          {"rax": fill(w, 0x77), "rcx": fill(w, 0x77, HI2), "rbx": b})
    c.add("cmpxchg-r%d-not-equal" % w, "cmpxchg %s, %s" % (rc, rb),
          {"rax": fill(w, 0x76), "rcx": fill(w, 0x77, HI2), "rbx": b})
    memv = int.from_bytes(PAT[8:8 + w // 8], "little")
    c.add("lock-cmpxchg-m%d-equal" % w,
          "lock cmpxchg %s ptr [rdx], %s" % (p, rb),
          {"rax": fill(w, memv), "rdx": D + 8, "rbx": b}, m, mn="cmpxchg",
          tags=("lock",))
    c.add("lock-cmpxchg-m%d-not-equal" % w,
          "lock cmpxchg %s ptr [rdx], %s" % (p, rb),
          {"rax": fill(w, memv + 1), "rdx": D + 8, "rbx": b}, m,
          mn="cmpxchg", tags=("lock",))
  c.add("cmpxchg-m32-no-lock-not-equal", "cmpxchg dword ptr [rdx], ebx",
        {"rax": a, "rdx": D, "rbx": b}, m)
  c.add("cmpxchg-r8h-equal", "cmpxchg ch, bl",
        {"rax": 0x42, "rcx": 0x4200, "rbx": 0x99})
  # xadd
  for w in WIDTHS:
    ra, rb, _, _, p = R[w]
    c.add("xadd-r%d-r%d" % (w, w), "xadd %s, %s" % (ra, rb),
          {"rax": fill(w, smax(w)), "rbx": fill(w, 1, HI2)})
    c.add("lock-xadd-m%d" % w, "lock xadd %s ptr [rdx], %s" % (p, rb),
          {"rdx": D + 4, "rbx": fill(w, mask(w), HI2)}, m, mn="xadd",
          tags=("lock",))
  # cmpxchg8b / cmpxchg16b (16-byte aligned)
  lo8 = int.from_bytes(PAT[0x10:0x14], "little")
  hi8 = int.from_bytes(PAT[0x14:0x18], "little")
  c.add("cmpxchg8b-equal", "cmpxchg8b qword ptr [rsi]",
        {"rsi": D + 0x10, "rax": 0xFFFFFFFF00000000 | lo8,
         "rdx": 0xFFFFFFFF00000000 | hi8, "rbx": 0xAAAAAAAABBBBBBBB,
         "rcx": 0xCCCCCCCCDDDDDDDD}, m)
  c.add("cmpxchg8b-not-equal", "cmpxchg8b qword ptr [rsi]",
        {"rsi": D + 0x10, "rax": 0xFFFFFFFF00000000 | lo8,
         "rdx": 0xFFFFFFFF00000000 | (hi8 ^ 1), "rbx": 0xAAAAAAAABBBBBBBB,
         "rcx": 0xCCCCCCCCDDDDDDDD}, m)
  c.add("lock-cmpxchg8b-equal", "lock cmpxchg8b qword ptr [rsi]",
        {"rsi": D + 0x10, "rax": lo8, "rdx": hi8, "rbx": 1, "rcx": 2}, m,
        mn="cmpxchg8b", tags=("lock",))
  lo16 = int.from_bytes(PAT[0x20:0x28], "little")
  hi16 = int.from_bytes(PAT[0x28:0x30], "little")
  x16 = {"rsi": D + 0x20, "rax": lo16, "rdx": hi16,
         "rbx": 0xAAAAAAAABBBBBBBB, "rcx": 0xCCCCCCCCDDDDDDDD}
  c.add("cmpxchg16b-equal", "cmpxchg16b xmmword ptr [rsi]", x16, m)
  c.add("cmpxchg16b-not-equal", "cmpxchg16b xmmword ptr [rsi]",
        dict(x16, rax=lo16 ^ 0x100), m)
  c.add("lock-cmpxchg16b-equal", "lock cmpxchg16b xmmword ptr [rsi]", x16, m,
        mn="cmpxchg16b", tags=("lock",))
  c.add("lock-cmpxchg16b-not-equal", "lock cmpxchg16b xmmword ptr [rsi]",
        dict(x16, rdx=0), m, mn="cmpxchg16b", tags=("lock",))
  c.add("cmpxchg16b-misaligned-gp", "cmpxchg16b xmmword ptr [rsi]",
        dict(x16, rsi=D + 0x28), m, tags=("fault", "#GP"))
  # lock-prefixed read-modify-write on memory
  lk = {"rdx": D + 0x10, "rax": 0x8000000000000001, "rcx": 37,
        "rflags": BASE | CF}
  for op, opnds in (("add", "qword ptr [rdx], rax"),
                    ("adc", "dword ptr [rdx], eax"),
                    ("sub", "word ptr [rdx], ax"),
                    ("sbb", "byte ptr [rdx], al"),
                    ("and", "qword ptr [rdx], rax"),
                    ("or", "dword ptr [rdx], 0x80000000"),
                    ("xor", "byte ptr [rdx], 0xff"),
                    ("inc", "qword ptr [rdx]"),
                    ("dec", "word ptr [rdx]"),
                    ("neg", "dword ptr [rdx]"),
                    ("not", "qword ptr [rdx]"),
                    ("bts", "qword ptr [rdx], rcx"),
                    ("btr", "dword ptr [rdx], 3"),
                    ("btc", "word ptr [rdx], cx")):
    c.add("lock-%s-m" % op, "lock %s %s" % (op, opnds), lk, m, mn=op,
          tags=("lock",))
  c.add("lock-bts-m32-negative-offset", "lock bts dword ptr [rdx], ecx",
        dict(lk, rcx=0xFFFFFFE0), m, mn="bts", tags=("lock",))
  c.add("xchg-m64-implicit-lock-misaligned", "xchg qword ptr [rdx+3], rax",
        dict(rr, rdx=D), m, mn="xchg")


# --------------------------------------------------------------------------
# flags


def gen_flags(c):
  c.family = "flags"
  c.add("clc-cf1", "clc", {"rflags": BASE | ALLSTAT})
  c.add("clc-cf0", "clc", {"rflags": BASE})
  c.add("stc-cf0", "stc", {"rflags": BASE | ZF})
  c.add("stc-cf1", "stc", {"rflags": BASE | CF})
  c.add("cmc-cf0", "cmc", {"rflags": BASE | OF})
  c.add("cmc-cf1", "cmc", {"rflags": BASE | ALLSTAT})
  c.add("cmc-twice", "cmc; cmc", {"rflags": BASE | CF}, mn="cmc")
  c.add("cld-df1", "cld", {"rflags": BASE | DF | CF})
  c.add("cld-df0", "cld", {"rflags": BASE})
  c.add("std-df0", "std", {"rflags": BASE | ZF})
  c.add("std-cld-round-trip", "std; cld", {"rflags": BASE}, mn="std",
        tags=("cld",))
  for label, fl in (("all-set", BASE | ALLSTAT), ("none", BASE),
                    ("cf-zf", BASE | CF | ZF), ("sf-af-pf", BASE | SF | AF | PF),
                    ("of-only-not-loaded", BASE | OF)):
    c.add("lahf-%s" % label, "lahf", {"rax": 0x1111111111111111,
                                      "rflags": fl})
  for label, ah in (("ff", 0xFF), ("00", 0x00), ("d5", 0xD5), ("2a", 0x2A),
                    ("41", 0x41)):
    c.add("sahf-ah-%s" % label, "sahf",
          {"rax": 0x1111111111110011 | (ah << 8), "rflags": BASE | OF})
  c.add("sahf-keeps-of", "sahf", {"rax": 0, "rflags": BASE | OF | ALLSTAT},
        mn="sahf")
  c.add("lahf-sahf-round-trip", "lahf; clc; cmc; xor ecx, ecx; sahf",
        {"rflags": BASE | SF | CF | PF}, mn="lahf", tags=("sahf",))
  c.add("stc-lahf-clc-sahf", "stc; lahf; clc; sahf", {"rflags": BASE},
        mn="lahf", tags=("sahf", "stc", "clc"))
  c.add("sahf-then-lahf", "sahf; lahf", {"rax": 0xD700}, mn="sahf",
        tags=("lahf",))
  c.add("sahf-then-setcc", "sahf; setz bl; setc cl; sets dl; setp bh",
        {"rax": 0xC500}, mn="sahf", tags=("setcc",))
  c.add("lahf-after-add", "add al, 0x8f; lahf", {"rax": 0x71}, mn="lahf",
        tags=("add",))
  c.add("stc-then-adc", "stc; adc eax, 0", {"rax": 0xFFFFFFFF}, mn="stc",
        tags=("adc",))
  c.add("cmc-then-sbb", "cmc; sbb eax, eax", {"rax": 5}, mn="cmc",
        tags=("sbb",))


# --------------------------------------------------------------------------
# faults


def gen_faults(c):
  c.family = "faults"
  rr = {"rax": 0x1111111111111111, "rbx": D, "rcx": 0x3333}
  m = data_mem(PAT[:0x40])
  # #UD
  c.add("ud2", "mov eax, 1; ud2; mov eax, 2", rr, tags=("#UD",))
  c.add("ud1", raw(0x0F, 0xB9, 0x00), rr, tags=("#UD",))
  c.add("ud0", raw(0x0F, 0xFF, 0x00), rr, tags=("#UD",))
  c.add("lock-nop-ud", raw(0xF0, 0x90), rr, mn="lock", tags=("#UD", "nop"))
  c.add("lock-add-register-dest-ud", raw(0xF0, 0x01, 0xD8), rr, mn="lock",
        tags=("#UD", "add"))
  c.add("lock-cmpxchg-register-dest-ud", raw(0xF0, 0x0F, 0xB1, 0xD8), rr,
        mn="lock", tags=("#UD", "cmpxchg"))
  c.add("lock-mov-m32-ud", raw(0xF0, 0x89, 0x03), rr, m, mn="lock",
        tags=("#UD", "mov"))
  c.add("lock-inc-r32-ud", raw(0xF0, 0xFF, 0xC0), rr, mn="lock",
        tags=("#UD", "inc"))
  for name, bs in (("push-es-invalid-in-64bit", (0x06,)),
                   ("pop-ds-invalid-in-64bit", (0x1F,)),
                   ("daa-invalid-in-64bit", (0x27,)),
                   ("aaa-invalid-in-64bit", (0x37,)),
                   ("pusha-invalid-in-64bit", (0x60,)),
                   ("into-invalid-in-64bit", (0xCE,)),
                   ("aam-invalid-in-64bit", (0xD4, 0x0A)),
                   ("salc-invalid-in-64bit", (0xD6,)),
                   ("add-opcode-82-invalid-in-64bit", (0x82, 0xC0, 0x01)),
                   ("callf-9a-invalid-in-64bit", (0x9A, 0, 0, 0, 0, 0, 0))):
    c.add(name, raw(*bs), rr, tags=("#UD",))
  # #DE
  c.add("div-r32-by-zero", "mov ecx, 0; div ecx",
        {"rax": 100, "rdx": 0}, tags=("#DE",), mn="div")
  c.add("div-m64-by-zero", "div qword ptr [rbx]", {"rax": 1, "rbx": D + 0x800},
        m, tags=("#DE",), mn="div")
  c.add("idiv-r64-min-by-neg1", "idiv rcx",
        {"rax": NONCANON, "rdx": M64, "rcx": M64}, tags=("#DE",), mn="idiv")
  c.add("idiv-r32-min-by-neg1", "idiv ecx",
        {"rax": 0x80000000, "rdx": 0xFFFFFFFF, "rcx": 0xFFFFFFFF},
        tags=("#DE",), mn="idiv")
  c.add("div-r16-quotient-overflow", "div cx",
        {"rax": 0, "rdx": 2, "rcx": 2}, tags=("#DE",), mn="div")
  # #PF
  c.add("pf-read-unmapped", "mov eax, 7; mov rax, qword ptr [rbx]",
        {"rbx": UNMAPPED}, mn="mov", tags=("#PF",))
  c.add("pf-write-unmapped", "mov qword ptr [rbx], rax",
        {"rbx": UNMAPPED + 8, "rax": 1}, mn="mov", tags=("#PF",))
  c.add("pf-read-null", "mov eax, dword ptr [rbx]", {"rbx": 0}, mn="mov",
        tags=("#PF",))
  ro = data_mem(b"", [region(RO, "r", PAT[:0x20])])
  c.add("pf-write-read-only", "mov dword ptr [rbx], eax",
        {"rbx": RO + 4, "rax": 0xDEAD}, ro, mn="mov", tags=("#PF",))
  c.add("read-only-region-read-ok", "mov rax, qword ptr [rbx]",
        {"rbx": RO + 4}, ro, mn="mov", tags=("#PF-control",))
  c.add("pf-rmw-read-only", "add dword ptr [rbx], 1", {"rbx": RO}, ro,
        mn="add", tags=("#PF",))
  c.add("pf-lock-rmw-read-only", "lock inc qword ptr [rbx]", {"rbx": RO}, ro,
        mn="inc", tags=("#PF", "lock"))
  c.add("pf-write-code-page", "lea rbx, [rip]; mov byte ptr [rbx], 0x90", {},
        mn="mov", tags=("#PF",))
  c.add("pf-store-crosses-into-unmapped", "mov qword ptr [rbx], rax",
        {"rbx": D + 0xFFFC, "rax": M64}, mn="mov", tags=("#PF",))
  c.add("pf-load-crosses-into-unmapped", "mov rax, qword ptr [rbx]",
        {"rbx": D + 0xFFFE}, mn="mov", tags=("#PF",))
  c.add("pf-fetch-jmp-unmapped", "mov rax, %d; jmp rax" % UNMAPPED, {},
        mn="jmp", tags=("#PF", "fetch"))
  c.add("pf-fetch-call-unmapped", "call rbx", {"rbx": UNMAPPED}, mn="call",
        tags=("#PF", "fetch"))
  c.add("pf-fetch-jmp-nx-data", "jmp rbx", {"rbx": D}, mn="jmp",
        tags=("#PF", "fetch"))
  c.add("pf-push-unmapped-stack", "push rax", {"rsp": UNMAPPED}, mn="push",
        tags=("#PF",))
  c.add("pf-ret-to-unmapped", "push rbx; ret", {"rbx": UNMAPPED}, mn="ret",
        tags=("#PF", "fetch"))
  c.add("pf-rep-movsb-partial", "rep movsb",
        {"rsi": D, "rdi": D + 0xFFFC, "rcx": 8}, m, mn="movs", tags=("#PF",))
  c.add("pf-cmov-false-still-reads", "cmovz rax, qword ptr [rbx]",
        {"rbx": UNMAPPED, "rflags": BASE}, mn="cmovcc", tags=("#PF",))
  # #GP / #SS: non-canonical addresses
  c.add("gp-noncanonical-read", "mov rax, qword ptr [rbx]",
        {"rbx": NONCANON}, mn="mov", tags=("#GP",))
  c.add("gp-noncanonical-write", "mov qword ptr [rbx], rax",
        {"rbx": 0x0000800000000000}, mn="mov", tags=("#GP",))
  c.add("gp-noncanonical-jmp", "jmp rbx", {"rbx": 0x0000800000000000},
        mn="jmp", tags=("#GP",))
  c.add("ss-push-noncanonical-rsp", "push rax", {"rsp": NONCANON},
        mn="push", tags=("#SS",))
  c.add("ss-pop-noncanonical-rsp", "pop rax", {"rsp": 0x0000800000000000},
        mn="pop", tags=("#SS",))
  c.add("ss-rbp-based-noncanonical", "mov rax, qword ptr [rbp+8]",
        {"rbp": NONCANON}, mn="mov", tags=("#SS",))
  # #GP: privileged instructions at CPL3
  for name, asm in (("cli", "cli"), ("sti", "sti"),
                    ("mov-r64-cr0", "mov rax, cr0"),
                    ("mov-cr3-r64", "mov cr3, rax"),
                    ("wrmsr", "wrmsr"), ("rdmsr", "rdmsr"),
                    ("in-al-dx", "in al, dx"), ("out-dx-al", "out dx, al"),
                    ("in-al-imm8", "in al, 0x60"),
                    ("clts", "clts"), ("invlpg", "invlpg byte ptr [rbx]"),
                    ("lgdt", "lgdt [rbx]"), ("swapgs", "swapgs"),
                    ("wbinvd", "wbinvd")):
    c.add("gp-privileged-" + name, asm, dict(rr, rdx=0x80, rcx=0x10),
          mn=name.split("-")[0], tags=("#GP", "privileged"))
  c.add("gp-int-0x21-dpl0-gate", raw(0xCD, 0x21), rr, mn="int",
        tags=("#GP",))
  # #AC: AC set in rflags and a misaligned access
  acf = BASE | AC
  c.add("ac-misaligned-load-32", "mov eax, dword ptr [rbx+1]",
        dict(rr, rflags=acf), m, mn="mov", tags=("#AC",))
  c.add("ac-misaligned-store-64", "mov qword ptr [rbx+4], rax",
        dict(rr, rflags=acf), m, mn="mov", tags=("#AC",))
  c.add("ac-misaligned-load-16", "mov ax, word ptr [rbx+3]",
        dict(rr, rflags=acf), m, mn="mov", tags=("#AC",))
  c.add("ac-misaligned-push", "push rax", dict(rr, rflags=acf, rsp=RSP - 4),
        m, mn="push", tags=("#AC",))
  c.add("ac-aligned-load-no-fault", "mov eax, dword ptr [rbx+4]",
        dict(rr, rflags=acf), m, mn="mov", tags=("#AC-control",))
  c.add("ac-byte-access-never-misaligned", "mov al, byte ptr [rbx+3]",
        dict(rr, rflags=acf), m, mn="mov", tags=("#AC-control",))
  c.add("ac-clear-misaligned-ok", "mov eax, dword ptr [rbx+1]", rr, m,
        mn="mov", tags=("#AC-control",))
  # #BP
  c.add("bp-int3", "mov eax, 1; int3; mov eax, 2", rr, mn="int3",
        tags=("#BP",))
  c.add("bp-int-imm8-3", raw(0xCD, 0x03), rr, mn="int", tags=("#BP",))
  # system calls never reach the host: the sandbox reports them.
  sdata = bytearray(0x100)
  path = b"/nonexistent/cpudiff-seed-canary\0"
  sdata[0:len(path)] = path
  sdata[0x80:0x88] = D.to_bytes(8, "little")  # argv[0] -> path, argv[1]=0
  sm = data_mem(bytes(sdata))
  c.add("syscall-execve", "syscall",
        {"rax": 59, "rdi": D, "rsi": D + 0x80, "rdx": 0}, sm, mn="syscall",
        tags=("syscall",))
  c.add("syscall-unlink", "syscall", {"rax": 87, "rdi": D}, sm,
        mn="syscall", tags=("syscall",))
  c.add("syscall-kill", "syscall", {"rax": 62, "rdi": 0x7FFFFFF0, "rsi": 9},
        sm, mn="syscall", tags=("syscall",))
  c.add("syscall-after-work", "mov ecx, 1; mov eax, 87; syscall; mov ecx, 2",
        {"rdi": D}, sm, mn="syscall", tags=("syscall",))
  c.add("int-0x80", "int 0x80", {"rax": 10, "rbx": D}, sm, mn="int",
        tags=("syscall",))
  c.add("sysenter", "sysenter", {"rax": 10, "rbx": D, "rbp": RSP}, sm,
        tags=("syscall",))


# --------------------------------------------------------------------------
# SSE / SSE2


def gen_sse(c):
  c.family = "sse"
  m = data_mem(PAT[:0x80])
  x0 = 0x0123456789ABCDEFFEDCBA9876543210
  x1 = 0xFFFFFFFF7FFFFFFF0000000180000000
  rr = {"rbx": D, "xmm0": x0, "xmm1": x1}
  c.add("movdqa-xmm-m128", "movdqa xmm2, xmmword ptr [rbx+0x10]", rr, m)
  c.add("movdqa-m128-xmm", "movdqa xmmword ptr [rbx+0x20], xmm0", rr, m)
  c.add("movdqu-xmm-m128-misaligned", "movdqu xmm2, xmmword ptr [rbx+3]",
        rr, m)
  c.add("movdqu-m128-xmm-misaligned", "movdqu xmmword ptr [rbx+5], xmm1",
        rr, m)
  c.add("movdqa-xmm-xmm", "movdqa xmm3, xmm1", rr)
  c.add("movdqa-misaligned-gp", "movdqa xmm2, xmmword ptr [rbx+8]", rr, m,
        tags=("fault", "#GP"))
  c.add("movaps-m128-misaligned-gp", "movaps xmmword ptr [rbx+4], xmm0", rr,
        m, mn="movaps", tags=("fault", "#GP"))
  c.add("paddd-xmm-xmm-wraps", "paddd xmm0, xmm1", rr)
  c.add("paddd-xmm-m128", "paddd xmm1, xmmword ptr [rbx]", rr, m)
  c.add("pxor-xmm-self-zero", "pxor xmm0, xmm0", rr)
  c.add("pxor-xmm-xmm", "pxor xmm0, xmm1", rr)
  one, two, inf = 0x3F800000, 0x40000000, 0x7F800000
  ps0 = (one << 96) | (two << 64) | (inf << 32) | 0xFF800000
  ps1 = (two << 96) | (0xBF800000 << 64) | (0x00000001 << 32) | inf
  c.add("addps-xmm-xmm", "addps xmm0, xmm1",
        {"xmm0": ps0, "xmm1": ps1}, tags=("inf",))
  c.add("addps-xmm-m128", "addps xmm0, xmmword ptr [rbx]",
        {"xmm0": ps0, "rbx": D + 0x40}, m)
  d1, d2, dmax = 0x3FF0000000000000, 0x4000000000000000, 0x7FEFFFFFFFFFFFFF
  c.add("addsd-xmm-xmm", "addsd xmm0, xmm1",
        {"xmm0": (0xAAAA << 64) | d1, "xmm1": (0xBBBB << 64) | d2})
  c.add("addsd-overflow-sets-mxcsr-oe", "addsd xmm0, xmm1",
        {"xmm0": dmax, "xmm1": dmax}, tags=("mxcsr",))
  c.add("addsd-inexact-sets-mxcsr-pe", "addsd xmm0, xmm1",
        {"xmm0": d1, "xmm1": 0x3C90000000000001}, tags=("mxcsr",))
  c.add("cvtsi2sd-xmm-r32-neg", "cvtsi2sd xmm0, eax",
        {"rax": 0xFFFFFFFF, "xmm0": x0})
  c.add("cvtsi2sd-xmm-r64-inexact", "cvtsi2sd xmm0, rax",
        {"rax": 0x7FFFFFFFFFFFFFFF, "xmm0": x0}, tags=("mxcsr",))
  c.add("cvtsi2sd-xmm-m32", "cvtsi2sd xmm0, dword ptr [rbx]",
        {"rbx": D, "xmm0": x0}, m)
  for label, a, b in (("less", d1, d2), ("equal", d2, d2),
                      ("greater", d2, d1),
                      ("unordered-nan", 0x7FF8000000000000, d1)):
    c.add("ucomisd-%s" % label, "ucomisd xmm0, xmm1",
          {"xmm0": a, "xmm1": b, "rflags": BASE | SF | OF | AF})
  c.add("ucomisd-snan-sets-ie", "ucomisd xmm0, xmm1",
        {"xmm0": 0x7FF0000000000001, "xmm1": d1}, tags=("mxcsr",))
  c.add("movd-r32-xmm", "movd eax, xmm1", dict(rr, rax=M64), mn="movd")
  c.add("movq-xmm-r64", "movq xmm0, rbx", rr, mn="movq")
  c.add("pmovmskb-r32-xmm", "pmovmskb eax, xmm0", dict(rr, rax=M64))
  c.add("pcmpeqb-xmm-xmm", "pcmpeqb xmm0, xmm1",
        {"xmm0": x0, "xmm1": x0 ^ 0xFF00FF})
  c.add("pshufd-xmm-xmm-imm", "pshufd xmm2, xmm0, 0x1b", rr)
  c.add("ldmxcsr-stmxcsr-round-trip",
        "stmxcsr dword ptr [rbx]; or dword ptr [rbx], 0x6000; "
        "ldmxcsr dword ptr [rbx]; stmxcsr dword ptr [rbx+4]", rr, m,
        mn="ldmxcsr", tags=("stmxcsr", "mxcsr"))


GENERATORS = [gen_movement, gen_arith, gen_logic, gen_shift, gen_bitops,
              gen_muldiv, gen_string, gen_control, gen_stack, gen_atomic,
              gen_flags, gen_faults, gen_sse]


# --------------------------------------------------------------------------
# assembling


def elf_sections(blob):
  """Maps section name -> (type, bytes) for an ELF64 little-endian object."""
  if blob[:4] != b"\x7fELF" or blob[4] != 2 or blob[5] != 1:
    raise ValueError("not an ELF64 little-endian object")
  shoff, = struct.unpack_from("<Q", blob, 0x28)
  shentsize, shnum, shstrndx = struct.unpack_from("<HHH", blob, 0x3A)
  hdrs = []
  for i in range(shnum):
    name, typ, _, _, off, size = struct.unpack_from(
        "<IIQQQQ", blob, shoff + i * shentsize)
    hdrs.append((name, typ, off, size))
  stroff = hdrs[shstrndx][2]
  out = {}
  for name, typ, off, size in hdrs:
    end = blob.index(b"\0", stroff + name)
    sname = blob[stroff + name:end].decode()
    out[sname] = (typ, blob[off:off + size] if typ != 8 else b"")
  return out


def assemble(cases):
  """Assembles every case's snippet; returns a list of code byte strings."""
  lines = []
  line_owner = {}
  for i, case in enumerate(cases):
    lines.append('.section .c%d,"ax",@progbits' % i)
    for stmt in case["asm"].split(";"):
      stmt = stmt.strip()
      if stmt:
        lines.append(stmt)
        line_owner[len(lines)] = case["name"]
  src = "\n".join(lines) + "\n"
  with tempfile.TemporaryDirectory(prefix="cpudiff-seed-") as tmp:
    s_path = os.path.join(tmp, "seed.s")
    o_path = os.path.join(tmp, "seed.o")
    with open(s_path, "w") as f:
      f.write(src)
    p = subprocess.run(["as", "--64", "-msyntax=intel", "-mnaked-reg",
                        "-o", o_path, s_path],
                       capture_output=True, text=True)
    if p.returncode != 0 or p.stderr.strip():
      msgs = []
      for ln in p.stderr.splitlines():
        mt = re.match(r".*?:(\d+): (.*)", ln)
        if mt:
          msgs.append("%s: %s" % (line_owner.get(int(mt.group(1)), "?"),
                                  mt.group(2)))
        else:
          msgs.append(ln)
      raise RuntimeError("assembler failed:\n" + "\n".join(msgs))
    with open(o_path, "rb") as f:
      secs = elf_sections(f.read())
  codes = []
  for i, case in enumerate(cases):
    if ".rela.c%d" % i in secs:
      raise RuntimeError("%s: snippet needs a relocation (not "
                         "position independent)" % case["name"])
    code = secs[".c%d" % i][1]
    if not code:
      raise RuntimeError("%s: no code" % case["name"])
    codes.append(code)
  return codes


def to_json(case, code):
  obj = {"v": 1, "name": case["name"], "code": code.hex()}
  if case["regs"]:
    regs = {}
    for k, v in case["regs"].items():
      regs[k] = hx(v, 128 if k.startswith("xmm") else 64)
    obj["regs"] = regs
  if case["mem"] is not None:
    obj["mem"] = case["mem"]
  obj["tags"] = case["tags"]
  return json.dumps(obj, separators=(",", ":"))


def main(argv):
  if len(argv) != 2:
    sys.stderr.write("usage: %s OUTDIR\n" % argv[0])
    return 2
  outdir = argv[1]
  corpus = Corpus()
  for gen in GENERATORS:
    gen(corpus)
  flat = [case for fam in FAMILIES for case in corpus.cases[fam]]
  codes = assemble(flat)
  os.makedirs(outdir, exist_ok=True)
  k = 0
  total = 0
  for fam in FAMILIES:
    path = os.path.join(outdir, fam + ".jsonl")
    with open(path, "w") as f:
      for case in corpus.cases[fam]:
        f.write(to_json(case, codes[k]) + "\n")
        k += 1
    n = len(corpus.cases[fam])
    total += n
    print("%-9s %4d  %s" % (fam, n, path))
  print("total     %4d" % total)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))

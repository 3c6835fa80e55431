#!/usr/bin/python3
"""unicorn-py: an EXAMPLE cpudiff engine speaking the process protocol
(docs/engine-protocol.md) over stdin/stdout, wrapping python3-unicorn.

    cpudiff run corpus/seed --engines native,exec:'/usr/bin/python3 examples/engines/unicorn_engine.py'

It follows what the built-in `unicorn` engine (engines/unicorn) does, in
its precise mode only: a fresh Unicorn per case, a code hook on every
instruction (exact rip and rflags at a fault), the appended HLT ends a case,
privileged instructions are the #GP (or #UD) they raise at CPL3, syscall /
sysenter / int 0x80 end a case as `syscall`, memory faults become #PF with
the error code derived from the access. Differences from the built-in
engine are listed in examples/engines/README.md.

Needs Debian's python3-unicorn: run it with /usr/bin/python3.
"""
import struct
import sys
import time

import unicorn
from unicorn import x86_const as X

PROTOCOL_VERSION = 1
HELLO, HELLO_REPLY, BATCH, RESULT, ERROR = 1, 2, 3, 4, 5
OUTCOME_HALT, OUTCOME_FAULT, OUTCOME_TIMEOUT, OUTCOME_SYSCALL, OUTCOME_UNSUPPORTED, OUTCOME_CRASH = range(6)
KIND_REFERENCE = 4
OBSERVE_ALL = (1 << 9) - 1
PAGE = 4096
STATE_SIZE = 424

VEC_DB, VEC_BP, VEC_UD, VEC_GP, VEC_PF = 1, 3, 6, 13, 14
PF_PRESENT, PF_WRITE, PF_USER, PF_FETCH = 1, 2, 4, 16
HAS_ERROR_CODE = {8, 10, 11, 12, 13, 14, 17, 21}

GPRS = [X.UC_X86_REG_RAX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX, X.UC_X86_REG_RBX,
        X.UC_X86_REG_RSP, X.UC_X86_REG_RBP, X.UC_X86_REG_RSI, X.UC_X86_REG_RDI,
        X.UC_X86_REG_R8, X.UC_X86_REG_R9, X.UC_X86_REG_R10, X.UC_X86_REG_R11,
        X.UC_X86_REG_R12, X.UC_X86_REG_R13, X.UC_X86_REG_R14, X.UC_X86_REG_R15]
XMMS = [X.UC_X86_REG_XMM0 + i for i in range(16)]
LEGACY_PREFIXES = {0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65}


def read_exact(n):
    data = sys.stdin.buffer.read(n)
    if data is None or len(data) < n:
        sys.exit(0)  # cpudiff closed our stdin
    return data


def write_frame(ftype, payload):
    sys.stdout.buffer.write(struct.pack("<II", ftype, len(payload)) + payload)


def pack_str(s):
    b = s.encode()
    return struct.pack("<I", len(b)) + b


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def blob(self):
        return self.take(self.u32())


def unpack_state(b):
    v = struct.unpack("<16QQQ32QIIQQ", b)
    return {"gpr": list(v[0:16]), "rip": v[16], "rflags": v[17],
            "xmm": [(v[18 + 2 * i], v[19 + 2 * i]) for i in range(16)],
            "mxcsr": v[50], "fs_base": v[52], "gs_base": v[53]}


def pack_state(s):
    xmm = []
    for lo, hi in s["xmm"]:
        xmm += [lo, hi]
    return struct.pack("<16QQQ32QIIQQ", *s["gpr"], s["rip"], s["rflags"], *xmm,
                       s["mxcsr"], 0, s["fs_base"], s["gs_base"])


def opcode_offset(b):
    i = 0
    while i < len(b) and b[i] in LEGACY_PREFIXES:
        i += 1
    if i < len(b) and (b[i] & 0xF0) == 0x40:
        i += 1
    return i


def privileged_fault(b):
    """The fault an instruction privileged at CPL3 raises (Unicorn runs code at
    ring 0), or None. Same list as engines/unicorn (PrivilegedFault); UMIP is
    taken as present (it is on this project's hosts)."""
    i = opcode_offset(b)
    if i >= len(b):
        return None
    op = b[i]
    gp0 = (VEC_GP, 0)
    if op in (0xFA, 0xFB) or 0xE4 <= op <= 0xE7 or 0xEC <= op <= 0xEF or 0x6C <= op <= 0x6F:
        return gp0
    if op != 0x0F or i + 1 >= len(b):
        return None
    op2 = b[i + 1]
    modrm = b[i + 2] if i + 2 < len(b) else 0
    reg, mem = (modrm >> 3) & 7, (modrm >> 6) != 3
    if op2 in (0x06, 0x07, 0x08, 0x09, 0x20, 0x21, 0x22, 0x23, 0x30, 0x32, 0x33, 0x35):
        return gp0
    if op2 == 0x00:
        return gp0 if reg <= 3 else None
    if op2 == 0x01:
        if mem or 0xE0 <= modrm <= 0xF7:
            return gp0 if reg in (0, 1, 2, 3, 4, 6) or (reg == 7 and mem) else None
        if modrm in (0xD1, 0xF8):
            return gp0
        if modrm in (0xCA, 0xCB):
            return (VEC_UD, None)
    return None


class Run:
    """One case on a fresh Unicorn."""

    def __init__(self, case, max_blocks):
        self.case = case
        self.max_blocks = max_blocks
        self.event = None  # ("halt"|"priv"|"syscall"|"mem"|"intr"|"invalid"|"budget", detail)
        self.last = None   # (address, size) of the last instruction the code hook saw
        self.blocks = 0

    def stop(self, uc, event):
        if self.event is None:
            self.event = event
        uc.emu_stop()

    def on_code(self, uc, address, size, _):
        b = bytes(uc.mem_read(address, min(size, 15)))
        self.last = (address, size)
        op = opcode_offset(b)
        if op < len(b) and b[op] == 0xF4:
            self.stop(uc, ("halt", None))
            return
        fault = privileged_fault(b)
        if fault is not None:
            self.stop(uc, ("priv", fault))

    def on_block(self, uc, address, size, _):
        self.blocks += 1
        if self.blocks > self.max_blocks:
            self.stop(uc, ("budget", None))

    def on_intr(self, uc, intno, _):
        self.stop(uc, ("intr", intno))

    def on_invalid(self, uc, _):
        if self.event is None:
            self.event = ("invalid", None)
        return False

    def on_syscall(self, uc, _):
        self.stop(uc, ("syscall", None))

    def on_mem(self, uc, access, address, size, value, _):
        if self.event is None:
            self.event = ("mem", (access, address))
        return False

    def run(self):
        c = self.case
        uc = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_64)
        for r in c["regions"]:
            perm = ((unicorn.UC_PROT_READ if r["perm"] & 1 else 0) |
                    (unicorn.UC_PROT_WRITE if r["perm"] & 2 else 0) |
                    (unicorn.UC_PROT_EXEC if r["perm"] & 4 else 0))
            uc.mem_map(r["addr"], r["size"], perm)
            if r["data"]:
                uc.mem_write(r["addr"], r["data"])
        s = c["init"]
        for i, reg in enumerate(GPRS):
            uc.reg_write(reg, s["gpr"][i])
        for i, reg in enumerate(XMMS):
            lo, hi = s["xmm"][i]
            uc.reg_write(reg, lo | (hi << 64))
        uc.reg_write(X.UC_X86_REG_RFLAGS, (s["rflags"] & ~((1 << 8) | (1 << 16))) | 0x202)
        uc.reg_write(X.UC_X86_REG_MXCSR, s["mxcsr"])
        uc.reg_write(X.UC_X86_REG_FS_BASE, s["fs_base"])
        uc.reg_write(X.UC_X86_REG_GS_BASE, s["gs_base"])
        uc.hook_add(unicorn.UC_HOOK_CODE, self.on_code)
        uc.hook_add(unicorn.UC_HOOK_BLOCK, self.on_block)
        uc.hook_add(unicorn.UC_HOOK_INTR, self.on_intr)
        uc.hook_add(unicorn.UC_HOOK_INSN_INVALID, self.on_invalid)
        uc.hook_add(unicorn.UC_HOOK_INSN, self.on_syscall, None, 1, 0, X.UC_X86_INS_SYSCALL)
        uc.hook_add(unicorn.UC_HOOK_INSN, self.on_syscall, None, 1, 0, X.UC_X86_INS_SYSENTER)
        uc.hook_add(unicorn.UC_HOOK_MEM_INVALID, self.on_mem)
        err = None
        try:
            uc.emu_start(s["rip"], 0)
        except unicorn.UcError as e:
            err = e
        end = {"gpr": [uc.reg_read(r) for r in GPRS], "rip": uc.reg_read(X.UC_X86_REG_RIP),
               # User mode always runs with IF set; Unicorn runs at ring 0, where
               # popf can clear it. RF is not part of the compared state.
               "rflags": (uc.reg_read(X.UC_X86_REG_RFLAGS) & ~(1 << 16)) | (1 << 9),
               "xmm": [], "mxcsr": uc.reg_read(X.UC_X86_REG_MXCSR),
               "fs_base": uc.reg_read(X.UC_X86_REG_FS_BASE),
               "gs_base": uc.reg_read(X.UC_X86_REG_GS_BASE)}
        for reg in XMMS:
            v = uc.reg_read(reg)
            end["xmm"].append((v & (2**64 - 1), v >> 64))
        outcome = self.classify(uc, end, err)
        pages = []
        for r in c["regions"]:
            if not r["perm"] & 2:
                continue
            final = bytes(uc.mem_read(r["addr"], r["size"]))
            init = r["data"] + bytes(r["size"] - len(r["data"]))
            for off in range(0, r["size"], PAGE):
                if final[off:off + PAGE] != init[off:off + PAGE]:
                    pages.append((r["addr"] + off, final[off:off + PAGE]))
        return outcome, end, pages

    def last_bytes(self, uc):
        if self.last is None:
            return b"", 0
        b = bytes(uc.mem_read(self.last[0], min(self.last[1], 15)))
        return b, opcode_offset(b)

    def classify(self, uc, s, err):
        """(kind, vector, error_code or None, addr or None, reason); fixes s["rip"]."""
        ev, detail = self.event if self.event else (None, None)
        last_addr, last_size = self.last if self.last else (s["rip"], 0)
        if ev == "budget":
            return (OUTCOME_TIMEOUT, 0, None, None, "unicorn-py: block budget exhausted")
        if ev == "halt":
            s["rip"] = last_addr
            return (OUTCOME_HALT, 0, None, None, "")
        if ev == "syscall":
            return (OUTCOME_SYSCALL, 0, None, None, "")
        if ev == "priv":
            s["rip"] = last_addr
            vec, code = detail
            return (OUTCOME_FAULT, vec, code, None, "")
        if ev == "invalid":
            s["rip"] = last_addr
            b, op = self.last_bytes(uc)
            if op + 1 < len(b) and b[op] == 0x0F and b[op + 1] == 0x34:
                s["rip"] = last_addr + last_size
                return (OUTCOME_SYSCALL, 0, None, None, "")
            return (OUTCOME_FAULT, VEC_UD, None, None, "")
        if ev == "mem":
            access, address = detail
            code = PF_USER | {
                unicorn.UC_MEM_WRITE_UNMAPPED: PF_WRITE,
                unicorn.UC_MEM_FETCH_UNMAPPED: PF_FETCH,
                unicorn.UC_MEM_READ_PROT: PF_PRESENT,
                unicorn.UC_MEM_WRITE_PROT: PF_PRESENT | PF_WRITE,
                unicorn.UC_MEM_FETCH_PROT: PF_PRESENT | PF_FETCH,
            }.get(access, 0)
            if code & PF_FETCH:
                if self.last is not None and s["rip"] == last_addr:
                    s["rip"] = last_addr + last_size
            elif self.last is not None:
                s["rip"] = last_addr
            return (OUTCOME_FAULT, VEC_PF, code, address, "")
        if ev == "intr":
            intno = detail
            b, op = self.last_bytes(uc)
            after = last_addr + last_size
            if op + 1 < len(b) and b[op] == 0xCD and b[op + 1] == intno:
                if intno == 0x80:
                    s["rip"] = after
                    return (OUTCOME_SYSCALL, 0, None, None, "")
                if intno == VEC_BP:
                    s["rip"] = after
                    return (OUTCOME_FAULT, VEC_BP, None, None, "")
                s["rip"] = last_addr
                return (OUTCOME_FAULT, VEC_GP, intno * 8 + 2, None, "")
            if op < len(b) and ((b[op] == 0xCC and intno == VEC_BP) or (b[op] == 0xF1 and intno == VEC_DB)):
                s["rip"] = after
                return (OUTCOME_FAULT, intno, None, None, "")
            if self.last is not None:
                s["rip"] = last_addr
            return (OUTCOME_FAULT, intno, 0 if intno in HAS_ERROR_CODE else None, None, "")
        if err is not None:
            return (OUTCOME_CRASH, 0, None, None, "unicorn-py: %s" % err)
        return (OUTCOME_CRASH, 0, None, None, "unicorn-py: stopped at 0x%x for no known reason" % s["rip"])


def parse_case(r):
    case = {"name": r.blob().decode(errors="replace"), "code_addr": r.u64(), "code": r.blob(),
            "init": unpack_state(r.take(STATE_SIZE)), "regions": []}
    for _ in range(r.u32()):
        case["regions"].append({"addr": r.u64(), "size": r.u64(), "perm": r.u32(), "data": r.blob()})
    return case


def result_frame(index, outcome, state, pages, ns):
    kind, vector, code, addr, reason = outcome
    flags = (1 if code is not None else 0) | (2 if addr is not None else 0)
    out = [struct.pack("<IIIIQQ", index, kind, vector, flags, code or 0, addr or 0),
           pack_str(reason), pack_state(state), struct.pack("<II", 0, len(pages))]
    for a, data in pages:
        out.append(struct.pack("<Q", a) + data)
    return b"".join(out)


def main():
    ftype, length = struct.unpack("<II", read_exact(8))
    hello = read_exact(length)
    if ftype != HELLO or hello[:8] != b"CPUDIFFX":
        write_frame(ERROR, pack_str("expected a HELLO frame"))
        return 1
    version, _timeout_ms, max_instructions = struct.unpack("<IIQ", hello[8:24])
    if version != PROTOCOL_VERSION:
        write_frame(ERROR, pack_str("unicorn-py speaks protocol version 1, not %d" % version))
        return 1
    write_frame(HELLO_REPLY, struct.pack("<III", PROTOCOL_VERSION, KIND_REFERENCE, OBSERVE_ALL) +
                pack_str("unicorn-py") + pack_str("%s (python3-unicorn, example)" % unicorn.__version__))
    sys.stdout.buffer.flush()
    while True:
        ftype, length = struct.unpack("<II", read_exact(8))
        payload = read_exact(length)
        if ftype != BATCH:
            write_frame(ERROR, pack_str("expected a BATCH frame, got type %d" % ftype))
            return 1
        r = Reader(payload)
        for index in range(r.u32()):
            case = parse_case(r)
            t0 = time.monotonic_ns()
            try:
                outcome, state, pages = Run(case, max_instructions).run()
            except unicorn.UcError as e:
                outcome, state, pages = (OUTCOME_UNSUPPORTED, 0, None, None, "unicorn-py: %s" % e), case["init"], []
            write_frame(RESULT, result_frame(index, outcome, state, pages, time.monotonic_ns() - t0))
            # Flushed per case: results written before a hang still count.
            sys.stdout.buffer.flush()


if __name__ == "__main__":
    sys.exit(main())

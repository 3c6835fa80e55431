#!/usr/bin/python3
"""A deliberately broken process-protocol engine for tests/outside_test.cc.

Usage: broken_exec.py MODE. Modes at the handshake: "garbage-hello" (writes
text instead of a frame), "wrong-version" (answers protocol version 2),
"refuse" (answers an ERROR frame), "silent" (never answers), "normal".
In "normal" mode, per case by name: "crash" exits, "hang" sleeps forever,
"garbage" writes bytes that are not a frame, "liar" reports rax one more;
any other case halts at the end of its code with its initial state.
"""
import struct
import sys
import time

out = sys.stdout.buffer
inp = sys.stdin.buffer


def frame(t, payload):
    out.write(struct.pack("<II", t, len(payload)) + payload)
    out.flush()


def read_exact(n):
    b = inp.read(n)
    if len(b) < n:
        sys.exit(0)
    return b


def s(text):
    b = text.encode()
    return struct.pack("<I", len(b)) + b


mode = sys.argv[1]
t, n = struct.unpack("<II", read_exact(8))
read_exact(n)
if mode == "garbage-hello":
    out.write(b"Hello, I am not a cpudiff engine\n")
    out.flush()
    time.sleep(60)
if mode == "silent":
    time.sleep(60)
if mode == "refuse":
    frame(5, s("this engine needs a GPU"))
    sys.exit(1)
frame(2, struct.pack("<III", 2 if mode == "wrong-version" else 1, 0, (1 << 9) - 1) + s("broken") + s("0"))
while True:
    t, n = struct.unpack("<II", read_exact(8))
    p = read_exact(n)
    pos = 4
    for index in range(struct.unpack_from("<I", p, 0)[0]):
        ln = struct.unpack_from("<I", p, pos)[0]
        name = p[pos + 4:pos + 4 + ln].decode()
        pos += 4 + ln
        code_addr = struct.unpack_from("<Q", p, pos)[0]
        pos += 8
        code_len = struct.unpack_from("<I", p, pos)[0]
        pos += 4 + code_len
        state = bytearray(p[pos:pos + 424])
        pos += 424
        nregions = struct.unpack_from("<I", p, pos)[0]
        pos += 4
        for _ in range(nregions):
            dlen = struct.unpack_from("<I", p, pos + 20)[0]
            pos += 24 + dlen
        if name == "crash":
            sys.exit(3)
        if name == "hang":
            time.sleep(60)
        if name == "garbage":
            out.write(b"\xde\xad\xbe\xef" * 4)
            out.flush()
            time.sleep(60)
        struct.pack_into("<Q", state, 128, code_addr + code_len)
        if name == "liar":
            rax = struct.unpack_from("<Q", state, 0)[0]
            struct.pack_into("<Q", state, 0, (rax + 1) & (2**64 - 1))
        frame(4, struct.pack("<IIIIQQ", index, 0, 0, 0, 0, 0) + s("") + bytes(state) + struct.pack("<II", 0, 0))

#!/usr/bin/python3
"""A socketd handler process: serves "upper" (offset 0x00) and "reverse"
(0x01).  Standard library only: this is all of protocol v1 it needs.

socketd runs it with fd 0 and fd 1 one connected Unix stream socket.  It
reads request frames and writes answers:

    frame  = length (u32, big-endian, bytes after it) + body
    body   = version (1) | opcode | flags or status (u16) | request_id
             (u32) | payload

The first request is OPCODES (0x05); the answer lists the handlers.  Then
each request's opcode is a handler's offset.  Anything written to stderr
ends up in socketd's log, prefixed with "upper[PID]:".

In socketd.conf:

    processes = (
      { name = "upper"; command = [ "/usr/bin/python3",
          "/usr/share/doc/socketd/examples/processes/upper.py" ];
        opcode = 0xa0; instances = 2; }
    );

then: socketd-cli call upper.upper hello   ->  HELLO
"""
import os
import struct
import sys

OPCODES = 0x05
HANDLERS = [
    ("upper", lambda data: data.upper()),
    ("reverse", lambda data: data[::-1]),
]
OK, UNKNOWN_OPCODE, BAD_REQUEST, INTERNAL = 0, 1, 2, 5
HEAD = struct.Struct(">IBBHI")  # length, version, opcode, status, id


def answer(out, opcode, status, rid, payload):
    out.append(HEAD.pack(8 + len(payload), 1, opcode, status, rid) + payload)


def handle(out, opcode, rid, payload, first):
    if opcode == OPCODES and (first or len(HANDLERS) <= OPCODES):
        text = "".join(f"0x{i:02x} {n}\n" for i, (n, _) in enumerate(HANDLERS))
        answer(out, opcode, OK, rid, text.encode())
    elif opcode < len(HANDLERS):
        try:
            answer(out, opcode, OK, rid, HANDLERS[opcode][1](payload))
        except Exception as e:  # one bad request, not the process
            print(f"{HANDLERS[opcode][0]}: {e!r}", file=sys.stderr, flush=True)
            answer(out, opcode, INTERNAL, rid, str(e).encode()[:200])
    else:
        answer(out, opcode, UNKNOWN_OPCODE, rid, b"no such handler")


def main():
    buf = b""
    first = True
    while True:
        data = os.read(0, 1 << 20)
        if not data:
            return  # socketd closed the socket: it is stopping
        buf += data
        out, pos = [], 0
        while len(buf) - pos >= 4:
            (length,) = struct.unpack_from(">I", buf, pos)
            if len(buf) - pos - 4 < length:
                break
            if length < 8:
                sys.exit("short frame from socketd")
            _, _, opcode, _, rid = HEAD.unpack_from(buf, pos)
            handle(out, opcode, rid, buf[pos + 12 : pos + 4 + length], first)
            first = False
            pos += 4 + length
        buf = buf[pos:]
        if out:
            os.write(1, b"".join(out))


if __name__ == "__main__":
    main()

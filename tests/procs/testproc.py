#!/usr/bin/python3
"""A handler process for the integration tests (test_procs.c): each
handler is one way a child can behave, well or badly.  Standard library
only; answers may leave out of order (delay)."""
import os
import select
import struct
import sys
import time

HEAD = struct.Struct(">IBBHI")
HANDLERS = {  # offset: name (0x05 is left out: it is OPCODES' opcode)
    0x00: "echo",
    0x01: "delay",
    0x02: "crash",
    0x03: "hang",
    0x04: "garbage",
    0x06: "badid",
    0x07: "whoami",
    0x08: "say",
}
if os.environ.get("TESTPROC_EXTRA") and os.path.exists(os.environ["TESTPROC_EXTRA"]):
    HANDLERS[0x09] = "extra"  # this instance serves another list


def frame(opcode, status, rid, payload=b""):
    return HEAD.pack(8 + len(payload), 1, opcode, status, rid) + payload


def main():
    buf = b""
    first = True
    later = []  # (due, frame)
    while True:
        now = time.monotonic()
        due = [f for t, f in later if t <= now]
        later = [(t, f) for t, f in later if t > now]
        if due:
            os.write(1, b"".join(due))
        tmo = min((t for t, _ in later), default=now + 60) - now
        r, _, _ = select.select([0], [], [], max(tmo, 0))
        if not r:
            continue
        data = os.read(0, 1 << 20)
        if not data:
            return
        buf += data
        out = []
        while len(buf) >= 4:
            (n,) = struct.unpack_from(">I", buf)
            if len(buf) < 4 + n:
                break
            _, _, op, _, rid = HEAD.unpack_from(buf)
            pl = buf[12 : 4 + n]
            buf = buf[4 + n :]
            if first:
                first = False
                text = "".join(f"0x{k:02x} {v}\n" for k, v in sorted(HANDLERS.items()))
                out.append(frame(op, 0, rid, text.encode()))
                continue
            name = HANDLERS.get(op)
            if name == "echo":
                out.append(frame(op, 0, rid, pl))
            elif name == "delay":
                later.append((time.monotonic() + int(pl or b"0") / 1000, frame(op, 0, rid, pl)))
            elif name == "crash":
                if out:
                    os.write(1, b"".join(out))
                os._exit(int(pl or b"3"))
            elif name == "hang":
                time.sleep(3600)
            elif name == "garbage":
                out.append(b"\x00\x00\x00\x08\x07garbage!")
            elif name == "badid":
                out.append(frame(op, 0, rid ^ 0x5A5A0000, b"?"))
            elif name == "whoami":
                me = f"{os.getuid()} {os.getpid()} {os.environ.get('FOO', '-')} {'HOME' in os.environ}"
                out.append(frame(op, 0, rid, me.encode()))
            elif name == "say":
                sys.stderr.write(pl.decode(errors="replace") + "\n")
                sys.stderr.flush()
                out.append(frame(op, 0, rid))
            else:
                out.append(frame(op, 1, rid, b"no such handler"))
        if out:
            os.write(1, b"".join(out))


if __name__ == "__main__":
    main()

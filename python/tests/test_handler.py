"""socketd.serve and socketd.aio.serve, spawned as socketd would: a
child process whose fd 0 and 1 are one end of a socketpair."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import socketd
from conftest import HERE
from socketd import _proto as P

SYNC_HANDLERS = """
import socketd, sys

def upper(data):
    return data.upper()

def number(data):
    if not data.isdigit():
        raise socketd.BadRequest("want a decimal number")
    return str(int(data) * 2).encode()

def crash(data):
    raise ZeroDivisionError("division by zero in the handler")

def wrong_type(data):
    return "text"

def nothing(data):
    return None

socketd.serve({"upper": upper, "number": number, "crash": crash,
               "wrong_type": wrong_type, "nothing": nothing, "sixth": upper})
"""

ASYNC_HANDLERS = """
import asyncio, socketd, socketd.aio

async def sleep(data):
    await asyncio.sleep(int(data) / 1000)
    return b"slept " + data

def upper(data):
    return data.upper()

async def fail(data):
    raise socketd.Overloaded("try later")

asyncio.run(socketd.aio.serve({"sleep": sleep, "upper": upper, "fail": fail}))
"""


class Child:
    def __init__(self, code: str) -> None:
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        src = str(Path(socketd.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            stdin=theirs,
            stdout=theirs,
            stderr=subprocess.PIPE,
            env=env,
        )
        theirs.close()
        self.sock.settimeout(10)
        self.decoder = P.FrameDecoder()
        self.next_id = 1

    def send(self, opcode: int, payload: bytes = b"", rid: int | None = None) -> int:
        if rid is None:
            rid = self.next_id
            self.next_id += 1
        self.sock.sendall(P.encode_request(opcode, rid, payload))
        return rid

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> P.Frame:
        while (f := self.decoder.next_frame()) is None:
            data = self.sock.recv(65536)
            assert data, "the handler process closed its socket"
            self.decoder.feed(data)
        return f

    def call(self, opcode: int, payload: bytes = b"") -> P.Frame:
        rid = self.send(opcode, payload)
        f = self.recv()
        assert f.request_id == rid and f.opcode == opcode
        return f

    def finish(self) -> tuple[int, str]:
        self.sock.shutdown(socket.SHUT_WR)
        try:
            _, err = self.proc.communicate(timeout=10)
        finally:
            self.sock.close()
        return self.proc.returncode, err.decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.sock.close()


@pytest.fixture
def child() -> Iterator[Child]:
    c = Child(SYNC_HANDLERS)
    yield c
    c.kill()


@pytest.fixture
def achild() -> Iterator[Child]:
    c = Child(ASYNC_HANDLERS)
    yield c
    c.kill()


def test_opcodes_listing_in_dict_order(child: Child) -> None:
    f = child.call(P.OPCODES)
    assert f.code == P.OK
    assert f.payload == (
        b"0x00 upper\n0x01 number\n0x02 crash\n0x03 wrong_type\n0x04 nothing\n0x05 sixth\n"
    )
    assert P.parse_opcodes(f.payload)["sixth"].code == 5
    # After the handshake, 0x05 is the sixth handler's offset.
    assert child.call(5, b"six").payload == b"SIX"


def test_handlers_and_errors(child: Child) -> None:
    child.call(P.OPCODES)
    assert child.call(0, b"hello").payload == b"HELLO"
    assert child.call(1, b"21").payload == b"42"
    f = child.call(1, b"x")
    assert (f.code, f.payload) == (P.BAD_REQUEST, b"want a decimal number")
    f = child.call(2, b"")
    assert f.code == P.INTERNAL and b"ZeroDivisionError" in f.payload and len(f.payload) <= 200
    f = child.call(3, b"")
    assert f.code == P.INTERNAL and b"not bytes" in f.payload
    f = child.call(4, b"")
    assert (f.code, f.payload) == (P.OK, b"")
    f = child.call(9, b"")
    assert (f.code, f.payload) == (P.UNKNOWN_OPCODE, b"unknown opcode 0x09")
    assert child.call(0, b"still alive").payload == b"STILL ALIVE"
    rc, err = child.finish()
    assert rc == 0
    assert "ZeroDivisionError" in err  # the traceback went to socketd's log


def test_protocol_errors(child: Child) -> None:
    child.send_raw(P.encode_frame(0, 0, 7, b"")[:4] + b"\x02\x00\x00\x00\x00\x00\x00\x07")
    f = child.recv()
    assert (f.code, f.request_id) == (P.UNSUPPORTED_VERSION, 7)
    child.send_raw(P.encode_frame(0, 1, 8, b"x"))  # flags 1
    f = child.recv()
    assert (f.code, f.request_id) == (P.BAD_REQUEST, 8)
    child.send_raw(b"\x00\x00\x00\x03abc")  # shorter than a header
    f = child.recv()
    assert (f.code, f.request_id) == (P.BAD_REQUEST, 0)
    assert child.call(0, b"ok").payload == b"OK"


def test_pipelined_requests_answer_in_order(child: Child) -> None:
    # Send from a thread: the child blocks writing answers nobody reads.
    ids = list(range(1, 501))
    batch = b"".join(P.encode_request(0, i, b"m%d" % (i - 1)) for i in ids)
    sender = threading.Thread(target=child.send_raw, args=(batch,))
    sender.start()
    frames = [child.recv() for _ in ids]
    sender.join(10)
    assert [f.request_id for f in frames] == ids
    assert frames[-1].payload == b"M499"


def test_async_answers_out_of_order(achild: Child) -> None:
    assert achild.call(P.OPCODES).payload == b"0x00 sleep\n0x01 upper\n0x02 fail\n"
    slow = achild.send(0, b"300")
    fast = achild.send(0, b"10")
    quick = achild.send(1, b"abc")
    t0 = time.monotonic()
    got = [achild.recv() for _ in range(3)]
    assert [f.request_id for f in got] == [quick, fast, slow]
    assert got[2].payload == b"slept 300"
    assert time.monotonic() - t0 < 2
    f = achild.call(2)
    assert (f.code, f.payload) == (9, b"try later")
    rc, _ = achild.finish()
    assert rc == 0


def test_async_finishes_in_flight_requests_at_eof(achild: Child) -> None:
    rid = achild.send(0, b"200")
    achild.sock.shutdown(socket.SHUT_WR)
    f = achild.recv()
    assert f.request_id == rid and f.payload == b"slept 200"
    assert achild.proc.wait(10) == 0


def test_bad_handler_tables_are_refused() -> None:
    with pytest.raises(ValueError):
        socketd.serve({})
    with pytest.raises(ValueError):
        socketd.serve({"Upper": bytes.upper})
    with pytest.raises(TypeError):
        socketd.serve({"x": 42})  # type: ignore[dict-item]


def test_the_example_upper_handler() -> None:
    example = HERE.parent.parent / "examples" / "processes" / "upper.py"
    if not example.exists():
        pytest.skip("examples/processes/upper.py is not in this tree")
    c = Child(example.read_text())
    try:
        listing = P.parse_opcodes(c.call(P.OPCODES).payload)
        assert c.call(listing["upper"].code, b"abc").payload == b"ABC"
    finally:
        c.kill()

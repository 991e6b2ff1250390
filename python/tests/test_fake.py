"""The blocking client against a scripted fake server: what the daemon
does not do (yet) or does only when something goes wrong."""

from __future__ import annotations

import threading
import time
from typing import Callable

import pytest

import socketd
from conftest import FakeConn, FakeServer, serve_basic
from socketd import _proto as P

Fake = Callable[[Callable[[FakeConn], None]], FakeServer]

OPCODES_TEXT = (
    b"0x00 ping\n0x01 echo\n0x02 info\n0x03 stats\n0x04 time\n0x05 opcodes\n"
    b"0x06 goaway push\n0x13 pubsub.message push\n0x80 hello.upper\n"
)


def test_timeout_drops_the_connection_and_the_late_answer(fake: Fake) -> None:
    release = threading.Event()

    def script(conn: FakeConn) -> None:
        if conn.index == 0:
            req = conn.read_request()
            assert req is not None
            release.wait(5)
            conn.answer(req, b"late answer")  # too late: nobody may see it
            conn.read_request(1)
        else:
            serve_basic(conn)

    srv = fake(script)
    c = srv.client(timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(socketd.TimeoutError) as e:
        c.echo(b"first")
    assert 0.25 < time.monotonic() - t0 < 2
    assert isinstance(e.value, TimeoutError)
    assert not c.connected
    release.set()
    assert c.echo(b"second") == b"second"  # its own answer, on a new connection
    assert len(srv.conns) == 2
    c.close()


def test_per_call_timeout_overrides_the_default(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        while (req := conn.read_request()) is not None:
            time.sleep(0.3)
            try:
                conn.answer(req)
            except OSError:
                return

    srv = fake(script)
    with srv.client(timeout=0.1) as c:
        c.ping(timeout=2.0)
        with pytest.raises(socketd.TimeoutError):
            c.ping()


def test_closed_mid_answer_idempotent_is_retried_once(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        if conn.index == 0:
            req = conn.read_request()
            assert req is not None
            whole = P.encode_frame(req.opcode, 0, req.request_id, req.payload)
            conn.sock.sendall(whole[:7])  # half an answer, then gone
        else:
            serve_basic(conn)

    srv = fake(script)
    with srv.client() as c:
        assert c.echo(b"again") == b"again"
    assert len(srv.conns) == 2
    assert srv.conns[1].requests[0].payload == b"again"


def test_retried_only_once(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        conn.read_request()  # read it, answer nothing, close

    srv = fake(script)
    with pytest.raises(socketd.ConnectionError, match="lost before the answer"):
        srv.client().ping()
    assert len(srv.conns) == 2


def test_module_calls_are_not_retried_unless_asked(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        if conn.index in (0, 2):
            conn.read_request()
        else:
            serve_basic(conn, {0x80: lambda r: r.payload.upper()})

    srv = fake(script)
    c = srv.client()
    with pytest.raises(socketd.ConnectionError):
        c.call(0x80, b"once")
    assert len(srv.conns) == 1
    assert c.call(0x80, b"abc") == b"ABC"  # a new connection (index 1)
    assert len(srv.conns) == 2
    c._drop()  # next request on connection 2, which closes again
    assert c.call(0x80, b"twice", retry=True) == b"TWICE"
    assert [len(x.requests) for x in srv.conns] == [1, 1, 1, 1]
    c.close()


def test_wrong_request_id_is_a_protocol_error(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        if conn.index == 0:
            req = conn.read_request()
            assert req is not None
            conn.send(req.opcode, 0, req.request_id + 1)
            conn.read_request(2)
        else:
            serve_basic(conn)

    srv = fake(script)
    with srv.client() as c:
        with pytest.raises(socketd.ProtocolError, match="request_id"):
            c.ping()
        assert not c.connected
        c.ping()


def test_garbage_frame_is_a_protocol_error(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        conn.read_request()
        conn.sock.sendall(b"\x00\x00\x00\x03abc")

    srv = fake(script)
    with pytest.raises(socketd.ProtocolError):
        srv.client().ping()


def test_unknown_status_is_still_an_error(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        while (req := conn.read_request()) is not None:
            conn.answer(req, b"from the future", status=42)

    srv = fake(script)
    with srv.client() as c:
        with pytest.raises(socketd.ServerError) as e:
            c.ping()
        assert e.value.status == 42 and e.value.message == "from the future"
        assert type(e.value) is socketd.ServerError
        assert c.connected


def test_v11_statuses_map_to_classes(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        while (req := conn.read_request()) is not None:
            conn.answer(req, b"why", status=req.payload[0])

    srv = fake(script)
    with srv.client() as c:
        for status, cls in [(8, socketd.HandlerTimeout), (9, socketd.Overloaded),
                            (12, socketd.LimitExceeded), (13, socketd.NotSubscribed)]:
            with pytest.raises(cls):
                c.call(0x80, bytes([status]))
        assert c.connected


def test_unknown_pushes_are_ignored(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        while (req := conn.read_request()) is not None:
            conn.push(0x77, b"something new")
            conn.push(P.MESSAGE, P.U32.pack(99) + P.U32.pack(0) + b"\x00\x01xdata")
            conn.answer(req, req.payload)

    srv = fake(script)
    with srv.client() as c:
        assert c.echo(b"through") == b"through"
        assert c.pipeline().echo(b"1").echo(b"2").execute() == [b"1", b"2"]


def test_goaway_moves_the_next_request_to_a_new_connection(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        if conn.index == 0:
            req = conn.read_request()
            assert req is not None
            conn.goaway(2000, "restarting")
            conn.answer(req, req.payload)  # in-flight answers still come
            conn.read_request(1)  # nothing more may arrive here
        else:
            serve_basic(conn)

    srv = fake(script)
    with srv.client() as c:
        assert c.echo(b"a") == b"a"
        assert c.echo(b"b") == b"b"
        assert c.echo(b"c") == b"c"
    assert [len(x.requests) for x in srv.conns] == [1, 2]


def test_goaway_in_a_pipeline_loses_nothing(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        if conn.index == 0:
            n = 0
            while (req := conn.read_request(0.5)) is not None:
                if n == 0:
                    conn.goaway(500)
                conn.answer(req, req.payload)
                n += 1
        else:
            serve_basic(conn)

    srv = fake(script)
    with srv.client() as c:
        p = c.pipeline()
        for i in range(2000):
            p.echo(b"%d" % i)
        assert p.execute() == [b"%d" % i for i in range(2000)]
        c.ping()
    assert sum(len(x.requests) for x in srv.conns) == 2001
    assert len(srv.conns) == 2


def test_names_resolve_through_opcodes_once_per_connection(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        serve_basic(conn, {P.OPCODES: lambda r: OPCODES_TEXT, 0x80: lambda r: r.payload.upper()})

    srv = fake(script)
    with srv.client() as c:
        table = c.opcodes()
        assert table["hello.upper"] == socketd.Opcode(0x80, "hello.upper", False)
        assert table["goaway"].push
        assert c.call("hello.upper", b"abc") == b"ABC"
        assert c.call("hello.upper", b"def") == b"DEF"
        with pytest.raises(ValueError, match="push"):
            c.call("pubsub.message", b"")
        with pytest.raises(socketd.UnknownOpcode):
            c.call("hello.lower", b"")
    ops = [r.opcode for r in srv.conns[0].requests]
    assert ops.count(P.OPCODES) == 1 and ops.count(0x80) == 2


def test_names_without_opcodes_fall_back_to_builtins(fake: Fake) -> None:
    srv = fake(serve_basic)
    with srv.client() as c:
        assert c.call("echo", b"x") == b"x"
        with pytest.raises(socketd.UnknownOpcode, match="does not list"):
            c.call("hello.upper", b"x")


def test_a_silent_server_never_hangs_a_pipeline(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        while conn.read_request(2) is not None:
            pass  # silent until the client goes

    srv = fake(script)
    t0 = time.monotonic()
    with pytest.raises(socketd.TimeoutError):
        srv.client(timeout=0.3).pipeline().ping().ping().execute()
    assert time.monotonic() - t0 < 1.5


def test_threads_share_a_client(fake: Fake) -> None:
    srv = fake(serve_basic)
    c = srv.client()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(200):
                data = b"%d-%d" % (n, i)
                assert c.echo(data) == data
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    c.close()

"""socketd.aio.Client against the daemon and the fake server."""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from typing import Any, Callable, Coroutine

import pytest

import socketd
import socketd.aio
from conftest import Daemon, FakeConn, FakeServer, serve_basic
from socketd import _proto as P

Fake = Callable[[Callable[[FakeConn], None]], FakeServer]


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def test_core_requests(daemon: Daemon) -> None:
    async def main() -> None:
        async with socketd.aio.Client("127.0.0.1", daemon.port) as c:
            assert await c.ping() is None
            assert await c.echo(b"hi") == b"hi"
            assert (await c.info())["pid"] == str(daemon.pid)
            assert (await c.stats())["requests_total"] >= 2
            t = await c.time()
            assert abs((t - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) < 5
            assert await c.call("echo", b"by name") == b"by name"
            with pytest.raises(socketd.UnknownOpcode):
                await c.call(0x7F)
            with pytest.raises(socketd.BadRequest):
                await c.call("time", b"x")
            async with c.pipeline() as p:
                for i in range(300):
                    p.echo(b"%d" % i)
                p.ping()
            assert p.results == [b"%d" % i for i in range(300)] + [None]
        assert not c.connected

    run(main())


def test_concurrent_tasks_share_one_connection(daemon: Daemon) -> None:
    async def main() -> None:
        async with socketd.aio.Client("127.0.0.1", daemon.port) as c:
            before = (await c.stats())["connections_total"]
            datas = [b"task-%d" % i for i in range(200)]
            got = await asyncio.gather(*(c.echo(d) for d in datas))
            assert got == datas
            assert (await c.stats())["connections_total"] == before

    run(main())


def test_timeout_drops_the_connection(fake: Fake) -> None:
    release = threading.Event()

    def script(conn: FakeConn) -> None:
        if conn.index == 0:
            req = conn.read_request()
            assert req is not None
            release.wait(5)
            try:
                conn.answer(req, b"late")
            except OSError:
                pass
        else:
            serve_basic(conn)

    srv = fake(script)

    async def main() -> None:
        c = srv.aclient(timeout=0.3)
        t0 = time.monotonic()
        with pytest.raises(socketd.TimeoutError):
            await c.echo(b"first")
        assert time.monotonic() - t0 < 2
        assert not c.connected
        release.set()
        assert await c.echo(b"second") == b"second"
        await c.aclose()

    run(main())
    assert len(srv.conns) == 2


def test_cancellation_drops_the_connection(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        if conn.index == 0:
            req = conn.read_request()
            assert req is not None
            time.sleep(0.3)
            try:
                conn.answer(req, b"for the cancelled one")
            except OSError:
                pass
            conn.read_request(1)
        else:
            serve_basic(conn)

    srv = fake(script)

    async def main() -> None:
        c = srv.aclient()
        task = asyncio.create_task(c.echo(b"cancel me"))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not c.connected
        assert await c.echo(b"mine") == b"mine"  # never the cancelled answer
        await c.aclose()

    run(main())


def test_lost_connection_retry_rules(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        if conn.index in (0, 2):
            conn.read_request()  # and close without answering
        else:
            serve_basic(conn, {0x80: lambda r: r.payload.upper()})

    srv = fake(script)

    async def main() -> None:
        c = srv.aclient()
        assert await c.echo(b"retried") == b"retried"  # conn 0 lost, conn 1
        await c.aclose()
        c = srv.aclient()
        with pytest.raises(socketd.ConnectionError):
            await c.call(0x80, b"not retried")  # conn 2 lost
        assert await c.call(0x80, b"ok") == b"OK"  # conn 3
        await c.aclose()

    run(main())
    assert len(srv.conns) == 4


def test_goaway_and_unknown_pushes(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        if conn.index == 0:
            req = conn.read_request()
            assert req is not None
            conn.push(0x7A, b"unknown push")
            conn.goaway(1000, "bye")
            conn.answer(req, req.payload)
            conn.read_request(1)
        else:
            serve_basic(conn)

    srv = fake(script)

    async def main() -> None:
        async with srv.aclient() as c:
            assert await c.echo(b"1") == b"1"
            assert await c.echo(b"2") == b"2"
            assert await c.echo(b"3") == b"3"

    run(main())
    assert [len(x.requests) for x in srv.conns] == [1, 2]


def test_protocol_error_and_unknown_status(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        while (req := conn.read_request()) is not None:
            if req.payload == b"bad id":
                conn.send(req.opcode, 0, req.request_id + 5)
            else:
                conn.answer(req, b"?", status=77)

    srv = fake(script)

    async def main() -> None:
        async with srv.aclient() as c:
            with pytest.raises(socketd.ServerError) as e:
                await c.echo(b"x")
            assert e.value.status == 77
            with pytest.raises(socketd.ProtocolError):
                await c.echo(b"bad id")
            assert not c.connected

    run(main())


def test_refused_and_bad_arguments() -> None:
    async def main() -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        c = socketd.aio.Client("127.0.0.1", port)
        with pytest.raises(socketd.ConnectionError):
            await c.ping()
        with pytest.raises(TypeError):
            await c.echo("str")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await c.ping(timeout=0)

    run(main())


def test_opcodes_cache_per_connection(fake: Fake) -> None:
    text = b"0x00 ping\n0x05 opcodes\n0x80 hello.upper\n"

    def script(conn: FakeConn) -> None:
        serve_basic(conn, {P.OPCODES: lambda r: text, 0x80: lambda r: r.payload.upper()})

    srv = fake(script)

    async def main() -> None:
        async with srv.aclient() as c:
            results = await asyncio.gather(*(c.call("hello.upper", b"x%d" % i) for i in range(5)))
            assert results == [b"X%d" % i for i in range(5)]
            assert (await c.opcodes())["hello.upper"].code == 0x80

    run(main())
    ops = [r.opcode for r in srv.conns[0].requests]
    # One OPCODES for the five concurrent calls, one asked for explicitly.
    assert ops.count(0x80) == 5 and ops.count(P.OPCODES) == 2

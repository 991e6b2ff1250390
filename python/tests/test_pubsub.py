"""Pub/sub with both clients: against a fake broker, and against the
daemon when it serves pub/sub."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable

import pytest

import socketd
import socketd.aio
from conftest import Daemon, FakeBroker, FakeConn, FakeServer, daemon_opcodes
from socketd import _proto as P

Fake = Callable[[Callable[[FakeConn], None]], FakeServer]


def test_subscribe_publish_iterate(fake: Fake) -> None:
    srv = fake(FakeBroker())
    with srv.client() as a, srv.client() as b:
        sub = a.subscribe("chat.>")
        star = a.subscribe("chat.*.x")
        assert sub.sub_id != star.sub_id and sub.active
        assert b.publish("chat.lobby", b"hello") == 1
        assert b.publish("chat.room.x", b"both") == 2
        assert b.publish("news.today", b"nobody") == 0
        first = next(iter(sub))
        assert first == socketd.Message("chat.lobby", b"hello", sub.sub_id, 0)
        assert sub.get(2) == socketd.Message("chat.room.x", b"both", sub.sub_id, 0)
        assert star.get(2) == socketd.Message("chat.room.x", b"both", star.sub_id, 0)
        assert sub.get(0.1) is None  # nothing more: a timeout is not an error
        assert a.connected
        sub.unsubscribe()
        assert not sub.active and list(sub) == []
        with pytest.raises(socketd.NotSubscribed):
            a.unsubscribe(sub.sub_id)
        assert b.publish("chat.lobby", b"x") == 0


def test_no_echo_and_own_messages(fake: Fake) -> None:
    srv = fake(FakeBroker())
    with srv.client() as c:
        mine = c.subscribe("room", no_echo=True)
        echo = c.subscribe("room")
        assert c.publish("room", b"me") == 1
        assert echo.get(2) == socketd.Message("room", b"me", echo.sub_id, 0)
        assert mine.get(0.1) is None
    subscribes = [r for r in srv.conns[0].requests if r.opcode == P.SUBSCRIBE]
    assert subscribes[0].payload[4] == 1 and subscribes[1].payload[4] == 0


def test_server_errors_on_subscribe(fake: Fake) -> None:
    srv = fake(FakeBroker())
    with srv.client() as c:
        with pytest.raises(socketd.InvalidTopic):
            c.subscribe("")
        with pytest.raises(socketd.InvalidTopic):
            c.publish("a.*", b"")
        c.ping()


def test_iterator_wakes_for_a_publish_from_another_thread(fake: Fake) -> None:
    # The chat-client shape: one thread iterates while another publishes
    # on the same connection.
    srv = fake(FakeBroker())
    with srv.client() as c:
        sub = c.subscribe("chat.room")
        got: list[socketd.Message] = []

        def reader() -> None:
            for m in sub:
                got.append(m)
                if len(got) == 3:
                    return

        t = threading.Thread(target=reader)
        t.start()
        time.sleep(0.05)  # the reader is waiting now
        t0 = time.monotonic()
        for i in range(3):
            assert c.publish("chat.room", b"%d" % i) == 1
        t.join(5)
        assert not t.is_alive()
        assert time.monotonic() - t0 < 1.5
        assert [m.data for m in got] == [b"0", b"1", b"2"]


def test_goaway_renews_subscriptions(fake: Fake) -> None:
    broker = FakeBroker()

    def script(conn: FakeConn) -> None:
        if conn.index == 0:
            # Serve the subscription, then drain this connection.
            req = conn.read_request()
            assert req is not None
            broker.subs[conn] = {}
            broker.handle(conn, req)
            with broker.lock:
                del broker.subs[conn]
            conn.goaway(100, "restart")
            conn.read_request(0.3)
            return
        broker(conn)

    srv = fake(script)
    with srv.client() as c, srv.client() as pub:
        sub = c.subscribe("a.b")
        time.sleep(0.1)
        c.ping()  # sees the GOAWAY: moves to a new connection, resubscribes
        assert pub.publish("a.b", b"after") == 1
        assert sub.get(2) == socketd.Message("a.b", b"after", sub.sub_id, 0)
    assert [r.opcode for r in srv.conns[2].requests] == [P.SUBSCRIBE, P.PING]


def test_slow_consumer_notice_ends_the_subscription(fake: Fake) -> None:
    def script(conn: FakeConn) -> None:
        req = conn.read_request()
        assert req is not None
        conn.answer(req, P.U32.pack(1))
        conn.push(P.NOTICE, b"\x00\x01you are too slow")

    srv = fake(script)
    with srv.client() as c:
        sub = c.subscribe("x")
        with pytest.raises(socketd.SubscriptionClosed) as e:
            sub.get(2)
        assert e.value.reason == 1 and "slow" in str(e.value)
        assert not sub.active


def test_async_subscription(fake: Fake) -> None:
    srv = fake(FakeBroker())

    async def main() -> None:
        async with srv.aclient() as a, srv.aclient() as b:
            sub = await a.subscribe("chat.>", no_echo=True)
            got: list[socketd.Message] = []

            async def reader() -> None:
                async for m in sub:
                    got.append(m)
                    if len(got) == 2:
                        return

            task = asyncio.create_task(reader())
            await asyncio.sleep(0.01)
            assert await a.publish("chat.a", b"own") == 0  # NO_ECHO
            assert await b.publish("chat.a", b"1") == 1
            assert await b.publish("chat.b.c", b"2") == 1
            await asyncio.wait_for(task, 5)
            assert [(m.topic, m.data) for m in got] == [("chat.a", b"1"), ("chat.b.c", b"2")]
            assert await sub.get(0.05) is None
            await sub.unsubscribe()
            assert await sub.get(0.05) is None and not sub.active

    asyncio.run(main())


def test_real_daemon_pubsub(daemon: Daemon) -> None:
    table = daemon_opcodes(daemon)
    if table is None or "pubsub.subscribe" not in table:
        pytest.skip("this daemon does not serve pub/sub yet (OPCODES lists no pubsub.subscribe)")
    with daemon.client() as a, daemon.client() as b:
        sub = a.subscribe("pytest.>")
        assert b.publish("pytest.x", b"data") == 1
        assert sub.get(5) == socketd.Message("pytest.x", b"data", sub.sub_id, 0)
        mine = b.subscribe("pytest.self", no_echo=True)
        # Routed to a's "pytest.>" only: b's own NO_ECHO subscription is
        # not a receiver (PROTOCOL-1.1, PUBLISH answer).
        assert b.publish("pytest.self", b"me") == 1
        assert mine.get(0.2) is None
        assert sub.get(5) == socketd.Message("pytest.self", b"me", sub.sub_id, 0)
        with pytest.raises(socketd.InvalidTopic):
            b.publish("pytest.*", b"")

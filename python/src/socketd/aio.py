"""The asyncio client: socketd.aio.Client, with the blocking client's methods.

One Client owns at most one connection at a time, opened by the first
request.  Any number of tasks may use it at once: their requests are
written as they come and a reader task hands each answer to the request
whose request_id it carries (the server answers in request order).

A request that times out or whose task is cancelled closes the
connection (the other requests on it are then sent again on a new one if
they are idempotent, or fail with ConnectionError): an answer can never
reach the wrong caller.  Timeouts use asyncio.wait, not asyncio.timeout
or wait_for, whose cancellation handling is unreliable in Python 3.11.2.

Do not share a Client across fork(): a child that finds one opens its
own connection and leaves the parent's alone, but asyncio itself does not
survive a fork with a running loop.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import datetime
import os
import ssl as _ssl
import time
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self, TypeVar, cast

from . import _common as C
from . import _proto as P
from ._proto import Message, Opcode
from .errors import (
    ConnectionError,
    Error,
    ProtocolError,
    ServerError,
    SubscriptionClosed,
    TimeoutError,
    error_for_status,
)
from .handler import serve_async as serve

__all__ = ["Client", "Pipeline", "Subscription", "serve"]

T = TypeVar("T")
_RECV = 256 * 1024
_FREE_RECONNECTS = 3


class _Conn:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_frame: int
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.pid = os.getpid()
        self.decoder = P.FrameDecoder(max_frame)
        self.next_id = P.RequestIds()
        self.opcodes: dict[str, Opcode] | None = None
        self.opcodes_known = False
        self.draining = False
        self.dead = False
        self.why = "connection closed"
        self.pending: collections.deque[tuple[int, int, asyncio.Future[Any]]] = (
            collections.deque()
        )
        self.task: asyncio.Task[None] | None = None
        self.table_task: asyncio.Future[list[Any]] | None = None

    def usable(self) -> bool:
        return not self.dead and not self.draining and self.pid == os.getpid()

    def kill(self, why: str) -> None:
        """Close, and fail every pending request as lost."""
        if not self.dead:
            self.dead = True
            self.why = why
        pending, self.pending = self.pending, collections.deque()
        for _, _, fut in pending:
            if not fut.done():
                fut.set_exception(C.Lost(self.why))
        if self.pid == os.getpid():
            self.writer.close()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()


class _Sub:
    def __init__(self, sub_id: int, filt: bytes, no_echo: bool) -> None:
        self.sub_id = sub_id
        self.filter = filt
        self.no_echo = no_echo
        self.queue: collections.deque[Message] = collections.deque()
        self.event = asyncio.Event()
        self.closed = False
        self.active = False
        self.error: BaseException | None = None

    def end(self, error: BaseException | None) -> None:
        self.closed = True
        if error is not None:
            self.error = error
        self.event.set()


class Client:
    """An asyncio connection to a socketd server.

    Arguments as for :class:`socketd.Client`.  Use ``async with`` or
    :meth:`aclose`.  Every request method is a coroutine.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = C.DEFAULT_PORT,
        *,
        timeout: float | None = C.DEFAULT_TIMEOUT,
        connect_timeout: float | None | C.Unset = C.UNSET,
        ssl: _ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        max_frame_size: int = P.DEFAULT_MAX_FRAME,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise ValueError("host must be a non-empty str")
        self.host = host
        self.port = P.check_port(port)
        self.timeout = P.check_timeout(timeout)
        self.connect_timeout = (
            self.timeout
            if isinstance(connect_timeout, C.Unset)
            else P.check_timeout(connect_timeout, "connect_timeout")
        )
        if ssl is not None and not isinstance(ssl, _ssl.SSLContext):
            raise TypeError("ssl must be an ssl.SSLContext or None")
        self.ssl = ssl
        self.server_hostname = server_hostname
        if max_frame_size < P.HEADER_SIZE:
            raise ValueError("max_frame_size must be at least 8")
        self.max_frame_size = max_frame_size
        self._conn: _Conn | None = None
        self._connecting: asyncio.Lock | None = None
        self._closed = False
        self._subs: dict[int, _Sub] = {}
        self._next_sub = 1
        self._renew: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("connected" if self.connected else "idle")
        return f"<socketd.aio.Client {self.host}:{self.port} {state}>"

    @property
    def connected(self) -> bool:
        """Whether a usable connection is open now."""
        return self._conn is not None and self._conn.usable()

    async def connect(self) -> None:
        """Open the connection now (requests do it when needed)."""
        await self._ensure(self._deadline(C.UNSET))

    async def aclose(self) -> None:
        """Close the connection and end every subscription."""
        if self._closed:
            return
        self._closed = True
        if self._renew is not None:
            self._renew.cancel()
        for sub in self._subs.values():
            sub.end(None)
        self._subs.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.kill("client closed")
            if conn.pid == os.getpid():
                try:
                    await conn.writer.wait_closed()
                except (OSError, asyncio.CancelledError):
                    pass

    # --- requests --------------------------------------------------------

    async def ping(self, *, timeout: C.TimeoutArg = C.UNSET) -> None:
        """PING: returns when the server answered."""
        await self._one(C.req_ping(), timeout)

    async def echo(self, data: bytes, *, timeout: C.TimeoutArg = C.UNSET) -> bytes:
        """ECHO: the server's copy of data."""
        return await self._one(C.req_echo(data), timeout)

    async def info(self, *, timeout: C.TimeoutArg = C.UNSET) -> dict[str, str]:
        """INFO as a dict of name -> value."""
        return await self._one(C.req_info(), timeout)

    async def stats(self, *, timeout: C.TimeoutArg = C.UNSET) -> dict[str, int]:
        """STATS as a dict of name -> int."""
        return await self._one(C.req_stats(), timeout)

    async def time(self, *, timeout: C.TimeoutArg = C.UNSET) -> datetime.datetime:
        """TIME as an aware UTC datetime."""
        return await self._one(C.req_time(), timeout)

    async def time_ns(self, *, timeout: C.TimeoutArg = C.UNSET) -> int:
        """TIME in nanoseconds since the Unix epoch."""
        return await self._one(C.req_time_ns(), timeout)

    async def opcodes(self, *, timeout: C.TimeoutArg = C.UNSET) -> dict[str, Opcode]:
        """OPCODES: name -> Opcode(code, name, push)."""
        result = await self._one(C.req_opcodes(), timeout)
        if self._conn is not None:
            self._conn.opcodes, self._conn.opcodes_known = result, True
        return result

    async def call(
        self,
        name_or_opcode: int | str,
        payload: bytes = b"",
        *,
        timeout: C.TimeoutArg = C.UNSET,
        retry: bool = False,
    ) -> bytes:
        """As :meth:`socketd.Client.call`."""
        return await self._one(C.req_call(name_or_opcode, payload, retry), timeout)

    async def publish(
        self, topic: str | bytes, data: bytes = b"", *, timeout: C.TimeoutArg = C.UNSET
    ) -> int:
        """PUBLISH; returns the receivers count."""
        return await self._one(C.req_publish(topic, data), timeout)

    async def subscribe(
        self, filter: str | bytes, *, no_echo: bool = False, timeout: C.TimeoutArg = C.UNSET
    ) -> Subscription:
        """SUBSCRIBE; returns a Subscription, an async iterator of Message."""
        self._check_open()
        filt = P.encode_text(filter, "filter")
        sub_id = self._new_sub_id()
        sub = _Sub(sub_id, filt, bool(no_echo))
        self._subs[sub_id] = sub
        try:
            await self._run([C.req_subscribe(sub_id, filt, sub.no_echo)], timeout, True)
        except BaseException:
            self._subs.pop(sub_id, None)
            raise
        sub.active = True
        return Subscription(self, sub)

    async def unsubscribe(
        self, subscription: Subscription | int, *, timeout: C.TimeoutArg = C.UNSET
    ) -> None:
        """End a subscription."""
        self._check_open()
        sub_id = subscription.sub_id if isinstance(subscription, Subscription) else subscription
        sub = self._subs.get(sub_id)
        if sub is None:
            raise error_for_status(13, f"no subscription {sub_id} on this client")
        sub.active = False
        try:
            if self._conn is not None and self._conn.usable():
                await self._run([C.req_unsubscribe(sub_id)], timeout, True)
        finally:
            self._subs.pop(sub_id, None)
            sub.end(None)

    def pipeline(self) -> Pipeline:
        """A Pipeline; ``async with client.pipeline() as p:`` runs it at the
        end of the block, results in ``p.results``."""
        return Pipeline(self)

    # --- internals -------------------------------------------------------

    def _new_sub_id(self) -> int:
        while True:
            sid = self._next_sub
            self._next_sub = sid + 1 if sid < P.MAX_U32 else 1
            if sid not in self._subs:
                return sid

    def _check_open(self) -> None:
        if self._closed:
            raise Error("this client is closed")

    def _deadline(self, timeout: C.TimeoutArg) -> float | None:
        t = self.timeout if isinstance(timeout, C.Unset) else P.check_timeout(timeout)
        return None if t is None else time.monotonic() + t

    async def _one(self, req: C.Req[T], timeout: C.TimeoutArg) -> T:
        return cast(T, (await self._run([req], timeout, True))[0])

    async def _run(
        self, reqs: list[C.Req[Any]], timeout: C.TimeoutArg, raise_errors: bool
    ) -> list[Any]:
        self._check_open()
        results = await self._exchange(reqs, self._deadline(timeout))
        if raise_errors:
            C.raise_first(results)
        return results

    @staticmethod
    def _left(deadline: float | None) -> float | None:
        if deadline is None:
            return None
        return max(0.0, deadline - time.monotonic())

    async def _open(self, deadline: float | None) -> _Conn:
        where = f"{self.host}:{self.port}"
        limit = self.connect_timeout
        left = self._left(deadline)
        if left is not None:
            limit = left if limit is None else min(limit, left)
        kwargs: dict[str, Any] = {}
        if self.ssl is not None:
            kwargs["ssl"] = self.ssl
            kwargs["server_hostname"] = self.server_hostname or self.host
            if limit is not None:
                kwargs["ssl_handshake_timeout"] = max(limit, 0.001)
        task = asyncio.ensure_future(
            asyncio.open_connection(self.host, self.port, limit=_RECV, **kwargs)
        )
        try:
            done, _ = await asyncio.wait([task], timeout=limit)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            task.cancel()
            raise TimeoutError(f"timed out connecting to {where}")
        try:
            reader, writer = task.result()
        except _ssl.SSLError as e:
            raise ConnectionError(f"TLS handshake with {where} failed: {e}") from None
        except (builtins.TimeoutError, asyncio.TimeoutError):
            raise TimeoutError(f"timed out connecting to {where}") from None
        except OSError as e:
            raise ConnectionError(f"cannot connect to {where}: {e}") from None
        conn = _Conn(reader, writer, self.max_frame_size)
        conn.task = asyncio.ensure_future(self._read_loop(conn))
        return conn

    async def _ensure(self, deadline: float | None) -> _Conn:
        self._check_open()
        if self._conn is not None and self._conn.usable():
            return self._conn
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            self._check_open()
            old = self._conn
            if old is not None and old.usable():
                return old
            if old is not None and old.pid != os.getpid():
                self._conn = None  # the parent's: leave it alone
            elif old is not None and not old.draining:
                old.kill("connection dropped")
            # A draining connection stays until its answers are in.
            conn = await self._open(deadline)
            self._conn = conn
            subs = [s for s in self._subs.values() if s.active and not s.closed]
            if subs:
                reqs: list[C.Req[Any]] = [
                    C.req_subscribe(s.sub_id, s.filter, s.no_echo) for s in subs
                ]
                results = await self._on_conn(conn, reqs, deadline)
                for sub, res in zip(subs, results):
                    if isinstance(res, C.Lost):
                        raise ConnectionError("connection lost while renewing subscriptions")
                    if isinstance(res, BaseException):
                        self._subs.pop(sub.sub_id, None)
                        sub.end(res)
            return conn

    async def _table(self, conn: _Conn, deadline: float | None) -> dict[str, Opcode] | None:
        if not conn.opcodes_known:
            # One OPCODES request per connection, however many tasks ask.
            if conn.table_task is None:
                conn.table_task = asyncio.ensure_future(
                    self._on_conn(conn, [C.req_opcodes()], deadline)
                )
            (res,) = await asyncio.shield(conn.table_task)
            if isinstance(res, C.Lost):
                raise res
            if isinstance(res, ServerError) and res.status == P.UNKNOWN_OPCODE:
                conn.opcodes = None
            elif isinstance(res, BaseException):
                raise res
            else:
                conn.opcodes = res
            conn.opcodes_known = True
        return conn.opcodes

    async def _exchange(self, reqs: list[C.Req[Any]], deadline: float | None) -> list[Any]:
        results: list[Any] = [None] * len(reqs)
        todo = list(range(len(reqs)))
        retried = False
        free = 0
        while todo:
            conn = await self._ensure(deadline)
            if any(reqs[i].opcode is None for i in todo):
                try:
                    table = await self._table(conn, deadline)
                except C.Lost:
                    free += 1
                    if free > _FREE_RECONNECTS:
                        raise ConnectionError("connection lost while asking for OPCODES") from None
                    continue
                for i in todo:
                    r = reqs[i]
                    if r.opcode is None:
                        assert r.name is not None
                        r.resolved(C.resolve_name(r.name, table), r.retriable)
            if not conn.usable():
                free += 1
                if free > _FREE_RECONNECTS:
                    raise ConnectionError(f"{self.host}:{self.port} keeps closing connections")
                continue
            out = await self._on_conn(conn, [reqs[i] for i in todo], deadline)
            lost = []
            for i, res in zip(todo, out):
                if isinstance(res, C.Lost):
                    lost.append(i)
                else:
                    results[i] = res
            if lost and not retried and all(reqs[i].retriable for i in lost):
                retried = True
                todo = lost
                continue
            if lost:
                what = ", ".join(f"0x{reqs[i].opcode:02x}" for i in lost[:4])
                raise ConnectionError(
                    f"connection to {self.host}:{self.port} lost before the answer "
                    f"to {len(lost)} request(s) ({what}): {conn.why}"
                )
            todo = []
        return results

    async def _on_conn(
        self, conn: _Conn, reqs: list[C.Req[Any]], deadline: float | None
    ) -> list[Any]:
        """Send reqs on conn; their results (a Lost where the connection
        went first).  Timeouts and cancellation drop the connection."""
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[Any]] = []
        chunks = []
        for r in reqs:
            rid = conn.next_id()
            op = r.opcode
            assert op is not None
            fut: asyncio.Future[Any] = loop.create_future()
            conn.pending.append((rid, op, fut))
            futs.append(fut)
            chunks.append(P.encode_request(op, rid, r.payload))
        conn.writer.write(b"".join(chunks))
        drain = asyncio.ensure_future(self._drain(conn))
        waiting: set[asyncio.Future[Any]] = set(futs)
        waiting.add(drain)
        try:
            _, not_done = await asyncio.wait(waiting, timeout=self._left(deadline))
        except BaseException:
            self._abandon(conn, futs, drain, "request cancelled")
            raise
        if not_done - {drain}:
            self._abandon(conn, futs, drain, "request timed out")
            raise TimeoutError(
                f"no answer from {self.host}:{self.port} in time; connection closed"
            )
        drain.cancel()
        out: list[Any] = []
        for r, fut in zip(reqs, futs):
            exc = fut.exception()
            if exc is not None:
                if isinstance(exc, ProtocolError):
                    raise exc
                out.append(exc)
                continue
            res = fut.result()
            out.append(res if isinstance(res, BaseException) else C.answer_result(r, res))
        return out

    @staticmethod
    async def _drain(conn: _Conn) -> None:
        try:
            await conn.writer.drain()
        except (OSError, RuntimeError):
            pass  # the reader sees the connection end

    def _abandon(
        self, conn: _Conn, futs: list[asyncio.Future[Any]], drain: asyncio.Future[Any], why: str
    ) -> None:
        drain.cancel()
        for f in futs:
            f.cancel()
        conn.kill(why)
        if self._conn is conn:
            self._conn = None

    async def _read_loop(self, conn: _Conn) -> None:
        why = "connection closed by the server"
        try:
            while not conn.dead:
                data = await conn.reader.read(_RECV)
                if not data:
                    break
                conn.decoder.feed(data)
                while not conn.dead:
                    frame = conn.decoder.next_frame()
                    if frame is None:
                        break
                    self._on_frame(conn, frame)
                if conn.draining and not conn.pending:
                    why = "connection drained (GOAWAY)"
                    break
        except asyncio.CancelledError:
            why = conn.why
        except ProtocolError as e:
            why = f"protocol error: {e}"
            for _, _, fut in conn.pending:
                if not fut.done():
                    fut.set_exception(ProtocolError(str(e)))
        except OSError as e:
            why = f"connection lost: {e}"
        finally:
            conn.kill(why)
            if self._conn is conn:
                self._conn = None
            self._after_loss(conn)

    def _on_frame(self, conn: _Conn, frame: P.Frame) -> None:
        if frame.request_id == 0:
            if frame.code == P.OK:
                self._push(conn, frame)
                return
            err = C.conn_error(frame)
            if conn.pending:
                _, _, fut = conn.pending.popleft()
                if not fut.done():
                    fut.set_result(err)
                if err.CLOSES_CONNECTION:
                    conn.dead = True
            else:
                conn.dead = True
            return
        if not conn.pending:
            raise ProtocolError(f"answer for request_id {frame.request_id}, none expected")
        rid, op, fut = conn.pending[0]
        C.check_answer(frame, rid, op)
        conn.pending.popleft()
        if not fut.done():
            fut.set_result(frame)

    def _push(self, conn: _Conn, frame: P.Frame) -> None:
        if frame.opcode == P.GOAWAY:
            P.parse_goaway(frame.payload)
            conn.draining = True
            self._after_loss(conn)
        elif frame.opcode == P.MESSAGE:
            msg = P.parse_message(frame.payload)
            if self._conn is not conn:
                return  # superseded: the subscription lives on elsewhere
            sub = self._subs.get(msg.sub_id)
            if sub is not None and not sub.closed:
                sub.queue.append(msg)
                sub.event.set()
        elif frame.opcode == P.NOTICE:
            reason, text = P.parse_notice(frame.payload)
            if reason == P.NOTICE_SHUTDOWN:
                conn.draining = True
                self._after_loss(conn)
            elif reason in (P.NOTICE_SLOW_CONSUMER, P.NOTICE_PERMISSIONS_CHANGED):
                name = "slow consumer" if reason == P.NOTICE_SLOW_CONSUMER else "permissions changed"
                for sub in self._subs.values():
                    sub.end(SubscriptionClosed(f"{name}: {text}", reason))
                self._subs.clear()

    def _after_loss(self, conn: _Conn) -> None:
        """conn ended or is draining: move live subscriptions to a new one."""
        if self._closed or not any(s.active and not s.closed for s in self._subs.values()):
            return
        if self._renew is not None and not self._renew.done():
            return
        self._renew = asyncio.ensure_future(self._renew_subs())

    async def _renew_subs(self) -> None:
        try:
            await self._ensure(self._deadline(C.UNSET))
        except Error as e:
            for sub in self._subs.values():
                sub.end(ConnectionError(f"subscription lost: {e}"))
            self._subs.clear()


class Subscription:
    """Messages of one subscription: ``async for msg in sub``, or
    :meth:`get`.  ``async with`` unsubscribes at the end of the block."""

    def __init__(self, client: Client, sub: _Sub) -> None:
        self._client = client
        self._sub = sub

    @property
    def sub_id(self) -> int:
        """The subscription's id on its connection."""
        return self._sub.sub_id

    @property
    def filter(self) -> str:
        """The filter subscribed to."""
        return self._sub.filter.decode("utf-8", "replace")

    @property
    def active(self) -> bool:
        """False once unsubscribed or ended by the server."""
        return not self._sub.closed

    async def get(self, timeout: float | None = None) -> Message | None:
        """The next message within timeout seconds (None: no bound); None
        on timeout or when the subscription has ended."""
        timeout = P.check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        sub = self._sub
        while True:
            if sub.queue:
                return sub.queue.popleft()
            if sub.closed:
                if sub.error is not None:
                    err, sub.error = sub.error, None
                    raise err
                return None
            sub.event.clear()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            waiter = asyncio.ensure_future(sub.event.wait())
            try:
                await asyncio.wait([waiter], timeout=left)
            finally:
                waiter.cancel()

    async def unsubscribe(self) -> None:
        """End the subscription (no-op if it has already ended)."""
        if not self._sub.closed:
            await self._client.unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        msg = await self.get(None)
        if msg is None:
            raise StopAsyncIteration
        return msg

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._sub.closed and not self._client._closed:
            try:
                await self.unsubscribe()
            except (ConnectionError, TimeoutError, ServerError):
                pass

    def __repr__(self) -> str:
        state = "active" if self.active else "ended"
        return f"<socketd.aio.Subscription {self.sub_id} {self.filter!r} {state}>"


class Pipeline:
    """As :class:`socketd.Pipeline`, with ``await p.execute()``."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._reqs: list[C.Req[Any]] = []
        self.results: list[Any] | None = None

    def __len__(self) -> int:
        return len(self._reqs)

    def ping(self) -> Self:
        """Queue a PING."""
        self._reqs.append(C.req_ping())
        return self

    def echo(self, data: bytes) -> Self:
        """Queue an ECHO."""
        self._reqs.append(C.req_echo(data))
        return self

    def info(self) -> Self:
        """Queue an INFO."""
        self._reqs.append(C.req_info())
        return self

    def stats(self) -> Self:
        """Queue a STATS."""
        self._reqs.append(C.req_stats())
        return self

    def time(self) -> Self:
        """Queue a TIME."""
        self._reqs.append(C.req_time())
        return self

    def opcodes(self) -> Self:
        """Queue an OPCODES."""
        self._reqs.append(C.req_opcodes())
        return self

    def call(self, name_or_opcode: int | str, payload: bytes = b"", *, retry: bool = False) -> Self:
        """Queue a call."""
        self._reqs.append(C.req_call(name_or_opcode, payload, retry))
        return self

    def publish(self, topic: str | bytes, data: bytes = b"") -> Self:
        """Queue a PUBLISH."""
        self._reqs.append(C.req_publish(topic, data))
        return self

    async def execute(
        self, *, raise_on_error: bool = True, timeout: C.TimeoutArg = C.UNSET
    ) -> list[Any]:
        """Send every queued request; the results in order."""
        reqs, self._reqs = self._reqs, []
        self.results = await self._client._run(reqs, timeout, False) if reqs else []
        if raise_on_error:
            C.raise_first(self.results)
        return self.results

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self._reqs:
            await self.execute()

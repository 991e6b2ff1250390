"""The blocking client: socketd.Client.

One Client owns at most one connection at a time and opens it when the
first request needs it.  All methods are thread-safe: a lock serializes
requests (use a pipeline, or one Client per thread, for throughput) while
a subscription's iterator waits for messages without holding it.

Every request runs under one deadline (the client's ``timeout``, or the
call's).  The socket is non-blocking and polled, so the deadline holds
however the server behaves; when it passes, the connection is closed and
:class:`socketd.TimeoutError` raised: a late answer can never reach the
next request.  Answers are matched to requests by request_id.
"""

from __future__ import annotations

import builtins
import collections
import datetime
import os
import select
import socket
import ssl as _ssl
import threading
import time
import weakref
from collections.abc import Iterator
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

__all__ = ["Client", "Pipeline", "Subscription"]

_RECV = 256 * 1024
_FREE_RECONNECTS = 3  # connections found closed before a byte was sent
T = TypeVar("T")

# Clients alive in this process, reset in a child after fork().
_clients: weakref.WeakSet[Client] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for c in list(_clients):
        c._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _describe(e: BaseException) -> str:
    return str(e) or type(e).__name__


class _Conn:
    """One connection: its socket, decoder and per-connection state."""

    def __init__(self, sock: socket.socket, max_frame: int) -> None:
        self.sock = sock
        self.pid = os.getpid()
        self.decoder = P.FrameDecoder(max_frame)
        self.next_id = P.RequestIds()
        self.opcodes: dict[str, Opcode] | None = None
        self.opcodes_known = False
        self.draining = False  # GOAWAY seen: send nothing new
        self.dead = False  # EOF, reset or error: never use again

    def close(self) -> None:
        """Close the socket; shut it down only in the process that made it
        (a forked child must not end the parent's connection)."""
        self.dead = True
        try:
            if self.pid == os.getpid():
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.sock.close()
        except OSError:
            pass

    def fileno(self) -> int:
        return self.sock.fileno()


class _Sub:
    """A subscription's state, kept by the client across reconnects."""

    def __init__(self, sub_id: int, filt: bytes, no_echo: bool) -> None:
        self.sub_id = sub_id
        self.filter = filt
        self.no_echo = no_echo
        self.queue: collections.deque[Message] = collections.deque()
        self.closed = False
        self.active = False  # the server has confirmed it
        self.error: BaseException | None = None


def _poll(sock: socket.socket, write: bool, deadline: float | None) -> tuple[bool, bool]:
    """Wait until sock is readable (always asked) or writable (if write).
    Returns (readable, writable); both False when the deadline passed."""
    if isinstance(sock, _ssl.SSLSocket) and sock.pending() > 0:
        return True, False
    mask = select.POLLIN | (select.POLLOUT if write else 0)
    p = select.poll()
    p.register(sock.fileno(), mask)
    while True:
        if deadline is None:
            ms = None
        else:
            left = deadline - time.monotonic()
            ms = max(0, int(left * 1000 + 0.999))
        try:
            events = p.poll(ms)
        except InterruptedError:
            continue
        if not events:
            return False, False
        ev = events[0][1]
        err = select.POLLERR | select.POLLHUP | select.POLLNVAL
        return bool(ev & (select.POLLIN | err)), bool(ev & (select.POLLOUT | err))


class Client:
    """A blocking connection to a socketd server.

    ``Client(host, port, timeout=5.0)`` makes no connection yet; the first
    request (or :meth:`connect`, or ``with``) does.  ``timeout`` bounds
    each request, connecting included; None means no bound, and must be
    asked for.  ``connect_timeout`` (default: ``timeout``) bounds making
    the connection.  ``ssl`` is an :class:`ssl.SSLContext` for a tls://
    listener; ``server_hostname`` defaults to ``host``.

    Requests lost with their connection (EOF or reset before the answer)
    are sent again once, on a new connection, when they are idempotent:
    the built-in ones (ping, echo, info, stats, time, opcodes) and calls
    made with ``retry=True``.  A connection the server closed while idle,
    or drained with GOAWAY, is replaced without counting as a retry.
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
        self._lock = threading.Lock()
        self._conn: _Conn | None = None
        self._closed = False
        self._subs: dict[int, _Sub] = {}
        self._next_sub = 1
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        _clients.add(self)

    # --- lifecycle -------------------------------------------------------

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - nothing to report at exit
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("connected" if self.connected else "idle")
        return f"<socketd.Client {self.host}:{self.port} {state}>"

    @property
    def connected(self) -> bool:
        """Whether a usable connection is open now."""
        c = self._conn
        return c is not None and not c.dead and c.pid == os.getpid()

    def connect(self) -> None:
        """Open the connection now (requests do it when needed)."""
        with self._lock:
            self._ensure(self._deadline(C.UNSET))

    def close(self) -> None:
        """Close the connection and end every subscription.  The client
        cannot be used afterwards."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._drop()
            for sub in self._subs.values():
                sub.closed = True
            self._subs.clear()
            self._wake_w.close()
            self._wake_r.close()

    def _forked(self) -> None:
        # In a child after fork(): nothing of the parent's connection may
        # be used, not even the lock another thread may have held.
        self._lock = threading.Lock()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # pid differs: close(2) only, no shutdown
        for sub in self._subs.values():
            sub.closed = True
            sub.error = ConnectionError("the subscription belongs to the parent process")
        self._subs = {}
        if not self._closed:
            self._wake_r.close()
            self._wake_w.close()
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)

    # --- the requests ----------------------------------------------------

    def ping(self, *, timeout: C.TimeoutArg = C.UNSET) -> None:
        """PING: returns when the server answered."""
        self._one(C.req_ping(), timeout)

    def echo(self, data: bytes, *, timeout: C.TimeoutArg = C.UNSET) -> bytes:
        """ECHO: the server's copy of data."""
        return self._one(C.req_echo(data), timeout)

    def info(self, *, timeout: C.TimeoutArg = C.UNSET) -> dict[str, str]:
        """INFO as a dict of name -> value (both str)."""
        return self._one(C.req_info(), timeout)

    def stats(self, *, timeout: C.TimeoutArg = C.UNSET) -> dict[str, int]:
        """STATS as a dict of name -> int (non-integer lines skipped)."""
        return self._one(C.req_stats(), timeout)

    def time(self, *, timeout: C.TimeoutArg = C.UNSET) -> datetime.datetime:
        """TIME: the server's clock as an aware UTC datetime.datetime."""
        return self._one(C.req_time(), timeout)

    def time_ns(self, *, timeout: C.TimeoutArg = C.UNSET) -> int:
        """TIME: the server's clock in nanoseconds since the Unix epoch."""
        return self._one(C.req_time_ns(), timeout)

    def opcodes(self, *, timeout: C.TimeoutArg = C.UNSET) -> dict[str, Opcode]:
        """OPCODES: name -> Opcode(code, name, push) for every opcode the
        server serves.  Raises UnknownOpcode on a server without it."""
        result: dict[str, Opcode] = self._one(C.req_opcodes(), timeout)
        conn = self._conn
        if conn is not None:
            conn.opcodes, conn.opcodes_known = result, True
        return result

    def call(
        self,
        name_or_opcode: int | str,
        payload: bytes = b"",
        *,
        timeout: C.TimeoutArg = C.UNSET,
        retry: bool = False,
    ) -> bytes:
        """Send payload to an opcode (0..255) or a name such as
        ``"hello.upper"`` (resolved through OPCODES, cached for the
        connection) and return the answer's payload.  An error status
        raises its ServerError subclass.  ``retry=True`` says the request
        may be sent twice if the connection is lost before its answer.
        """
        return self._one(C.req_call(name_or_opcode, payload, retry), timeout)

    def publish(
        self, topic: str | bytes, data: bytes = b"", *, timeout: C.TimeoutArg = C.UNSET
    ) -> int:
        """PUBLISH data on topic; returns how many subscriptions it was
        routed to (not a proof of delivery).  Not retried."""
        return self._one(C.req_publish(topic, data), timeout)

    def subscribe(
        self,
        filter: str | bytes,
        *,
        no_echo: bool = False,
        timeout: C.TimeoutArg = C.UNSET,
    ) -> Subscription:
        """SUBSCRIBE to filter (``*`` one token, ``>`` the rest) and
        return the Subscription, an iterator of Message.  ``no_echo``:
        messages this connection publishes are not delivered to it."""
        filt = P.encode_text(filter, "filter")
        with self._lock:
            self._check_open()
            sub_id = self._new_sub_id()
            sub = _Sub(sub_id, filt, bool(no_echo))
            self._subs[sub_id] = sub
            try:
                self._run([C.req_subscribe(sub_id, filt, sub.no_echo)], timeout, True)
            except BaseException:
                self._subs.pop(sub_id, None)
                raise
            sub.active = True
        return Subscription(self, sub)

    def unsubscribe(
        self, subscription: Subscription | int, *, timeout: C.TimeoutArg = C.UNSET
    ) -> None:
        """End a subscription (messages already received stay readable)."""
        sub_id = subscription.sub_id if isinstance(subscription, Subscription) else subscription
        with self._lock:
            self._check_open()
            sub = self._subs.get(sub_id)
            if sub is None:
                raise error_for_status(13, f"no subscription {sub_id} on this client")
            conn = self._conn
            sub.active = False  # not to be renewed by a reconnect
            if conn is not None and not conn.dead and not conn.draining:
                try:
                    self._run([C.req_unsubscribe(sub_id)], timeout, True)
                finally:
                    self._subs.pop(sub_id, None)
                    sub.closed = True
            else:
                # No connection holds it: the server has forgotten it.
                self._subs.pop(sub_id, None)
                sub.closed = True
        self._wake()

    def pipeline(self) -> Pipeline:
        """A Pipeline: queue requests, send them together, get every
        answer in order.  ``with client.pipeline() as p: ...`` runs it at
        the end of the block; the results are then in ``p.results``."""
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

    def _one(self, req: C.Req[T], timeout: C.TimeoutArg) -> T:
        with self._lock:
            self._check_open()
            return cast(T, self._run([req], timeout, True)[0])

    def _run(self, reqs: list[C.Req[Any]], timeout: C.TimeoutArg, raise_errors: bool) -> list[Any]:
        """Send reqs (lock held), return their results in order."""
        deadline = self._deadline(timeout)
        results = self._exchange(reqs, deadline)
        if raise_errors:
            C.raise_first(results)
        return results

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connect_sock(self, deadline: float | None) -> socket.socket:
        limit = self.connect_timeout
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out connecting to {self.host}:{self.port}")
            limit = left if limit is None else min(limit, left)
        where = f"{self.host}:{self.port}"
        try:
            sock = socket.create_connection((self.host, self.port), timeout=limit, all_errors=True)
        except ExceptionGroup as eg:
            errs = eg.exceptions
            if all(isinstance(e, builtins.TimeoutError) for e in errs):
                raise TimeoutError(f"timed out connecting to {where}") from None
            msg = "; ".join(_describe(e) for e in errs)
            raise ConnectionError(f"cannot connect to {where}: {msg}") from None
        except builtins.TimeoutError:
            raise TimeoutError(f"timed out connecting to {where}") from None
        except OSError as e:
            raise ConnectionError(f"cannot connect to {where}: {_describe(e)}") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl is not None:
                host = self.server_hostname or self.host
                sock = self.ssl.wrap_socket(sock, server_hostname=host)
            sock.setblocking(False)
        except builtins.TimeoutError:
            sock.close()
            raise TimeoutError(f"timed out in the TLS handshake with {where}") from None
        except _ssl.SSLError as e:
            sock.close()
            raise ConnectionError(f"TLS handshake with {where} failed: {_describe(e)}") from None
        except OSError as e:
            sock.close()
            raise ConnectionError(f"TLS handshake with {where} failed: {_describe(e)}") from None
        return sock

    def _usable(self, conn: _Conn) -> bool:
        """Whether conn can take a new request; reads what it has pending
        (pushes, EOF) without blocking."""
        if conn.dead or conn.draining or conn.pid != os.getpid():
            return False
        self._pump(conn)
        return not conn.dead and not conn.draining

    def _ensure(self, deadline: float | None) -> _Conn:
        """The current connection, replaced first if unusable."""
        self._check_open()
        conn = self._conn
        if conn is not None and self._usable(conn):
            return conn
        self._drop()
        conn = _Conn(self._connect_sock(deadline), self.max_frame_size)
        self._conn = conn
        if self._subs:
            self._resubscribe(conn, deadline)
        return conn

    def _resubscribe(self, conn: _Conn, deadline: float | None) -> None:
        subs = [s for s in self._subs.values() if s.active and not s.closed]
        if not subs:
            return
        reqs: list[C.Req[Any]] = [C.req_subscribe(s.sub_id, s.filter, s.no_echo) for s in subs]
        results = self._on_conn(conn, reqs, list(range(len(reqs))), [None] * len(reqs), deadline)
        if results is None:
            raise ConnectionError("connection lost while renewing subscriptions")
        for sub, res in zip(subs, results):
            if isinstance(res, BaseException):
                self._subs.pop(sub.sub_id, None)
                sub.closed = True
                sub.error = res
        self._wake()

    def _exchange(self, reqs: list[C.Req[Any]], deadline: float | None) -> list[Any]:
        results: list[Any] = [None] * len(reqs)
        todo = list(range(len(reqs)))
        retried = False
        free = 0
        while todo:
            conn = self._ensure(deadline)
            if any(reqs[i].opcode is None for i in todo):
                ok, table = self._table(conn, deadline)
                if not ok:
                    free += 1
                    if free > _FREE_RECONNECTS:
                        raise ConnectionError("connection lost while asking for OPCODES")
                    continue
                for i in todo:
                    r = reqs[i]
                    if r.opcode is None:
                        assert r.name is not None
                        r.resolved(C.resolve_name(r.name, table), r.retriable)
            out = self._on_conn(conn, reqs, todo, results, deadline)
            if out is None:
                # Closed before a byte was sent (an idle close racing us).
                free += 1
                if free > _FREE_RECONNECTS:
                    raise ConnectionError(
                        f"{self.host}:{self.port} keeps closing new connections"
                    )
                continue
            todo, lost = out
            if lost:
                if retried or not all(reqs[i].retriable for i in lost):
                    what = ", ".join(f"0x{reqs[i].opcode:02x}" for i in lost[:4])
                    raise ConnectionError(
                        f"connection to {self.host}:{self.port} lost before the answer "
                        f"to {len(lost)} request(s) ({what})"
                    )
                retried = True
                todo = sorted(set(todo) | set(lost))
        return results

    def _table(
        self, conn: _Conn, deadline: float | None
    ) -> tuple[bool, dict[str, Opcode] | None]:
        """(True, conn's OPCODES table) fetched once per connection, the
        table None if the server has no OPCODES; (False, None) if the
        connection went away first."""
        if not conn.opcodes_known:
            res: list[Any] = [None]
            out = self._on_conn(conn, [C.req_opcodes()], [0], res, deadline)
            if out is None or out[0] or out[1]:
                return False, None
            if isinstance(res[0], ServerError) and res[0].status == P.UNKNOWN_OPCODE:
                conn.opcodes = None
            elif isinstance(res[0], BaseException):
                raise res[0]
            else:
                conn.opcodes = res[0]
            conn.opcodes_known = True
        return True, conn.opcodes

    def _on_conn(
        self,
        conn: _Conn,
        reqs: list[C.Req[Any]],
        todo: list[int],
        results: list[Any],
        deadline: float | None,
    ) -> Any:
        """Send reqs[todo] on conn and read their answers into results.

        Returns (unsent, lost): the indices not sent because a GOAWAY
        came (send them on a new connection) and those sent but lost with
        the connection; or None if the connection was found closed before
        anything was sent.  Raises TimeoutError (connection dropped),
        ProtocolError (dropped), or anything else after dropping it.
        """
        to_send = collections.deque(todo)
        inflight: collections.deque[tuple[int, int, int]] = collections.deque()
        cur: memoryview | None = None
        sent_any = False
        try:
            while True:
                if cur is None and to_send and not conn.draining and not conn.dead:
                    i = to_send.popleft()
                    rid = conn.next_id()
                    op = reqs[i].opcode
                    assert op is not None
                    cur = memoryview(P.encode_request(op, rid, reqs[i].payload))
                    inflight.append((i, rid, op))
                if cur is None and not inflight:
                    return list(to_send), []
                if conn.dead:
                    lost = [i for i, _, _ in inflight]
                    if not sent_any:
                        return None
                    return list(to_send), lost
                readable, writable = _poll(conn.sock, cur is not None, deadline)
                if not readable and not writable:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(self._timeout_text(reqs, inflight, deadline))
                    continue
                if writable and cur is not None:
                    try:
                        n = conn.sock.send(cur)
                    except (BlockingIOError, _ssl.SSLWantWriteError, _ssl.SSLWantReadError):
                        n = 0
                    except OSError:
                        # Stop sending; answers already on their way
                        # (TOO_LARGE, BUSY) are still read, then EOF.
                        n = 0
                        cur = None
                        conn.draining = True
                    if n and cur is not None:
                        sent_any = True
                        cur = cur[n:] if n < len(cur) else None
                if readable:
                    self._read_some(conn, inflight, results, reqs)
        except BaseException:
            self._drop()
            raise

    def _timeout_text(self, reqs: list[C.Req[Any]], inflight: Any, deadline: float | None) -> str:
        op = reqs[inflight[0][0]].opcode if inflight else None
        what = f" to request 0x{op:02x}" if op is not None else ""
        return f"no answer{what} from {self.host}:{self.port} in time; connection closed"

    def _read_some(
        self,
        conn: _Conn,
        inflight: collections.deque[tuple[int, int, int]],
        results: list[Any],
        reqs: list[C.Req[Any]],
    ) -> None:
        """One recv on conn, and the frames it completes."""
        try:
            data = conn.sock.recv(_RECV)
        except (BlockingIOError, _ssl.SSLWantReadError, _ssl.SSLWantWriteError):
            return
        except OSError:
            data = b""
        if not data:
            conn.dead = True
            return
        conn.decoder.feed(data)
        while not conn.dead:
            frame = conn.decoder.next_frame()
            if frame is None:
                return
            if frame.request_id == 0:
                if frame.code == P.OK:
                    self._push(conn, frame)
                    continue
                # An error without a request_id (BUSY, DENIED, TOO_LARGE):
                # it answers the oldest request; without one to answer,
                # the connection is not to be trusted any more.
                err = C.conn_error(frame)
                if inflight:
                    i, _, _ = inflight.popleft()
                    results[i] = err
                    if err.CLOSES_CONNECTION:
                        conn.dead = True
                else:
                    conn.dead = True
                continue
            if not inflight:
                raise ProtocolError(f"answer for request_id {frame.request_id}, none expected")
            i, rid, op = inflight[0]
            C.check_answer(frame, rid, op)
            inflight.popleft()
            results[i] = C.answer_result(reqs[i], frame)

    def _push(self, conn: _Conn, frame: P.Frame) -> None:
        """A push frame; unknown opcodes are ignored."""
        if frame.opcode == P.GOAWAY:
            P.parse_goaway(frame.payload)
            conn.draining = True
            self._wake()
        elif frame.opcode == P.MESSAGE:
            msg = P.parse_message(frame.payload)
            sub = self._subs.get(msg.sub_id)
            if sub is not None and not sub.closed:
                sub.queue.append(msg)
                self._wake()
        elif frame.opcode == P.NOTICE:
            reason, text = P.parse_notice(frame.payload)
            if reason == P.NOTICE_SHUTDOWN:
                conn.draining = True
            elif reason in (P.NOTICE_SLOW_CONSUMER, P.NOTICE_PERMISSIONS_CHANGED):
                name = "slow consumer" if reason == P.NOTICE_SLOW_CONSUMER else "permissions changed"
                for sub in self._subs.values():
                    sub.closed = True
                    sub.error = SubscriptionClosed(f"{name}: {text}", reason)
                self._subs.clear()
            self._wake()

    def _pump(self, conn: _Conn) -> None:
        """Read whatever conn has now, without blocking (lock held)."""
        empty: collections.deque[tuple[int, int, int]] = collections.deque()
        try:
            while not conn.dead:
                readable, _ = _poll(conn.sock, False, 0.0)
                if not readable:
                    return
                before = conn.decoder.buffered()
                self._read_some(conn, empty, [], [])
                if conn.decoder.buffered() == before and not conn.dead:
                    return  # TLS: readable, but no whole record yet
        except BaseException:
            self._drop()
            raise

    def _wait_message(self, sub: _Sub, timeout: float | None) -> Message | None:
        """Next message for sub; None when it has ended or on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if sub.queue:
                    return sub.queue.popleft()
                if sub.closed or self._closed:
                    if sub.error is not None:
                        err, sub.error = sub.error, None
                        raise err
                    return None
                conn = self._conn
                if conn is None or not self._usable(conn):
                    try:
                        conn = self._ensure(self._deadline(C.UNSET))
                    except Error as e:
                        self._subs.pop(sub.sub_id, None)
                        sub.closed = True
                        raise ConnectionError(f"subscription lost: {e}") from None
                    continue
                fds = [conn.fileno(), self._wake_r.fileno()]
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                slice_ = min(left, 1.0)
            else:
                slice_ = 1.0
            try:
                select.select(fds, [], [], slice_)
            except (OSError, ValueError):
                pass  # the connection was closed meanwhile: look again
            try:
                while self._wake_r.recv(4096):
                    pass
            except OSError:
                pass


class Subscription:
    """Messages of one subscription: iterate, or call :meth:`get`.

    The iterator blocks until a message arrives and ends after
    :meth:`unsubscribe`.  Use it as a context manager to unsubscribe at
    the end of a block.  A lost connection is reopened and the
    subscription renewed; messages published meanwhile are missed (pub/sub
    is at most once).  If the server ends the subscriptions (slow
    consumer, permissions), iterating raises SubscriptionClosed.
    """

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

    def get(self, timeout: float | None = None) -> Message | None:
        """The next message, waiting up to timeout seconds (None: until one
        comes).  Returns None on timeout or when the subscription has
        ended; the connection stays usable either way."""
        return self._client._wait_message(self._sub, P.check_timeout(timeout))

    def unsubscribe(self) -> None:
        """End the subscription (no-op if it has already ended)."""
        if not self._sub.closed:
            self._client.unsubscribe(self)

    def __iter__(self) -> Iterator[Message]:
        return self

    def __next__(self) -> Message:
        msg = self.get(None)
        if msg is None:
            raise StopIteration
        return msg

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._sub.closed and not self._client._closed:
            try:
                self.unsubscribe()
            except (ConnectionError, TimeoutError, ServerError):
                pass

    def __repr__(self) -> str:
        state = "active" if self.active else "ended"
        return f"<socketd.Subscription {self.sub_id} {self.filter!r} {state}>"


class Pipeline:
    """Requests queued, then sent together; answers come back in order.

    Each method queues a request and returns the pipeline, so calls
    chain.  :meth:`execute` sends them (several at once, reading answers
    as they come, so any number may be queued) and returns the results in
    order: None for ping, bytes for echo and call, dicts for info and
    stats...  With ``raise_on_error=True`` (the default) the first error
    is raised after every answer has been read; otherwise errors are
    returned in their place.  ``with client.pipeline() as p:`` executes
    at the end of the block (unless it raised) and keeps the list in
    ``p.results``.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._reqs: list[C.Req[Any]] = []
        self.results: list[Any] | None = None

    def __len__(self) -> int:
        return len(self._reqs)

    def ping(self) -> Self:
        """Queue a PING (result None)."""
        self._reqs.append(C.req_ping())
        return self

    def echo(self, data: bytes) -> Self:
        """Queue an ECHO (result bytes)."""
        self._reqs.append(C.req_echo(data))
        return self

    def info(self) -> Self:
        """Queue an INFO (result dict[str, str])."""
        self._reqs.append(C.req_info())
        return self

    def stats(self) -> Self:
        """Queue a STATS (result dict[str, int])."""
        self._reqs.append(C.req_stats())
        return self

    def time(self) -> Self:
        """Queue a TIME (result datetime)."""
        self._reqs.append(C.req_time())
        return self

    def opcodes(self) -> Self:
        """Queue an OPCODES (result dict[str, Opcode])."""
        self._reqs.append(C.req_opcodes())
        return self

    def call(self, name_or_opcode: int | str, payload: bytes = b"", *, retry: bool = False) -> Self:
        """Queue a call (result bytes)."""
        self._reqs.append(C.req_call(name_or_opcode, payload, retry))
        return self

    def publish(self, topic: str | bytes, data: bytes = b"") -> Self:
        """Queue a PUBLISH (result: the receivers count)."""
        self._reqs.append(C.req_publish(topic, data))
        return self

    def execute(self, *, raise_on_error: bool = True, timeout: C.TimeoutArg = C.UNSET) -> list[Any]:
        """Send every queued request and return the results in order.
        The queue is empty afterwards."""
        reqs, self._reqs = self._reqs, []
        if not reqs:
            self.results = []
            return []
        c = self._client
        with c._lock:
            c._check_open()
            self.results = c._run(reqs, timeout, False)
        if raise_on_error:
            C.raise_first(self.results)
        return self.results

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self._reqs:
            self.execute()

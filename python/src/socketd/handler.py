"""Handler processes: serve opcodes from Python under socketd.

socketd starts a handler process with fd 0 (and fd 1) a connected Unix
stream socket and speaks protocol v1 to it, as a client: first an OPCODES
request, then requests whose opcode is a handler's offset (0, 1, ...).

    import socketd

    def upper(data: bytes) -> bytes:
        return data.upper()

    socketd.serve({"upper": upper})

:func:`serve` answers one request at a time, in order.  The asyncio
variant, :func:`socketd.aio.serve`, runs each request in its own task and
answers each as soon as it is done, so answers may leave out of order
(socketd puts them back in each client's order).

A handler takes the payload (bytes) and returns bytes (or None for an
empty answer): status OK.  Raising a :class:`socketd.ServerError`
subclass answers with its status and message (``raise
socketd.BadRequest("want a number")``).  Any other exception answers
INTERNAL with a short message, prints the traceback on stderr (which
socketd logs) and the process serves on.

The OPCODES answer lists the handlers in dict order, offsets from 0::

    0x00 upper
    0x01 sleep

Opcode 0x05 is both OPCODES and the offset of a sixth handler: it is
answered as OPCODES when it is the first request of the connection (the
start-up handshake) or when there is no sixth handler; otherwise it goes
to the sixth handler.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Union

from . import _proto as P
from .errors import ProtocolError, ServerError

__all__ = ["serve", "serve_async", "Handler", "AsyncHandler"]

Result = Union[bytes, bytearray, memoryview, None]
Handler = Callable[[bytes], Result]
AsyncHandler = Callable[[bytes], Union[Result, Awaitable[Result]]]

_MAX_HANDLERS = 128  # opcodes 0x80-0xff at most
_MSG_MAX = 200


def _table(handlers: Mapping[str, Any]) -> list[tuple[str, Any]]:
    if not isinstance(handlers, Mapping):
        raise TypeError("handlers must be a mapping of name -> callable")
    items = list(handlers.items())
    if not items:
        raise ValueError("no handlers to serve")
    if len(items) > _MAX_HANDLERS:
        raise ValueError(f"{len(items)} handlers: at most {_MAX_HANDLERS}")
    for name, fn in items:
        if not isinstance(name, str):
            raise TypeError(f"handler name {name!r} is not a str")
        P.format_opcodes([P.Opcode(0, name, False)])  # validates the name
        if not callable(fn):
            raise TypeError(f"handler {name!r} is not callable")
    return items


class _Dispatch:
    """What both variants share: decoding, OPCODES, error answers."""

    def __init__(self, handlers: Mapping[str, Any], max_frame: int) -> None:
        self.items = _table(handlers)
        self.listing = P.format_opcodes(
            [P.Opcode(i, name, False) for i, (name, _) in enumerate(self.items)]
        )
        self.decoder = P.FrameDecoder(max_frame)
        self.seen_first = False

    def route(self, body: bytes) -> tuple[bytes | None, P.Frame | None, Any]:
        """Decide about one frame body: (answer now, None, None) or
        (None, request, handler) for a handler to run."""
        first = not self.seen_first
        self.seen_first = True
        if len(body) < P.HEADER_SIZE:
            return (
                P.encode_frame(0, P.BAD_REQUEST, 0, b"frame shorter than its 8-byte header"),
                None,
                None,
            )
        req = P.parse_body(body)
        if req.version != P.VERSION:
            msg = f"unsupported protocol version {req.version}".encode()
            return P.encode_frame(req.opcode, P.UNSUPPORTED_VERSION, req.request_id, msg), None, None
        if req.code != 0:
            return P.encode_frame(req.opcode, P.BAD_REQUEST, req.request_id, b"flags must be zero"), None, None
        if req.opcode == P.OPCODES and (first or len(self.items) <= P.OPCODES):
            if req.payload:
                return (
                    P.encode_frame(req.opcode, P.BAD_REQUEST, req.request_id, b"OPCODES takes no payload"),
                    None,
                    None,
                )
            return P.encode_frame(req.opcode, P.OK, req.request_id, self.listing), None, None
        if req.opcode >= len(self.items):
            msg = f"unknown opcode 0x{req.opcode:02x}".encode()
            return P.encode_frame(req.opcode, P.UNKNOWN_OPCODE, req.request_id, msg), None, None
        return None, req, self.items[req.opcode]


def _ok(req: P.Frame, result: object) -> bytes:
    if result is None:
        result = b""
    if not isinstance(result, (bytes, bytearray, memoryview)):
        raise TypeError(f"handler returned {type(result).__name__}, not bytes")
    return P.encode_frame(req.opcode, P.OK, req.request_id, bytes(result))


def _failed(req: P.Frame, name: str, e: BaseException) -> bytes:
    if isinstance(e, ServerError):
        return P.encode_frame(req.opcode, e.status, req.request_id, e.message.encode("utf-8")[:4096])
    print(f"socketd handler {name!r}: request {req.request_id}:", file=sys.stderr)
    traceback.print_exception(e, file=sys.stderr)
    sys.stderr.flush()
    text = f"handler {name} failed: {type(e).__name__}: {e}"
    msg = text.encode("utf-8", "replace")[:_MSG_MAX]
    return P.encode_frame(req.opcode, P.INTERNAL, req.request_id, msg)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _too_large(e: P.FrameTooLarge) -> bytes:
    return P.encode_frame(0, P.TOO_LARGE, 0, str(e).encode())


def serve(
    handlers: Mapping[str, Handler],
    *,
    fd_in: int = 0,
    fd_out: int = 1,
    max_frame_size: int = P.DEFAULT_MAX_FRAME,
) -> None:
    """Serve handlers on fd_in/fd_out (socketd's socket) until EOF.

    Blocking: one request at a time, answers in request order.  Returns
    at end of input; raises ProtocolError after answering TOO_LARGE to a
    frame above max_frame_size (socketd restarts the process).
    """
    d = _Dispatch(handlers, max_frame_size)
    while True:
        try:
            data = os.read(fd_in, 256 * 1024)
        except InterruptedError:
            continue
        if not data:
            return
        d.decoder.feed(data)
        while True:
            try:
                body = d.decoder.next_body()
            except P.FrameTooLarge as e:
                _write_all(fd_out, _too_large(e))
                raise
            if body is None:
                break
            answer, req, entry = d.route(body)
            if answer is None:
                assert req is not None
                name, fn = entry
                try:
                    answer = _ok(req, fn(req.payload))
                except Exception as e:  # noqa: BLE001 - INTERNAL, keep serving
                    answer = _failed(req, name, e)
            _write_all(fd_out, answer)


async def _streams(fd_in: int, fd_out: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio streams over fd_in/fd_out: the socket itself when fd_in is
    a socket (socketd's case), else a pair of pipes."""
    loop = asyncio.get_running_loop()
    try:
        sock = socket.socket(fileno=os.dup(fd_in))
    except OSError:
        sock = None
    if sock is not None and sock.type == socket.SOCK_STREAM:
        return await asyncio.open_connection(sock=sock)
    if sock is not None:
        sock.close()
    reader = asyncio.StreamReader()
    proto = asyncio.StreamReaderProtocol(reader)
    await loop.connect_read_pipe(lambda: proto, os.fdopen(os.dup(fd_in), "rb", 0))
    transport, wproto = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(os.dup(fd_out), "wb", 0)
    )
    return reader, asyncio.StreamWriter(transport, wproto, reader, loop)


async def serve_async(
    handlers: Mapping[str, AsyncHandler],
    *,
    fd_in: int = 0,
    fd_out: int = 1,
    max_frame_size: int = P.DEFAULT_MAX_FRAME,
    max_concurrency: int = 64,
) -> None:
    """Serve handlers with asyncio until EOF: :func:`serve`'s contract,
    but every request runs in its own task (at most max_concurrency at
    once) and is answered when it is done, so answers may leave out of
    order.  Handlers may be coroutine functions or plain functions (which
    run in the event loop: keep them quick).  Returns at end of input
    once every request has been answered.
    """
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be at least 1")
    d = _Dispatch(handlers, max_frame_size)
    reader, writer = await _streams(fd_in, fd_out)
    slots = asyncio.Semaphore(max_concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async def run(req: P.Frame, name: str, fn: AsyncHandler) -> None:
        try:
            try:
                result = fn(req.payload)
                if inspect.isawaitable(result):
                    result = await result
                answer = _ok(req, result)
            except Exception as e:  # noqa: BLE001 - INTERNAL, keep serving
                answer = _failed(req, name, e)
            writer.write(answer)
            await writer.drain()
        finally:
            slots.release()

    try:
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            d.decoder.feed(data)
            while True:
                try:
                    body = d.decoder.next_body()
                except P.FrameTooLarge as e:
                    writer.write(_too_large(e))
                    await writer.drain()
                    raise ProtocolError(str(e)) from None
                if body is None:
                    break
                answer, req, entry = d.route(body)
                if answer is not None:
                    writer.write(answer)
                    continue
                assert req is not None
                await slots.acquire()
                t = asyncio.create_task(run(req, entry[0], entry[1]))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            await writer.drain()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await writer.drain()
    finally:
        for t in tasks:
            t.cancel()
        writer.close()

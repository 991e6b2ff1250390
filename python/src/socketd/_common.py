"""What the blocking and the asyncio client share, apart from I/O."""

from __future__ import annotations

import datetime
import enum
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from . import _proto as P
from .errors import ConnectionError, ProtocolError, ServerError, error_for_status

T = TypeVar("T")

DEFAULT_TIMEOUT = 5.0
DEFAULT_PORT = 7411
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class Unset(enum.Enum):
    """Marks an argument left out (use the client's default)."""

    UNSET = 0


UNSET = Unset.UNSET
TimeoutArg = float | None | Unset


class Lost(ConnectionError):
    """Internal: the connection ended with requests unanswered."""


def ns_to_datetime(ns: int) -> datetime.datetime:
    """Nanoseconds since the epoch as an aware UTC datetime (µs precision)."""
    return _EPOCH + datetime.timedelta(microseconds=ns // 1000)


def _ok_none(payload: bytes) -> None:
    if payload:
        raise ProtocolError(f"expected an empty answer, got {len(payload)} bytes")


def _identity(payload: bytes) -> bytes:
    return payload


def _receivers(payload: bytes) -> int:
    return P.parse_u32(payload, "PUBLISH")


def _subscriptions(payload: bytes) -> int:
    return P.parse_u32(payload, "SUBSCRIBE/UNSUBSCRIBE")


def _info(payload: bytes) -> dict[str, str]:
    return P.parse_text_lines(payload)


def _time(payload: bytes) -> datetime.datetime:
    return ns_to_datetime(P.parse_time(payload))


class Req(Generic[T]):
    """One request to send: opcode (or a name to resolve), payload, what
    to make of the answer, and whether it may be sent twice."""

    __slots__ = ("opcode", "name", "payload", "retriable", "convert")

    def __init__(
        self,
        opcode: int | None,
        payload: bytes,
        convert: Callable[[bytes], T],
        *,
        name: str | None = None,
        retry: bool = False,
    ) -> None:
        self.opcode = opcode
        self.name = name
        self.payload = payload
        self.convert = convert
        self.retriable = retry or (opcode is not None and opcode in P.IDEMPOTENT)

    def resolved(self, code: int, retry: bool) -> None:
        """Fix the opcode of a request made by name."""
        self.opcode = code
        self.retriable = retry or code in P.IDEMPOTENT


def req_ping() -> Req[None]:
    return Req(P.PING, b"", _ok_none)


def req_echo(data: object) -> Req[bytes]:
    return Req(P.ECHO, P.as_bytes(data, "data"), _identity)


def req_info() -> Req[dict[str, str]]:
    return Req(P.INFO, b"", _info)


def req_stats() -> Req[dict[str, int]]:
    return Req(P.STATS, b"", P.parse_stats)


def req_time() -> Req[datetime.datetime]:
    return Req(P.TIME, b"", _time)


def req_time_ns() -> Req[int]:
    return Req(P.TIME, b"", P.parse_time)


def req_opcodes() -> Req[dict[str, P.Opcode]]:
    return Req(P.OPCODES, b"", P.parse_opcodes)


def req_call(name_or_opcode: int | str, payload: object, retry: bool) -> Req[bytes]:
    data = P.as_bytes(payload)
    if isinstance(name_or_opcode, str):
        if not name_or_opcode:
            raise ValueError("empty opcode name")
        return Req(None, data, _identity, name=name_or_opcode, retry=retry)
    return Req(P.check_opcode(name_or_opcode), data, _identity, retry=retry)


def req_publish(topic: str | bytes, data: object) -> Req[int]:
    t = P.encode_text(topic, "topic")
    return Req(P.PUBLISH, P.encode_publish(t, P.as_bytes(data, "data")), _receivers)


def req_subscribe(sub_id: int, filt: bytes, no_echo: bool) -> Req[int]:
    return Req(P.SUBSCRIBE, P.encode_subscribe(sub_id, filt, no_echo), _subscriptions)


def req_unsubscribe(sub_id: int) -> Req[int]:
    return Req(P.UNSUBSCRIBE, P.encode_unsubscribe(sub_id), _subscriptions)


def resolve_name(name: str, table: dict[str, P.Opcode] | None) -> int:
    """The opcode for name from a server's OPCODES table (None: the server
    has no OPCODES; only the built-in names are known)."""
    if table is None:
        if name in P.BUILTIN_NAMES and name != "opcodes":
            return P.BUILTIN_NAMES[name]
        raise error_for_status(
            P.UNKNOWN_OPCODE,
            f"no opcode named {name!r}: this server does not list its opcodes",
        )
    entry = table.get(name)
    if entry is None:
        raise error_for_status(P.UNKNOWN_OPCODE, f"no opcode named {name!r} on this server")
    if entry.push:
        raise ValueError(f"{name!r} (0x{entry.code:02x}) is a push opcode: only the server sends it")
    return entry.code


def answer_result(req: Req[Any], frame: P.Frame) -> Any:
    """What a request's answer frame means: its converted payload, or the
    ServerError to raise (returned, not raised)."""
    if frame.code != P.OK:
        return error_for_status(
            frame.code,
            frame.payload.decode("utf-8", "replace"),
            opcode=frame.opcode,
            request_id=frame.request_id,
        )
    try:
        return req.convert(frame.payload)
    except ProtocolError as e:
        return e


def check_answer(frame: P.Frame, rid: int, opcode: int) -> None:
    """Raise ProtocolError unless frame answers request rid with opcode."""
    if frame.version != P.VERSION:
        raise ProtocolError(f"answer with version {frame.version}, expected {P.VERSION}")
    if frame.request_id != rid:
        raise ProtocolError(
            f"answer for request_id {frame.request_id}, expected {rid}"
        )
    if frame.opcode != opcode:
        raise ProtocolError(
            f"answer with opcode 0x{frame.opcode:02x} to request 0x{opcode:02x}"
        )


def is_push(frame: P.Frame) -> bool:
    """A push frame: request_id 0 and status OK."""
    return frame.request_id == 0 and frame.code == P.OK


def conn_error(frame: P.Frame) -> ServerError:
    """The ServerError of an error frame with request_id 0."""
    return error_for_status(
        frame.code, frame.payload.decode("utf-8", "replace"), opcode=frame.opcode
    )


def raise_first(results: list[Any]) -> None:
    """Raise the first exception in results, if any."""
    for r in results:
        if isinstance(r, BaseException):
            raise r

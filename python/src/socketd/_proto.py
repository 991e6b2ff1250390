"""Protocol v1 (and v1.1) without I/O: frames, payloads, constants.

Both clients (blocking and asyncio) and the handler helper share this
module, so that one tested parser serves them all.  Nothing here touches
a socket, a thread or a clock.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .errors import ProtocolError

VERSION = 1
HEADER = struct.Struct(">IBBHI")  # length, version, opcode, flags/status, id
HEADER_SIZE = 8  # of the body, after the 4-byte length
U16 = struct.Struct(">H")
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")
MAX_U32 = 0xFFFFFFFF

PING = 0x00
ECHO = 0x01
INFO = 0x02
STATS = 0x03
TIME = 0x04
OPCODES = 0x05
GOAWAY = 0x06
SUBSCRIBE = 0x10
UNSUBSCRIBE = 0x11
PUBLISH = 0x12
MESSAGE = 0x13
NOTICE = 0x14

OK = 0
UNKNOWN_OPCODE = 1
BAD_REQUEST = 2
TOO_LARGE = 3
INTERNAL = 5
UNSUPPORTED_VERSION = 6

#: Names of the opcodes every server serves (v1) or that protocol v1.1
#: fixes, used when a server cannot list its own (no OPCODES).
BUILTIN_NAMES: dict[str, int] = {
    "ping": PING,
    "echo": ECHO,
    "info": INFO,
    "stats": STATS,
    "time": TIME,
    "opcodes": OPCODES,
}

#: Opcodes that are safe to send twice: retried once after a lost
#: connection.
IDEMPOTENT: frozenset[int] = frozenset(range(PING, OPCODES + 1))

#: Notice reasons (pub/sub NOTICE push).
NOTICE_SLOW_CONSUMER = 1
NOTICE_SHUTDOWN = 2
NOTICE_PERMISSIONS_CHANGED = 3

#: Default bound on an answer's body, on the client side.  The daemon's
#: own max_frame_size is at most 256 MiB.
DEFAULT_MAX_FRAME = 256 * 1024 * 1024


class Frame(NamedTuple):
    """One decoded frame: a request (code = flags) or an answer (status)."""

    version: int
    opcode: int
    code: int
    request_id: int
    payload: bytes


class Opcode(NamedTuple):
    """One line of an OPCODES answer."""

    code: int
    name: str
    push: bool


class Message(NamedTuple):
    """A pub/sub message delivered to a subscription.

    ``lost`` counts messages the server dropped for this connection
    before this one (the ``drop`` slow-consumer policy); usually 0.
    """

    topic: str
    data: bytes
    sub_id: int
    lost: int


class FrameTooLarge(ProtocolError):
    """A length prefix above the decoder's bound."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"frame of {length} bytes exceeds max_frame_size {limit}"
        )
        self.length = length
        self.limit = limit


def check_opcode(opcode: int) -> int:
    """Return opcode if it fits a byte, else raise ValueError."""
    if isinstance(opcode, bool) or not isinstance(opcode, int):
        raise TypeError(f"opcode must be an int, not {type(opcode).__name__}")
    if not 0 <= opcode <= 0xFF:
        raise ValueError(f"opcode {opcode} is outside 0..255")
    return opcode


def as_bytes(payload: object, what: str = "payload") -> bytes:
    """bytes of a bytes-like payload; TypeError for anything else."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, (bytearray, memoryview)):
        return bytes(payload)
    raise TypeError(
        f"{what} must be bytes-like, not {type(payload).__name__}"
        + (" (encode the str first)" if isinstance(payload, str) else "")
    )


def encode_frame(opcode: int, code: int, request_id: int, payload: bytes) -> bytes:
    """A whole frame: the length prefix, the 8-byte header, the payload."""
    return (
        HEADER.pack(HEADER_SIZE + len(payload), VERSION, opcode, code, request_id)
        + payload
    )


def encode_request(opcode: int, request_id: int, payload: bytes = b"") -> bytes:
    """A request frame (flags 0)."""
    return encode_frame(opcode, 0, request_id, payload)


def parse_body(body: bytes) -> Frame:
    """Split a frame body (after the length prefix) into its fields.

    Raises ProtocolError if the body is shorter than the header.
    """
    if len(body) < HEADER_SIZE:
        raise ProtocolError(f"frame body of {len(body)} bytes is shorter than its header")
    _, version, opcode, code, request_id = HEADER.unpack_from(b"\0\0\0\0" + body[:8])
    return Frame(version, opcode, code, request_id, bytes(body[8:]))


class FrameDecoder:
    """Cut a byte stream into frame bodies.

    feed() bytes as they arrive, then call next_body() until it returns
    None.  A length prefix above max_frame raises FrameTooLarge at once,
    before the body has arrived.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def buffered(self) -> int:
        """Bytes received and not yet returned as a frame."""
        return len(self._buf) - self._pos

    def next_body(self) -> bytes | None:
        """The next complete frame body, or None if more bytes are needed."""
        avail = len(self._buf) - self._pos
        if avail < 4:
            return None
        (length,) = U32.unpack_from(self._buf, self._pos)
        if length > self.max_frame:
            raise FrameTooLarge(length, self.max_frame)
        if avail < 4 + length:
            return None
        start = self._pos + 4
        body = bytes(self._buf[start : start + length])
        self._pos = start + length
        return body

    def next_frame(self) -> Frame | None:
        """The next complete frame, parsed (see parse_body), or None."""
        body = self.next_body()
        if body is None:
            return None
        return parse_body(body)


class RequestIds:
    """request_id values for one connection: u32, wrapping, never 0."""

    def __init__(self) -> None:
        self._next = 1

    def __call__(self) -> int:
        rid = self._next
        self._next = rid + 1 if rid < MAX_U32 else 1
        return rid


# --- payloads ---------------------------------------------------------


def parse_text_lines(payload: bytes) -> dict[str, str]:
    """INFO/STATS text ("name value" lines) as a dict.

    Lines without a value are kept with value ""; later duplicates win.
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtocolError(f"answer is not UTF-8 text: {e}") from None
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        name, _, value = line.partition(" ")
        out[name] = value.strip()
    return out


def parse_stats(payload: bytes) -> dict[str, int]:
    """STATS text as name -> int; lines whose value is not an integer
    are skipped (clients ignore what they do not know)."""
    out: dict[str, int] = {}
    for name, value in parse_text_lines(payload).items():
        try:
            out[name] = int(value)
        except ValueError:
            continue
    return out


def parse_time(payload: bytes) -> int:
    """TIME answer: u64 nanoseconds since the Unix epoch."""
    if len(payload) != 8:
        raise ProtocolError(f"TIME answer of {len(payload)} bytes, expected 8")
    (ns,) = U64.unpack(payload)
    return int(ns)


def _valid_name(name: str) -> bool:
    return 0 < len(name) <= 64 and all(
        c in "abcdefghijklmnopqrstuvwxyz0123456789_." for c in name
    )


def parse_opcodes(payload: bytes) -> dict[str, Opcode]:
    """OPCODES answer as name -> Opcode, in the server's order.

    Each line is ``0xNN name`` or ``0xNN name push``.  A malformed line
    raises ProtocolError: a client must not guess names.
    """
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("OPCODES answer is not ASCII") from None
    out: dict[str, Opcode] = {}
    for line in text.split("\n"):
        if not line:
            continue
        parts = line.split(" ")
        ok = (
            len(parts) in (2, 3)
            and len(parts[0]) == 4
            and parts[0].startswith("0x")
            and all(c in "0123456789abcdef" for c in parts[0][2:])
            and _valid_name(parts[1])
            and (len(parts) == 2 or parts[2] == "push")
        )
        if not ok:
            raise ProtocolError(f"bad OPCODES line {line!r}")
        out[parts[1]] = Opcode(int(parts[0][2:], 16), parts[1], len(parts) == 3)
    return out


def format_opcodes(entries: list[Opcode]) -> bytes:
    """The OPCODES answer text for entries (the inverse of parse_opcodes)."""
    lines = []
    for e in entries:
        if not _valid_name(e.name):
            raise ValueError(
                f"opcode name {e.name!r}: want 1-64 of [a-z0-9_.]"
            )
        lines.append(f"0x{e.code:02x} {e.name}" + (" push" if e.push else "") + "\n")
    return "".join(lines).encode("ascii")


def encode_text(value: str | bytes, what: str) -> bytes:
    """A topic or filter as bytes (str is encoded as UTF-8)."""
    if isinstance(value, str):
        raw = value.encode("utf-8")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    else:
        raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")
    if len(raw) > 0xFFFF:
        raise ValueError(f"{what} of {len(raw)} bytes is too long")
    return raw


def encode_subscribe(sub_id: int, filt: bytes, no_echo: bool) -> bytes:
    """SUBSCRIBE payload."""
    return (
        U32.pack(sub_id)
        + bytes((1 if no_echo else 0, 0))
        + U16.pack(len(filt))
        + filt
    )


def encode_unsubscribe(sub_id: int) -> bytes:
    """UNSUBSCRIBE payload (sub_id 0: all of the connection's)."""
    return U32.pack(sub_id)


def encode_publish(topic: bytes, data: bytes) -> bytes:
    """PUBLISH payload."""
    return U16.pack(len(topic)) + topic + data


def parse_u32(payload: bytes, what: str) -> int:
    """An answer that is one u32 (subscription or receiver counts)."""
    if len(payload) != 4:
        raise ProtocolError(f"{what} answer of {len(payload)} bytes, expected 4")
    return int(U32.unpack(payload)[0])


def parse_message(payload: bytes) -> Message:
    """MESSAGE push payload."""
    if len(payload) < 10:
        raise ProtocolError(f"MESSAGE push of {len(payload)} bytes is too short")
    sub_id, lost = struct.unpack_from(">II", payload)
    (tlen,) = U16.unpack_from(payload, 8)
    if 10 + tlen > len(payload):
        raise ProtocolError("MESSAGE push: topic_len runs past the payload")
    topic = payload[10 : 10 + tlen].decode("utf-8", "replace")
    return Message(topic, bytes(payload[10 + tlen :]), int(sub_id), int(lost))


def parse_goaway(payload: bytes) -> tuple[int, str]:
    """GOAWAY push payload: (grace_ms, reason)."""
    if len(payload) < 4:
        raise ProtocolError(f"GOAWAY push of {len(payload)} bytes is too short")
    (grace,) = U32.unpack_from(payload)
    return int(grace), payload[4:].decode("utf-8", "replace")


def parse_notice(payload: bytes) -> tuple[int, str]:
    """NOTICE push payload: (reason, text)."""
    if len(payload) < 2:
        raise ProtocolError(f"NOTICE push of {len(payload)} bytes is too short")
    (reason,) = U16.unpack_from(payload)
    return int(reason), payload[2:].decode("utf-8", "replace")


def check_timeout(value: float | None, what: str = "timeout") -> float | None:
    """Validate a timeout: None (wait forever) or a finite number > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds or None")
    v = float(value)
    if not v > 0 or v == float("inf"):
        raise ValueError(f"{what} must be a finite number of seconds > 0, not {value!r}")
    return v


def check_port(port: int) -> int:
    """Validate a TCP port."""
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, not {type(port).__name__}")
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1..65535")
    return port

"""The sans-IO core: frames, payloads, exceptions."""

from __future__ import annotations

import builtins
import datetime

import pytest

import socketd
from socketd import _common as C
from socketd import _proto as P


def test_ping_frame_matches_the_protocol_example() -> None:
    assert P.encode_request(P.PING, 7) == bytes.fromhex("00000008 01000000 00000007")
    assert P.encode_request(P.ECHO, 0x01020304, b"hi") == bytes.fromhex(
        "0000000a 01010000 01020304 6869"
    )


def test_decode_split_at_every_byte() -> None:
    stream = (
        P.encode_frame(1, 0, 5, b"hello")
        + P.encode_frame(2, 3, 6, b"")
        + P.encode_frame(0x13, 0, 0, b"x" * 300)
    )
    for cut in range(len(stream) + 1):
        d = P.FrameDecoder()
        got = []
        for part in (stream[:cut], stream[cut:]):
            d.feed(part)
            while (f := d.next_frame()) is not None:
                got.append(f)
        assert got == [
            P.Frame(1, 1, 0, 5, b"hello"),
            P.Frame(1, 2, 3, 6, b""),
            P.Frame(1, 0x13, 0, 0, b"x" * 300),
        ], cut
        assert d.buffered() == 0


def test_decode_refuses_a_large_prefix_before_the_body() -> None:
    d = P.FrameDecoder(max_frame=100)
    d.feed(P.U32.pack(101))
    with pytest.raises(P.FrameTooLarge) as e:
        d.next_body()
    assert isinstance(e.value, socketd.ProtocolError)


def test_short_body_is_a_protocol_error() -> None:
    d = P.FrameDecoder()
    d.feed(P.U32.pack(3) + b"abc")
    with pytest.raises(socketd.ProtocolError, match="shorter"):
        d.next_frame()


def test_request_ids_wrap_and_skip_zero() -> None:
    ids = P.RequestIds()
    ids._next = P.MAX_U32 - 1
    assert [ids(), ids(), ids()] == [P.MAX_U32 - 1, P.MAX_U32, 1]


def test_opcodes_round_trip_and_strict_parsing() -> None:
    text = b"0x00 ping\n0x05 opcodes\n0x06 goaway push\n0x80 hello.upper\n"
    table = P.parse_opcodes(text)
    assert list(table) == ["ping", "opcodes", "goaway", "hello.upper"]
    assert table["goaway"] == P.Opcode(6, "goaway", True)
    assert table["hello.upper"] == P.Opcode(0x80, "hello.upper", False)
    assert P.format_opcodes(list(table.values())) == text
    for bad in (b"0x0 ping\n", b"0X00 ping\n", b"0x00 Ping\n", b"0x00 ping pull\n", b"ping\n"):
        with pytest.raises(socketd.ProtocolError):
            P.parse_opcodes(bad)
    with pytest.raises(ValueError):
        P.format_opcodes([P.Opcode(0, "Upper", False)])


def test_text_and_stats_parsing_ignores_what_it_does_not_know() -> None:
    assert P.parse_text_lines(b"version 1.0\npid 12\n\nflag\n") == {
        "version": "1.0",
        "pid": "12",
        "flag": "",
    }
    assert P.parse_stats(b"requests_total 5\nratio 0.5\nbytes_sent 7\n") == {
        "requests_total": 5,
        "bytes_sent": 7,
    }


def test_time_payload() -> None:
    ns = 1_700_000_000_123_456_789
    assert P.parse_time(P.U64.pack(ns)) == ns
    assert C.ns_to_datetime(ns) == datetime.datetime(
        2023, 11, 14, 22, 13, 20, 123456, tzinfo=datetime.timezone.utc
    )
    with pytest.raises(socketd.ProtocolError):
        P.parse_time(b"1234")


def test_pubsub_payloads() -> None:
    assert P.encode_subscribe(7, b"chat.>", True) == bytes.fromhex("00000007 01 00 0006") + b"chat.>"
    assert P.encode_publish(b"a.b", b"xy") == b"\x00\x03a.bxy"
    msg = P.parse_message(bytes.fromhex("00000009 00000002 0003") + b"a.b" + b"data")
    assert msg == socketd.Message("a.b", b"data", 9, 2)
    with pytest.raises(socketd.ProtocolError):
        P.parse_message(bytes.fromhex("00000009 00000002 0009") + b"a.b")
    assert P.parse_goaway(P.U32.pack(1500) + b"bye") == (1500, "bye")
    assert P.parse_notice(b"\x00\x01slow") == (1, "slow")


def test_every_status_has_its_class() -> None:
    classes = {
        1: socketd.UnknownOpcode,
        2: socketd.BadRequest,
        3: socketd.TooLarge,
        4: socketd.Busy,
        5: socketd.Internal,
        6: socketd.UnsupportedVersion,
        7: socketd.Denied,
        8: socketd.HandlerTimeout,
        9: socketd.Overloaded,
        10: socketd.InvalidTopic,
        11: socketd.Forbidden,
        12: socketd.LimitExceeded,
        13: socketd.NotSubscribed,
    }
    for status, cls in classes.items():
        e = socketd.error_for_status(status, "why", opcode=3, request_id=9)
        assert type(e) is cls and e.status == status and e.message == "why"
        assert isinstance(e, socketd.ServerError) and isinstance(e, socketd.Error)
        assert socketd.STATUS_NAMES[status] in str(e)
    unknown = socketd.error_for_status(42, "new")
    assert type(unknown) is socketd.ServerError and unknown.status == 42
    assert "status 42" in str(unknown)
    assert not isinstance(socketd.HandlerTimeout("x"), builtins.TimeoutError)


def test_transport_errors_are_builtin_ones_too() -> None:
    assert issubclass(socketd.ConnectionError, builtins.ConnectionError)
    assert issubclass(socketd.TimeoutError, builtins.TimeoutError)
    assert issubclass(socketd.ConnectionError, socketd.Error)
    assert issubclass(socketd.TimeoutError, socketd.Error)
    with pytest.raises(ValueError):
        socketd.ServerError("no status")
    with pytest.raises(ValueError):
        socketd.ServerError("ok is no error", status=0)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        socketd.Client("127.0.0.1", 0)
    with pytest.raises(ValueError):
        socketd.Client("127.0.0.1", 7411, timeout=-1)
    with pytest.raises(ValueError):
        socketd.Client("127.0.0.1", 7411, timeout=float("nan"))
    with pytest.raises(TypeError):
        socketd.Client("127.0.0.1", 7411, timeout="5")  # type: ignore[arg-type]
    c = socketd.Client("127.0.0.1", 7411)
    with pytest.raises(TypeError, match="encode the str"):
        c.echo("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        c.call(256)
    with pytest.raises(ValueError):
        c.call("")
    with pytest.raises(TypeError):
        c.call(1.5)  # type: ignore[arg-type]
    c.close()

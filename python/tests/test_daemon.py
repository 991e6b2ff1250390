"""The blocking client against the real daemon."""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import socketd
from conftest import Daemon, daemon_opcodes, have_ipv6


def test_core_requests(daemon: Daemon) -> None:
    with daemon.client() as c:
        assert c.connected
        assert c.ping() is None
        assert c.echo(b"hello") == b"hello"
        assert c.echo(b"") == b""
        big = os.urandom(300_000)
        assert c.echo(big) == big
        info = c.info()
        assert info["pid"] == str(daemon.pid)
        assert {"version", "uptime_seconds", "workers"} <= set(info)
        stats = c.stats()
        assert stats["requests_total"] >= 5
        assert isinstance(stats["connections_current"], int)
        now = datetime.datetime.now(datetime.timezone.utc)
        t = c.time()
        assert t.tzinfo is not None and abs((t - now).total_seconds()) < 5
        assert abs(c.time_ns() - time.time_ns()) < 5_000_000_000
    assert not c.connected


def test_error_statuses_keep_the_connection(daemon: Daemon) -> None:
    with daemon.client() as c:
        with pytest.raises(socketd.UnknownOpcode) as e:
            c.call(0x7F)
        assert e.value.status == 1 and "0x7f" in e.value.message
        with pytest.raises(socketd.BadRequest):
            c.call("ping", b"no payload allowed")
        before = c.stats()["connections_total"]
        c.ping()
        assert c.stats()["connections_total"] == before  # same connection


def test_call_by_name_and_opcode(daemon: Daemon) -> None:
    with daemon.client() as c:
        assert c.call("echo", b"abc") == b"abc"
        assert c.call(0x01, bytearray(b"xyz")) == b"xyz"
        with pytest.raises(socketd.UnknownOpcode):
            c.call("no.such.handler", b"")
        table = daemon_opcodes(daemon)
        if table is None:
            with pytest.raises(socketd.UnknownOpcode):
                c.opcodes()
        else:
            got = c.opcodes()
            assert got["ping"] == socketd.Opcode(0, "ping", False)
            assert got["opcodes"].code == 5


def test_pipeline_in_order_and_errors_in_place(daemon: Daemon) -> None:
    with daemon.client() as c:
        with c.pipeline() as p:
            for i in range(500):
                p.echo(str(i).encode())
            p.ping().info().time()
        res = p.results
        assert res is not None and len(res) == 503
        assert [r for r in res[:500]] == [str(i).encode() for i in range(500)]
        assert res[500] is None and "pid" in res[501]
        assert isinstance(res[502], datetime.datetime)

        p2 = c.pipeline().echo(b"a").call(0x7E).echo(b"b")
        with pytest.raises(socketd.UnknownOpcode):
            p2.execute()
        assert p2.results is not None and p2.results[0] == b"a" and p2.results[2] == b"b"
        out = c.pipeline().echo(b"a").call(0x7E).echo(b"b").execute(raise_on_error=False)
        assert out[0] == b"a" and isinstance(out[1], socketd.UnknownOpcode) and out[2] == b"b"
        c.ping()  # still in step


def test_deep_pipeline_does_not_deadlock(daemon: Daemon) -> None:
    # 20,000 STATS answers are megabytes: the server stops reading until
    # the client reads, so sending everything first would deadlock.
    with daemon.client(timeout=30) as c:
        p = c.pipeline()
        for _ in range(20_000):
            p.stats()
        res = p.execute()
        assert len(res) == 20_000
        assert all("requests_total" in r for r in res[::997])


def test_too_large_then_reconnects(start_daemon: Callable[..., Daemon]) -> None:
    d = start_daemon("max_frame_size = 1024;")
    with d.client() as c:
        with pytest.raises(socketd.TooLarge):
            c.echo(b"x" * 2000)
        assert c.echo(b"y" * 100) == b"y" * 100
        assert c.stats()["errors_too_large"] == 1


def test_idle_close_is_replaced_without_error(start_daemon: Callable[..., Daemon]) -> None:
    d = start_daemon("timeouts: { idle = 0.2; };")
    with d.client() as c:
        before = c.stats()["connections_total"]
        time.sleep(0.6)  # the server closes the idle connection
        c.ping()  # reconnects at the request boundary
        assert c.stats()["connections_total"] == before + 1
        assert c.stats()["timeouts_idle"] >= 1


def test_server_restart_between_requests(start_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    d = start_daemon()
    c = d.client()
    c.ping()
    d.stop()
    with pytest.raises(socketd.ConnectionError) as e:
        c.ping()
    assert isinstance(e.value, ConnectionError)
    c.close()


def test_refused_connection_is_a_connection_error() -> None:
    port = 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(socketd.ConnectionError, match="cannot connect"):
        socketd.Client("127.0.0.1", port).ping()
    assert time.monotonic() - t0 < 2


def test_busy_refusal_raises_busy(start_daemon: Callable[..., Daemon]) -> None:
    d = start_daemon("max_connections = 1;")

    def ping_until_served(c: socketd.Client) -> None:
        deadline = time.monotonic() + 5
        while True:
            try:
                c.ping()
                return
            except socketd.Busy:
                assert time.monotonic() < deadline
                time.sleep(0.05)

    first = d.client()
    ping_until_served(first)  # the readiness probe may still be counted
    second = d.client()
    with pytest.raises(socketd.Busy) as e:
        second.ping()
    assert "max_connections" in e.value.message
    assert not second.connected  # BUSY closes: never reused
    first.close()
    ping_until_served(second)
    second.close()


def test_fork_child_gets_its_own_connection(daemon: Daemon) -> None:
    c = daemon.client()
    c.ping()
    parent_port = c._conn.sock.getsockname()[1]  # type: ignore[union-attr]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.close(r)
            c.ping()
            child_port = c._conn.sock.getsockname()[1]  # type: ignore[union-attr]
            os.write(w, str(child_port).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        child_port = int(f.read() or 0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_port and child_port != parent_port
    # The child's exit did not end the parent's connection.
    assert c.echo(b"still mine") == b"still mine"
    assert c._conn.sock.getsockname()[1] == parent_port  # type: ignore[union-attr]
    c.close()


@pytest.mark.skipif(not have_ipv6(), reason="no IPv6 loopback here")
def test_ipv6(start_daemon: Callable[..., Daemon]) -> None:
    d = start_daemon(listen='[ "[::1]:PORT" ]', host="::1")
    with socketd.Client("::1", d.port) as c:
        assert c.echo(b"six") == b"six"


OPENSSL_CNF = """[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
"""


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a throwaway certificate")
    d = tmp_path_factory.mktemp("tls")
    (d / "openssl.cnf").write_text(OPENSSL_CNF)
    cnf = str(d / "openssl.cnf")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other"):
        _openssl("req", "-config", cnf, "-x509", "-new", *ec, "-keyout", str(d / f"{ca}.key"),
                 "-out", str(d / f"{ca}.pem"), "-days", "2", "-subj", f"/CN=socketd-py-{ca}",
                 "-extensions", "ca")
    _openssl("req", "-config", cnf, "-new", *ec, "-keyout", str(d / "server.key"),
             "-out", str(d / "server.csr"), "-subj", "/CN=socketd-py-server")
    _openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"),
             "-CAkey", str(d / "ca.key"), "-set_serial", "0x51", "-days", "2",
             "-out", str(d / "server.pem"), "-extfile", cnf, "-extensions", "server")
    return d


def test_tls(start_daemon: Callable[..., Daemon], certs: Path) -> None:
    import ssl

    d = start_daemon(
        f'tls: {{ certificate = "{certs}/server.pem"; key = "{certs}/server.key"; }};',
        listen='[ "tls://127.0.0.1:PORT" ]',
    )
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    with socketd.Client("127.0.0.1", d.port, ssl=ctx) as c:
        assert c.echo(b"secret") == b"secret"
        big = os.urandom(200_000)
        assert c.pipeline().echo(big).ping().stats().execute()[0] == big
        assert c.stats()["tls_handshakes"] >= 1

    wrong = ssl.create_default_context(cafile=str(certs / "other.pem"))
    with pytest.raises(socketd.ConnectionError, match="TLS handshake"):
        socketd.Client("127.0.0.1", d.port, ssl=wrong).ping()
    # Plain text to a TLS listener: no hang, an error within the timeout.
    t0 = time.monotonic()
    with pytest.raises((socketd.ConnectionError, socketd.TimeoutError, socketd.ProtocolError)):
        socketd.Client("127.0.0.1", d.port, timeout=1.0).ping()
    assert time.monotonic() - t0 < 3


def hello_config() -> str:
    """socketd.conf lines that load the example module, or skip."""
    d = os.environ.get("SOCKETD_HELLO_DIR")
    if not d or not os.path.exists(os.path.join(d, "hello.so")):
        pytest.skip("no hello.so: set SOCKETD_HELLO_DIR (ctest does)")
    return (
        f'module_dir = "{d}";\n'
        'modules = ( { name = "hello"; path = "hello.so"; opcode = 0x80; } );\n'
        "timeouts: { handler = 0.5; };"
    )


def test_module_hello(start_daemon: Callable[..., Daemon]) -> None:
    d = start_daemon(hello_config())
    with d.client() as c:
        table = c.opcodes()
        assert table["hello.upper"].code == 0x80
        assert table["hello.later"].code == 0x82
        assert c.call("hello.upper", b"abc") == b"ABC"
        assert c.call(0x80, b"x") == b"X"
        assert c.call("hello.sleep", b"20") == b""
        assert c.call("hello.later", b"20") == b""
        with pytest.raises(socketd.BadRequest):
            c.call("hello.sleep", b"soon")
        # timeouts.handler answers TIMEOUT; the connection goes on.
        with pytest.raises(socketd.HandlerTimeout):
            c.call("hello.later", b"2000")
        assert c.call("hello.upper", b"after") == b"AFTER"
        # Answers in request order whatever handler kind served them.
        with c.pipeline() as p:
            p.call("hello.later", b"100")
            p.call("hello.upper", b"b")
            p.call("hello.sleep", b"30")
            p.ping()
        assert p.results[:3] == [b"", b"B", b""]




def test_goaway_from_a_draining_daemon(start_daemon: Callable[..., Daemon]) -> None:
    """SIGTERM with timeouts.drain: requests go on during the drain, the
    GOAWAY makes the client leave the connection once its answers are in
    (so socketd exits long before timeouts.shutdown), and the next request
    looks for a new connection (refused here: nobody else listens)."""
    d = start_daemon('timeouts: { drain = 0.3; shutdown = 8; };')
    c = d.client(timeout=2.0)
    c.ping()
    assert d.proc is not None
    t0 = time.monotonic()
    os.kill(d.pid, signal.SIGTERM)
    served = 0
    with pytest.raises(socketd.ConnectionError):
        while time.monotonic() - t0 < 5:
            assert c.echo(b"during the drain") == b"during the drain"
            served += 1
            time.sleep(0.02)
    assert served >= 3  # the drain window kept serving the connection
    d.proc.wait(6)
    assert d.proc.returncode == 0
    assert time.monotonic() - t0 < 4, "socketd waited for a client that had left"
    assert "GOAWAY" in d.log_text() or "goaway" in d.log_text()
    c.close()

"""Fixtures: the real socketd daemon, and a scripted fake server.

The daemon is the built binary: $SOCKETD_BIN (CTest sets it), else
build/daemon/socketd under the source tree.  Each daemon gets a free
loopback port and a config file in a temporary directory; it is ready
when it accepts a connection and has logged "ready", as in
tests/integration/harness.c; it is always stopped by PID (SIGTERM, then
SIGKILL).  Without a binary the daemon tests are skipped, saying why.

The fake server is for what the daemon does not serve yet (OPCODES,
pushes, GOAWAY, pub/sub) and for misbehaviour (silence, closing
mid-answer, wrong request ids): a thread accepts on 127.0.0.1 and runs a
script function per connection.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SOURCE_DIR = Path(os.environ.get("SOCKETD_SOURCE_DIR", HERE.parent.parent))

try:
    import socketd  # noqa: F401 - installed (pybuild, venv)
except ImportError:
    sys.path.insert(0, str(HERE.parent / "src"))
    import socketd  # noqa: F401

from socketd import _proto as P  # noqa: E402

READY_S = 10.0
STOP_S = 10.0


def daemon_binary() -> Path | None:
    env = os.environ.get("SOCKETD_BIN")
    if env:
        return Path(env)
    p = SOURCE_DIR / "build" / "daemon" / "socketd"
    return p if p.exists() else None


def free_port(host: str = "127.0.0.1") -> int:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def have_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Daemon:
    """One running socketd; stop() is idempotent."""

    def __init__(self, binary: Path, tmp: Path, extra: str, listen: str | None, host: str):
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="socketd-py.", dir=tmp))
        self.conf = self.dir / "socketd.conf"
        self.log = self.dir / "socketd.log"
        self.host = host
        self.proc: subprocess.Popen[bytes] | None = None
        for attempt in range(5):
            self.port = free_port(host if ":" not in host else "127.0.0.1")
            lst = (listen or '[ "127.0.0.1:PORT" ]').replace("PORT", str(self.port))
            text = (
                "# written by the socketd Python tests\n"
                f"listen = {lst};\n{extra.replace('PORT', str(self.port))}\n"
                'log: { level = "info"; };\n'
                "admin: { listen = [ ]; agent_listen = [ ]; };\n"
            )
            self.conf.write_text(text)
            with open(self.log, "wb") as logf:
                self.proc = subprocess.Popen(
                    [str(binary), "-c", str(self.conf)],
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                )
            why = self._wait_ready()
            if why is None:
                return
            self.stop()
            if "Address already in use" not in self.log_text():
                break
        raise RuntimeError(f"socketd did not start: {why}\n{self.log_text()}")

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def _wait_ready(self) -> str | None:
        assert self.proc is not None
        deadline = time.monotonic() + READY_S
        probed = False
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"exited with status {self.proc.returncode}"
            if not probed:
                try:
                    socket.create_connection((self.host, self.port), timeout=0.2).close()
                    probed = True
                except OSError:
                    pass
            if probed and " ready: " in self.log_text():
                return None
            time.sleep(0.02)
        return f"no connection and \"ready\" within {READY_S} s"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def client(self, **kw: Any) -> socketd.Client:
        kw.setdefault("timeout", 5.0)
        return socketd.Client(self.host, self.port, **kw)

    def stop(self) -> int | None:
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(STOP_S)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(STOP_S)
        return p.returncode


@pytest.fixture(scope="session")
def socketd_bin() -> Path:
    b = daemon_binary()
    if b is None or not b.exists():
        pytest.skip("no socketd binary: set SOCKETD_BIN or build into build/ first")
    return b


@pytest.fixture
def start_daemon(
    socketd_bin: Path, tmp_path: Path
) -> Iterator[Callable[..., Daemon]]:
    """start_daemon(extra="", listen=None, host="127.0.0.1") -> Daemon."""
    started: list[Daemon] = []

    def start(extra: str = "", listen: str | None = None, host: str = "127.0.0.1") -> Daemon:
        d = Daemon(socketd_bin, tmp_path, extra, listen, host)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


@pytest.fixture(scope="session")
def daemon(socketd_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon with the default settings, shared by the session."""
    d = Daemon(socketd_bin, tmp_path_factory.mktemp("daemon"), "", None, "127.0.0.1")
    yield d
    d.stop()


def daemon_opcodes(d: Daemon) -> dict[str, P.Opcode] | None:
    """The daemon's OPCODES list, or None when it has none (yet)."""
    with d.client() as c:
        try:
            return c.opcodes()
        except socketd.UnknownOpcode:
            return None


# --- the fake server ---------------------------------------------------------


class FakeConn:
    """The server side of one connection to the fake server."""

    def __init__(self, sock: socket.socket, index: int) -> None:
        self.sock = sock
        self.index = index
        self.decoder = P.FrameDecoder()
        self.requests: list[P.Frame] = []
        self.send_lock = threading.Lock()

    def read_request(self, timeout: float = 5.0) -> P.Frame | None:
        """The next request, or None at EOF (or reset, or timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.decoder.next_frame()
            if f is not None:
                self.requests.append(f)
                return f
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except OSError:
                return None
            if not data:
                return None
            self.decoder.feed(data)

    def answer(self, req: P.Frame, payload: bytes = b"", status: int = 0) -> None:
        self.send(req.opcode, status, req.request_id, payload)

    def send(self, opcode: int, status: int, rid: int, payload: bytes = b"") -> None:
        with self.send_lock:  # other connections' threads push here too
            self.sock.sendall(P.encode_frame(opcode, status, rid, payload))

    def push(self, opcode: int, payload: bytes) -> None:
        self.send(opcode, 0, 0, payload)

    def goaway(self, grace_ms: int = 1000, reason: str = "draining") -> None:
        self.push(P.GOAWAY, P.U32.pack(grace_ms) + reason.encode())

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.sock.close()


Script = Callable[[FakeConn], None]


class FakeServer:
    """Accepts on 127.0.0.1:port; runs script(conn) per connection."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.05)
        self.port = int(self.listener.getsockname()[1])
        self.conns: list[FakeConn] = []
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._stop = False
        self._accept = threading.Thread(target=self._run, daemon=True)
        self._accept.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            conn = FakeConn(sock, len(self.conns))
            self.conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: FakeConn) -> None:
        try:
            self.script(conn)
        except OSError:
            pass
        except BaseException as e:  # reported by the fixture
            self.errors.append(e)
        finally:
            conn.close()

    def client(self, **kw: Any) -> socketd.Client:
        kw.setdefault("timeout", 5.0)
        return socketd.Client("127.0.0.1", self.port, **kw)

    def aclient(self, **kw: Any) -> Any:
        import socketd.aio

        kw.setdefault("timeout", 5.0)
        return socketd.aio.Client("127.0.0.1", self.port, **kw)

    def stop(self) -> None:
        self._stop = True
        self._accept.join(5)
        self.listener.close()
        for c in self.conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)


@pytest.fixture
def fake() -> Iterator[Callable[[Script], FakeServer]]:
    """fake(script) -> a running FakeServer, stopped after the test; an
    exception inside a script fails the test."""
    servers: list[FakeServer] = []

    def make(script: Script) -> FakeServer:
        s = FakeServer(script)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()
    for s in servers:
        if s.errors:
            raise s.errors[0]


def serve_basic(conn: FakeConn, extra: dict[int, Callable[[P.Frame], bytes]] | None = None) -> None:
    """Answer ping/echo (and opcodes in extra) until EOF."""
    while (req := conn.read_request()) is not None:
        if extra and req.opcode in extra:
            conn.answer(req, extra[req.opcode](req))
        elif req.opcode == P.PING:
            conn.answer(req)
        elif req.opcode == P.ECHO:
            conn.answer(req, req.payload)
        else:
            conn.answer(req, f"unknown opcode 0x{req.opcode:02x}".encode(), status=1)


def topic_matches(filt: str, topic: str) -> bool:
    f, t = filt.split("."), topic.split(".")
    for i, tok in enumerate(f):
        if tok == ">":
            return len(t) > i
        if i >= len(t) or (tok != "*" and tok != t[i]):
            return False
    return len(f) == len(t)


class FakeBroker:
    """Pub/sub of protocol v1.1, enough to test clients: subscribe,
    unsubscribe, publish with * and >, NO_ECHO, MESSAGE pushes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.subs: dict[FakeConn, dict[int, tuple[str, bool]]] = {}

    def __call__(self, conn: FakeConn) -> None:
        with self.lock:
            self.subs[conn] = {}
        try:
            while (req := conn.read_request(30)) is not None:
                self.handle(conn, req)
        finally:
            with self.lock:
                del self.subs[conn]

    def handle(self, conn: FakeConn, req: P.Frame) -> None:
        p = req.payload
        if req.opcode == P.OPCODES:
            conn.answer(req, b"0x00 ping\n0x05 opcodes\n0x06 goaway push\n0x10 pubsub.subscribe\n"
                        b"0x11 pubsub.unsubscribe\n0x12 pubsub.publish\n0x13 pubsub.message push\n"
                        b"0x14 pubsub.notice push\n")
        elif req.opcode == P.PING:
            conn.answer(req)
        elif req.opcode == P.SUBSCRIBE:
            sub_id, opts, _, flen = struct.unpack_from(">IBBH", p)
            filt = p[8:].decode()
            if len(p) != 8 + flen or sub_id == 0:
                conn.answer(req, b"bad subscribe", status=2)
            elif not filt:
                conn.answer(req, b"empty filter", status=10)
            else:
                with self.lock:
                    mine = self.subs[conn]
                    if sub_id in mine:
                        conn.answer(req, b"duplicate sub_id", status=2)
                        return
                    mine[sub_id] = (filt, bool(opts & 1))
                    conn.answer(req, P.U32.pack(len(mine)))
        elif req.opcode == P.UNSUBSCRIBE:
            (sub_id,) = P.U32.unpack(p)
            with self.lock:
                mine = self.subs[conn]
                if sub_id == 0:
                    mine.clear()
                elif sub_id not in mine:
                    conn.answer(req, b"not subscribed", status=13)
                    return
                else:
                    del mine[sub_id]
                conn.answer(req, P.U32.pack(len(mine)))
        elif req.opcode == P.PUBLISH:
            (tlen,) = P.U16.unpack_from(p)
            topic, data = p[2 : 2 + tlen].decode(), p[2 + tlen :]
            if "*" in topic or ">" in topic or not topic:
                conn.answer(req, b"bad topic", status=10)
                return
            with self.lock:
                targets = [
                    (c, sid)
                    for c, subs in self.subs.items()
                    for sid, (filt, no_echo) in subs.items()
                    if topic_matches(filt, topic) and not (no_echo and c is conn)
                ]
                conn.answer(req, P.U32.pack(len(targets)))
                for c, sid in targets:
                    c.push(P.MESSAGE, P.U32.pack(sid) + P.U32.pack(0) + P.U16.pack(tlen)
                           + topic.encode() + data)
        else:
            conn.answer(req, b"unknown", status=1)

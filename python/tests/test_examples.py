"""examples/python/ run as a user would run them."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

import socketd
from conftest import SOURCE_DIR, Daemon, FakeBroker, FakeConn, FakeServer

EXAMPLES = SOURCE_DIR / "examples" / "python"
Fake = Callable[[Callable[[FakeConn], None]], FakeServer]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(socketd.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _example(name: str) -> Path:
    p = EXAMPLES / name
    if not p.exists():
        pytest.skip(f"{p} is not in this tree (installed package tests)")
    return p


def test_echo_client(daemon: Daemon) -> None:
    out = subprocess.run(
        [sys.executable, str(_example("echo_client.py")), "127.0.0.1", str(daemon.port)],
        input=b"hello\nworld\n",
        capture_output=True,
        timeout=20,
        env=_env(),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"hello\nworld\n"


def test_echo_client_says_why_it_cannot_connect() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = subprocess.run(
        [sys.executable, str(_example("echo_client.py")), "127.0.0.1", str(port)],
        input=b"x\n",
        capture_output=True,
        timeout=20,
        env=_env(),
    )
    assert out.returncode == 1 and b"cannot connect" in out.stderr


def test_chat_client(fake: Fake) -> None:
    srv = fake(FakeBroker())
    script = str(_example("chat_client.py"))
    cmd = [sys.executable, script, "lobby", "--port", str(srv.port)]
    bob = subprocess.Popen(cmd + ["--name", "bob"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    try:
        with srv.client() as watcher:
            sub = watcher.subscribe("chat.lobby")
            deadline = time.monotonic() + 10
            # Wait until bob has subscribed (the watcher's publish reaches him).
            while watcher.publish("chat.lobby", b"alice: hi bob") < 2:
                assert time.monotonic() < deadline, "chat_client never subscribed"
                time.sleep(0.05)
            assert bob.stdin is not None and bob.stdout is not None
            # bob prints it before he goes (else Ctrl-D could win the race).
            ready, _, _ = select.select([bob.stdout], [], [], 10)
            assert ready, "chat_client printed nothing"
            first = bob.stdout.readline().decode().rstrip("\n")
            bob.stdin.write(b"hi alice\n")
            bob.stdin.flush()
            got = sub.get(5)
            while got is not None and got.data != b"bob: hi alice":
                got = sub.get(5)
            assert got is not None and got.data == b"bob: hi alice"
            bob.stdin.close()  # Ctrl-D
            assert bob.wait(10) == 0
            lines = [first] + bob.stdout.read().decode().splitlines()
            assert "alice: hi bob" in lines and "bob: hi alice" not in lines  # NO_ECHO
    finally:
        if bob.poll() is None:
            bob.kill()
            bob.wait(5)
        for f in (bob.stdout, bob.stderr):
            if f is not None:
                f.close()

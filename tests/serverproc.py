"""chat_server.py as a child process: start it, wait for it, read its stderr, stop it."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import pytest

from tests.helpers import ChatClient

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 15.0  # a cold start imports tornado and emoji; CI machines are shared
EXIT_TIMEOUT_S = 5.0  # "exits within a few seconds" of SIGTERM / SIGINT
RUN_TIMEOUT_S = 15.0  # for runs that must end by themselves (--help, bad values)
# What a crash or a lost exception looks like in the child's stderr.
CRASH_SIGNS = (
    "Traceback",
    "Task exception was never retrieved",
    "Future exception was never retrieved",
    "Exception in callback",
    "Uncaught exception",
    "Task was destroyed but it is pending",
)
ERROR_LOG_LINE = re.compile(r"^\[E ", re.MULTILINE)  # tornado's log format: [E yymmdd ...]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without CHAT_* variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env["CHAT_DB"] = ":memory:"  # never leave a database file in the repository
    env["CHAT_JOIN_GRACE"] = "0"  # leave notices at once, unless a test asks (as TEST_DEFAULTS)
    env["CHAT_ROOM_CREATION"] = "join"  # rooms made by joining them, as TEST_DEFAULTS
    env.update(extra)
    return env


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run chat_server.py to completion (for runs that must end by themselves)."""
    return subprocess.run(
        [sys.executable, "chat_server.py", *args], cwd=ROOT, env=child_env(**env),
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )


def healthz(port: int, host: str = "127.0.0.1") -> dict[str, Any] | None:
    """GET /healthz as JSON, or None if nothing answers it with 200."""
    conn = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        body = response.read()
    except OSError:
        return None
    finally:
        conn.close()
    return json.loads(body) if response.status == 200 else None


def reachable(host: str, port: int) -> bool:
    """Whether a TCP connection to host:port is accepted."""
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except OSError:
        return False


def assert_clean(stderr: str) -> None:
    """No crash, lost exception or ERROR log line in a child's stderr."""
    for sign in CRASH_SIGNS:
        assert sign not in stderr, stderr
    assert not ERROR_LOG_LINE.search(stderr), stderr


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The run failed with exactly one line on stderr and no traceback; that line."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert_clean(result.stderr)
    assert lines[0].startswith("chat_server: "), lines[0]
    return lines[0]


class Child:
    """A running chat_server.py (or `command`, run in `cwd`), its stderr going to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, *,
                 command: list[str] | None = None, cwd: Path = ROOT) -> None:
        self.log = log
        self._stderr: IO[bytes] = log.open("wb")
        self.proc = subprocess.Popen(
            [*(command or [sys.executable, "chat_server.py"]), *args], cwd=cwd, env=env,
            stdout=subprocess.DEVNULL, stderr=self._stderr,
        )

    @property
    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, port: int) -> None:
        """Poll GET /healthz on 127.0.0.1:port until it answers 200."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while healthz(port) is None:
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.stderr}"
            assert time.monotonic() < deadline, f"not serving on {port}:\n{self.stderr}"
            time.sleep(0.05)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send `signum`; the exit status, which must come within EXIT_TIMEOUT_S."""
        self.proc.send_signal(signum)
        return self.proc.wait(EXIT_TIMEOUT_S)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._stderr.close()


Spawn = Callable[..., Child]
WsConnect = Callable[[int], Awaitable[ChatClient]]




def redis_binary() -> str:
    """The redis-server binary; a missing one skips a test here but fails it in CI."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is missing: scripts/bootstrap test installs it")
        pytest.skip("redis-server is missing here; run scripts/bootstrap test (CI fails instead)")
    return binary


def start_redis(port: int, workdir: Path, *, persistent: bool = False) -> subprocess.Popen[bytes]:
    """A redis-server on 127.0.0.1:`port`, once it answers PING.

    No persistence by default; `persistent` logs every write to an append-only file in
    `workdir`, fsynced before the reply, so a server restarted on the same `workdir` after a
    SIGKILL has every acknowledged write.
    """
    persistence = ["--appendonly", "yes", "--appendfsync", "always"] if persistent else [
        "--appendonly", "no"]
    proc = subprocess.Popen(
        [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         *persistence, "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if redis_command(port, "PING") == b"+PONG":
                return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"redis-server on port {port} did not start")
        time.sleep(0.05)


def redis_command(port: int, *words: str, db: int = 0) -> bytes:
    """Send one command (after SELECT `db`) to 127.0.0.1:`port`; its reply's first line.

    Enough for commands that answer one line (PING, FLUSHDB, FLUSHALL), without a client library.
    """
    commands = ([("SELECT", str(db))] if db else []) + [words]
    request = b"".join(
        b"*%d\r\n" % len(command)
        + b"".join(b"$%d\r\n%s\r\n" % (len(w.encode()), w.encode()) for w in command)
        for command in commands
    )
    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
        sock.sendall(request)
        reply = b""
        while reply.count(b"\r\n") < len(commands):
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"redis on port {port} closed the connection")
            reply += chunk
    return reply.split(b"\r\n")[len(commands) - 1]


def flush_redis(url: str) -> None:
    """FLUSHDB the database a redis://127.0.0.1:PORT/N URL names (N defaults to 0)."""
    address, _, db = url.removeprefix("redis://").partition("/")
    reply = redis_command(int(address.rpartition(":")[2]), "FLUSHDB", db=int(db or 0))
    assert reply == b"+OK", reply


class OwnRedis:
    """Persistent redis-servers started one after another on one free port of a test's own."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        self.procs.append(start_redis(self.port, self.workdir, persistent=True))
        return self.procs[-1]

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)

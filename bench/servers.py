"""Starting, watching and stopping the processes under test, and the load generator's runs."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench.env import LOADGEN_CORE, NICE, ROOT, SERVER_CORE, BenchError, Json, log

# The reference servers of bench/floors.py, by --servers key: what a WebSocket connection
# costs below our own code (Tornado's machinery; a bare asyncio Protocol).
FLOORS = {
    "tornado": "Tornado alone (a bare WebSocketHandler)",
    "asyncio": "asyncio alone (a bare Protocol)",
}


@dataclass
class ServerSpec:
    """How to start one of the servers under test."""

    key: str
    title: str
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    help_text: str = ""  # its --help, to know which optional flags it takes


@dataclass
class Running:
    """A started server."""

    spec: ServerSpec
    proc: subprocess.Popen[bytes]
    port: int
    log: Path


def pinned(core: str | None) -> list[str]:
    """The command prefix that runs a process on `core` (a `taskset -c` list; None: any core)."""
    return [*NICE, "taskset", "-c", core] if core is not None else [*NICE]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def our_server_spec(python: Path, extra: list[str]) -> ServerSpec | None:
    script = ROOT / "chat_server.py"
    if not script.is_file():
        return None
    help_text = subprocess.run(
        [str(python), str(script), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    options = help_text.stdout + help_text.stderr
    argv = [
        str(python),
        str(script),
        "--port",
        "{port}",
        "--rate-limit",
        "0",
        "--max-connections-per-ip",
        "0",
        "--max-connections",
        "20000",
    ]
    if "--db" in options:
        argv += ["--db", ":memory:"]
    if "--address" in options:
        argv += ["--address", "127.0.0.1"]
    if "--room-creation" in options:
        argv += ["--room-creation", "join"]  # the load joins rooms nobody made first
    if "--max-unfinished-per-ip" in options:
        # One loopback address stands in for every client, as with --max-connections-per-ip:
        # the per-address cap on handshakes in flight would refuse the load generator's own.
        argv += ["--max-unfinished-per-ip", "0"]
    return ServerSpec(
        "ours", "ours (Tornado)", argv + extra, ROOT, {"PYTHONUNBUFFERED": "1"}, options
    )


def wait_ready(run: Running, timeout: float = 30.0) -> None:
    """Waits for an HTTP answer on / (never /ws: the tutorial server exits on a bad upgrade)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if run.proc.poll() is not None:
            raise BenchError(f"{run.spec.key} exited with {run.proc.returncode}; see {run.log}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", run.port, timeout=2)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{run.spec.key} did not answer on port {run.port} within {timeout:.0f} s")


def alive(run: Running) -> bool:
    if run.proc.poll() is not None:
        return False
    try:
        conn = http.client.HTTPConnection("127.0.0.1", run.port, timeout=5)
        conn.request("GET", "/")
        conn.getresponse().read()
        conn.close()
    except OSError:
        return False
    return True


def spawn(
    argv: list[str], cwd: Path, env: dict[str, str] | None, log_path: Path, core: str | None
) -> subprocess.Popen[bytes]:
    """Starts a server process in a session of its own, its output appended to `log_path`."""
    with log_path.open("ab") as out:
        out.write(f"\n=== {' '.join(argv)}\n".encode())
        return subprocess.Popen(
            [*pinned(core), *argv],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def start_server(
    spec: ServerSpec, log_path: Path, flags: tuple[str, ...] = (), core: str | None = SERVER_CORE
) -> Running:
    """Starts a server on `core` (0; None: any) with the `flags` (--name=value) that its --help
    lists."""
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in spec.argv]
    argv += [f for f in flags if f.split("=", 1)[0] in spec.help_text]
    env = dict(os.environ, SEED_PORT=str(port), **spec.env)
    run = Running(spec, spawn(argv, spec.cwd, env, log_path, core), port, log_path)
    try:
        wait_ready(run)
    except BenchError:
        stop_server(run)
        raise
    return run


def stop_server(run: Running) -> int | None:
    if run.proc.poll() is None:
        run.proc.send_signal(signal.SIGTERM)
        try:
            run.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            run.proc.kill()
            run.proc.wait(timeout=5)
    return run.proc.returncode


def run_loadgen(
    loadgen: Path,
    run: Running,
    args: tuple[str, ...],
    deadline: float,
    on_connected: Callable[[], None] | None = None,
    core: str | None = LOADGEN_CORE,
    server_core: str = SERVER_CORE,
) -> Json:
    """Runs the load generator; `on_connected` is called once its clients are connected."""
    argv = [
        *pinned(core), str(loadgen), "-addr", f"127.0.0.1:{run.port}",
        "-pid", str(run.proc.pid), "-server-core", server_core, "-deadline", f"{deadline:.0f}",
        *args,
    ]  # fmt: skip
    log(" ".join(argv[len(pinned(core)) :]))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None

    def relay(stream: IO[bytes]) -> None:
        # The only reader of its stderr: progress lines go on to ours as they come.
        fired = on_connected is None
        for raw in stream:
            sys.stderr.write(raw.decode(errors="replace"))
            if not fired and b"connections open" in raw:
                fired = True
                assert on_connected is not None
                on_connected()

    relayer = threading.Thread(target=relay, args=(proc.stderr,), daemon=True)
    relayer.start()
    killer = threading.Timer(deadline + 30, proc.kill)  # it ends by itself; this is a backstop
    killer.start()
    try:
        out = proc.stdout.read()
        proc.wait()
    finally:
        killer.cancel()
        relayer.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
    if proc.returncode == -signal.SIGKILL:
        raise BenchError(f"load generator still running after {deadline + 30:.0f} s: killed")
    lines = [ln for ln in out.decode().splitlines() if ln.startswith("{")]
    if not lines:
        raise BenchError(f"load generator exited with {proc.returncode} and no result")
    result: Json = json.loads(lines[-1])
    result["exit_code"] = proc.returncode
    return result


def redis_ping(port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(log_path: Path, core: str, workdir: Path) -> Running:
    """A throwaway redis-server on a free loopback port: no RDB snapshots, no AOF."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchError("no redis-server: apt-get install -y redis-server")
    port = free_port()
    argv = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(workdir), "--daemonize", "no",
    ]  # fmt: skip
    proc = spawn(argv, workdir, None, log_path, core)
    run = Running(ServerSpec("redis", "Redis", argv, workdir), proc, port, log_path)
    end = time.monotonic() + 10
    while not redis_ping(port, 0.5):
        if proc.poll() is not None or time.monotonic() > end:
            stop_server(run)
            raise BenchError(f"redis-server did not answer on port {port}; see {log_path}")
        time.sleep(0.05)
    return run


def scrape_metrics(run: Running) -> Json | None:
    """The node's own counters from /metrics: deliveries, messages, failures, loop lag."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", run.port, timeout=5)
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode(errors="replace")
        conn.close()
    except OSError:
        return None
    out: Json = {}
    for line in body.splitlines():
        if not line.startswith("chat_"):
            continue
        name, _, value = line.rpartition(" ")
        if "{" in name and not name.startswith("chat_event_loop_lag_seconds_bucket"):
            continue
        try:
            out[name] = float(value)
        except ValueError:
            continue
    return out


# The /metrics counters the reports read, as their change over a phase's load.
COUNTERS = ("chat_deliveries_total", "chat_socket_writes_total")


def counter_deltas(before: Json | None, after: Json | None) -> Json | None:
    """What COUNTERS grew by between two scrapes of one server (None if either failed)."""
    if before is None or after is None:
        return None
    return {name: after.get(name, 0.0) - before.get(name, 0.0) for name in COUNTERS}

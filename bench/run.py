"""Runs the Simple Chat benchmark suite against the Go tutorial server and ours (bench/README.md).

It builds the load generator (bench/loadgen, Go, stdlib only) and the Go tutorial server (from
../shared/seed/src/main.go, patched in a temporary copy to listen on 127.0.0.1:$SEED_PORT) into
bench/bin/, then, for each server and each phase, starts a fresh server pinned to core 0, runs
the load generator pinned to core 1 against it, reads the server's CPU (utime+stime from
/proc/PID/stat) and RSS before and after the phase, and stops the server. The results go to
bench/results/ as markdown and JSON, and the markdown also to stdout.

    .venv/bin/python bench/run.py --quick      # the whole suite, both servers, < 2 minutes
    .venv/bin/python bench/run.py              # the full run (every phase <= 60 s)
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = BENCH / "bin"
RESULTS = BENCH / "results"
LOADGEN_SRC = BENCH / "loadgen"
DEFAULT_SEED = ROOT.parent / "shared" / "seed" / "src" / "main.go"
SERVER_CORE = "0"
LOADGEN_CORE = "1"
NICE: list[str] = []  # ["nice", "-n", "-10"] with --nice -10
NOFILE_WANTED = 65536
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

Json = dict[str, Any]


class BenchError(Exception):
    """A step of the suite could not be carried out."""


@dataclass(frozen=True)
class Phase:
    """One load-generator run; every phase gets a fresh server."""

    name: str
    title: str
    quick: str  # load generator flags, split on white space
    full: str
    server_flags: tuple[str, ...] = ()  # extra flags for a server that lists them in --help

    def args(self, quick: bool) -> tuple[str, ...]:
        return tuple((self.quick if quick else self.full).split())


PHASES: tuple[Phase, ...] = (
    Phase(
        "fixed",
        "fixed rate: 1,000 clients, 10 senders, 10,000 deliveries/s",
        "-mode fixed -clients 1000 -senders 10 -rate 10000 -warmup 1 -duration 4",
        "-mode fixed -clients 1000 -senders 10 -rate 10000 -warmup 2 -duration 10",
    ),
    Phase(
        "ramp",
        "ramp to saturation: 1,000 clients, 10 senders (p99 <= 500 ms, no loss)",
        "-mode ramp -clients 1000 -senders 10 -ramp-start 40000 -ramp-factor 2 -ramp-step 1.2"
        " -ramp-bisect 2 -ramp-budget 25",
        "-mode ramp -clients 1000 -senders 10 -ramp-start 20000 -ramp-factor 2 -ramp-step 3"
        " -ramp-bisect 4 -ramp-budget 55",
    ),
    Phase(
        "idle",
        "idle: 10,000 connections, then one message to all",
        "-mode idle -clients 10000 -idle-msgs 3 -settle 1",
        "-mode idle -clients 10000 -idle-msgs 5 -settle 2",
    ),
    Phase(
        "slow",
        "slow reader: 100 clients, 10 senders, 50,000 deliveries/s of 1 KB texts,"
        " one client never reads",
        "-mode slow -clients 100 -senders 10 -rate 50000 -size 1000 -warmup 1 -duration 6"
        " -window 2 -drain 3",
        "-mode slow -clients 100 -senders 10 -rate 50000 -size 1000 -warmup 2 -duration 30"
        " -window 5",
        # History would grow RSS by ~1 KB a message until its cap and hide what is measured.
        ("--history-per-room=100",),
    ),
    Phase(
        "churn",
        "connection churn: 200 clients, 5 senders, 20,000 deliveries/s, connects/disconnects",
        "-mode churn -clients 200 -senders 5 -rate 20000 -churn-rate 200 -warmup 1 -duration 6"
        " -window 3 -drain 3",
        "-mode churn -clients 200 -senders 5 -rate 20000 -churn-rate 300 -warmup 2 -duration 30"
        " -window 5",
    ),
)
PHASE_NAMES = tuple(p.name for p in PHASES)


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


# ------------------------------------------------------------------------------------ helpers


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in ((NOFILE_WANTED, max(hard, NOFILE_WANTED)), (hard, hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, want)
            return want[0]
        except (ValueError, OSError):
            continue
    return soft


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def proc_sample(pid: int) -> Json | None:
    """CPU seconds (utime+stime) and RSS in KiB of a process, from /proc/PID/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss = int(fields[21]) * PAGE_KIB
    return {"cpu_s": round(cpu, 3), "rss_kib": rss}


def _stat_fields(pid: str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    i = raw.rfind(")")
    if i < 0:
        return None
    return [raw[raw.index("(") + 1 : i], *raw[i + 2 :].split()]


def other_cpu() -> dict[int, tuple[str, int]]:
    """CPU ticks (utime+stime) of every process that is not this suite's.

    This process and all its descendants (servers, load generator, py-spy) and kernel threads
    (whose softirq work is the benchmark's own traffic) are left out: what remains is other
    work on the machine competing with the measurement. Children's time (cutime) is left out:
    a long-lived child reaped during a phase would count its whole life; so a process that
    starts and ends between two snapshots is missed.
    """
    parent: dict[int, int] = {}
    ticks: dict[int, tuple[str, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        f = _stat_fields(name)
        if f is None or len(f) < 17:
            continue
        pid, ppid = int(name), int(f[2])
        parent[pid] = ppid
        if pid == 2 or ppid == 2:
            continue
        ticks[pid] = (f[0], int(f[12]) + int(f[13]))  # utime + stime, not reaped children
    me = os.getpid()

    def ours(pid: int) -> bool:
        seen = 0
        while pid > 1 and seen < 64:
            if pid == me:
                return True
            pid = parent.get(pid, 0)
            seen += 1
        return False

    return {pid: v for pid, v in ticks.items() if not ours(pid)}


def other_cpu_delta(
    before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]], seconds: float
) -> Json:
    """Cores' worth of other processes' CPU between two other_cpu() snapshots."""
    use: collections.Counter[str] = collections.Counter()
    for pid, (comm, t) in after.items():
        d = t - before.get(pid, (comm, 0))[1]
        if d > 0:
            use[f"{comm}[{pid}]"] += d
    total = sum(use.values()) / CLK_TCK
    top = [[k, round(v / CLK_TCK / max(seconds, 1e-3), 3)] for k, v in use.most_common(3)]
    return {"cores": round(total / max(seconds, 1e-3), 3), "top": top}


def machine_busy_s() -> float:
    """CPU seconds all cores spent on processes (user, nice, system) and stolen, since boot."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    user, nice, system, steal = (int(fields[i]) for i in (1, 2, 3, 8))
    return (user + nice + system + steal) / CLK_TCK


def own_cpu_s() -> float:
    """CPU seconds of this process and of its children that have been waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


class Contention:
    """Other work on the machine while a phase runs: all CPU time less this suite's own.

    The suite's own is this process, its children that were waited for (the load generator)
    and the running server (or servers: `extra_pids`, e.g. a cluster's other node and Redis).
    Softirq time (where much of loopback traffic is processed) is left out on both sides. A
    per-process scan names the largest other consumers.
    """

    def __init__(self, server_pid: int | None, extra_pids: tuple[int, ...] = ()) -> None:
        self.server_pid = server_pid
        self.extra_pids = extra_pids
        self.t0 = time.monotonic()
        self.busy0 = machine_busy_s()
        self.own0 = own_cpu_s()
        self.server0 = self._server()
        self.procs0 = other_cpu()

    def _server(self) -> float:
        total = 0.0
        for pid in (self.server_pid, *self.extra_pids):
            sample = proc_sample(pid) if pid is not None else None
            total += float(sample["cpu_s"]) if sample else 0.0
        return total

    def result(self) -> Json:
        seconds = max(time.monotonic() - self.t0, 1e-3)
        others = (
            (machine_busy_s() - self.busy0)
            - (own_cpu_s() - self.own0)
            - (self._server() - self.server0)
        )
        top = other_cpu_delta(self.procs0, other_cpu(), seconds)["top"]
        return {"cores": round(max(others, 0.0) / seconds, 3), "top": top}


def wait_quiet(
    limit: float, max_wait: float, server_pid: int | None, extra_pids: tuple[int, ...] = ()
) -> Json:
    """Waits (up to max_wait s) until other processes use less than `limit` cores."""
    start = time.monotonic()
    while True:
        meter = Contention(server_pid, extra_pids)
        time.sleep(0.5)
        last = meter.result()
        waited = time.monotonic() - start
        if last["cores"] < limit or waited >= max_wait:
            return {**last, "waited_s": round(waited, 1)}
        log(f"machine busy ({last['cores']:.2f} cores; largest: {last['top']}); waiting")


def go_binary() -> str:
    go = shutil.which("go")
    if go is None:
        raise BenchError(
            "no Go toolchain: apt-get install -y golang-go golang-github-gorilla-websocket-dev"
        )
    return go


def run_checked(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")


def build_loadgen() -> Path:
    out = BIN / "loadgen"
    env = dict(os.environ, GO111MODULE="on", GOPROXY="off", GOFLAGS="-mod=mod", CGO_ENABLED="0")
    run_checked([go_binary(), "build", "-trimpath", "-o", str(out), "."], LOADGEN_SRC, env)
    return out


def build_seed(seed_src: Path) -> Path:
    """Builds the tutorial server from a patched temporary copy (its port is fixed at 8000)."""
    if not seed_src.is_file():
        raise BenchError(f"no Go tutorial server at {seed_src} (see --seed-src)")
    source = seed_src.read_text()
    listen = 'http.ListenAndServe(":8000", nil)'
    imports = '"net/http"\n'
    if listen not in source or imports not in source:
        raise BenchError(f"{seed_src} is not the tutorial server this suite knows how to patch")
    source = source.replace(
        listen, 'http.ListenAndServe("127.0.0.1:"+os.Getenv("SEED_PORT"), nil)', 1
    ).replace(imports, imports + '\t"os"\n', 1)
    out = BIN / "seed-chat"
    env = dict(
        os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off", GOFLAGS="", CGO_ENABLED="0"
    )
    with tempfile.TemporaryDirectory(prefix="seed-build-") as tmp:
        (Path(tmp) / "main.go").write_text(source)
        run_checked([go_binary(), "build", "-o", str(out), "main.go"], Path(tmp), env)
    return out


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


def start_server(
    spec: ServerSpec, log_path: Path, flags: tuple[str, ...] = (), core: str = SERVER_CORE
) -> Running:
    """Starts a server on `core` (0) with the `flags` (--name=value) that its --help lists."""
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in spec.argv]
    argv += [f for f in flags if f.split("=", 1)[0] in spec.help_text]
    env = dict(os.environ, SEED_PORT=str(port), **spec.env)
    with log_path.open("ab") as out:
        out.write(f"\n=== {' '.join(argv)}\n".encode())
        proc = subprocess.Popen(
            [*NICE, "taskset", "-c", core, *argv],
            cwd=spec.cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    run = Running(spec, proc, port, log_path)
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
    core: str = LOADGEN_CORE,
    server_core: str = SERVER_CORE,
) -> Json:
    """Runs the load generator; `on_connected` is called once its clients are connected."""
    argv = [
        *NICE, "taskset", "-c", core, str(loadgen), "-addr", f"127.0.0.1:{run.port}",
        "-pid", str(run.proc.pid), "-server-core", server_core, "-deadline", f"{deadline:.0f}",
        *args,
    ]  # fmt: skip
    log(" ".join(argv[len(NICE) + 3 :]))
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
    out = proc.stdout.read()
    proc.wait()
    killer.cancel()
    relayer.join(timeout=5)
    if proc.returncode == -signal.SIGKILL:
        raise BenchError(f"load generator still running after {deadline + 30:.0f} s: killed")
    lines = [ln for ln in out.decode().splitlines() if ln.startswith("{")]
    if not lines:
        raise BenchError(f"load generator exited with {proc.returncode} and no result")
    result: Json = json.loads(lines[-1])
    result["exit_code"] = proc.returncode
    return result


# ------------------------------------------------------------------------------------ the suite


@dataclass(frozen=True)
class Quiet:
    """How much other work on the machine a phase tolerates."""

    limit: float  # cores used by other processes
    max_wait: float  # seconds to wait for that before a phase
    retries: int  # runs again of a phase they disturbed


def run_phase(
    loadgen: Path, spec: ServerSpec, phase: Phase, quick: bool, logs: Path, quiet: Quiet
) -> Json:
    """Runs a phase; one that other processes disturbed is run again (up to quiet.retries)."""
    return quietest(lambda: run_phase_once(loadgen, spec, phase, quick, logs, quiet),
                    f"{spec.key}: phase {phase.name}", quiet)


def quietest(run_once: Callable[[], Json], label: str, quiet: Quiet) -> Json:
    """Run until a run is not disturbed by other processes (up to quiet.retries more); the
    least disturbed run."""
    best: Json | None = None
    for attempt in range(1 + quiet.retries):
        out = run_once()
        out["attempt"] = attempt + 1
        if best is None or dig(out, "other_cpu", "cores") < dig(best, "other_cpu", "cores"):
            best = out
        if not out.get("contended"):
            break
        log(f"{label} was disturbed by {out['other_cpu']}; again")
    assert best is not None
    return best


def run_phase_once(
    loadgen: Path, spec: ServerSpec, phase: Phase, quick: bool, logs: Path, quiet: Quiet
) -> Json:
    log(f"{spec.key}: phase {phase.name}")
    out: Json = {"phase": phase.name, "other_cpu": {"cores": 0.0, "top": []}}
    try:
        run = start_server(spec, logs / f"{spec.key}.log", phase.server_flags)
    except BenchError as exc:
        return {**out, "error": str(exc)}
    try:
        out["quiet_before"] = wait_quiet(quiet.limit, quiet.max_wait, run.proc.pid)
        before = proc_sample(run.proc.pid)
        meter = Contention(run.proc.pid)
        started = time.monotonic()
        try:
            out["loadgen"] = run_loadgen(loadgen, run, phase.args(quick), deadline=75)
        except BenchError as exc:
            out["error"] = str(exc)
        out["seconds"] = round(time.monotonic() - started, 1)
        out["other_cpu"] = meter.result()
        out["contended"] = out["other_cpu"]["cores"] > quiet.limit
        after = proc_sample(run.proc.pid)
        out["server_alive_after"] = alive(run)
        if before and after:
            out["server"] = {
                "cpu_s": round(after["cpu_s"] - before["cpu_s"], 3),
                "rss_kib_before": before["rss_kib"],
                "rss_kib_after": after["rss_kib"],
            }
    finally:
        code = stop_server(run)
        out["server_exit_code"] = code
    return out


def run_profile(loadgen: Path, spec: ServerSpec, rate: float, seconds: int, logs: Path) -> Json:
    """py-spy record of our server under a fixed load, from when every client is connected."""
    py_spy = shutil.which("py-spy") or str(ROOT / ".venv" / "bin" / "py-spy")
    if not Path(py_spy).exists():
        return {"error": "py-spy is not installed (.venv/bin/pip install py-spy)"}
    run = start_server(spec, logs / f"{spec.key}.log")
    raw = RESULTS / f"profile-{dt.datetime.now():%Y%m%d-%H%M%S}.txt"
    spies: list[subprocess.Popen[bytes]] = []

    def start_spy() -> None:
        spies.append(subprocess.Popen(
            ["taskset", "-c", LOADGEN_CORE, py_spy, "record", "--pid", str(run.proc.pid),
             "--rate", "250", "--format", "raw", "--nonblocking", "--duration", str(seconds),
             "--output", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip

    try:
        args = "-mode fixed -clients 1000 -senders 10 -warmup 0.5 -drain 3"
        lg = run_loadgen(
            loadgen, run, (*args.split(), "-rate", f"{rate:.0f}", "-duration", str(seconds + 1)),
            deadline=seconds + 30, on_connected=start_spy,
        )  # fmt: skip
        for spy in spies:
            spy.wait(timeout=seconds + 30)
    finally:
        for spy in spies:
            if spy.poll() is None:
                spy.kill()
        stop_server(run)
    if not raw.exists():
        return {"error": "py-spy wrote nothing (is ptrace allowed?)", "loadgen": lg}
    return {
        "rate": rate,
        "seconds": seconds,
        "raw": str(raw),
        "loadgen": lg,
        **summarize_profile(raw),
    }


def summarize_profile(raw: Path, top: int = 15) -> Json:
    """Sample shares from py-spy's collapsed stacks: self per function and per line, and
    inclusive per function. A frame reads `func (file:line)`; per function drops the line."""
    own_fn: collections.Counter[str] = collections.Counter()
    own_line: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        n = int(count_s)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += n
        own_line[frames[-1]] += n
        own_fn[function_of(frames[-1])] += n
        for f in {function_of(f) for f in frames}:
            incl[f] += n

    def share(c: collections.Counter[str]) -> list[list[Any]]:
        return [[f, round(100 * n / total, 1)] for f, n in c.most_common(top)] if total else []

    return {
        "samples": total,
        "self": share(own_fn),
        "self_lines": share(own_line),
        "inclusive": share(incl),
    }


def function_of(frame: str) -> str:
    """`Outbox.flush (handlers/outbox.py:91)` -> `Outbox.flush (handlers/outbox.py)`."""
    head, sep, tail = frame.rpartition(":")
    return f"{head})" if sep and tail.rstrip(")").isdigit() else frame


# ------------------------------------------------------------------------------------ report


def dig(d: Json | None, *path: str) -> Any:
    cur: Any = d
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return None
        cur = cur[key]
    return cur


def num(v: Any, fmt: str, unit: str = "") -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0:
        return f"{v:{fmt}}{unit}"
    return "n/a"


def ratio(ours: Any, go: Any, higher_better: bool) -> str:
    if not all(isinstance(v, (int, float)) and v > 0 for v in (ours, go)):
        return ""
    r = ours / go
    better = r >= 1 if higher_better else r <= 1
    return f"{r:.2f}×{' ✓' if better else ''}"


def flag(phase: Json | None) -> str:
    if phase is None:
        return ""
    lg = dig(phase, "loadgen")
    notes = []
    if dig(lg, "loadgen_busy_flag"):
        notes.append("⚑ load generator >85% busy")
    if phase.get("contended"):
        notes.append(f"⚠ other processes used {phase['other_cpu']['cores']:.2f} cores")
    if phase.get("error"):
        notes.append(f"error: {phase['error'][:80]}")
    return f" ({'; '.join(notes)})" if notes else ""


def figures(res: Json) -> Json:
    """The issue's target-table figures for one server."""
    ph: Json = res.get("phases", {})
    ramp, fixed, idle = ph.get("ramp"), ph.get("fixed"), ph.get("idle")
    slow, churn = ph.get("slow"), ph.get("churn")
    best = dig(ramp, "loadgen", "result")
    return {
        "sustained": dig(best, "delivered_per_s"),
        "ramp_flag": (" (⚑ load generator >85% busy)" if dig(best, "loadgen_busy_flag") else "")
        + (flag({k: v for k, v in ramp.items() if k != "loadgen"}) if ramp else "")
        + (
            " (≥: ramp stopped by the load generator)"
            if dig(ramp, "loadgen", "stop_reason") == "load generator above 85% busy"
            else ""
        ),
        "us_per_dlv": dig(best, "server_us_per_dlv"),
        "core_us_per_dlv": dig(best, "server_core_us_per_dlv"),
        "p99_10k": dig(fixed, "loadgen", "result", "p99_ms"),
        "p50_10k": dig(fixed, "loadgen", "result", "p50_ms"),
        "lost_10k": dig(fixed, "loadgen", "result", "lost"),
        "fixed_flag": flag(fixed),
        "kib_conn": dig(idle, "loadgen", "server_kib_per_conn"),
        "last_dlv": dig(idle, "loadgen", "last_delivery_ms_median"),
        "idle_all": dig(idle, "loadgen", "all_delivered"),
        "idle_conns": dig(idle, "loadgen", "connections"),
        "idle_flag": flag(idle),
        "slow": slow,
        "churn": churn,
    }


def rss_growth(phase: Json | None) -> tuple[float, float] | None:
    series = dig(phase, "loadgen", "server_rss_series")
    if not isinstance(series, list) or len(series) < 4:
        return None
    rss = [float(s["rss_kib"]) for s in series]
    mid = len(rss) // 2
    return (rss[mid] - rss[0]) / 1024, (rss[-1] - rss[mid]) / 1024


def slow_cell(phase: Json | None) -> str:
    if phase is None:
        return "n/a"
    if phase.get("error"):
        return f"error: {phase['error'][:60]}"
    others = dig(phase, "loadgen", "others") or {}
    lost, exp = others.get("lost", -1), others.get("expected", 0)
    p99 = others.get("worst_window_p99_ms", -1)
    fine = lost == 0 and 0 <= p99 <= 500
    growth = rss_growth(phase)
    dropped = dig(phase, "loadgen", "slow_reader", "dropped")
    parts = [
        "others fine" if fine else "others stall",
        f"lost {lost:,}/{exp:,}" if lost else "no loss",
        f"worst p99 {p99:.1f} ms",
    ]
    if growth:
        parts.append(f"RSS +{growth[0]:.1f} then +{growth[1]:.1f} MiB")
    parts.append("slow reader dropped" if dropped else "slow reader kept")
    return ", ".join(parts) + flag(phase)


def churn_cell(phase: Json | None) -> str:
    if phase is None:
        return "n/a"
    if phase.get("error"):
        return f"error: {phase['error'][:60]}"
    up = phase.get("server_alive_after")
    others = dig(phase, "loadgen", "others") or {}
    ch = dig(phase, "loadgen", "churn") or {}
    return (
        f"{'stayed up' if up else 'DIED'}, {ch.get('opened', 0):,} connects"
        f" ({ch.get('failed', 0)} failed, p99 {num(ch.get('connect_p99_ms'), '.1f', ' ms')}),"
        f" others lost {others.get('lost', -1):,}, worst p99"
        f" {num(others.get('worst_window_p99_ms'), '.1f', ' ms')}" + flag(phase)
    )


def table(results: dict[str, Json]) -> str:
    go, ours = figures(results.get("go", {})), figures(results.get("ours", {}))
    has_ours = "ours" in results

    def row(
        title: str, key: str, fmt: str, unit: str, target: str, higher: bool, fl: str = ""
    ) -> str:
        g, o = go[key], ours[key]
        cells = [title, num(g, fmt, unit) + go.get(fl, "") if fl else num(g, fmt, unit)]
        if has_ours:
            cells += [
                num(o, fmt, unit) + ours.get(fl, "") if fl else num(o, fmt, unit),
                ratio(o, g, higher),
            ]
        cells.append(target)
        return "| " + " | ".join(cells) + " |"

    head = ["figure", "Go tutorial server"] + (["ours", "ours/Go"] if has_ours else []) + ["target"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines.append(
        row(
            "highest sustained deliveries/s (p99 ≤ 500 ms, no loss)",
            "sustained",
            ",.0f",
            "",
            "≥ Go (then 2×)",
            True,
            "ramp_flag",
        )
    )
    lines.append(
        row(
            "server CPU µs per delivered message at that load",
            "us_per_dlv",
            ".2f",
            " µs",
            "≤ 4",
            False,
        )
    )
    lines.append(
        row(
            "… core 0 busy µs per delivery (server + the kernel's softirq work)",
            "core_us_per_dlv",
            ".2f",
            " µs",
            "",
            False,
        )
    )
    lines.append(
        row(
            "p99 latency at 10,000 deliveries/s",
            "p99_10k",
            ".1f",
            " ms",
            "≤ 10 ms",
            False,
            "fixed_flag",
        )
    )
    lines.append(
        row(
            "server memory per idle connection at 10,000 connections",
            "kib_conn",
            ".1f",
            " KiB",
            "≤ 14 KiB",
            False,
            "idle_flag",
        )
    )
    lines.append(
        row(
            "one message to 10,000 idle clients, last delivery (median)",
            "last_dlv",
            ".0f",
            " ms",
            "≤ 100 ms",
            False,
        )
    )
    slow = ["one client stops reading", slow_cell(go["slow"])]
    churn = ["connection churn", churn_cell(go["churn"])]
    if has_ours:
        slow += [slow_cell(ours["slow"]), ""]
        churn += [churn_cell(ours["churn"]), ""]
    lines.append("| " + " | ".join([*slow, "others fine, memory bounded"]) + " |")
    lines.append("| " + " | ".join([*churn, "server stays up"]) + " |")
    return "\n".join(lines)



def phase_notes(name: str, lg: Json) -> list[str]:
    """The table's notes on an idle or ramp phase, from its load generator's report."""
    if name == "idle":
        return [
            f"{num(lg.get('connections'), ',')} conns in"
            f" {num(lg.get('connect_seconds'), '.2f', ' s')},"
            f" {num(lg.get('server_kib_per_conn'), '.1f', ' KiB/conn')},"
            f" handshake {num(lg.get('server_handshake_cpu_us'), '.0f', ' µs CPU')},"
            f" last delivery {lg.get('last_delivery_ms')} ms"
        ]
    if name == "ramp":
        return [
            f"stop: {lg.get('stop_reason')}; first failing rate"
            f" {num(lg.get('first_failing_rate'), ',.0f')}"
        ]
    return []


def details(key: str, res: Json) -> str:
    out = [f"### {res.get('title', key)}", ""]
    if res.get("error"):
        return "\n".join([*out, f"not measured: {res['error']}", ""])
    ph: Json = res.get("phases", {})
    out.append(
        "| phase | seconds | deliveries/s | p50 | p99 | max | lost | server CPU µs/dlv |"
        " loadgen busy | server RSS before → after | others' CPU | notes |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in PHASE_NAMES:
        p = ph.get(name)
        if p is None:
            continue
        lg = p.get("loadgen") or {}
        r = lg.get("result") or {}
        srv = p.get("server") or {}
        others = lg.get("others") or {}
        notes = phase_notes(name, lg)
        if name in ("slow", "churn"):
            r = {
                "p99_ms": others.get("worst_window_p99_ms"),
                "max_ms": others.get("max_ms"),
                "lost": others.get("lost"),
            }
            notes.append(slow_cell(p) if name == "slow" else churn_cell(p))
        if p.get("error"):
            notes.append(f"error: {p['error']}")
        if p.get("contended"):
            named = [(n, c) for n, c in dig(p, "other_cpu", "top") or [] if c >= 0.01]
            top = ", ".join(f"{n} {c:.2f}" for n, c in named)
            notes.append(f"⚠ disturbed by {top + ' and ' if top else ''}short-lived processes")
        if not p.get("server_alive_after", True):
            notes.append("server not answering after the phase")
        out.append(
            "| "
            + " | ".join(
                [
                    name,
                    num(p.get("seconds"), ".0f"),
                    num(r.get("delivered_per_s"), ",.0f"),
                    num(r.get("p50_ms"), ".1f", " ms"),
                    num(r.get("p99_ms"), ".1f", " ms"),
                    num(r.get("max_ms"), ".1f", " ms"),
                    num(r.get("lost"), ","),
                    num(r.get("server_us_per_dlv"), ".2f"),
                    num(lg.get("loadgen_cpu_max"), ".0%"),
                    f"{num(srv.get('rss_kib_before'), ',', ' KiB')} → "
                    f"{num(srv.get('rss_kib_after'), ',', ' KiB')}",
                    num(dig(p, "other_cpu", "cores"), ".2f", " cores"),
                    "; ".join(notes),
                ]
            )
            + " |"
        )
    ramp = dig(ph, "ramp", "loadgen", "steps")
    if isinstance(ramp, list) and ramp:
        out += [
            "",
            "Ramp steps:",
            "",
            "| target/s | delivered/s | p50 | p99 | max | lost | server CPU | µs/dlv |"
            " core 0 µs/dlv | loadgen busy | server waited for CPU | pass |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in ramp:
            out.append(
                "| "
                + " | ".join(
                    [
                        num(s.get("target_per_s"), ",.0f"),
                        num(s.get("delivered_per_s"), ",.0f"),
                        num(s.get("p50_ms"), ".1f", " ms"),
                        num(s.get("p99_ms"), ".1f", " ms"),
                        num(s.get("max_ms"), ".1f", " ms"),
                        num(s.get("lost"), ","),
                        num(s.get("server_cpu_share"), ".0%"),
                        num(s.get("server_us_per_dlv"), ".2f"),
                        num(s.get("server_core_us_per_dlv"), ".2f"),
                        num(s.get("loadgen_cpu"), ".0%"),
                        num(s.get("server_runq_wait_ms"), ".0f", " ms"),
                        "yes" if s.get("pass") else "no",
                    ]
                )
                + " |"
            )
    out.append("")
    return "\n".join(out)


def machine() -> Json:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    go = subprocess.run(["go", "version"], capture_output=True, text=True, check=False).stdout
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "go": go.strip(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def report(data: Json) -> str:
    m = data["machine"]
    results: dict[str, Json] = data["servers"]
    lines = [
        f"# Simple Chat benchmark ({'quick' if data['quick'] else 'full'} run, {data['started']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['mem_gib']} GiB, Linux {m['kernel']},"
        f" Python {m['python']}, {m['go']}. Server pinned to core {SERVER_CORE}, load generator"
        f" to core {LOADGEN_CORE}, loopback TCP, a fresh server for every phase.",
        f"Command: `{data['command']}`",
        "",
        table(results),
        "",
        "Figures: the ramp's best passing step; server CPU from /proc/PID/stat over that step"
        " (sending and draining) divided by its deliveries; latency from the send timestamp"
        " embedded in each message to its receipt. ⚑ marks a figure where the load generator was"
        " more than 85% busy (its own limit, not the server's).",
        "",
        "## Phases",
        "",
        *[
            f"- `{p.name}`: {p.title}"
            + (f" (ours with `{' '.join(p.server_flags)}`)" if p.server_flags else "")
            for p in PHASES
            if any(p.name in r.get("phases", {}) for r in results.values())
        ],
        "",
        "## Details",
        "",
    ]
    for key, res in results.items():
        lines.append(details(key, res))
    prof = data.get("profile")
    if prof:
        lines += ["## Profile of ours under load (py-spy)", ""]
        if prof.get("error"):
            lines.append(f"not taken: {prof['error']}")
        else:
            r = dig(prof, "loadgen", "result") or {}
            lines.append(
                f"{prof['samples']} samples at {num(prof.get('rate'), ',.0f')} deliveries/s target"
                f" for {prof['seconds']} s (delivered {num(r.get('delivered_per_s'), ',.0f')}/s,"
                f" p99 {num(r.get('p99_ms'), '.1f', ' ms')}); raw stacks: `{prof['raw']}`"
            )
            titles = {
                "self": "Self time by function (the sampled frame itself):",
                "self_lines": "Self time by line:",
                "inclusive": "Inclusive time by function (the frame or anything it called):",
            }
            for kind, title in titles.items():
                lines += ["", title, "", "| share | function |", "|---|---|"]
                lines += [f"| {s}% | `{f}` |" for f, s in prof.get(kind, [])]
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ cross-node

# The cross-node suite (`--cross-node`): the same load as the fixed, ramp and idle phases, but
# with the senders as 10 extra connections (`-sender-addr`) to node A and the 1,000 (10,000)
# counted receivers on node B of a two-node cluster sharing one Redis; for comparison the same
# shape against one node with the Redis broker, and against one memory:// process.
TOPOLOGIES: dict[str, str] = {
    "two": "two nodes + Redis: senders on node A, receivers on node B",
    "one": "one node, Redis broker and store (senders and receivers on it)",
    "memory": "one process, memory:// broker, --db :memory: (the suite's usual server)",
}
DEFAULT_PLACEMENT = "b=0,a=1,redis=1,loadgen=1"
DEFAULT_CORES = dict(item.split("=") for item in DEFAULT_PLACEMENT.split(","))
# Lines Redis logs at its warning level (`#`) on every start and stop, and its warning about
# vm.overcommit_memory (only background saves need it; this Redis makes none).
REDIS_NOISE = (
    "Memory overcommit must be enabled",
    "Redis is starting",
    "Redis version=",
    "Configuration loaded",
    "Server initialized",
    "User requested shutdown",
    "ready to exit",
)


def _cross_phase(name: str, title: str, extra: str = "") -> Phase:
    base = next(p for p in PHASES if p.name == name)
    return Phase(name, title, f"{base.quick} {extra}", f"{base.full} {extra}", base.server_flags)


CROSS_PHASES: tuple[Phase, ...] = (
    _cross_phase("fixed", "fixed rate: 1,000 receivers, 10 senders, 10,000 deliveries/s"),
    # Two nodes passed the load generator's default -ramp-max (4,000,000/s) in a first run.
    _cross_phase(
        "ramp",
        "ramp to saturation: 1,000 receivers, 10 senders (p99 <= 500 ms, no loss)",
        "-ramp-max 16000000",
    ),
    _cross_phase("idle", "idle: 10,000 receivers, then one message at a time to all"),
)


@dataclass(frozen=True)
class Placement:
    """The core (`taskset -c` list) of each process of the cross-node suite."""

    a: str  # the senders' node
    b: str  # the receivers' node (the only node in the one-node topologies)
    redis: str
    loadgen: str

    @staticmethod
    def parse(text: str) -> Placement:
        cores = dict(DEFAULT_CORES)
        for item in text.split(","):
            name, sep, core = item.strip().partition("=")
            if not sep or name not in cores or not core:
                raise BenchError(f"--cross-cores wants a=C,b=C,redis=C,loadgen=C; got {item!r}")
            cores[name] = core
        return Placement(cores["a"], cores["b"], cores["redis"], cores["loadgen"])

    def describe(self, topology: str) -> str:
        if topology == "two":
            return (
                f"node B (receivers) on core {self.b}, node A (senders) on core {self.a},"
                f" Redis on core {self.redis}, load generator on core {self.loadgen}"
            )
        redis = f", Redis on core {self.redis}" if topology == "one" else ""
        return f"the node on core {self.b}{redis}, load generator on core {self.loadgen}"


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
    spec = ServerSpec("redis", "Redis", argv, workdir)
    with log_path.open("ab") as out:
        out.write(f"\n=== {' '.join(argv)}\n".encode())
        proc = subprocess.Popen(
            [*NICE, "taskset", "-c", core, *argv],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    run = Running(spec, proc, port, log_path)
    end = time.monotonic() + 10
    while not redis_ping(port, 0.5):
        if proc.poll() is not None or time.monotonic() > end:
            stop_server(run)
            raise BenchError(f"redis-server did not answer on port {port}; see {log_path}")
        time.sleep(0.05)
    return run


def node_spec(base: ServerSpec, key: str, redis_url: str | None) -> ServerSpec:
    """Our server as `base` runs it, with `--broker` and `--db` at `redis_url` if given."""
    argv = list(base.argv)
    if redis_url is not None:
        if "--db" in argv:
            argv[argv.index("--db") + 1] = redis_url
        else:
            argv += ["--db", redis_url]
        argv += ["--broker", redis_url]
    title = f"node {key.upper()}" if redis_url else "one process"
    return ServerSpec(key, title, argv, base.cwd, dict(base.env), base.help_text)


def log_issues(path: Path, offset: int, keep: int = 8) -> Json:
    """Warnings, errors and tracebacks a process logged from `offset` on."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return {"count": 0, "first": []}
    bad: list[str] = []
    for line in text.splitlines():
        tornado_level = line[:3] in ("[W ", "[E ", "[C ")
        redis_warning = " # " in line[:40] and not any(n in line for n in REDIS_NOISE)
        if tornado_level or redis_warning or line.startswith("Traceback"):
            bad.append(line.strip()[:240])
    first = list(dict.fromkeys(bad))[:keep]
    return {"count": len(bad), "first": first}


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


def run_cross_phase(
    loadgen: Path,
    base: ServerSpec,
    topology: str,
    phase: Phase,
    quick: bool,
    logs: Path,
    quiet: Quiet,
    cores: Placement,
) -> Json:
    """A cross-node phase; one that other processes disturbed is run again (quiet.retries)."""
    return quietest(
        lambda: run_cross_phase_once(loadgen, base, topology, phase, quick, logs, quiet, cores),
        f"{topology}: phase {phase.name}", quiet)


def run_cross_phase_once(
    loadgen: Path,
    base: ServerSpec,
    topology: str,
    phase: Phase,
    quick: bool,
    logs: Path,
    quiet: Quiet,
    cores: Placement,
) -> Json:
    """Fresh Redis and node(s) for one phase; the load generator's receivers on node B."""
    log(f"cross-node {topology}: phase {phase.name}")
    out: Json = {"phase": phase.name, "topology": topology, "other_cpu": {"cores": 0.0, "top": []}}
    runs: dict[str, Running] = {}
    offsets: dict[str, tuple[Path, int]] = {}

    def log_file(name: str) -> Path:
        path = logs / f"cross-{topology}-{name}.log"
        offsets[name] = (path, path.stat().st_size if path.exists() else 0)
        return path

    workdir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    try:
        try:
            url = None
            if topology != "memory":
                runs["redis"] = start_redis(log_file("redis"), cores.redis, workdir)
                url = f"redis://127.0.0.1:{runs['redis'].port}/0"
            if topology == "two":
                runs["a"] = start_server(
                    node_spec(base, "a", url), log_file("a"), phase.server_flags, cores.a
                )
            runs["b"] = start_server(
                node_spec(base, "b", url), log_file("b"), phase.server_flags, cores.b
            )
        except BenchError as exc:
            out["error"] = str(exc)
            return out
        b = runs["b"]
        a = runs.get("a", b)
        pids = {name: run.proc.pid for name, run in runs.items()}
        others = tuple(pid for name, pid in pids.items() if name != "b")
        out["pids"] = pids
        out["quiet_before"] = wait_quiet(quiet.limit, quiet.max_wait, b.proc.pid, others)
        before = {name: proc_sample(pid) for name, pid in pids.items()}
        meter = Contention(b.proc.pid, others)
        started = time.monotonic()
        args = (
            *phase.args(quick),
            "-sender-addr", f"127.0.0.1:{a.port}",
            "-pids", ",".join(f"{name}={pid}" for name, pid in pids.items()),
        )  # fmt: skip
        server_core = cores.b if cores.b.isdigit() else "-1"
        try:
            out["loadgen"] = run_loadgen(
                loadgen, b, args, deadline=75, core=cores.loadgen, server_core=server_core
            )
        except BenchError as exc:
            out["error"] = str(exc)
        out["seconds"] = round(time.monotonic() - started, 1)
        out["other_cpu"] = meter.result()
        out["contended"] = out["other_cpu"]["cores"] > quiet.limit
        procs: Json = {}
        for name, pid in pids.items():
            s0, s1 = before[name], proc_sample(pid)
            if s0 and s1:
                procs[name] = {
                    "cpu_s": round(s1["cpu_s"] - s0["cpu_s"], 3),
                    "rss_kib_before": s0["rss_kib"],
                    "rss_kib_after": s1["rss_kib"],
                }
        out["procs"] = procs
        out["alive_after"] = {
            name: redis_ping(run.port) if name == "redis" else alive(run)
            for name, run in runs.items()
        }
        out["metrics"] = {
            name: scrape_metrics(run) for name, run in runs.items() if name != "redis"
        }
    finally:
        # The nodes first, so that they do not log a lost Redis on their way out.
        out["exit_codes"] = {
            name: stop_server(runs[name]) for name in ("a", "b", "redis") if name in runs
        }
        out["log_issues"] = {name: log_issues(path, at) for name, (path, at) in offsets.items()}
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def cross_figures(phases: Json) -> Json:
    """The figures of one topology in one run."""
    best = dig(phases, "ramp", "loadgen", "result")
    fixed = dig(phases, "fixed", "loadgen", "result")
    idle = dig(phases, "idle", "loadgen")

    def cpu(step: Json | None, prefix: str) -> Json:
        per = {n: dig(step, "procs", n, "us_per_dlv") for n in ("b", "a", "redis")}
        known = [v for v in per.values() if isinstance(v, (int, float)) and v >= 0]
        return {
            f"{prefix}_us_b": per["b"],
            f"{prefix}_us_a": per["a"],
            f"{prefix}_us_redis": per["redis"],
            f"{prefix}_us_all": sum(known) if known and per["b"] is not None else None,
        }

    issues = 0
    for ph in phases.values():
        for v in (ph.get("log_issues") or {}).values():
            issues += int(v.get("count", 0))
    return {
        "sustained": dig(best, "delivered_per_s"),
        "sustained_p99": dig(best, "p99_ms"),
        "sustained_core": dig(best, "server_core_us_per_dlv"),
        "ramp_stop": dig(phases, "ramp", "loadgen", "stop_reason"),
        "ramp_flag": flag(phases.get("ramp")),
        **cpu(best, "ramp"),
        "p50": dig(fixed, "p50_ms"),
        "p99": dig(fixed, "p99_ms"),
        "max": dig(fixed, "max_ms"),
        "lost": dig(fixed, "lost"),
        "echo_p50": dig(fixed, "sender_echo", "p50_ms"),
        "echo_p99": dig(fixed, "sender_echo", "p99_ms"),
        "fixed_flag": flag(phases.get("fixed")),
        **cpu(fixed, "fixed"),
        "kib_conn": dig(idle, "server_kib_per_conn"),
        "handshake_us": dig(idle, "server_handshake_cpu_us"),
        "last_dlv": dig(idle, "last_delivery_ms_median"),
        "idle_all": dig(idle, "all_delivered"),
        "idle_flag": flag(phases.get("idle")),
        "log_issues": issues,
    }


def span(values: list[Any], fmt: str, unit: str = "") -> str:
    """`lo–hi` of the measured values (`n/a` if none)."""
    vals = sorted(v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool))
    vals = [v for v in vals if v >= 0]
    if not vals:
        return "n/a"
    lo, hi = num(vals[0], fmt), num(vals[-1], fmt)
    return f"{lo}{unit}" if lo == hi else f"{lo}–{hi}{unit}"


CROSS_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("highest sustained deliveries/s (p99 ≤ 500 ms, no loss)", "sustained", ",.0f", ""),
    ("… p99 of that step", "sustained_p99", ".0f", " ms"),
    ("… CPU µs per delivery there: node B (receivers)", "ramp_us_b", ".2f", ""),
    ("… node A (senders)", "ramp_us_a", ".3f", ""),
    ("… Redis", "ramp_us_redis", ".3f", ""),
    ("… all processes", "ramp_us_all", ".2f", ""),
    ("… node B's core busy (incl. softirq) µs per delivery", "sustained_core", ".2f", ""),
    ("p50 at 10,000 deliveries/s (send → receipt on B)", "p50", ".1f", " ms"),
    ("p99 at 10,000 deliveries/s", "p99", ".1f", " ms"),
    ("max at 10,000 deliveries/s", "max", ".1f", " ms"),
    ("lost at 10,000 deliveries/s", "lost", ",", ""),
    ("senders' own copies at 10,000/s, p50 (node A's local fan-out)", "echo_p50", ".1f", " ms"),
    ("… p99", "echo_p99", ".1f", " ms"),
    ("CPU µs per delivery at 10,000/s: node B", "fixed_us_b", ".2f", ""),
    ("… node A", "fixed_us_a", ".2f", ""),
    ("… Redis", "fixed_us_redis", ".2f", ""),
    ("… all processes", "fixed_us_all", ".2f", ""),
    ("node B's RSS per idle connection (10,000)", "kib_conn", ".1f", " KiB"),
    ("node B's CPU per WebSocket handshake", "handshake_us", ".0f", " µs"),
    ("one message to 10,000 idle receivers, last delivery (median)", "last_dlv", ".0f", " ms"),
    ("warnings/errors in the processes' logs", "log_issues", ",", ""),
)


def cross_summary(data: Json) -> str:
    runs: list[Json] = data["runs"]
    topologies = [t for t in TOPOLOGIES if any(t in r for r in runs)]
    figs = {
        t: [cross_figures(dig(r, t, "phases") or {}) for r in runs if t in r] for t in topologies
    }
    head = ["figure", *(TOPOLOGY_SHORT[t] for t in topologies)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for title, key, fmt, unit in CROSS_ROWS:
        cells = [title]
        for t in topologies:
            if t != "two" and key.endswith("_us_a"):
                cells.append("(= node B)")
                continue
            if t == "memory" and key.endswith("_us_redis"):
                cells.append("–")
                continue
            cells.append(span([f[key] for f in figs[t]], fmt, unit))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


TOPOLOGY_SHORT = {
    "two": "two nodes (A → Redis → B)",
    "one": "one node, Redis broker",
    "memory": "one process, memory://",
}


def cross_details(topology: str, res: Json) -> str:
    out = [f"#### {res.get('title', topology)}", ""]
    ph: Json = res.get("phases", {})
    out.append(
        "| phase | seconds | deliveries/s | p50 | p99 | max | lost | B µs/dlv | A µs/dlv |"
        " Redis µs/dlv | loadgen busy | others' CPU | notes |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, p in ph.items():
        lg = p.get("loadgen") or {}
        r = lg.get("result") or {}
        notes = phase_notes(name, lg)
        echo = r.get("sender_echo")
        if name == "fixed" and echo:
            notes.append(
                f"senders' own copies p50 {num(echo.get('p50_ms'), '.1f', ' ms')},"
                f" p99 {num(echo.get('p99_ms'), '.1f', ' ms')}"
            )
        counters = lg.get("counters") or {}
        if counters.get("unexpected_closes") or counters.get("sender_closes"):
            notes.append(f"closes: {counters.get('unexpected_close_why')}")
        if p.get("error"):
            notes.append(f"error: {p['error']}")
        if p.get("contended"):
            notes.append("⚠ disturbed")
        down = [n for n, up in (p.get("alive_after") or {}).items() if not up]
        if down:
            notes.append(f"not answering after the phase: {', '.join(down)}")
        for proc, issues in (p.get("log_issues") or {}).items():
            if issues.get("count"):
                notes.append(f"{proc} log: {issues['count']} warnings/errors")
        out.append(
            "| "
            + " | ".join(
                [
                    name,
                    num(p.get("seconds"), ".0f"),
                    num(r.get("delivered_per_s"), ",.0f"),
                    num(r.get("p50_ms"), ".1f", " ms"),
                    num(r.get("p99_ms"), ".1f", " ms"),
                    num(r.get("max_ms"), ".1f", " ms"),
                    num(r.get("lost"), ","),
                    num(dig(r, "procs", "b", "us_per_dlv"), ".2f"),
                    num(dig(r, "procs", "a", "us_per_dlv"), ".3f"),
                    num(dig(r, "procs", "redis", "us_per_dlv"), ".3f"),
                    num(lg.get("loadgen_cpu_max"), ".0%"),
                    num(dig(p, "other_cpu", "cores"), ".2f", " cores"),
                    "; ".join(notes),
                ]
            )
            + " |"
        )
    steps = dig(ph, "ramp", "loadgen", "steps")
    if isinstance(steps, list) and steps:
        out += [
            "",
            "Ramp steps (CPU shares are of one core, over the step from its first send to its"
            " last delivery):",
            "",
            "| target/s | delivered/s | p50 | p99 | lost | B CPU | B µs/dlv | A CPU | A µs/dlv |"
            " Redis CPU | Redis µs/dlv | loadgen busy | loadgen waited | pass |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in steps:
            out.append(
                "| "
                + " | ".join(
                    [
                        num(s.get("target_per_s"), ",.0f"),
                        num(s.get("delivered_per_s"), ",.0f"),
                        num(s.get("p50_ms"), ".1f", " ms"),
                        num(s.get("p99_ms"), ".1f", " ms"),
                        num(s.get("lost"), ","),
                        num(dig(s, "procs", "b", "share"), ".0%"),
                        num(dig(s, "procs", "b", "us_per_dlv"), ".2f"),
                        num(dig(s, "procs", "a", "share"), ".0%"),
                        num(dig(s, "procs", "a", "us_per_dlv"), ".3f"),
                        num(dig(s, "procs", "redis", "share"), ".0%"),
                        num(dig(s, "procs", "redis", "us_per_dlv"), ".3f"),
                        num(s.get("loadgen_cpu"), ".0%"),
                        num(s.get("loadgen_runq_wait_ms"), ".0f", " ms"),
                        "yes" if s.get("pass") else "no",
                    ]
                )
                + " |"
            )
    issues = [
        f"- {proc}: " + " / ".join(f"`{line}`" for line in v["first"])
        for p in ph.values()
        for proc, v in (p.get("log_issues") or {}).items()
        if v.get("count")
    ]
    if issues:
        out += ["", "Log lines (first of each kind, per phase):", "", *issues]
    out.append("")
    return "\n".join(out)


def cross_report(data: Json) -> str:
    m = data["machine"]
    cores = Placement(**data["placement"])
    lines = [
        f"# Cross-node delivery benchmark ({'quick' if data['quick'] else 'full'} run,"
        f" {data['started']}, {len(data['runs'])} run{'s' if len(data['runs']) != 1 else ''})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['mem_gib']} GiB, Linux {m['kernel']},"
        f" Python {m['python']}, {m['go']}, {data.get('redis_version', 'redis ?')}."
        " Loopback TCP; a fresh Redis and fresh nodes for every phase.",
        f"Command: `{data['command']}`",
        "",
        "Placement (taskset):",
        "",
        *[
            f"- {TOPOLOGY_SHORT[t]}: {cores.describe(t)}"
            for t in TOPOLOGIES
            if t in data["topologies"]
        ],
        "",
        "Load: the suite's fixed, ramp and idle phases, but the 10 senders are extra"
        " connections to node A (`-sender-addr`) and only the connections to node B count as"
        " receivers; with one node both go to it. A delivery is a message frame received on"
        " node B. Every message is a legacy post to `general`: node A stores it with the Redis"
        " append script, which PUBLISHes it; each node's subscriber connection receives it and"
        " the node fans it out.",
        "",
        "## Summary (range over the runs)",
        "",
        cross_summary(data),
        "",
        "CPU is utime+stime from /proc/PID/stat (10 ms ticks) over the step, from its first send"
        " to its last delivery, divided by the deliveries on node B (node A's and Redis's cost"
        " is per message: divide by 1,000 receivers to compare). ⚑ marks a figure where the load"
        " generator was more than 85% busy, ⚠ one disturbed by other processes.",
        "",
        "## Phases",
        "",
        *[f"- `{p.name}`: {p.title}" for p in CROSS_PHASES if p.name in data["phases"]],
        "",
        "## Details",
        "",
    ]
    for i, run in enumerate(data["runs"], 1):
        lines += [f"### Run {i}", ""]
        for topology, res in run.items():
            lines.append(cross_details(topology, res))
    return "\n".join(lines)


def run_cross(args: argparse.Namespace, argv: list[str] | None, quiet: Quiet) -> int:
    """The cross-node suite: `--runs` rounds over the topologies, each phase on fresh servers."""
    if shutil.which("redis-server") is None:
        raise BenchError("no redis-server: apt-get install -y redis-server")
    cores = Placement.parse(args.cross_cores)
    topologies = [t.strip() for t in args.topologies.split(",") if t.strip()]
    unknown = [t for t in topologies if t not in TOPOLOGIES]
    if unknown or not topologies:
        raise BenchError(f"--topologies: unknown {unknown}; pick from {', '.join(TOPOLOGIES)}")
    wanted = {s.strip() for s in args.phases.split(",")}
    phases = [p for p in CROSS_PHASES if p.name in wanted]
    if not phases:
        raise BenchError("--cross-node runs the phases fixed, ramp and idle; none was chosen")
    spec = our_server_spec(args.python, args.server_arg)
    if spec is None or "--broker" not in spec.help_text:
        raise BenchError("chat_server.py is missing or has no --broker option")
    nofile = raise_nofile()
    if nofile < 12000:
        log(f"RLIMIT_NOFILE is {nofile}: the idle phase needs ~10,100 descriptors per process")
    BIN.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs = RESULTS / f"{stamp}-logs"
    logs.mkdir()
    log("building the load generator")
    loadgen = build_loadgen()
    version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    data: Json = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "quick": args.quick,
        "command": " ".join([".venv/bin/python", "bench/run.py", *(argv or sys.argv[1:])]),
        "machine": machine(),
        "redis_version": " ".join(version[:3]) if version else "redis ?",
        "placement": {"a": cores.a, "b": cores.b, "redis": cores.redis, "loadgen": cores.loadgen},
        "topologies": topologies,
        "phases": [p.name for p in phases],
        "argv": spec.argv,
        "runs": [],
    }
    t0 = time.monotonic()
    for i in range(args.runs):
        log(f"cross-node run {i + 1} of {args.runs}")
        one: Json = {}
        for topology in topologies:
            res: Json = {"title": TOPOLOGIES[topology], "phases": {}}
            for phase in phases:
                res["phases"][phase.name] = run_cross_phase(
                    loadgen, spec, topology, phase, args.quick, logs, quiet, cores
                )
            one[topology] = res
        data["runs"].append(one)
    data["seconds"] = round(time.monotonic() - t0, 1)
    text = cross_report(data)
    name = f"{stamp}-crossnode-{'quick' if args.quick else 'full'}"
    (RESULTS / f"{name}.md").write_text(text + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
    print(text)
    log(f"done in {data['seconds']:.0f} s; results in {RESULTS}/{name}.*")
    return 0


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short phases: the suite in < 2 minutes")
    ap.add_argument("--servers", default="go,ours", help="comma list of: go, ours")
    ap.add_argument(
        "--phases", default=",".join(PHASE_NAMES), help=f"comma list of: {', '.join(PHASE_NAMES)}"
    )
    ap.add_argument(
        "--seed-src", type=Path, default=DEFAULT_SEED, help="the Go tutorial server's main.go"
    )
    ap.add_argument(
        "--python",
        type=Path,
        default=ROOT / ".venv" / "bin" / "python",
        help="the interpreter that runs chat_server.py",
    )
    ap.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="extra flag for our server (repeatable), e.g. --server-arg=--logging=warning",
    )
    ap.add_argument(
        "--profile", action="store_true", help="also py-spy our server under a fixed high load"
    )
    ap.add_argument(
        "--profile-rate",
        type=float,
        default=0,
        help="deliveries/s for --profile (default: 80%% of our ramp result, or 100000)",
    )
    ap.add_argument("--profile-seconds", type=int, default=15)
    ap.add_argument(
        "--quiet-limit",
        type=float,
        default=0.1,
        help="cores other processes may use during a phase before it is flagged (default 0.1)",
    )
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="seconds to wait for the machine to be that quiet before each phase"
        " (default 20; 2 with --quick)",
    )
    ap.add_argument(
        "--retries",
        type=int,
        default=None,
        help="runs again of a phase that other processes disturbed; the least disturbed is kept"
        " (default 2; 0 with --quick)",
    )
    ap.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run servers and load generator at this nice value (e.g. -10 on a shared machine:"
        " other processes then get little CPU on cores 0-1 during a phase)",
    )
    ap.add_argument(
        "--cross-node",
        action="store_true",
        help="run the cross-node suite instead (fixed, ramp, idle over --topologies;"
        " see bench/README.md)",
    )
    ap.add_argument(
        "--topologies",
        default=",".join(TOPOLOGIES),
        help="with --cross-node, comma list of: two (senders on node A, receivers on node B,"
        " one Redis), one (one node, Redis broker), memory (one memory:// process)",
    )
    ap.add_argument(
        "--cross-cores",
        default=DEFAULT_PLACEMENT,
        help=f"with --cross-node, the cores of each process (default {DEFAULT_PLACEMENT})",
    )
    ap.add_argument(
        "--runs", type=int, default=1, help="with --cross-node, rounds over the topologies"
    )
    args = ap.parse_args(argv)
    quiet = Quiet(
        args.quiet_limit,
        args.quiet_wait if args.quiet_wait is not None else (2 if args.quick else 20),
        args.retries if args.retries is not None else (0 if args.quick else 2),
    )
    if args.nice:
        NICE[:] = ["nice", "-n", str(args.nice)]

    if args.cross_node:
        if shutil.which("taskset") is None:
            raise BenchError("taskset is missing (Debian package util-linux)")
        return run_cross(args, argv, quiet)

    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    phases = [p for p in PHASES if p.name in {s.strip() for s in args.phases.split(",")}]
    if shutil.which("taskset") is None:
        raise BenchError("taskset is missing (Debian package util-linux)")
    nofile = raise_nofile()
    if nofile < 12000:
        log(f"RLIMIT_NOFILE is {nofile}: the idle phase needs ~10,100 descriptors per process")

    BIN.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs = RESULTS / f"{stamp}-logs"
    logs.mkdir()
    log("building the load generator and the Go tutorial server")
    loadgen = build_loadgen()

    specs: dict[str, ServerSpec | str] = {}
    if "go" in servers:
        try:
            seed = build_seed(args.seed_src)
            specs["go"] = ServerSpec("go", "Go tutorial server", [str(seed)], BIN)
        except BenchError as exc:
            specs["go"] = str(exc)
    if "ours" in servers:
        spec = our_server_spec(args.python, args.server_arg)
        specs["ours"] = spec if spec else f"{ROOT / 'chat_server.py'} does not exist yet"

    data: Json = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "quick": args.quick,
        "command": " ".join([".venv/bin/python", "bench/run.py", *(argv or sys.argv[1:])]),
        "machine": machine(),
        "servers": {},
    }
    t0 = time.monotonic()
    for key, spec_or_err in specs.items():
        if isinstance(spec_or_err, str):
            log(f"{key}: skipped: {spec_or_err}")
            data["servers"][key] = {"title": key, "error": spec_or_err}
            continue
        res: Json = {"title": spec_or_err.title, "argv": spec_or_err.argv, "phases": {}}
        for phase in phases:
            res["phases"][phase.name] = run_phase(
                loadgen, spec_or_err, phase, args.quick, logs, quiet
            )
        data["servers"][key] = res
    if args.profile and isinstance(specs.get("ours"), ServerSpec):
        ours = specs["ours"]
        assert isinstance(ours, ServerSpec)
        rate = args.profile_rate
        if rate <= 0:
            best = dig(
                data, "servers", "ours", "phases", "ramp", "loadgen", "result", "delivered_per_s"
            )
            rate = 0.8 * best if isinstance(best, (int, float)) and best > 0 else 100000.0
        log(f"profiling ours at {rate:,.0f} deliveries/s")
        try:
            data["profile"] = run_profile(loadgen, ours, rate, args.profile_seconds, logs)
        except BenchError as exc:
            data["profile"] = {"error": str(exc)}
    data["seconds"] = round(time.monotonic() - t0, 1)

    text = report(data)
    (RESULTS / f"{stamp}-{'quick' if args.quick else 'full'}.md").write_text(text + "\n")
    (RESULTS / f"{stamp}-{'quick' if args.quick else 'full'}.json").write_text(
        json.dumps(data, indent=1) + "\n"
    )
    print(text)
    log(f"done in {data['seconds']:.0f} s; results in {RESULTS}/{stamp}-*")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as err:
        print(f"bench: {err}", file=sys.stderr)
        sys.exit(1)

"""The suite's phases (one load-generator run each, on a fresh server) and how one is run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.env import CORES, BenchError, Json, dig, log
from bench.machine import Contention, proc_sample, wait_quiet
from bench.servers import (
    ServerSpec,
    alive,
    counter_deltas,
    run_loadgen,
    scrape_metrics,
    start_server,
    stop_server,
)


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
        "steady",
        "p99 in every window: 1,000 clients, 10 senders, a saturation ramp, then 10,000"
        " deliveries/s in 3 windows of 8 s on the same connections",
        "-mode steady -clients 1000 -senders 10 -ramp-start 40000 -ramp-factor 2"
        " -ramp-step 1.2 -ramp-bisect 0 -ramp-budget 10 -rate 10000 -warmup 1 -duration 12"
        " -window 4",
        "-mode steady -clients 1000 -senders 10 -ramp-start 40000 -ramp-factor 2"
        " -ramp-step 3 -ramp-bisect 2 -ramp-budget 30 -rate 10000 -warmup 2 -duration 24"
        " -window 8",
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
    return quietest(
        lambda: run_phase_once(loadgen, spec, phase, quick, logs, quiet),
        f"{spec.key}: phase {phase.name}",
        quiet,
    )


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


def busy_core() -> str:
    """The core whose busy time the load generator samples: the server's, if it has one alone
    (-1: none)."""
    return CORES["server"] if CORES["server"].isdigit() else "-1"


def run_phase_once(
    loadgen: Path, spec: ServerSpec, phase: Phase, quick: bool, logs: Path, quiet: Quiet
) -> Json:
    log(f"{spec.key}: phase {phase.name}")
    out: Json = {"phase": phase.name, "other_cpu": {"cores": 0.0, "top": []}}
    try:
        run = start_server(spec, logs / f"{spec.key}.log", phase.server_flags, CORES["server"])
    except BenchError as exc:
        return {**out, "error": str(exc)}
    try:
        out["quiet_before"] = wait_quiet(quiet.limit, quiet.max_wait, run.proc.pid)
        before = proc_sample(run.proc.pid)
        meter = Contention(run.proc.pid)
        started = time.monotonic()
        counted: dict[str, Json | None] = {}

        def connected() -> None:  # ours has /metrics: its counters over the load, not the joins
            if spec.key == "ours":
                counted["before"] = scrape_metrics(run)
        try:
            out["loadgen"] = run_loadgen(loadgen, run, phase.args(quick), deadline=75,
                                         on_connected=connected, core=CORES["loadgen"],
                                         server_core=busy_core())
        except BenchError as exc:
            out["error"] = str(exc)
        out["seconds"] = round(time.monotonic() - started, 1)
        if counted:
            out["counters"] = counter_deltas(counted["before"], scrape_metrics(run))
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

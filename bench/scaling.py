"""The scaling scenario (`bench/run.py --nodes 1,2,4,8`): N nodes of one cluster on one host.

Each N runs on fresh processes: Redis on a core, PostgreSQL on a core, node i on a core of its
own, the load generator on the cores left. The clients are spread over the nodes in turn (the
load generator's `-addr` lists them all), and so are the senders: every node carries
`clients_per_node` receivers and its share of the messages. Two phases per N: a ramp to
saturation (the highest deliveries/s with p99 <= 500 ms and no loss) and a fixed
`rate_per_node` x N deliveries/s. CPU is summed over the nodes and Redis (per delivery, from the
load generator's samples) and PostgreSQL (its server and backends, over the phase). With fewer
cores than N + 3 the same order wraps round and processes share cores; the report says so. The
2-core development machine runs the scenario with small counts, and tests/test_bench.py does.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.crossnode import log_issues, node_spec, postmaster_pid, start_postgres, tree_cpu_s
from bench.env import BenchError, Json, log
from bench.machine import proc_sample
from bench.servers import (
    Running,
    ServerSpec,
    alive,
    counter_deltas,
    redis_ping,
    run_loadgen,
    scrape_metrics,
    start_redis,
    start_server,
    stop_server,
)
from tests.pgserver import PostgresCluster

SENDERS = 10  # as in every other phase of the suite, whatever the number of nodes
# The load generator's limit per phase (s): a full ramp's budget plus connecting 16,000 clients.
DEADLINE_S = 110


@dataclass(frozen=True)
class Layout:
    """The core (`taskset -c` list) of each process for one N."""

    redis: str
    pg: str
    nodes: tuple[str, ...]
    loadgen: str
    shared: bool  # some processes share a core (too few cores for N + 3)

    def describe(self) -> str:
        nodes = ", ".join(f"{i + 1}: {core}" for i, core in enumerate(self.nodes))
        shared = " (cores shared: fewer cores than N + 3)" if self.shared else ""
        return (
            f"Redis on core {self.redis}, PostgreSQL on core {self.pg}, nodes on cores {nodes},"
            f" load generator on core(s) {self.loadgen}{shared}"
        )


def layout(n: int, cpus: int) -> Layout:
    """Redis on core 0, PostgreSQL on 1, node i on core 1 + i, the load generator on the rest;
    with fewer than N + 3 cores, that order wrapped round and the load generator on the last."""
    if cpus >= n + 3:
        rest = f"{n + 2}-{cpus - 1}" if cpus - 1 > n + 2 else str(n + 2)
        return Layout("0", "1", tuple(str(2 + i) for i in range(n)), rest, False)
    return Layout(
        "0", str(1 % cpus), tuple(str((2 + i) % cpus) for i in range(n)), str(cpus - 1), True
    )


@dataclass(frozen=True)
class Load:
    """The counts of one scaling run: per node, so that every N carries the same per node."""

    clients_per_node: int
    rate_per_node: float  # deliveries/s of the fixed phase
    quick: bool

    def args(self, phase: str, n: int) -> tuple[str, ...]:
        """The load generator's flags for `phase` with `n` nodes."""
        clients = self.clients_per_node * n
        common = ("-clients", str(clients), "-senders", str(min(SENDERS, clients)))
        if phase == "fixed":
            warmup, duration = ("1", "4") if self.quick else ("2", "10")
            rate = f"{self.rate_per_node * n:.0f}"
            return ("-mode", "fixed", *common, "-rate", rate, "-warmup", warmup,
                    "-duration", duration)  # fmt: skip
        step, bisect, budget = ("1.2", "2", "25") if self.quick else ("3", "4", "55")
        start = f"{self.rate_per_node * n / 5:.0f}"  # a ramp doubles: a few steps to the limit
        return ("-mode", "ramp", *common, "-ramp-start", start, "-ramp-factor", "2",
                "-ramp-step", step, "-ramp-bisect", bisect, "-ramp-budget", budget,
                "-ramp-max", "64000000")  # fmt: skip


@dataclass(frozen=True)
class ScalingSetup:
    """What every phase of one scaling run shares."""

    loadgen: Path
    base: ServerSpec  # our server as the suite runs it; node_spec() makes the nodes
    load: Load
    logs: Path
    cpus: int


def run_nodes_phase(setup: ScalingSetup, n: int, phase: str) -> Json:
    """One phase on fresh Redis, PostgreSQL and `n` nodes."""
    log(f"scaling: {n} node(s), phase {phase}")
    lay = layout(n, setup.cpus)
    out: Json = {"phase": phase, "nodes": n, "layout": lay.describe(), "shared": lay.shared}
    runs: dict[str, Running] = {}
    offsets: dict[str, tuple[Path, int]] = {}

    def log_file(name: str) -> Path:
        path = setup.logs / f"scaling-{n}-{name}.log"
        offsets[name] = (path, path.stat().st_size if path.exists() else 0)
        return path

    workdir = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    pg: PostgresCluster | None = None
    names = [f"node{i + 1}" for i in range(n)]
    try:
        try:
            runs["redis"] = start_redis(log_file("redis"), lay.redis, workdir)
            url = f"redis://127.0.0.1:{runs['redis'].port}/0"
            pg = start_postgres(lay.pg)
            for name, core in zip(names, lay.nodes, strict=True):
                spec = node_spec(setup.base, name, url, pg.url())
                runs[name] = start_server(spec, log_file(name), (), core)
        except BenchError as exc:
            out["error"] = str(exc)
            return out
        pids = {name: run.proc.pid for name, run in runs.items()}
        before = {name: proc_sample(pid) for name, pid in pids.items()}
        pg_before = tree_cpu_s(postmaster_pid(pg))
        addrs = ",".join(f"127.0.0.1:{runs[name].port}" for name in names)
        args = (
            *setup.load.args(phase, n),
            "-addr", addrs,
            "-pids", ",".join(f"{name}={pid}" for name, pid in pids.items()),
        )  # fmt: skip
        started = time.monotonic()
        counted: dict[str, Json | None] = {}

        def connected() -> None:  # the counters from here on are the load's, not the joins'
            counted.update({name: scrape_metrics(runs[name]) for name in names})

        try:
            out["loadgen"] = run_loadgen(
                setup.loadgen, runs[names[0]], args, DEADLINE_S, on_connected=connected,
                core=lay.loadgen, server_core="-1",
            )  # fmt: skip
        except BenchError as exc:
            out["error"] = str(exc)
        out["seconds"] = round(time.monotonic() - started, 1)
        out["counters"] = {name: counter_deltas(counted.get(name), scrape_metrics(runs[name]))
                           for name in names}
        procs: Json = {}
        for name, pid in pids.items():
            s0, s1 = before[name], proc_sample(pid)
            if s0 and s1:
                procs[name] = {"cpu_s": round(s1["cpu_s"] - s0["cpu_s"], 3),
                               "rss_kib": s1["rss_kib"]}  # fmt: skip
        pg_after = tree_cpu_s(postmaster_pid(pg))
        if pg_before is not None and pg_after is not None:
            procs["pg"] = {"cpu_s": round(pg_after - pg_before, 3)}
        out["procs"] = procs
        out["alive_after"] = {
            name: redis_ping(run.port) if name == "redis" else alive(run)
            for name, run in runs.items()
        }
    finally:
        out["exit_codes"] = {
            name: stop_server(runs[name]) for name in (*names, "redis") if name in runs
        }
        out["log_issues"] = {name: log_issues(path, at) for name, (path, at) in offsets.items()}
        if pg is not None:
            pg.remove()
        shutil.rmtree(workdir, ignore_errors=True)
    return out

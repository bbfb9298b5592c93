"""The cross-node scenario: one phase over two nodes, one node, or one process.

The same load as the fixed, ramp and idle phases, but with the senders as 10 extra connections
(`-sender-addr`) to node A and the 1,000 (10,000) counted receivers on node B of a two-node
cluster (Redis broker, PostgreSQL history: a cluster as docs/deployment.md sets one up); for
comparison the same shape against one node with the same backends, and against one memory://
process. PostgreSQL is a fresh throwaway cluster per phase (tests/pgserver.py), fsync off like
the Redis without AOF the Redis-store figures of docs/performance.md were measured with.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.env import BenchError, Json, log
from bench.machine import Contention, proc_sample, wait_quiet
from bench.phases import PHASES, Phase, Quiet, quietest
from bench.servers import (
    Running,
    ServerSpec,
    alive,
    redis_ping,
    run_loadgen,
    scrape_metrics,
    start_redis,
    start_server,
    stop_server,
)
from tests.pgserver import PostgresCluster, find_postgres_bin

TOPOLOGIES: dict[str, str] = {
    "two": "two nodes, Redis broker, PostgreSQL store: senders on node A, receivers on node B",
    "one": "one node, Redis broker, PostgreSQL store (senders and receivers on it)",
    "memory": "one process, memory:// broker, --db :memory: (the suite's usual server)",
}
DEFAULT_PLACEMENT = "b=0,a=1,redis=1,pg=1,loadgen=1"
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
    pg: str = "1"  # results from before PostgreSQL (issue 13) name no core for it

    @staticmethod
    def parse(text: str) -> Placement:
        cores = dict(DEFAULT_CORES)
        for item in text.split(","):
            name, sep, core = item.strip().partition("=")
            if not sep or name not in cores or not core:
                raise BenchError(
                    f"--cross-cores wants a=C,b=C,redis=C,pg=C,loadgen=C; got {item!r}"
                )
            cores[name] = core
        return Placement(cores["a"], cores["b"], cores["redis"], cores["loadgen"], cores["pg"])

    def describe(self, topology: str) -> str:
        if topology == "two":
            return (
                f"node B (receivers) on core {self.b}, node A (senders) on core {self.a},"
                f" Redis on core {self.redis}, PostgreSQL on core {self.pg},"
                f" load generator on core {self.loadgen}"
            )
        redis = (
            f", Redis on core {self.redis}, PostgreSQL on core {self.pg}"
            if topology == "one"
            else ""
        )
        return f"the node on core {self.b}{redis}, load generator on core {self.loadgen}"


def node_spec(
    base: ServerSpec, key: str, redis_url: str | None, db_url: str | None = None
) -> ServerSpec:
    """Our server as `base` runs it, with `--broker` at `redis_url` and `--db` at `db_url`
    if given."""
    argv = list(base.argv)
    if redis_url is not None and db_url is not None:
        if "--db" in argv:
            argv[argv.index("--db") + 1] = db_url
        else:
            argv += ["--db", db_url]
        argv += ["--broker", redis_url]
    title = f"node {key.upper()}" if redis_url else "one process"
    return ServerSpec(key, title, argv, base.cwd, dict(base.env), base.help_text)


def start_postgres(core: str) -> PostgresCluster:
    """A fresh throwaway PostgreSQL (initdb, pg_ctl) on `core`."""
    bindir = find_postgres_bin()
    if bindir is None:
        raise BenchError("no PostgreSQL: apt-get install -y postgresql")
    cluster = PostgresCluster(bindir)
    try:
        cluster.init()
        cluster.start(core=core)
    except AssertionError as exc:
        cluster.remove()
        raise BenchError(f"PostgreSQL did not start: {exc}") from None
    return cluster


def postmaster_pid(cluster: PostgresCluster) -> int:
    """The server's main process (the first line of postmaster.pid)."""
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def tree_cpu_s(pid: int) -> float | None:
    """CPU seconds of a process and its children (PostgreSQL's backends) so far."""
    own = proc_sample(pid)
    if own is None:
        return None
    total = float(own["cpu_s"])
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        sample = proc_sample(int(child))
        if sample is not None:
            total += float(sample["cpu_s"])
    return total


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


@dataclass(frozen=True)
class CrossSetup:
    """What every phase of one cross-node suite run shares."""

    loadgen: Path
    base: ServerSpec  # our server as the suite runs it; node_spec() makes the nodes
    quick: bool
    logs: Path
    quiet: Quiet
    cores: Placement


def run_cross_phase(setup: CrossSetup, topology: str, phase: Phase) -> Json:
    """A cross-node phase; one that other processes disturbed is run again (quiet.retries)."""
    return quietest(
        lambda: run_cross_phase_once(setup, topology, phase),
        f"{topology}: phase {phase.name}",
        setup.quiet,
    )


def run_cross_phase_once(setup: CrossSetup, topology: str, phase: Phase) -> Json:
    """Fresh Redis and node(s) for one phase; the load generator's receivers on node B."""
    log(f"cross-node {topology}: phase {phase.name}")
    cores, quiet, logs = setup.cores, setup.quiet, setup.logs
    out: Json = {"phase": phase.name, "topology": topology, "other_cpu": {"cores": 0.0, "top": []}}
    runs: dict[str, Running] = {}
    offsets: dict[str, tuple[Path, int]] = {}

    def log_file(name: str) -> Path:
        path = logs / f"cross-{topology}-{name}.log"
        offsets[name] = (path, path.stat().st_size if path.exists() else 0)
        return path

    workdir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    pg: PostgresCluster | None = None
    try:
        try:
            url = db = None
            if topology != "memory":
                runs["redis"] = start_redis(log_file("redis"), cores.redis, workdir)
                url = f"redis://127.0.0.1:{runs['redis'].port}/0"
                pg = start_postgres(cores.pg)
                db = pg.url()
            if topology == "two":
                runs["a"] = start_server(
                    node_spec(setup.base, "a", url, db), log_file("a"), phase.server_flags, cores.a
                )
            runs["b"] = start_server(
                node_spec(setup.base, "b", url, db), log_file("b"), phase.server_flags, cores.b
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
        pg_before = tree_cpu_s(postmaster_pid(pg)) if pg is not None else None
        meter = Contention(b.proc.pid, others)
        started = time.monotonic()
        args = (
            *phase.args(setup.quick),
            "-sender-addr", f"127.0.0.1:{a.port}",
            "-pids", ",".join(f"{name}={pid}" for name, pid in pids.items()),
        )  # fmt: skip
        server_core = cores.b if cores.b.isdigit() else "-1"
        try:
            out["loadgen"] = run_loadgen(
                setup.loadgen, b, args, deadline=75, core=cores.loadgen, server_core=server_core
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
        if pg is not None and pg_before is not None:
            pg_after = tree_cpu_s(postmaster_pid(pg))
            if pg_after is not None:
                procs["pg"] = {"cpu_s": round(pg_after - pg_before, 3)}
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
        if pg is not None:
            pg.remove()
        shutil.rmtree(workdir, ignore_errors=True)
    return out

"""Runs the Simple Chat benchmark suite against the Go tutorial server and ours (bench/README.md).

It builds the load generator (bench/loadgen, Go, stdlib only) and the Go tutorial server (from
its main.go, given by --seed-src or $BENCH_SEED_SRC, patched in a temporary copy to listen on
127.0.0.1:$SEED_PORT) into bench/bin/, then, for each server and each phase, starts a fresh
server pinned to core 0, runs the load generator pinned to core 1 against it, reads the
server's CPU (utime+stime from /proc/PID/stat) and RSS before and after the phase, and stops
the server. The results go to bench/results/ as markdown and JSON, and the markdown also to
stdout.

    .venv/bin/python bench/run.py --quick      # the whole suite, both servers, < 2 minutes
    .venv/bin/python bench/run.py              # the full run (every phase <= 60 s)
    .venv/bin/python bench/run.py --smoke      # seconds of tiny load: does it all still work?
    .venv/bin/python bench/run.py --nodes 1,2,4,8   # N nodes of a cluster, one core each
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):
    # `python bench/run.py` puts bench/ first on the path; the suite imports as the package.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.build import SEED_SRC_ENV
from bench.crossnode import DEFAULT_PLACEMENT, TOPOLOGIES
from bench.env import CORES, NICE, ROOT, BenchError
from bench.phases import PHASE_NAMES, Quiet
from bench.smoke import run_smoke
from bench.suites import run_cross, run_pair, run_scaling


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short phases: the suite in < 2 minutes")
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="instead of the suite: a few seconds of tiny load against each server;"
        " fails unless every message was delivered (for CI)",
    )
    ap.add_argument(
        "--servers",
        default="go,ours",
        help="comma list of: go, ours, and the reference servers tornado and asyncio"
        " (bench/floors.py: what a connection costs below our code)",
    )
    ap.add_argument(
        "--phases", default=",".join(PHASE_NAMES), help=f"comma list of: {', '.join(PHASE_NAMES)}"
    )
    ap.add_argument(
        "--seed-src",
        type=Path,
        default=None,
        help="the Go tutorial server's main.go (or its folder); default: $"
        + SEED_SRC_ENV
        + "; without either, the Go server is skipped",
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
        "--cores",
        default=None,
        help="the pair suite's cores, e.g. server=0-3,loadgen=4-15 (default server=0,loadgen=1;"
        " a server with --server-arg=--send-threads=N wants N cores)",
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
        " one Redis, one PostgreSQL), one (one node, Redis broker, PostgreSQL store), memory"
        " (one memory:// process)",
    )
    ap.add_argument(
        "--cross-cores",
        default=DEFAULT_PLACEMENT,
        help=f"with --cross-node, the cores of each process (default {DEFAULT_PLACEMENT})",
    )
    ap.add_argument(
        "--runs", type=int, default=1, help="with --cross-node, rounds over the topologies"
    )
    ap.add_argument(
        "--nodes",
        default=None,
        help="run the scaling scenario instead: a comma list of node counts, e.g. 1,2,4,8"
        " (one cluster on this host, each node on a core of its own; bench/README.md)",
    )
    ap.add_argument(
        "--clients-per-node", type=int, default=2000, help="with --nodes (default 2000)"
    )
    ap.add_argument(
        "--rate-per-node",
        type=float,
        default=100_000,
        help="with --nodes, the fixed phase's deliveries/s per node (default 100000)",
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    quiet = Quiet(
        args.quiet_limit,
        args.quiet_wait if args.quiet_wait is not None else (2 if args.quick else 20),
        args.retries if args.retries is not None else (0 if args.quick else 2),
    )
    if args.nice:
        NICE[:] = ["nice", "-n", str(args.nice)]
    if args.cores:
        for item in args.cores.split(","):
            role, _, cores = item.partition("=")
            if role not in CORES or not cores:
                raise BenchError(f"--cores: {item!r} is not server=CORES or loadgen=CORES")
            CORES[role] = cores
    if args.smoke:
        return run_smoke(args)
    if shutil.which("taskset") is None:
        raise BenchError("taskset is missing (Debian package util-linux)")
    if args.cross_node:
        return run_cross(args, argv, quiet)
    if args.nodes is not None:
        return run_scaling(args, argv)
    return run_pair(args, argv, quiet)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as err:
        print(f"bench: {err}", file=sys.stderr)
        sys.exit(1)

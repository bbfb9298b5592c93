"""The two suites end to end: build, run every phase on fresh servers, write the report.

`run_pair` measures the Go tutorial server and ours side by side (the issue-5 table);
`run_cross` runs the cross-node scenario over its topologies, `--runs` times round;
`run_scaling` the scaling scenario over `--nodes` node counts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.build import build_loadgen, build_seed, seed_source
from bench.crossnode import CROSS_PHASES, TOPOLOGIES, CrossSetup, Placement, run_cross_phase
from bench.crossreport import cross_report
from bench.env import BIN, RESULTS, ROOT, BenchError, Json, dig, log
from bench.machine import machine, raise_nofile
from bench.phases import PHASES, Quiet, run_phase
from bench.plots import write_plots
from bench.pyspy import run_profile
from bench.report import report
from bench.scalereport import scaling_report
from bench.scaling import SENDERS, Load, ScalingSetup, run_nodes_phase
from bench.servers import FLOORS, ServerSpec, our_server_spec


def prepare() -> tuple[str, Path]:
    """Checks the descriptor limit and makes the output folders; the run's stamp and log
    folder."""
    nofile = raise_nofile()
    if nofile < 12000:
        log(f"RLIMIT_NOFILE is {nofile}: the idle phase needs ~10,100 descriptors per process")
    BIN.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs = RESULTS / f"{stamp}-logs"
    logs.mkdir()
    return stamp, logs


def started(args: argparse.Namespace, argv: list[str] | None) -> Json:
    """What every result file begins with: when, how, on what machine."""
    return {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "quick": args.quick,
        "command": " ".join([".venv/bin/python", "bench/run.py", *(argv or sys.argv[1:])]),
        "machine": machine(),
    }


def run_pair(args: argparse.Namespace, argv: list[str] | None, quiet: Quiet) -> int:
    """The Go tutorial server and ours, every chosen phase on a fresh server."""
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    phases = [p for p in PHASES if p.name in {s.strip() for s in args.phases.split(",")}]
    stamp, logs = prepare()
    log("building the load generator and the Go tutorial server")
    loadgen = build_loadgen()

    specs: dict[str, ServerSpec | str] = {}
    if "go" in servers:
        try:
            seed = build_seed(seed_source(args.seed_src))
            specs["go"] = ServerSpec("go", "Go tutorial server", [str(seed)], BIN)
        except BenchError as exc:
            specs["go"] = str(exc)
    if "ours" in servers:
        spec = our_server_spec(args.python, args.server_arg)
        specs["ours"] = spec if spec else f"{ROOT / 'chat_server.py'} does not exist yet"
    for key, title in FLOORS.items():  # what a connection costs below our code (bench/floors.py)
        if key in servers:
            command = [str(args.python), "-m", "bench.floors", key, "--port", "{port}"]
            specs[key] = ServerSpec(key, title, command, ROOT)

    data: Json = {**started(args, argv), "servers": {}}
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
    ours = specs.get("ours")
    if args.profile and isinstance(ours, ServerSpec):
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
    name = f"{stamp}-{'quick' if args.quick else 'full'}"
    write(name, report(data), data)
    return 0


def write(name: str, text: str, data: Json) -> None:
    """The report to bench/results/NAME.md and stdout, the data to NAME.json, the plots it
    holds to NAME-*.svg."""
    (RESULTS / f"{name}.md").write_text(text + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
    write_plots(data, RESULTS, name)
    print(text)
    log(f"done in {data['seconds']:.0f} s; results in {RESULTS}/{name}*")


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
    stamp, logs = prepare()
    log("building the load generator")
    loadgen = build_loadgen()
    version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    data: Json = {
        **started(args, argv),
        "redis_version": " ".join(version[:3]) if version else "redis ?",
        "placement": {
            "a": cores.a,
            "b": cores.b,
            "redis": cores.redis,
            "loadgen": cores.loadgen,
            "pg": cores.pg,
        },
        "topologies": topologies,
        "phases": [p.name for p in phases],
        "argv": spec.argv,
        "runs": [],
    }
    setup = CrossSetup(loadgen, spec, args.quick, logs, quiet, cores)
    t0 = time.monotonic()
    for i in range(args.runs):
        log(f"cross-node run {i + 1} of {args.runs}")
        one: Json = {}
        for topology in topologies:
            res: Json = {"title": TOPOLOGIES[topology], "phases": {}}
            for phase in phases:
                res["phases"][phase.name] = run_cross_phase(setup, topology, phase)
            one[topology] = res
        data["runs"].append(one)
    data["seconds"] = round(time.monotonic() - t0, 1)
    name = f"{stamp}-crossnode-{'quick' if args.quick else 'full'}"
    write(name, cross_report(data), data)
    return 0


def run_scaling(args: argparse.Namespace, argv: list[str] | None) -> int:
    """The scaling scenario: for each N of `--nodes`, a ramp and a fixed rate on N fresh
    nodes (bench/scaling.py)."""
    if shutil.which("redis-server") is None:
        raise BenchError("no redis-server: apt-get install -y redis-server")
    try:
        counts = [int(n) for n in args.nodes.split(",") if n.strip()]
    except ValueError:
        raise BenchError(f"--nodes wants a comma list of node counts, got {args.nodes!r}") from None
    if not counts or min(counts) < 1:
        raise BenchError(f"--nodes wants counts of 1 or more, got {args.nodes!r}")
    spec = our_server_spec(args.python, args.server_arg)
    if spec is None or "--broker" not in spec.help_text:
        raise BenchError("chat_server.py is missing or has no --broker option")
    stamp, logs = prepare()
    log("building the load generator")
    load = Load(args.clients_per_node, args.rate_per_node, args.quick)
    setup = ScalingSetup(build_loadgen(), spec, load, logs, os.cpu_count() or 1)
    data: Json = {
        **started(args, argv),
        "clients_per_node": load.clients_per_node,
        "rate_per_node": load.rate_per_node,
        "senders": SENDERS,
        "argv": spec.argv,
        "by_nodes": {},
    }
    t0 = time.monotonic()
    for n in counts:
        data["by_nodes"][str(n)] = {
            phase: run_nodes_phase(setup, n, phase) for phase in ("ramp", "fixed")
        }
    data["seconds"] = round(time.monotonic() - t0, 1)
    name = f"{stamp}-scaling-{'quick' if args.quick else 'full'}"
    write(name, scaling_report(data), data)
    return 0

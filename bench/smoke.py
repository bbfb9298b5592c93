"""The smoke run (`--smoke`): a few seconds of tiny load against each server, so CI sees the
suite build and measure.

It builds the load generator (and the Go tutorial server where its source is given), starts
each server unpinned, sends 2 senders' messages to 20 clients for 2 s, and fails unless every
one was delivered. No results are written: it checks the machinery, not the figures.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.build import build_loadgen, build_seed, missing_seed_reason, seed_source
from bench.env import BIN, BenchError, Json, dig, log
from bench.servers import ServerSpec, our_server_spec, run_loadgen, start_server, stop_server

# 20 clients, 2 senders, 1,000 deliveries/s: enough to cross every code path of a delivery,
# small enough for a 2-core CI machine in a few seconds.
LOAD = "-mode fixed -clients 20 -senders 2 -rate 1000 -warmup 0.5 -duration 2 -drain 2"
DEADLINE_S = 30  # the load generator's hard limit; the run itself takes ~5 s


def run_smoke(args: argparse.Namespace) -> int:
    """Measures each server briefly; 0 if every one delivered something and lost nothing."""
    log("smoke: building the load generator")
    loadgen = build_loadgen()
    specs: list[ServerSpec] = []
    ours = our_server_spec(args.python, args.server_arg)
    if ours is None:
        raise BenchError("chat_server.py is missing")
    specs.append(ours)
    seed_src = seed_source(args.seed_src)
    if seed_src is None:
        log(f"smoke: the Go tutorial server is skipped: {missing_seed_reason(None)}")
    else:
        log(f"smoke: building the Go tutorial server from {seed_src}")
        specs.append(ServerSpec("go", "Go tutorial server", [str(build_seed(seed_src))], BIN))
    failed = 0
    with tempfile.TemporaryDirectory(prefix="bench-smoke-") as tmp:
        for spec in specs:
            problem = smoke_one(loadgen, spec, Path(tmp) / f"{spec.key}.log")
            if problem:
                failed += 1
                print(f"smoke {spec.key}: FAILED: {problem}", flush=True)
    return 1 if failed else 0


def smoke_one(loadgen: Path, spec: ServerSpec, log_path: Path) -> str | None:
    """What is wrong with one server's smoke run (with its log's tail), or None."""
    try:
        run = start_server(spec, log_path, core=None)
    except BenchError as exc:
        return f"{exc}\n{tail(log_path)}"
    try:
        out = run_loadgen(loadgen, run, tuple(LOAD.split()), DEADLINE_S, core=None,
                          server_core="-1")  # fmt: skip
    except BenchError as exc:
        return f"{exc}\n{tail(log_path)}"
    finally:
        stop_server(run)
    problem = verdict(out)
    r = dig(out, "result") or {}
    print(
        f"smoke {spec.key}: {r.get('delivered')} of {r.get('expected')} deliveries,"
        f" {r.get('lost')} lost, p99 {r.get('p99_ms')} ms",
        flush=True,
    )
    return f"{problem}\n{tail(log_path)}" if problem else None


def verdict(out: Json) -> str | None:
    """Why a load generator's report shows a broken run: no deliveries, loss, or a failure."""
    delivered, lost = dig(out, "result", "delivered"), dig(out, "result", "lost")
    if out.get("exit_code") != 0:
        return f"the load generator exited with {out.get('exit_code')}"
    if not isinstance(delivered, int) or delivered <= 0:
        return f"nothing was delivered ({delivered!r})"
    if lost != 0:
        return f"{lost!r} of {dig(out, 'result', 'expected')!r} deliveries were lost"
    return None


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a server's log, to say why it failed."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])

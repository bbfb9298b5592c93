"""A py-spy profile of our server under a fixed load (`--profile`), summed up by function."""

from __future__ import annotations

import collections
import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.env import LOADGEN_CORE, RESULTS, ROOT, Json
from bench.servers import ServerSpec, run_loadgen, start_server, stop_server


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

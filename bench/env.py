"""Where the suite's files are, which cores it uses, and how it reports progress and failure."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = BENCH / "bin"
# Where reports and logs go; BENCH_RESULTS elsewhere (the tests' runs write to a temporary one).
RESULTS = Path(os.environ.get("BENCH_RESULTS") or BENCH / "results")
LOADGEN_SRC = BENCH / "loadgen"
SERVER_CORE = "0"
LOADGEN_CORE = "1"
# The pair suite's placement (`taskset -c` lists), changed by --cores (a server with
# --send-threads uses more than one core).
CORES = {"server": SERVER_CORE, "loadgen": LOADGEN_CORE}
NICE: list[str] = []  # ["nice", "-n", "-10"] with --nice -10

Json = dict[str, Any]


class BenchError(Exception):
    """A step of the suite could not be carried out."""


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def dig(d: Json | None, *path: str) -> Any:
    cur: Any = d
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return None
        cur = cur[key]
    return cur

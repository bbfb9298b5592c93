"""The history store's throughput and the latency it adds per message, FULL vs NORMAL sync.

Run from the repository root: `.venv/bin/python -m bench.store_bench [--writers 50]`. Each
mode runs twice on a fresh file (with `--db postgresql://...`, on that database instead: its
`bench_*` conversations are left there): one writer appending back to back (the latency a message
pays when the server is idle), then `--writers` coroutines appending as fast as acknowledged
(throughput with group commit). The event loop's worst stall is measured alongside: the
store must never block it.

`--search-index on|off|both` measures instead what keeping the full-text search index costs
appends (issue 16): the same two runs (FULL sync) on fresh stores with the index (today's
schema) and without it (SQLite: the FTS5 triggers dropped; PostgreSQL: its `search_vector`
column dropped, in a schema of its own). bench/search_bench.py runs the same after its searches.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass

import psycopg

from chat.store.postgres import PostgresStore
from chat.store.sqlite import SQLiteStore

TEXT = "x" * 100  # bytes; a typical chat line
ROOMS = 10  # writers spread over this many conversations
TICK_S = 0.005  # the loop-stall probe's sleep


@dataclass
class Result:
    """One run's figures."""

    mode: str
    writers: int
    messages: int
    seconds: float
    latencies_ms: list[float]
    batches: int
    worst_stall_ms: float

    def row(self) -> str:
        lat = sorted(self.latencies_ms)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))]

        return (f"| {self.mode} | {self.writers} | {self.messages / self.seconds:,.0f} | "
                f"{pct(0.5):.2f} | {pct(0.99):.2f} | {lat[-1]:.1f} | "
                f"{self.messages / max(1, self.batches):.1f} | {self.worst_stall_ms:.1f} |")


async def _probe(stop: asyncio.Event) -> float:
    """The longest the loop was late waking a TICK_S sleep, in ms, until `stop` is set."""
    worst = 0.0
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(TICK_S)
        worst = max(worst, time.perf_counter() - start - TICK_S)
    return worst * 1000


async def run(path: str, mode: str, writers: int, seconds: float) -> Result:
    """Append for `seconds` from `writers` coroutines; what was committed and how fast."""
    store: SQLiteStore | PostgresStore
    if path.startswith("postgresql://"):
        store = PostgresStore(path)
    else:
        store = SQLiteStore(path, synchronous="NORMAL" if mode == "NORMAL" else "FULL")
    await store.start()
    run_id = time.time_ns()  # conversations of this run's own, on a database kept between runs
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def write(n: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await store.append(f"bench_{run_id}_{n % ROOMS}", username=f"user{n}", avatar="",
                               text=TEXT, ts=time.time_ns() // 1_000_000, cid=f"{run_id}-{n}-{i}")
            latencies.append((time.perf_counter() - start) * 1000)
            i += 1

    stop = asyncio.Event()
    probe = asyncio.ensure_future(_probe(stop))
    began = time.perf_counter()
    await asyncio.gather(*(write(n) for n in range(writers)))
    elapsed = time.perf_counter() - began
    stop.set()
    stall = await probe
    stats = store.stats
    await store.close()
    return Result(mode, writers, stats.stored, elapsed, latencies, stats.batches, stall)


async def fresh_store(target: str, index: bool) -> str:
    """A new, empty store at today's schema, with the search index or without it: a SQLite
    file in the folder `target`, or a new schema of the database at the URL `target`; what
    `run` takes as its path."""
    label = f"{'on' if index else 'off'}_{time.time_ns()}"
    if target.startswith("postgresql://"):
        schema = f"append_{label}"
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        where = f"{target}?options=-csearch_path%3D{schema}"
        postgres = PostgresStore(where)
        await postgres.start()  # the migrations, then the index is taken out
        await postgres.close()
        if not index:
            with psycopg.connect(where, autocommit=True) as conn:
                conn.execute("ALTER TABLE messages DROP COLUMN search_vector")
        return where
    where = os.path.join(target, f"append-{label}.db")
    sqlite = SQLiteStore(where)
    await sqlite.start()
    await sqlite.close()
    if not index:
        with sqlite3.connect(where) as conn:
            for trigger in ("insert", "update", "delete"):
                conn.execute(f"DROP TRIGGER messages_fts_{trigger}")
    return where


async def search_index(target: str, choice: str, writers: int, seconds: float) -> None:
    """Append throughput with the search index on and/or off (`choice`), one table."""
    print("| search index | writers | messages/s | p50 ms | p99 ms | max ms | per commit | "
          "loop stall ms |")
    print("|---|---|---|---|---|---|---|---|")
    for index in (True, False):
        if choice != "both" and index != (choice == "on"):
            continue
        for count in (1, writers):
            result = await run(await fresh_store(target, index), "FULL", count, seconds)
            print(dataclasses.replace(result, mode="on" if index else "off").row(), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--writers", type=int, default=50, help="concurrent appenders")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument("--dir", default=None, help="where the file goes (default: a temp dir)")
    parser.add_argument("--db", default=None,
                        help="a postgresql:// URL: measure PostgreSQL there instead of SQLite")
    parser.add_argument("--search-index", choices=("on", "off", "both"), default=None,
                        help="measure appends with the search index on, off or both instead")
    args = parser.parse_args()
    if args.search_index:
        if args.db:
            await search_index(args.db, args.search_index, args.writers, args.seconds)
            return
        with tempfile.TemporaryDirectory(dir=args.dir) as where:
            await search_index(where, args.search_index, args.writers, args.seconds)
        return
    print("| sync | writers | messages/s | p50 ms | p99 ms | max ms | per commit | "
          "loop stall ms |")
    print("|---|---|---|---|---|---|---|---|")
    if args.db:
        for writers in (1, args.writers):
            print((await run(args.db, "PostgreSQL", writers, args.seconds)).row(), flush=True)
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as where:
        for mode in ("FULL", "NORMAL"):
            for writers in (1, args.writers):
                path = os.path.join(where, f"bench-{mode}-{writers}.db")
                result = await run(path, mode, writers, args.seconds)
                print(result.row(), flush=True)


if __name__ == "__main__":
    asyncio.run(main())

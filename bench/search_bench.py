"""Search latency over a large history, and what keeping the index costs appends (issue 16).

Run from the repository root: `.venv/bin/python -m bench.search_bench [--messages 1000000]
[--dir D | --db postgresql://...]`. It writes the history straight into the tables in bulk (not
through append) at the schema from before search, then opens it with today's schema: that
migration builds the index over the history already stored, and its time is the first figure.
A file in --dir (or a schema `search_bench` in the database) holding the history already is
used as it is. Then each kind of query is searched `--repeat` times as an account that reads
every room would (p50/p99 in ms), and appends are timed on fresh stores with the index and
without it (bench/store_bench.py's run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import psycopg

from bench.store_bench import fresh_store
from bench.store_bench import run as append_run
from chat.search.query import terms
from chat.store import postgres_schema, sqlite_schema
from chat.store.postgres import PostgresStore
from chat.store.search import Filters, Scope
from chat.store.sqlite import SQLiteStore

ROOMS = 1000  # conversations the history is spread over
VOCABULARY = 20_000  # distinct words, used with Zipf's frequencies (word k: weight 1/k)
WORDS_PER_MESSAGE = (4, 20)
SEED = 16
BATCH = 50_000  # rows per bulk insert
# The columns the rows fill (the migrations after search add more, all with defaults).
_INSERT = ("INSERT INTO messages (conversation, id, username, avatar, text, ts, cid, recipient,"
           " guest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
SCHEMA = "search_bench"
# The words a query uses, by their frequency rank (1: the most frequent word).
QUERIES: dict[str, tuple[str, dict[str, Any]]] = {
    "rare word (rank 5000)": ("{5000}", {}),
    "medium word (rank 200)": ("{200}", {}),
    "common word (rank 3)": ("{3}", {}),
    "two words (ranks 3, 200)": ("{3} {200}", {}),
    "prefix (3 letters of rank 200)": ("{200:3}*", {}),
    "common word, one room": ("{3}", {"conversation": "room7"}),
}


def vocabulary() -> list[str]:
    rng = random.Random(SEED)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 10))))
    ranked = sorted(words)
    rng.shuffle(ranked)  # a fixed, arbitrary rank order
    return ranked


def rows(count: int, words: list[str]) -> Iterator[tuple[Any, ...]]:
    """The messages: (conversation, id, username, avatar, text, ts, cid, recipient, guest)."""
    rng = random.Random(SEED)
    weights = [1 / (k + 1) for k in range(len(words))]
    total = sum(weights)
    cumulative = []
    running = 0.0
    for weight in weights:
        running += weight / total
        cumulative.append(running)
    start_ms = time.time_ns() // 1_000_000 - count * 1000
    for n in range(count):
        length = rng.randint(*WORDS_PER_MESSAGE)
        text = " ".join(rng.choices(words, cum_weights=cumulative, k=length))
        yield (f"room{n % ROOMS}", n // ROOMS + 1, f"user{n % 97}", "", text,
               start_ms + n * 1000, None, None, 0)


def query_text(template: str, words: list[str]) -> str:
    def word(spec: str) -> str:
        rank, _, cut = spec.partition(":")
        chosen = words[int(rank) - 1]
        return chosen[:int(cut)] if cut else chosen
    parts = template.replace("{", " {").split()
    return " ".join(word(p[1:].split("}")[0]) + p.split("}")[1] if p.startswith("{") else p
                    for p in parts)


def build_sqlite(path: str, count: int, words: list[str]) -> float | None:
    """The history in a file at the schema before search, then the migration's seconds
    (None: the file was there already)."""
    if os.path.exists(path):
        return None
    position = sqlite_schema.MIGRATIONS.index(sqlite_schema._v17_search)
    conn = sqlite3.connect(path, isolation_level=None)
    full = sqlite_schema.MIGRATIONS
    sqlite_schema.MIGRATIONS = full[:position]
    try:
        sqlite_schema.migrate(conn)
    finally:
        sqlite_schema.MIGRATIONS = full
    conn.execute("PRAGMA journal_mode = WAL")
    batch: list[tuple[Any, ...]] = []
    conn.execute("BEGIN")
    for row in rows(count, words):
        batch.append(row)
        if len(batch) == BATCH:
            conn.executemany(_INSERT, batch)
            batch = []
    conn.executemany(_INSERT, batch)
    conn.execute("INSERT INTO conversations (key, last_id, last_ts) SELECT conversation,"
                 " max(id), max(ts) FROM messages GROUP BY conversation")
    conn.execute("COMMIT")
    conn.close()
    began = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    sqlite_schema.migrate(conn)
    conn.close()
    return time.perf_counter() - began


async def build_postgres(url: str, count: int, words: list[str]) -> float | None:
    """As build_sqlite, in the schema SCHEMA of the database at `url`."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        found = await (await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                          (SCHEMA,))).fetchone()
        if found:
            return None
        await conn.execute(f"CREATE SCHEMA {SCHEMA}")
        await conn.execute(f"SET search_path = {SCHEMA}")
        position = postgres_schema.MIGRATIONS.index(postgres_schema._v16_search)
        full = postgres_schema.MIGRATIONS
        postgres_schema.MIGRATIONS = full[:position]
        try:
            await postgres_schema.migrate(conn)
        finally:
            postgres_schema.MIGRATIONS = full
        async with conn.cursor() as cur, cur.copy(
                "COPY messages (conversation, id, username, avatar, text, ts, cid, recipient,"
                " guest) FROM STDIN") as copy:
            for row in rows(count, words):
                await copy.write_row(row)
        await conn.execute("INSERT INTO conversations (key, last_id, last_ts) SELECT"
                           " conversation, max(id), max(ts) FROM messages GROUP BY conversation")
        await conn.execute("VACUUM ANALYZE messages")
        began = time.perf_counter()
        await postgres_schema.migrate(conn)
        await conn.execute("ANALYZE messages")
        return time.perf_counter() - began


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def time_searches(store: Any, words: list[str], repeat: int) -> None:
    scope = Scope(rooms=[f"room{n}" for n in range(ROOMS)])
    print("| query | hits on page 1 | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    for name, (template, filters) in QUERIES.items():
        query = terms(query_text(template, words))
        took: list[float] = []
        found = None
        for _ in range(repeat):
            began = time.perf_counter()
            found = await store.search(query, scope, Filters(**filters), offset=0, limit=20)
            took.append((time.perf_counter() - began) * 1000)
        assert found is not None
        print(f"| {name} | {len(found.messages)}{'+' if found.more else ''} | "
              f"{pct(took, 0.5):.1f} | {pct(took, 0.99):.1f} |", flush=True)
    print(f"(mean of all: {statistics.mean(took):.1f} ms)")


async def appends(target: str, writers: int, seconds: float) -> None:
    """Append throughput on fresh stores, index on and off (bench/store_bench.py's)."""
    print("| index | writers | messages/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for index in ("on", "off"):
        where = await fresh_store(target, index == "on")
        result = await append_run(where, "FULL", writers, seconds)
        lat = sorted(result.latencies_ms)
        print(f"| {index} | {writers} | {result.messages / result.seconds:,.0f} | "
              f"{pct(lat, 0.5):.2f} | {pct(lat, 0.99):.2f} |", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=50, help="searches of each kind")
    parser.add_argument("--writers", type=int, default=50, help="concurrent appenders")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each append run")
    parser.add_argument("--dir", default=None, help="where the SQLite files go (kept there)")
    parser.add_argument("--db", default=None, help="a postgresql:// URL: PostgreSQL instead")
    args = parser.parse_args()
    words = vocabulary()
    if args.db:
        built = await build_postgres(args.db, args.messages, words)
        store: Any = PostgresStore(f"{args.db}?options=-csearch_path%3D{SCHEMA}")
    else:
        where = args.dir or tempfile.mkdtemp(prefix="search-bench-")
        os.makedirs(where, exist_ok=True)
        path = os.path.join(where, f"history-{args.messages}.db")
        built = build_sqlite(path, args.messages, words)
        store = SQLiteStore(path)
    if built is not None:
        print(f"index built over {args.messages:,} stored messages by the migration in "
              f"{built:.1f} s", flush=True)
    await store.start()
    try:
        await time_searches(store, words, args.repeat)
    finally:
        await store.close()
    await appends(args.db or where, args.writers, args.seconds)


if __name__ == "__main__":
    asyncio.run(main())

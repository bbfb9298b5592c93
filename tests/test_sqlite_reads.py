"""Reads batched on a SQLite connection's thread (chat/store/sqlite_reads.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from chat.store.base import StoreError
from chat.store.sqlite_reads import READS_PER_HOP, BatchedReads

Read = tuple[str, tuple[Any, ...]]


class Reads:
    """BatchedReads over a file with a table `t` (n, word), counting the statements run."""

    def __init__(self, path: Path) -> None:
        with sqlite3.connect(path) as setup:
            setup.execute("CREATE TABLE t (n INTEGER, word TEXT)")
            setup.executemany("INSERT INTO t VALUES (?, ?)", [(1, "one"), (2, "two")])
        self.thread = ThreadPoolExecutor(max_workers=1)
        self.conn = sqlite3.connect(path, check_same_thread=False)
        self.runs = 0
        self.reads: BatchedReads[Read, tuple[Any, ...]] = BatchedReads(
            self.thread, lambda: self.conn, self._run)

    def _run(self, conn: sqlite3.Connection, read: Read) -> list[tuple[Any, ...]]:
        self.runs += 1
        return conn.execute(*read).fetchall()

    def write(self, n: int, word: str) -> None:
        """Insert a row from another connection, committed when this returns."""
        with sqlite3.connect(self.conn.execute("PRAGMA database_list").fetchone()[2]) as other:
            other.execute("INSERT INTO t VALUES (?, ?)", (n, word))

    async def held(self) -> tuple[threading.Event, asyncio.Future[bool]]:
        """Hold the thread until the event is set: reads asked meanwhile wait together."""
        gate = threading.Event()
        busy = asyncio.get_running_loop().run_in_executor(self.thread, gate.wait)
        return gate, busy


@pytest.fixture
def reads(tmp_path: Path) -> Iterator[Reads]:
    made = Reads(tmp_path / "reads.db")
    yield made
    made.thread.shutdown(wait=True)
    made.conn.close()


WORD = "SELECT word FROM t WHERE n = ?"


async def until(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the condition never held")


@pytest.mark.gen_test
async def test_reads_asked_together_share_one_hop_and_each_runs_once(reads: Reads) -> None:
    """Reads asked while the thread is busy go in one batch; a read asked twice runs once."""
    gate, busy = await reads.held()
    asked = [asyncio.ensure_future(reads.reads.read((WORD, (n,)))) for n in (1, 2, 1, 3)]
    await until(lambda: reads.reads.batches.calls == 1)
    gate.set()
    await busy
    answers = await asyncio.gather(*asked)
    assert answers == [[("one",)], [("two",)], [("one",)], []]
    assert reads.reads.batches.calls == 1 and reads.runs == 3
    answers[0].append(("mine",))
    assert answers[2] == [("one",)]  # each asker its own list


@pytest.mark.gen_test
async def test_a_read_asked_during_a_batch_sees_what_was_written_before_it(
        reads: Reads) -> None:
    """A read never takes the answer of a read that began before it was asked."""
    gate, busy = await reads.held()
    first = asyncio.ensure_future(reads.reads.read((WORD, (3,))))
    await until(lambda: reads.reads.batches.pending == 1)
    gate.set()
    await busy
    assert await first == []
    reads.write(3, "three")
    assert await reads.reads.read((WORD, (3,))) == [("three",)]


@pytest.mark.gen_test
async def test_a_failing_read_fails_its_askers_only(reads: Reads) -> None:
    """A read the database refuses raises StoreError; the reads batched with it are answered."""
    gate, busy = await reads.held()
    bad = asyncio.ensure_future(reads.reads.read(("SELECT x FROM nowhere", ())))
    good = asyncio.ensure_future(reads.reads.read((WORD, (2,))))
    await until(lambda: reads.reads.batches.pending == 2)
    gate.set()
    await busy
    with pytest.raises(StoreError, match="no such table: nowhere"):
        await bad
    assert await good == [("two",)]
    assert reads.reads.batches.calls == 1


@pytest.mark.gen_test
async def test_a_hop_holds_at_most_reads_per_hop_reads(reads: Reads) -> None:
    """More reads than READS_PER_HOP take more hops, every one answered."""
    gate, busy = await reads.held()
    asked = [asyncio.ensure_future(reads.reads.read((WORD, (n,))))
             for n in range(READS_PER_HOP + 1)]
    await until(lambda: reads.reads.batches.pending == READS_PER_HOP + 1)
    gate.set()
    await busy
    answers = await asyncio.gather(*asked)
    assert answers[1] == [("one",)] and answers[2] == [("two",)]
    assert reads.reads.batches.calls == 2 and reads.runs == READS_PER_HOP + 1


@pytest.mark.gen_test
async def test_a_read_that_cannot_be_a_key_runs_in_a_hop_of_its_own(reads: Reads) -> None:
    """A read whose parameters are a list (unhashable) is answered, outside any batch."""
    answer = await reads.reads.read((WORD, [2]))  # type: ignore[arg-type]
    assert answer == [("two",)]
    assert reads.reads.batches.calls == 0 and reads.runs == 1

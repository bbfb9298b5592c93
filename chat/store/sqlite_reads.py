"""Reads on a SQLite connection's own thread, batched: what is asked while one batch is on the
thread goes in the next, one hop there and back, and the same read asked twice runs once.

After a deploy every client reconnects and rejoins its rooms: some twenty reads each (the
room, the memberships, the missed messages, the read marks; bench/rejoin.py). One hop to a
thread and back costs the loop ~13 us of CPU on the 2-core machine, against ~0.5 us when 64
reads share it (docs/performance.md, "Rejoining rooms"). Each read still runs after it was
asked (chat/coalesce.py), so it sees every write that was done before.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Executor
from typing import Generic, TypeVar

from chat.coalesce import Coalesced
from chat.store.base import StoreError
from chat.store.sqlite_schema import describe

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

# Reads in one hop at most: the batch holds the thread (not the loop) while it runs.
READS_PER_HOP = 64


class Failed:
    """A read that raised sqlite3.Error: each of its askers gets a StoreError of its own."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class BatchedReads(Generic[K, T]):
    """`read(key)`: the list `run(connection, key)` makes on `thread`, in one hop with the reads
    asked while the batch before it was there; each asker gets a list of its own."""

    def __init__(self, thread: Executor, connection: Callable[[], sqlite3.Connection],
                 run: Callable[[sqlite3.Connection, K], list[T]]) -> None:
        self._thread = thread
        self._connection = connection
        self._run = run
        self.batches: Coalesced[K, list[T] | Failed] = Coalesced(self._hop, most=READS_PER_HOP)

    async def read(self, key: K) -> list[T]:
        """What `run` gives for `key`; StoreError if the database failed."""
        outcome: list[T] | Failed | None
        try:
            hash(key)
        except TypeError:  # a parameter that is a list, say: read it in a hop of its own
            outcome = await asyncio.get_running_loop().run_in_executor(
                self._thread, lambda: self._outcome(self._connection(), key))
        else:
            outcome = await self.batches.ask(key)
        if isinstance(outcome, Failed):
            raise StoreError(outcome.reason)
        return [] if outcome is None else list(outcome)

    async def _hop(self, keys: list[K]) -> Mapping[K, list[T] | Failed]:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._all, keys)

    def _all(self, keys: list[K]) -> dict[K, list[T] | Failed]:
        conn = self._connection()
        return {key: self._outcome(conn, key) for key in keys}

    def _outcome(self, conn: sqlite3.Connection, key: K) -> list[T] | Failed:
        try:
            return self._run(conn, key)
        except sqlite3.Error as exc:
            return Failed(describe(exc))
        except StoreError as exc:
            return Failed(str(exc))

"""What the SQLite writer thread is asked (appends, prunes, in-memory reads), and how answers
reach the asker."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chat.record import StoredMessage


@dataclass(slots=True)
class Append:
    """A message waiting for the writer (its id still 0), and the future its caller awaits."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[tuple[StoredMessage, bool]]
    message: StoredMessage


@dataclass(slots=True)
class Prune:
    """A request to apply retention now, and the future that gets the count deleted."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[int]


@dataclass(slots=True)
class Read:
    """A read for the writer's own connection, between its transactions (an in-memory
    database has no reader connection: see SQLiteStore), and the future that gets the rows."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    # Messages, or the rows of a read mark's statement (a single statement, its own commit).
    run: Callable[[sqlite3.Connection], Any]


@dataclass(slots=True)
class WriterStats:
    """What the writer has done, for /metrics and the benchmark."""

    batches: int = 0  # transactions of appends committed
    stored: int = 0  # messages committed
    largest_batch: int = 0  # most appends committed in one transaction
    failed_batches: int = 0
    pruned: int = 0  # messages deleted by retention


def settle(outcomes: list[tuple[asyncio.Future[Any], object]]) -> None:
    """Resolve futures in order, on their loop; a cancelled caller's is skipped."""
    for future, outcome in outcomes:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def hand_back(requests: Sequence[Append | Prune | Read], outcomes: Sequence[object]) -> None:
    """Send each outcome to its caller's loop: one wake-up per loop, in queue (= id) order."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], object]]] = {}
    for request, outcome in zip(requests, outcomes, strict=True):
        by_loop.setdefault(request.loop, []).append((request.future, outcome))
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(settle, items)

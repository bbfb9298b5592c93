"""History in SQLite: a file (WAL, group commit on a writer thread, reads on a reader thread) or,
for `:memory:`, an in-memory database that lives as long as the store."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from chat.record import StoredMessage
from chat.search.query import Term
from chat.store import sqlite_changes as lifecycle
from chat.store.base import StoreError, direct_patterns
from chat.store.reactions import TooManyReactions
from chat.store.search import SQLITE_SEARCH, Filters, Found, Scope, page, sqlite_params
from chat.store.sql import AFTER as _AFTER
from chat.store.sql import BEFORE as _BEFORE
from chat.store.sql import DELETE as _DELETE
from chat.store.sql import DIRECT_OF as _DIRECT_OF
from chat.store.sql import EDIT as _EDIT
from chat.store.sql import LAST_SEEN as _LAST_SEEN
from chat.store.sql import LATEST as _LATEST
from chat.store.sql import MARK_READ as _MARK_READ
from chat.store.sql import READ_MARKS as _READ_MARKS
from chat.store.sql import SAW as _SAW
from chat.store.sql import UNREAD as _UNREAD
from chat.store.sql import by_ids
from chat.store.sqlite_reads import BatchedReads
from chat.store.sqlite_requests import Append, Prune, Read, WriterStats
from chat.store.sqlite_schema import (
    LOCK_TIMEOUT_S,
    Synchronous,
    connect,
    describe,
    memory_uri,
    message_from_row,
)
from chat.store.sqlite_writer import Writer

T = TypeVar("T")


def _fetch(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...], *,
           newest_first: bool) -> list[StoredMessage]:
    """Run a read on its thread's connection; the messages oldest first."""
    try:
        return _messages(conn, (sql, params, newest_first))
    except sqlite3.Error as exc:
        raise StoreError(describe(exc)) from None


# A read of messages: its statement, parameters, and whether rows come newest first.
MessageRead = tuple[str, tuple[Any, ...], bool]


def _messages(conn: sqlite3.Connection, read: MessageRead) -> list[StoredMessage]:
    """The messages `read` selects, oldest first."""
    sql, params, newest_first = read
    rows = conn.execute(sql, params).fetchall()
    if newest_first:
        rows.reverse()
    return [message_from_row(row) for row in rows]


class SQLiteStore:
    """A HistoryStore in a SQLite file, or in memory for `:memory:` (for tests and throwaway
    runs: nothing on disk, gone at close); an append returns once its group is committed.

    In memory, reads go to the writer's connection between its transactions instead of to a
    reader connection: two connections to one in-memory database cannot read during a write
    (memdb has no WAL) without one of them waiting or failing, and a write there takes no fsync.
    """

    # synchronous=FULL (the default) fsyncs the WAL at every commit: an acknowledged message
    # survives a power cut as well as `kill -9`. NORMAL survives `kill -9` only (the OS still
    # holds the written WAL), for ~10% more throughput and half the idle latency (store_bench).

    def __init__(self, path: str, per_conversation: int = 10_000, days: float = 0, *,
                 room_days: float = 0, synchronous: Synchronous = "FULL",
                 lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
        if path.startswith("file:"):
            raise ValueError(f"SQLiteStore needs a file path or ':memory:', not {path!r}")
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous={synchronous!r} must be 'FULL' or 'NORMAL'")
        if per_conversation < 1 or days < 0 or room_days < 0:
            raise ValueError(f"per_conversation={per_conversation} must be 1 or more, "
                             f"days={days} and room_days={room_days} 0 or more")
        self._in_memory = path == ":memory:"
        # Each store its own database: a plain ":memory:" would give each connection its own.
        self._path = memory_uri() if self._in_memory else path
        self._writer = Writer(self._path, per_conversation=per_conversation, days=days,
                              room_days=room_days, synchronous=synchronous,
                              lock_timeout_s=lock_timeout_s, in_memory=self._in_memory)
        self._lock_timeout_s = lock_timeout_s
        self._open = False
        self._reader: sqlite3.Connection | None = None
        self._reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-reader")
        # A reconnect storm's reads (each room's missed messages, its newest) share hops.
        self._batched: BatchedReads[MessageRead, StoredMessage] = BatchedReads(
            self._reads, self._reader_connection, _messages)

    @property
    def stats(self) -> WriterStats:
        """What the writer has committed so far."""
        return self._writer.stats

    async def start(self) -> None:
        """Open (or create) the file and bring its schema up to date; StoreError if it cannot."""
        self._writer.start()
        await asyncio.wrap_future(self._writer.ready)
        if self._in_memory:
            self._open = True
            return
        loop = asyncio.get_running_loop()
        try:
            self._reader = await loop.run_in_executor(
                self._reads, partial(connect, self._path, lock_timeout_s=self._lock_timeout_s))
        except sqlite3.Error as exc:
            await self._stop_writer()
            raise StoreError(describe(exc)) from None
        self._open = True

    async def close(self) -> None:
        """Store what is queued, then close the file (the last connection checkpoints it)."""
        if not self._open:
            return
        self._open = False  # refuse new work; what is already queued still completes
        if self._reader is not None:
            await asyncio.get_running_loop().run_in_executor(self._reads, self._reader.close)
        self._reads.shutdown(wait=False)
        await self._stop_writer()

    async def _stop_writer(self) -> None:
        self._writer.stop()
        await asyncio.wrap_future(self._writer.finished)

    async def append(
        self,
        conversation: str,
        *,
        username: str,
        avatar: str,
        text: str,
        ts: int,
        cid: str | None = None,
        to: str | None = None,
        guest: bool = False,
        reply_to: int | None = None,
        bot: bool = False,
        author: str | None = None,
    ) -> tuple[StoredMessage, bool]:
        if not self._open:
            raise StoreError("the history store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[StoredMessage, bool]] = loop.create_future()
        message = StoredMessage(conversation, 0, username, avatar, text, ts, cid, to, guest,
                                reply_to, bot=bot, author=author)
        self._writer.submit(Append(loop, future, message))
        # Cancelling this await does not withdraw the message: it is stored all the same.
        return await future

    async def prune(self) -> int:
        if not self._open:
            raise StoreError("the history store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._writer.submit(Prune(loop, future))
        return await future

    async def latest(self, conversation: str, limit: int) -> list[StoredMessage]:
        return await self._read(_LATEST, (conversation,), limit, newest_first=True)

    async def before(self, conversation: str, before_id: int, limit: int) -> list[StoredMessage]:
        return await self._read(_BEFORE, (conversation, before_id), limit, newest_first=True)

    async def after(self, conversation: str, after_id: int, limit: int) -> list[StoredMessage]:
        return await self._read(_AFTER, (conversation, after_id), limit, newest_first=False)

    async def unread(self, conversation: str, after_id: int, limit: int) -> list[StoredMessage]:
        return await self._read(_UNREAD, (conversation, after_id), limit, newest_first=False)

    async def by_ids(self, conversation: str, ids: Collection[int]) -> list[StoredMessage]:
        wanted = sorted(set(ids))
        return await self._read(by_ids(len(wanted)),
                                (conversation, *wanted), len(wanted), newest_first=False)

    async def search(self, terms: Sequence[Term], scope: Scope, filters: Filters, *,
                     offset: int, limit: int) -> Found:
        """chat/store/search.py's MessageSearch: the FTS5 index, ranked by bm25."""
        if not terms or limit <= 0:
            return Found()
        # The last two parameters, LIMIT and OFFSET, are the ones _read adds.
        params = sqlite_params(terms, scope, filters, offset, limit)
        return page(await self._read(SQLITE_SEARCH, params[:-2], limit + 1, newest_first=False,
                                     offset=offset, alone=True), limit)

    async def _read(self, sql: str, keys: tuple[Any, ...], limit: int, *,
                    newest_first: bool, offset: int | None = None,
                    alone: bool = False) -> list[StoredMessage]:
        """The messages a read selects; `alone`: in a hop of its own (a search may take long,
        and a batch's answers all wait for its last read)."""
        if not self._open:
            raise StoreError("the history store is not open")
        if limit <= 0:  # SQLite would read a negative LIMIT as "no limit"
            return []
        params = (*keys, limit) if offset is None else (*keys, limit, offset)
        loop = asyncio.get_running_loop()
        if self._in_memory:
            future: asyncio.Future[list[StoredMessage]] = loop.create_future()
            run = partial(_fetch, sql=sql, params=params, newest_first=newest_first)
            self._writer.submit(Read(loop, future, run))
            return await future
        if alone:
            return await loop.run_in_executor(self._reads, partial(
                _fetch, self._reader_connection(), sql, params, newest_first=newest_first))
        return await self._batched.read((sql, params, newest_first))

    def _reader_connection(self) -> sqlite3.Connection:
        if self._reader is None:
            raise StoreError("the history store is not open")
        return self._reader

    # Read marks (chat/store/base.py's ReadMarks): on the writer's connection, between its
    # transactions, so a mark is committed (one statement) before the call returns.

    async def mark_read(self, party: str, conversation: str, last_read: int) -> int:
        rows = await self._on_writer(_MARK_READ, (party, conversation, last_read))
        return int(rows[0][0])

    async def read_marks(self, party: str) -> dict[str, int]:
        return {key: int(last) for key, last in await self._on_writer(_READ_MARKS, (party,))}

    async def direct_conversations(self, party: str) -> list[tuple[str, int]]:
        rows = await self._on_writer(_DIRECT_OF, direct_patterns(party))
        return [(key, int(last)) for key, last in rows]

    async def saw(self, party: str, ts: int) -> None:
        await self._on_writer(_SAW, (party, ts))

    async def last_seen(self, party: str) -> int | None:
        rows = await self._on_writer(_LAST_SEEN, (party,))
        return int(rows[0][0]) if rows else None

    # The message lifecycle (chat/store/base.py): on the writer's connection, so a change is
    # committed (and a delete's WAL emptied) before the call returns.

    async def find(self, conversation: str, message_id: int) -> StoredMessage | None:
        return await self._run(partial(lifecycle.find, conversation=conversation,
                                       message_id=message_id))

    async def edit(self, conversation: str, message_id: int, text: str,
                   ts: int) -> StoredMessage | None:
        return await self._run(partial(lifecycle.change, statement=_EDIT,
                                       conversation=conversation, message_id=message_id,
                                       text=text, ts=ts, checkpoint=False))

    async def delete(self, conversation: str, message_id: int,
                     ts: int) -> StoredMessage | None:
        return await self._run(partial(lifecycle.change, statement=_DELETE,
                                       conversation=conversation, message_id=message_id,
                                       text="", ts=ts, checkpoint=not self._in_memory))

    async def react(self, conversation: str, message_id: int, emoji: str, party: str,
                    name: str, add: bool, limit: int) -> StoredMessage | None:
        result = await self._run(partial(lifecycle.react, conversation=conversation,
                                         message_id=message_id, emoji=emoji, party=party,
                                         name=name, add=add, limit=limit))
        assert not isinstance(result, TooManyReactions)  # raised by the await (settle)
        return result

    async def changes(self, conversation: str, after_change: int,
                      limit: int) -> list[StoredMessage]:
        return await self._run(partial(lifecycle.changes, conversation=conversation,
                                       after_change=after_change, limit=limit))

    async def last_change(self, conversation: str) -> int:
        return await self._run(partial(lifecycle.last_change, conversation=conversation))

    async def _run(self, run: Callable[[sqlite3.Connection], T]) -> T:
        if not self._open:
            raise StoreError("the history store is not open")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._writer.submit(Read(asyncio.get_running_loop(), future, run))
        return await future

    async def _on_writer(self, sql: str, params: tuple[str | int, ...]) -> list[Any]:
        if not self._open:
            raise StoreError("the history store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()

        def run(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(sql, params).fetchall()

        self._writer.submit(Read(loop, future, run))
        return await future

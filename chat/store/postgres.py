"""History in PostgreSQL: a writer task commits appends in groups; reads share a pool."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Collection, Sequence

import psycopg
import psycopg_pool

from chat.record import StoredMessage
from chat.search.query import Term
from chat.store.base import StoreError
from chat.store.postgres_batch import Outcome, Raced, store_batch
from chat.store.postgres_changes import Lifecycle
from chat.store.postgres_marks import Marks
from chat.store.postgres_notify import CommitListener, OnCommit, channel_for
from chat.store.postgres_options import PostgresOptions
from chat.store.postgres_retention import Connection, Retention
from chat.store.postgres_schema import (
    connect,
    connection_options,
    message_from_row,
    migrate,
    one_line,
)
from chat.store.search import POSTGRES_SEARCH, Filters, Found, Scope, page, postgres_params
from chat.store.sql import AFTER, BEFORE, LATEST, UNREAD, by_ids, postgres
from chat.store.sqlite_requests import WriterStats

log = logging.getLogger("chat.store")

# A pooled connection given back less than this long ago (s) is handed out again without a
# check: the check is a round trip, as much as a whole batch of appends costs otherwise, and a
# connection in use a moment ago is alive unless the server died since (then the statement
# fails and the sender gets store_failed, as if it had died during the statement).
CHECK_AFTER_IDLE_S = 1.0
_returned_at: dict[int, float] = {}  # id(connection): when it went back to a pool


async def _mark_used(conn: Connection) -> None:
    """The pool's `reset` callback: remember when the connection came back."""
    _returned_at[id(conn)] = time.monotonic()


async def _check_if_idle(conn: Connection) -> None:
    """The pool's `check` callback: psycopg_pool's check, for a connection idle a while."""
    if time.monotonic() - _returned_at.pop(id(conn), 0.0) >= CHECK_AFTER_IDLE_S:
        await psycopg_pool.AsyncConnectionPool.check_connection(conn)

# Most appends in one transaction: one commit (one WAL flush) covers them all, sent in one
# statement (postgres_batch.py); as SQLite's MAX_BATCH, it bounds how long the first of a
# group waits.
MAX_BATCH = 512
# Connections the pool keeps open while idle (fewer if --db-pool-size is smaller): the
# writer's and one for reads, so neither waits for a connect after a quiet spell.
POOL_MIN_SIZE = 2
# Retention runs this often on every node (each batch is a short transaction of its own).
PRUNE_INTERVAL_S = 60.0

_LATEST, _BEFORE, _AFTER = postgres(LATEST), postgres(BEFORE), postgres(AFTER)
_UNREAD = postgres(UNREAD)


@dataclasses.dataclass(slots=True)
class _Append:
    message: StoredMessage
    future: asyncio.Future[tuple[StoredMessage, bool]]


class PostgresStore(Marks, Lifecycle):
    """A HistoryStore in a PostgreSQL database that any number of nodes share."""

    def __init__(self, url: str, per_conversation: int = 10_000, days: float = 0, *,
                 room_days: float = 0, options: PostgresOptions | None = None) -> None:
        if per_conversation < 1 or days < 0 or room_days < 0:
            raise ValueError(f"per_conversation={per_conversation} must be 1 or more, "
                             f"days={days} and room_days={room_days} 0 or more")
        self._url = url
        self._options = options or PostgresOptions()
        self._retention = Retention(per_conversation, days, room_days)
        self._pool: psycopg_pool.AsyncConnectionPool[Connection] | None = None
        self._queue: asyncio.Queue[_Append | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._open = False  # taking appends and reads (the pool outlives it by what is queued)
        self._channel = ""  # where commits are announced (postgres_notify.py): set by start()
        self._listener: CommitListener | None = None
        self.stats = WriterStats()

    async def start(self) -> None:
        """Connect, bring the schema up to date, open the pool; StoreError if any fails."""
        settings = self._options
        conn = await connect(self._url, settings)
        try:
            await migrate(conn)
            row = await (await conn.execute("SELECT current_schema()")).fetchone()
            self._channel = channel_for(str(row[0]) if row else "public")
        except psycopg.Error as exc:
            raise StoreError(one_line(exc)) from None
        finally:
            await conn.close()
        options = connection_options(self._url, settings)
        pool: psycopg_pool.AsyncConnectionPool[Connection] = psycopg_pool.AsyncConnectionPool(
            str(options.pop("conninfo")), kwargs=options,
            min_size=min(POOL_MIN_SIZE, settings.pool_size), max_size=settings.pool_size,
            open=False, timeout=settings.pool_timeout_s,
            # A connection that died while idle (PostgreSQL restarted) is replaced, not used.
            check=_check_if_idle, reset=_mark_used)
        try:
            await pool.open(wait=True, timeout=settings.connect_timeout_s)
        except psycopg_pool.PoolTimeout:
            await pool.close()
            raise StoreError(f"no connection within {settings.connect_timeout_s} s "
                             "(--db-connect-timeout)") from None
        self._pool = pool
        # The first retention pass before the first append (as SQLite's writer): what a node
        # stores right after start is never numbered against a retirement still pending.
        with contextlib.suppress(StoreError):
            await self.prune()
        self._tasks = [asyncio.create_task(self._write_loop()),
                       asyncio.create_task(self._prune_loop(first_in=PRUNE_INTERVAL_S))]
        self._open = True

    @property
    def pool(self) -> psycopg_pool.AsyncConnectionPool[Connection] | None:
        """The connection pool, while open (chat/accounts/ shares it)."""
        return self._pool

    async def watch(self, on_commit: OnCommit, on_resumed: Callable[[], None]) -> None:
        """Hear of every commit, this node's and the others': `on_commit(conversation, first
        id, last id)` per conversation of each; `on_resumed()` once listening again after the
        connection was lost (what was committed meanwhile went unheard)."""
        listener = CommitListener(self._url, self._channel, on_commit, on_resumed,
                                  self._options)
        await listener.start()
        self._listener = listener

    async def close(self) -> None:
        """Store what is queued, then close the pool."""
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        if not self._open:
            return
        self._open = False  # refuse new work; what is already queued still completes
        writer, pruner = self._tasks
        self._queue.put_nowait(None)
        pruner.cancel()
        await asyncio.gather(writer, pruner, return_exceptions=True)
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

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
        future: asyncio.Future[tuple[StoredMessage, bool]] = (
            asyncio.get_running_loop().create_future())
        message = StoredMessage(conversation, 0, username, avatar, text, ts, cid, to, guest,
                                reply_to, bot=bot, author=author)
        self._queue.put_nowait(_Append(message, future))
        # Cancelling this await does not withdraw the message: it is stored all the same.
        return await future

    async def prune(self) -> int:
        deleted = 0
        more = True
        try:
            async with self._connection() as conn:
                await self._retention.begin(conn)
            while more:
                async with self._connection() as conn:
                    more, count = await self._retention.batch(conn)
                deleted += count
                self.stats.pruned += count
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StoreError(one_line(exc)) from None
        self._retention.complete()
        return deleted

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
        return await self._read(postgres(by_ids(len(wanted))),
                                (conversation, *wanted), len(wanted), newest_first=False)

    async def search(self, terms: Sequence[Term], scope: Scope, filters: Filters, *,
                     offset: int, limit: int) -> Found:
        """chat/store/search.py's MessageSearch: the GIN index, ranked by ts_rank."""
        if not terms or limit <= 0:
            return Found()
        if not self._open:
            raise StoreError("the history store is not open")
        params = postgres_params(terms, scope, filters, offset, limit)
        try:
            async with self._connection() as conn:
                # Never a prepared statement: its generic plan, made without the query's words,
                # reads every hit of a common word (seconds); planned each time, PostgreSQL
                # walks the newest messages for a common word and the GIN index for a rare one.
                rows = await (await conn.execute(POSTGRES_SEARCH, params,
                                                 prepare=False)).fetchall()
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StoreError(one_line(exc)) from None
        return page([message_from_row(row) for row in rows], limit)

    async def _read(self, sql: str, keys: tuple[str | int, ...], limit: int, *,
                    newest_first: bool) -> list[StoredMessage]:
        if not self._open:
            raise StoreError("the history store is not open")
        if limit <= 0:  # PostgreSQL refuses a negative LIMIT
            return []
        try:
            async with self._connection() as conn:
                rows = await (await conn.execute(sql, (*keys, limit))).fetchall()
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StoreError(one_line(exc)) from None
        if newest_first:
            rows.reverse()
        return [message_from_row(row) for row in rows]

    def _connection(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        if self._pool is None:
            raise StoreError("the history store is not open")
        return self._pool.connection()

    async def _prune_loop(self, first_in: float) -> None:
        """Retention in the background, every PRUNE_INTERVAL_S."""
        await asyncio.sleep(first_in)
        while True:
            try:
                await self.prune()
            except StoreError as exc:
                log.warning("retention failed (retried in %.0f s): %s", PRUNE_INTERVAL_S, exc)
            await asyncio.sleep(PRUNE_INTERVAL_S)

    async def _write_loop(self) -> None:
        """Take what is queued (up to MAX_BATCH), commit it, answer in order; until None."""
        while True:
            batch = [await self._queue.get()]
            while batch[-1] is not None and len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            appends = [request for request in batch if request is not None]
            if appends:
                try:
                    outcomes = await self._commit([request.message for request in appends])
                except Exception as exc:  # a bug: fail the callers rather than leave them waiting
                    log.exception("a batch of %d appends failed", len(appends))
                    outcomes = [StoreError(f"the history writer failed: {one_line(exc)}")] * len(
                        appends)
                for request, outcome in zip(appends, outcomes, strict=True):
                    if request.future.done():
                        continue
                    if isinstance(outcome, Exception):
                        request.future.set_exception(outcome)
                    else:
                        request.future.set_result(outcome)
            if batch[-1] is None:
                while not self._queue.empty():  # appended while closing: refused
                    if (late := self._queue.get_nowait()) is not None:
                        late.future.set_exception(StoreError("the history store is closed"))
                return

    async def _commit(self, batch: list[StoredMessage], *, retry: bool = True,
                      ) -> list[Outcome]:
        """The batch in one transaction. After a race or an error one message could cause,
        each message in a transaction of its own, so only the message at fault fails; a lost
        race or deadlock is retried once (the other node's commit is then visible)."""
        try:
            outcomes = await self._transaction(batch)
        except (Raced, psycopg.DataError, psycopg.IntegrityError,
                psycopg.errors.DeadlockDetected) as exc:
            if len(batch) > 1:
                return [outcome for message in batch for outcome in await self._commit([message])]
            if retry and isinstance(exc, Raced | psycopg.errors.DeadlockDetected):
                return await self._commit(batch, retry=False)
            return [StoreError(one_line(exc))]
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            log.warning("a batch of %d appends failed: %s", len(batch), one_line(exc))
            self.stats.failed_batches += 1
            return [StoreError(one_line(exc))] * len(batch)
        self.stats.batches += 1
        self.stats.stored += sum(1 for o in outcomes if isinstance(o, tuple) and o[1])
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        return outcomes

    async def _transaction(self, messages: list[StoredMessage]) -> list[Outcome]:
        """Store the messages in one transaction; raises what makes it roll back."""
        async with self._connection() as conn:
            return await store_batch(conn, messages, self._channel)



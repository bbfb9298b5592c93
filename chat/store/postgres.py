"""History in PostgreSQL: a writer task commits appends in groups; reads share a pool."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any

import psycopg
import psycopg_pool
from psycopg.rows import TupleRow

from chat.record import StoredMessage
from chat.store.base import IDEMPOTENCY_WINDOW_MS, CidReused, StoreError
from chat.store.postgres_retention import Connection, Retention
from chat.store.postgres_schema import (
    CONNECT_TIMEOUT_S,
    connect,
    connection_options,
    message_from_row,
    migrate,
    one_line,
)
from chat.store.sql import AFTER, BEFORE, FIND_MESSAGE, LATEST, postgres
from chat.store.sqlite_requests import WriterStats

log = logging.getLogger("chat.store")

# Most appends in one transaction: one commit (one WAL flush) covers them all, sent in one
# pipeline; as SQLite's MAX_BATCH, it bounds how long the first of a group waits.
MAX_BATCH = 512
# Connections per store: the writer's, retention's, and the rest for concurrent reads. Each
# node holds this many, so PostgreSQL's max_connections (100 by default) bounds the nodes.
POOL_SIZE = 6
# How long an append or a read waits for a connection (while PostgreSQL is unreachable, say)
# before it fails: as SQLite's lock timeout, better reported to the sender than stored late.
POOL_TIMEOUT_S = 2.0
# Retention runs this often on every node (each batch is a short transaction of its own).
PRUNE_INTERVAL_S = 60.0

_LATEST, _BEFORE, _AFTER = postgres(LATEST), postgres(BEFORE), postgres(AFTER)
_FIND_MESSAGE = postgres(FIND_MESSAGE)
# The batch's cids already in the table, in one query (SQLite asks one at a time: no round trip).
_FIND_CIDS = ("SELECT user_key, cid, conversation, id, ts FROM cids"
              " WHERE (user_key, cid) IN (SELECT * FROM unnest(%s::text[], %s::text[]))")
# Taken shared before creating a counter: see postgres_retention.LOCK_FLOOR.
_READ_FLOOR = "SELECT last_id FROM retired FOR SHARE"
# Locks the batch's counter rows, in key order so two nodes' batches never deadlock, creating
# the missing ones at the floor (read after _READ_FLOOR waited for any retirement to commit).
# Each row stays locked until the batch commits: an append elsewhere to the same conversation
# waits, so ids are handed out in commit order, and a batch that rolls back gives its ids back
# (no gap, and none used twice). A batch of repeats only may create an empty counter: room
# retention deletes it later, and the floor it holds is the floor.
_LOCK_COUNTERS = ("INSERT INTO conversations (key, last_id, last_ts)"
                  " SELECT k, (SELECT last_id FROM retired), 0 FROM unnest(%s::text[]) AS k"
                  " ORDER BY k"
                  " ON CONFLICT (key) DO UPDATE SET last_id = conversations.last_id")
# One append in one statement: the next id, the message, and the claim on its cid. The claim
# fails (claimed false) if another node stored the same cid since the batch looked: the batch
# then rolls back and its appends are retried one by one, which finds the other node's message.
_APPEND = """
WITH counter AS (
    UPDATE conversations SET last_id = last_id + 1, last_ts = greatest(last_ts, %(ts)s)
    WHERE key = %(conversation)s RETURNING last_id),
message AS (
    INSERT INTO messages (conversation, id, username, avatar, text, ts, cid, recipient)
    SELECT %(conversation)s, last_id, %(username)s, %(avatar)s, %(text)s, %(ts)s, %(cid)s,
           %(to)s FROM counter
    RETURNING id),
claim AS (
    INSERT INTO cids AS c (user_key, cid, conversation, id, ts)
    SELECT %(user_key)s, %(cid)s, %(conversation)s, id, %(ts)s FROM message
    WHERE %(cid)s::text IS NOT NULL
    ON CONFLICT (user_key, cid) DO UPDATE SET conversation = excluded.conversation,
        id = excluded.id, ts = excluded.ts
    WHERE c.ts <= excluded.ts - %(window)s
    RETURNING 1)
SELECT (SELECT id FROM message), %(cid)s::text IS NULL OR EXISTS (SELECT 1 FROM claim)
"""

Outcome = tuple[StoredMessage, bool] | Exception
CidRow = tuple[str, int, int]  # conversation, id, ts


class _Raced(Exception):
    """Another node stored a cid of this batch since the batch looked it up."""


@dataclasses.dataclass(slots=True)
class _Append:
    message: StoredMessage
    future: asyncio.Future[tuple[StoredMessage, bool]]


class PostgresStore:
    """A HistoryStore in a PostgreSQL database that any number of nodes share."""

    publishes = False

    def __init__(self, url: str, per_conversation: int = 10_000, days: float = 0, *,
                 room_days: float = 0, pool_size: int = POOL_SIZE) -> None:
        if per_conversation < 1 or days < 0 or room_days < 0:
            raise ValueError(f"per_conversation={per_conversation} must be 1 or more, "
                             f"days={days} and room_days={room_days} 0 or more")
        self._url = url
        self._pool_size = pool_size
        self._retention = Retention(per_conversation, days, room_days)
        self._pool: psycopg_pool.AsyncConnectionPool[Connection] | None = None
        self._queue: asyncio.Queue[_Append | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._open = False  # taking appends and reads (the pool outlives it by what is queued)
        self.stats = WriterStats()

    async def start(self) -> None:
        """Connect, bring the schema up to date, open the pool; StoreError if any fails."""
        conn = await connect(self._url)
        try:
            await migrate(conn)
        except psycopg.Error as exc:
            raise StoreError(one_line(exc)) from None
        finally:
            await conn.close()
        options = connection_options(self._url)
        pool: psycopg_pool.AsyncConnectionPool[Connection] = psycopg_pool.AsyncConnectionPool(
            str(options.pop("conninfo")), kwargs=options, min_size=2, max_size=self._pool_size,
            open=False, timeout=POOL_TIMEOUT_S,
            # A connection that died while idle (PostgreSQL restarted) is replaced, not used.
            check=psycopg_pool.AsyncConnectionPool.check_connection)
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except psycopg_pool.PoolTimeout:
            await pool.close()
            raise StoreError(f"no connection within {CONNECT_TIMEOUT_S} s") from None
        self._pool = pool
        # The first retention pass before the first append (as SQLite's writer): what a node
        # stores right after start is never numbered against a retirement still pending.
        with contextlib.suppress(StoreError):
            await self.prune()
        self._tasks = [asyncio.create_task(self._write_loop()),
                       asyncio.create_task(self._prune_loop(first_in=PRUNE_INTERVAL_S))]
        self._open = True

    async def close(self) -> None:
        """Store what is queued, then close the pool."""
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
    ) -> tuple[StoredMessage, bool]:
        if not self._open:
            raise StoreError("the history store is not open")
        future: asyncio.Future[tuple[StoredMessage, bool]] = (
            asyncio.get_running_loop().create_future())
        message = StoredMessage(conversation, 0, username, avatar, text, ts, cid, to)
        self._queue.put_nowait(_Append(message, future))
        # Cancelling this await does not withdraw the message: it is stored all the same.
        return await future

    async def prune(self) -> int:
        deleted = 0
        more = True
        while more:
            try:
                async with self._connection() as conn:
                    more, count = await self._retention.batch(conn)
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                raise StoreError(one_line(exc)) from None
            deleted += count
            self.stats.pruned += count
        return deleted

    async def latest(self, conversation: str, limit: int) -> list[StoredMessage]:
        return await self._read(_LATEST, (conversation,), limit, newest_first=True)

    async def before(self, conversation: str, before_id: int, limit: int) -> list[StoredMessage]:
        return await self._read(_BEFORE, (conversation, before_id), limit, newest_first=True)

    async def after(self, conversation: str, after_id: int, limit: int) -> list[StoredMessage]:
        return await self._read(_AFTER, (conversation, after_id), limit, newest_first=False)

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
        except (_Raced, psycopg.DataError, psycopg.IntegrityError,
                psycopg.errors.DeadlockDetected) as exc:
            if len(batch) > 1:
                return [outcome for message in batch for outcome in await self._commit([message])]
            if retry and isinstance(exc, _Raced | psycopg.errors.DeadlockDetected):
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
        # Pipelined: BEGIN, the cid look-up and the counter locks go in one round trip, the
        # appends in a second, COMMIT in a third (a repeat whose original must be read, one more).
        async with self._connection() as conn, conn.pipeline(), conn.transaction():
            cids = await _find_cids(conn, messages)
            await conn.execute(_READ_FLOOR)
            await conn.execute(_LOCK_COUNTERS, (sorted({m.conversation for m in messages}),))
            known = await _known_cids(cids)
            new: list[StoredMessage] = []
            plan: list[int | CidRow] = []  # per message: its index in `new`, or the cid's row
            claimed: dict[tuple[str, str], int] = {}  # cids this batch stores: index in `new`
            for message in messages:
                key = (message.username.casefold(), message.cid) if message.cid else None
                if key in claimed:
                    plan.append(claimed[key])
                    continue
                row = known.get(key) if key else None
                if row is not None and message.ts - row[2] < IDEMPOTENCY_WINDOW_MS:
                    plan.append(row)
                    continue
                if key is not None:
                    claimed[key] = len(new)
                plan.append(len(new))
                new.append(message)
            stored = await _insert(conn, new)
            outcomes: list[Outcome] = []
            for message, step in zip(messages, plan, strict=True):
                if isinstance(step, int):
                    original = stored[step]
                    outcome: Outcome = ((original, True) if message is new[step]
                                        else _repeat(message, original))
                else:
                    outcome = await _repeated(conn, message, step)
                outcomes.append(outcome)
            return outcomes


async def _find_cids(conn: Connection, messages: list[StoredMessage],
                     ) -> psycopg.AsyncCursor[TupleRow] | None:
    """Send the look-up of the cids of `messages` (None if they have none)."""
    keys = [(m.username.casefold(), m.cid) for m in messages if m.cid is not None]
    if not keys:
        return None
    return await conn.execute(_FIND_CIDS, ([u for u, _ in keys], [c for _, c in keys]))


async def _known_cids(cursor: psycopg.AsyncCursor[TupleRow] | None,
                      ) -> dict[tuple[str, str], CidRow]:
    """The looked-up cids that the table holds, and where their messages are."""
    rows = await cursor.fetchall() if cursor is not None else []
    return {(user_key, cid): (conversation, id_, ts)
            for user_key, cid, conversation, id_, ts in rows}


async def _insert(conn: Connection, messages: list[StoredMessage]) -> list[StoredMessage]:
    """Append `messages` in order, pipelined; them with their ids. _Raced if a cid was taken."""
    if not messages:
        return []
    params: list[dict[str, Any]] = [
        {"conversation": m.conversation, "username": m.username, "avatar": m.avatar,
         "text": m.text, "ts": m.ts, "cid": m.cid, "to": m.to,
         "user_key": m.username.casefold(), "window": IDEMPOTENCY_WINDOW_MS}
        for m in messages]
    stored: list[StoredMessage] = []
    async with conn.cursor() as cur:
        await cur.executemany(_APPEND, params, returning=True)
        for message in messages:
            row = await cur.fetchone()
            assert row is not None
            message_id, claimed = row
            if not claimed:
                raise _Raced(message.cid)
            stored.append(dataclasses.replace(message, id=message_id))
            cur.nextset()
    return stored


def _repeat(message: StoredMessage, original: StoredMessage) -> Outcome:
    """A repeat, within one batch, of a cid the batch stores: the original, or CidReused."""
    if original.conversation != message.conversation:
        assert message.cid is not None
        return CidReused(message.cid)
    return original, False


async def _repeated(conn: Connection, message: StoredMessage, row: CidRow) -> Outcome:
    """The answer to a cid seen in the window: the original, or CidReused for another
    conversation; if retention deleted the original, its id and ts with the repeat's text."""
    conversation, message_id, ts = row
    if conversation != message.conversation:
        assert message.cid is not None
        return CidReused(message.cid)
    found = await (await conn.execute(_FIND_MESSAGE, (conversation, message_id))).fetchone()
    if found is not None:
        return message_from_row(found), False
    return dataclasses.replace(message, id=message_id, ts=ts), False

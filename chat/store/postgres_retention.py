"""PostgreSQL retention: deleting, a small batch at a time, what the limits no longer keep."""

from __future__ import annotations

import time

import psycopg
from psycopg.rows import TupleRow

from chat.store.base import DAY_MS, IDEMPOTENCY_WINDOW_MS, PERMANENT_CONVERSATION
from chat.store.sql import ABANDONED, EXPIRE_CIDS, FORGET_COUNTER, LAST_ID, postgres

# Rows one retention transaction deletes: appends to the conversations it touches wait no longer.
PRUNE_BATCH_ROWS = 500
# A message's ts is its node's clock when it arrived, and it commits a little later: a run looks
# this far before the previous run began, so clock skew between nodes (NTP keeps it within
# milliseconds) and a slow commit do not hide a conversation from it (ms).
CLOCK_MARGIN_MS = 5 * 60 * 1000

_EXPIRE_CIDS = postgres(EXPIRE_CIDS)
_ABANDONED = postgres(ABANDONED)
_FORGET_COUNTER = postgres(FORGET_COUNTER)
_LAST_ID = postgres(LAST_ID)
# Side by side with sqlite_retention: PostgreSQL has no rowid, so a batch is picked by the
# primary key (conversation, id); max() of two values is greatest().
_EXPIRE_OLD = ("DELETE FROM messages WHERE (conversation, id) IN"
               " (SELECT conversation, id FROM messages WHERE ts < %s LIMIT %s)")
_EXPIRE_OVER_CAP = ("DELETE FROM messages WHERE (conversation, id) IN (SELECT conversation, id"
                    " FROM messages WHERE conversation = %s AND id <= %s LIMIT %s)")
_EMPTY_CONVERSATION = ("DELETE FROM messages WHERE (conversation, id) IN (SELECT conversation,"
                       " id FROM messages WHERE conversation = %s ORDER BY id LIMIT %s)")
_RAISE_FLOOR = "UPDATE retired SET last_id = greatest(last_id, %s)"
# Several nodes share the database, so no node knows which conversations its peers took past
# their cap (SQLite's writer remembers them): a run looks among the conversations that got a
# message since this node's last complete run (conversations_by_last_ts), or among all of
# them at its first run; a conversation none wrote to since was within its cap then.
_OVER_CAP = ("SELECT c.key FROM conversations c WHERE c.last_ts >= %(since)s"
             " AND c.last_id > %(cap)s AND EXISTS (SELECT 1 FROM messages m"
             " WHERE m.conversation = c.key AND m.id <= c.last_id - %(cap)s)")
# Held while conversations are retired: an append that creates a conversation takes it shared
# first, so it either commits before the retirement looks, or reads the raised floor after it.
LOCK_FLOOR = "SELECT last_id FROM retired FOR UPDATE"

Connection = psycopg.AsyncConnection[TupleRow]


class Retention:
    """Keeps the last `per_conversation` messages of each conversation, none older than `days`,
    and deletes a conversation whose newest message is older than `room_days` (or than `days`:
    then it is empty) with its counter; as SQLite's Retention, on any node."""

    def __init__(self, per_conversation: int, days: float, room_days: float = 0) -> None:
        self._cap = per_conversation
        self._max_age_ms = int(days * DAY_MS)  # 0: keep messages whatever their age
        ages = [int(d * DAY_MS) for d in (days, room_days) if d > 0]
        self._room_age_ms = min(ages) if ages else 0  # 0: keep conversations forever
        self._since_ms = 0  # last_ts from which a run looks for conversations over their cap
        self._run_from_ms = 0  # the next run's _since_ms, once this run completes
        self._over_cap: set[str] = set()  # this run's conversations that may be over their cap

    async def begin(self, conn: Connection) -> None:
        """Start a run: find the conversations written to since the last complete run that
        may hold more than the cap."""
        self._run_from_ms = time.time_ns() // 1_000_000 - CLOCK_MARGIN_MS
        rows = await (await conn.execute(_OVER_CAP, {"since": self._since_ms,
                                                     "cap": self._cap})).fetchall()
        self._over_cap = {key for (key,) in rows}

    def complete(self) -> None:
        """The run deleted all it had to: the next looks only at what was written since."""
        self._since_ms = self._run_from_ms

    async def batch(self, conn: Connection) -> tuple[bool, int]:
        """Delete up to PRUNE_BATCH_ROWS rows in one transaction: (did any, messages deleted)."""
        now_ms = time.time_ns() // 1_000_000
        retired = 0
        async with conn.transaction():
            cids = (await conn.execute(_EXPIRE_CIDS, (now_ms - IDEMPOTENCY_WINDOW_MS,
                                                      PRUNE_BATCH_ROWS))).rowcount
            deleted = 0
            if not cids and self._max_age_ms:
                old = await conn.execute(_EXPIRE_OLD, (now_ms - self._max_age_ms,
                                                       PRUNE_BATCH_ROWS))
                deleted = old.rowcount
            if not cids and not deleted:
                deleted = await self._trim(conn)
            if not cids and not deleted and self._room_age_ms:
                deleted, retired = await self._retire(conn, now_ms - self._room_age_ms)
        return cids > 0 or deleted > 0 or retired > 0, deleted

    async def _trim(self, conn: Connection) -> int:
        """Delete a batch of the first of this run's conversations over its cap; how many."""
        for key in list(self._over_cap):
            row = await (await conn.execute(_LAST_ID, (key,))).fetchone()
            limit = (row[0] if row else 0) - self._cap
            deleted = (await conn.execute(_EXPIRE_OVER_CAP, (key, limit,
                                                             PRUNE_BATCH_ROWS))).rowcount
            if deleted:
                return int(deleted)
            self._over_cap.discard(key)  # within its cap (a batch that rolls back finds it so)
        return 0

    async def _retire(self, conn: Connection, cutoff_ms: int) -> tuple[int, int]:
        """Delete abandoned conversations, messages first, within one batch's budget of rows:
        (messages deleted, conversations deleted)."""
        await conn.execute(LOCK_FLOOR)
        budget = PRUNE_BATCH_ROWS
        deleted = retired = 0
        floor = 0
        rows = await (await conn.execute(_ABANDONED, (cutoff_ms, PERMANENT_CONVERSATION,
                                                      budget))).fetchall()
        for key, last_id in rows:
            gone = (await conn.execute(_EMPTY_CONVERSATION, (key, budget))).rowcount
            deleted += gone
            budget -= gone
            if budget <= 0:
                break  # its last messages (and its counter) go in the next batch
            await conn.execute(_FORGET_COUNTER, (key,))
            budget -= 1
            floor = max(floor, last_id)
            retired += 1
            if budget <= 0:
                break
        if retired:
            await conn.execute(_RAISE_FLOOR, (floor,))
        return deleted, retired

"""SQLite retention: deleting, a small batch at a time, what the limits no longer keep."""

from __future__ import annotations

import sqlite3
import time

from chat.store.base import DAY_MS, IDEMPOTENCY_WINDOW_MS, PERMANENT_CONVERSATION
from chat.store.sql import ABANDONED as _ABANDONED
from chat.store.sql import EXPIRE_CIDS as _EXPIRE_CIDS
from chat.store.sql import FORGET_COUNTER as _FORGET_COUNTER
from chat.store.sql import LAST_ID as _LAST_ID

# Rows one retention transaction deletes (~2 ms): an append queued behind it waits no longer.
PRUNE_BATCH_ROWS = 500

_EXPIRE_OLD = ("DELETE FROM messages WHERE rowid IN"
               " (SELECT rowid FROM messages WHERE ts < ? LIMIT ?)")
_EXPIRE_OVER_CAP = ("DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages"
                    " WHERE conversation = ? AND id <= ? LIMIT ?)")
_EMPTY_CONVERSATION = ("DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages"
                       " WHERE conversation = ? ORDER BY id LIMIT ?)")
_RAISE_FLOOR = "UPDATE retired SET last_id = max(last_id, ?)"


class Retention:
    """Keeps the last `per_conversation` messages of each conversation, none older than `days`,
    and deletes a conversation whose newest message is older than `room_days` (or than `days`:
    then it is empty) with its counter."""

    # Used on the writer's thread only, between append batches, on the writer's connection.

    def __init__(self, per_conversation: int, days: float, room_days: float = 0) -> None:
        self._cap = per_conversation
        self._max_age_ms = int(days * DAY_MS)  # 0: keep messages whatever their age
        # A conversation goes once `days` has emptied it or `room_days` finds it abandoned.
        ages = [int(d * DAY_MS) for d in (days, room_days) if d > 0]
        self._room_age_ms = min(ages) if ages else 0  # 0: keep conversations forever
        self._over_cap: set[str] = set()  # conversations that may hold more than the cap
        self.retired: set[str] = set()  # conversations deleted by the last batch

    def load(self, conn: sqlite3.Connection) -> None:
        """Find the conversations over their cap, on opening the file."""
        rows = conn.execute("SELECT key FROM conversations WHERE last_id > ?", (self._cap,))
        self._over_cap.update(key for (key,) in rows)

    def note(self, last_ids: dict[str, int]) -> None:
        """Remember the conversations a committed batch took past their cap."""
        self._over_cap.update(key for key, last_id in last_ids.items() if last_id > self._cap)

    def batch(self, conn: sqlite3.Connection) -> tuple[bool, int]:
        """Delete up to PRUNE_BATCH_ROWS rows in one transaction: (did any, messages deleted)."""
        now_ms = time.time_ns() // 1_000_000
        trimmed: str | None = None  # a conversation this batch brings within its cap
        self.retired = set()
        conn.execute("BEGIN IMMEDIATE")
        try:
            cids = conn.execute(_EXPIRE_CIDS, (now_ms - IDEMPOTENCY_WINDOW_MS,
                                               PRUNE_BATCH_ROWS)).rowcount
            deleted = 0
            if not cids and self._max_age_ms:
                old = conn.execute(_EXPIRE_OLD, (now_ms - self._max_age_ms, PRUNE_BATCH_ROWS))
                deleted = old.rowcount
            if not cids and not deleted:
                deleted, trimmed = self._trim(conn)
            if not cids and not deleted and self._room_age_ms:
                deleted = self._retire(conn, now_ms - self._room_age_ms)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if trimmed is not None:
            self._over_cap.discard(trimmed)
        return cids > 0 or deleted > 0 or bool(self.retired), deleted

    def _trim(self, conn: sqlite3.Connection) -> tuple[int, str | None]:
        """Trim the first conversation over its cap: (deleted, its key if now within the cap)."""
        for key in list(self._over_cap):
            row = conn.execute(_LAST_ID, (key,)).fetchone()
            limit = (row[0] if row else 0) - self._cap
            deleted = conn.execute(_EXPIRE_OVER_CAP, (key, limit, PRUNE_BATCH_ROWS)).rowcount
            if deleted:
                return deleted, key if deleted < PRUNE_BATCH_ROWS else None
            self._over_cap.discard(key)  # nothing to delete: no need to wait for the commit
        return 0, None

    def _retire(self, conn: sqlite3.Connection, cutoff_ms: int) -> int:
        """Delete abandoned conversations, messages first, within one batch's budget of rows;
        the messages deleted (the conversations gone are in `retired`)."""
        budget = PRUNE_BATCH_ROWS
        deleted = 0
        floor = 0
        rows = conn.execute(_ABANDONED, (cutoff_ms, PERMANENT_CONVERSATION, budget)).fetchall()
        for key, last_id in rows:
            gone = conn.execute(_EMPTY_CONVERSATION, (key, budget)).rowcount
            deleted += gone
            budget -= gone
            if budget <= 0:
                break  # its last messages (and its counter) go in the next batch
            conn.execute(_FORGET_COUNTER, (key,))
            budget -= 1
            floor = max(floor, last_id)
            self.retired.add(key)
            if budget <= 0:
                break
        if self.retired:
            conn.execute(_RAISE_FLOOR, (floor,))
        return deleted

"""SQLite retention: deleting, a small batch at a time, what the limits no longer keep."""

from __future__ import annotations

import sqlite3
import time

from chat.store.base import DAY_MS, IDEMPOTENCY_WINDOW_MS

# Rows one retention transaction deletes (~2 ms): an append queued behind it waits no longer.
PRUNE_BATCH_ROWS = 500

_EXPIRE_CIDS = "DELETE FROM cids WHERE rowid IN (SELECT rowid FROM cids WHERE ts <= ? LIMIT ?)"
_EXPIRE_OLD = ("DELETE FROM messages WHERE rowid IN"
               " (SELECT rowid FROM messages WHERE ts < ? LIMIT ?)")
_EXPIRE_OVER_CAP = ("DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages"
                    " WHERE conversation = ? AND id <= ? LIMIT ?)")
_LAST_ID = "SELECT last_id FROM conversations WHERE key = ?"


class Retention:
    """Keeps the last `per_conversation` messages of each conversation, none older than `days`."""

    # Used on the writer's thread only, between append batches, on the writer's connection.

    def __init__(self, per_conversation: int, days: float) -> None:
        self._cap = per_conversation
        self._max_age_ms = int(days * DAY_MS)  # 0: keep messages whatever their age
        self._over_cap: set[str] = set()  # conversations that may hold more than the cap

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
        conn.execute("BEGIN IMMEDIATE")
        try:
            cids = conn.execute(_EXPIRE_CIDS, (now_ms - IDEMPOTENCY_WINDOW_MS, PRUNE_BATCH_ROWS))
            deleted = 0
            if not cids.rowcount and self._max_age_ms:
                old = conn.execute(_EXPIRE_OLD, (now_ms - self._max_age_ms, PRUNE_BATCH_ROWS))
                deleted = old.rowcount
            if not cids.rowcount and not deleted:
                deleted, trimmed = self._trim(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if trimmed is not None:
            self._over_cap.discard(trimmed)
        return cids.rowcount > 0 or deleted > 0, deleted

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

"""The SQLite writer thread: appends committed in groups, retention deleted in small batches
(and, for an in-memory database, its reads)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import logging
import queue
import sqlite3
import threading
import time
from typing import Any

from chat.record import StoredMessage
from chat.store.base import IDEMPOTENCY_WINDOW_MS, CidReused, StoreError
from chat.store.sql import FIND_CID as _FIND_CID
from chat.store.sql import FIND_MESSAGE as _FIND_MESSAGE
from chat.store.sqlite_changes import secure_search_index
from chat.store.sqlite_requests import Append, Prune, Read, WriterStats, hand_back
from chat.store.sqlite_retention import Retention
from chat.store.sqlite_schema import (
    MESSAGE_COLUMNS,
    Synchronous,
    connect,
    describe,
    message_from_row,
    migrate,
)

log = logging.getLogger("chat.store")

# Most appends in one transaction. One fsync covers them all; at ~25 µs of writer time each
# (measured, with a cid) a full group takes ~13 ms, which bounds how long its first waits.
MAX_BATCH = 512
# Retention runs this often; in between, a conversation can pass its cap by this much traffic.
PRUNE_INTERVAL_S = 60.0

_INSERT_MESSAGE = (f"INSERT INTO messages ({MESSAGE_COLUMNS}, author)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_CID = ("INSERT OR REPLACE INTO cids (user_key, cid, conversation, id, ts)"
               " VALUES (?, ?, ?, ?, ?)")
_SAVE_COUNTER = ("INSERT INTO conversations (key, last_id, last_ts) VALUES (?, ?, ?)"
                 " ON CONFLICT (key) DO UPDATE SET last_id = excluded.last_id,"
                 " last_ts = max(last_ts, excluded.last_ts)")


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):  # the connection is dropped and reopened anyway
            conn.execute("ROLLBACK")


class Writer:
    """Owns the one read-write connection; every write to the file happens on its thread.

    `in_memory`: `path` is a memory_uri(). A second connection, open from start to stop, keeps
    the database alive while the read-write one is dropped and reopened after a failure.
    """

    def __init__(self, path: str, *, per_conversation: int, days: float, room_days: float,
                 synchronous: Synchronous, lock_timeout_s: float, in_memory: bool = False,
                 ) -> None:
        self._path = path
        self._in_memory = in_memory
        self._keeper: sqlite3.Connection | None = None
        self._retention = Retention(per_conversation, days, room_days)
        self._synchronous = synchronous
        self._lock_timeout_s = lock_timeout_s
        self.stats = WriterStats()
        self.ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.finished: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue: queue.SimpleQueue[Append | Prune | Read | None] = queue.SimpleQueue()
        self._conn: sqlite3.Connection | None = None
        self._last_ids: dict[str, int] = {}  # committed counters; forgotten when a batch fails
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, request: Append | Prune | Read) -> None:
        self._queue.put(request)

    def stop(self) -> None:
        """Finish what is queued, then close the connection and end the thread."""
        self._queue.put(None)

    def _run(self) -> None:
        try:
            if self._in_memory:
                self._keeper = connect(self._path, lock_timeout_s=self._lock_timeout_s,
                                       in_memory=True)
            self._retention.load(self._connection())
        except Exception as exc:
            self._drop_connection()
            self._drop_keeper()
            self.ready.set_exception(StoreError(describe(exc)))
            self.finished.set_result(None)
            return
        self.ready.set_result(None)
        error = StoreError("the history store is closed")
        try:
            self._serve()
        except Exception as exc:  # a bug: fail the callers rather than leave them waiting
            log.exception("the history writer stopped")
            error = StoreError(f"the history writer stopped: {describe(exc)}")
        finally:
            self._drop_connection()
            self._drop_keeper()  # frees an in-memory database
            while requests := self._take(0.0):
                waiting = [r for r in requests if r is not None]
                hand_back(waiting, [error] * len(waiting))
            self.finished.set_result(None)

    def _serve(self) -> None:
        next_prune = time.monotonic()  # a first pass right after start
        while True:
            requests = self._take(max(0.0, next_prune - time.monotonic()))
            appends = [r for r in requests if isinstance(r, Append)]
            prunes = [r for r in requests if isinstance(r, Prune)]
            reads = [r for r in requests if isinstance(r, Read)]
            if appends:
                self._commit(appends)
            if reads:
                hand_back(reads, [self._read(read) for read in reads])
            if prunes:
                hand_back(prunes, [self._prune_all()] * len(prunes))
                next_prune = time.monotonic() + PRUNE_INTERVAL_S
            elif time.monotonic() >= next_prune and not self._prune_step():
                next_prune = time.monotonic() + PRUNE_INTERVAL_S
            if requests and requests[-1] is None:
                return

    def _take(self, wait_s: float) -> list[Append | Prune | Read | None]:
        """Everything queued (up to MAX_BATCH), waiting up to `wait_s` for the first."""
        try:
            first = self._queue.get(timeout=wait_s) if wait_s > 0 else self._queue.get_nowait()
        except queue.Empty:
            return []
        requests = [first]
        while first is not None and len(requests) < MAX_BATCH:
            try:
                requests.append(self._queue.get_nowait())
            except queue.Empty:
                break
            if requests[-1] is None:
                break
        return requests

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = connect(self._path, lock_timeout_s=self._lock_timeout_s,
                           synchronous=self._synchronous, in_memory=self._in_memory)
            try:
                migrate(conn)
                secure_search_index(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _drop_connection(self) -> None:
        """Close the connection (after a failure: the next batch opens a fresh one)."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _drop_keeper(self) -> None:
        if self._keeper is not None:
            with contextlib.suppress(sqlite3.Error):
                self._keeper.close()
            self._keeper = None

    def _read(self, request: Read) -> Any:
        """Run a read on the read-write connection, outside any transaction."""
        try:
            return request.run(self._connection())
        except (sqlite3.Error, StoreError) as exc:
            return StoreError(describe(exc))

    def _commit(self, batch: list[Append]) -> None:
        """Write the batch in one transaction, commit, then answer every caller in order."""
        counters: dict[str, int] = {}  # the batch's new last ids, saved when it commits
        stamps: dict[str, int] = {}  # and the ts of each conversation's newest message
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                outcomes = [self._write(conn, request.message, counters, stamps)
                            for request in batch]
                conn.executemany(_SAVE_COUNTER, [(key, last_id, stamps[key])
                                                 for key, last_id in counters.items()])
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        except (sqlite3.Error, StoreError, ValueError, OverflowError) as exc:
            log.warning("a batch of %d appends failed: %s", len(batch), describe(exc))
            self.stats.failed_batches += 1
            self._last_ids.clear()
            self._drop_connection()
            error = StoreError(describe(exc))
            outcomes = [error] * len(batch)
        else:
            self._last_ids.update(counters)
            self._retention.note(counters)
            self.stats.batches += 1
            self.stats.stored += sum(1 for o in outcomes if isinstance(o, tuple) and o[1])
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        hand_back(batch, outcomes)

    def _write(self, conn: sqlite3.Connection, message: StoredMessage, counters: dict[str, int],
               stamps: dict[str, int]) -> tuple[StoredMessage, bool] | Exception:
        """Store one message inside the batch's transaction; a failure here fails it alone."""
        user_key = message.username.casefold()
        conn.execute("SAVEPOINT one")
        try:
            if message.cid is not None:
                row = conn.execute(_FIND_CID, (user_key, message.cid)).fetchone()
                if row is not None and message.ts - row[2] < IDEMPOTENCY_WINDOW_MS:
                    conn.execute("RELEASE one")
                    return _repeated(conn, message, row)
            key = message.conversation
            last_id = counters.get(key)
            stored = dataclasses.replace(message, id=(last_id or self._last_id(conn, key)) + 1)
            values = (key, stored.id, stored.username, stored.avatar, stored.text, stored.ts,
                      stored.cid, stored.to, int(stored.guest), stored.reply_to, int(stored.bot),
                      stored.author)
            conn.execute(_INSERT_MESSAGE, values)
            if message.cid is not None:
                conn.execute(_INSERT_CID, (user_key, stored.cid, key, stored.id, stored.ts))
            conn.execute("RELEASE one")
        except (sqlite3.Error, ValueError, OverflowError) as exc:
            if not conn.in_transaction:
                raise  # SQLite rolled back the whole transaction: the batch fails
            conn.execute("ROLLBACK TO one")
            conn.execute("RELEASE one")
            # Re-read the counter next time, in case another process wrote the file.
            self._last_ids.pop(message.conversation, None)
            return StoreError(describe(exc))
        counters[key] = stored.id
        stamps[key] = max(stored.ts, stamps.get(key, stored.ts))
        return stored, True

    def _last_id(self, conn: sqlite3.Connection, key: str) -> int:
        """The conversation's last committed id; for a new one, the highest id of any
        conversation room retention deleted (0 until it has deleted one)."""
        if key not in self._last_ids:
            found = conn.execute("SELECT last_id FROM conversations WHERE key = ?",
                                 (key,)).fetchone()
            if found is None:
                found = conn.execute("SELECT last_id FROM retired").fetchone()
            self._last_ids[key] = found[0]
        return self._last_ids[key]

    def _retired(self) -> None:
        """Forget the counters of the conversations retention just deleted."""
        for key in self._retention.retired:
            self._last_ids.pop(key, None)

    def _prune_all(self) -> int | StoreError:
        """Run retention to the end now; how many messages it deleted."""
        deleted = 0
        try:
            while True:
                more, count = self._retention.batch(self._connection())
                self._retired()
                deleted += count
                self.stats.pruned += count
                if not more:
                    return deleted
        except (sqlite3.Error, StoreError) as exc:
            self._drop_connection()
            return StoreError(describe(exc))

    def _prune_step(self) -> bool:
        """One retention batch between append batches; False once nothing is left to delete."""
        try:
            more, count = self._retention.batch(self._connection())
            self._retired()
        except (sqlite3.Error, StoreError) as exc:
            log.warning("retention failed (retried in %.0f s): %s", PRUNE_INTERVAL_S,
                        describe(exc))
            self._drop_connection()
            return False
        self.stats.pruned += count
        return more


def _repeated(conn: sqlite3.Connection, message: StoredMessage,
              row: tuple[str, int, int]) -> tuple[StoredMessage, bool] | CidReused:
    """The answer to a cid seen in the window: the original, or CidReused for another
    conversation; if retention deleted the original, its id and ts with the repeat's text."""
    conversation, message_id, ts = row
    if conversation != message.conversation:
        assert message.cid is not None
        return CidReused(message.cid)
    found = conn.execute(_FIND_MESSAGE, (conversation, message_id)).fetchone()
    if found is not None:
        return message_from_row(found), False
    return dataclasses.replace(message, id=message_id, ts=ts), False

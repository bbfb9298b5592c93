"""SQLite's side of the message lifecycle (chat/store/base.py): edits and deletes, each in a
transaction of its own on the writer's connection (between its groups of appends), and the
WAL checkpoint that takes a deleted text out of the -wal file."""

from __future__ import annotations

import logging
import sqlite3

from chat.record import StoredMessage
from chat.store import reactions
from chat.store.base import StoreError
from chat.store.reactions import TooManyReactions
from chat.store.sql import (
    CHANGES,
    FIND_MESSAGE,
    LAST_CHANGE,
    NEXT_CHANGE,
    REACTIONS_OF,
    SET_REACTIONS,
)
from chat.store.sqlite_schema import describe, message_from_row

log = logging.getLogger("chat.store")

# A checkpoint that finds a reader on an older snapshot (each waits its lock timeout) is tried
# this many times: reads are short, so the second nearly always gets through.
CHECKPOINT_TRIES = 3
# The search index (chat/store/search.py) forgets a deleted row's words at once only with
# FTS5's secure-delete option (SQLite 3.42 and later; the writer turns it on). Before it, the
# words stay in the index's older segments until merged, so a delete merges them all
# ('optimize': ~0.25 s per 100,000 messages here, on the writer thread, docs/search.md).
FTS_SECURE_DELETE = sqlite3.sqlite_version_info >= (3, 42, 0)


def change(conn: sqlite3.Connection, statement: str, conversation: str, message_id: int,
           text: str, ts: int, *, checkpoint: bool) -> StoredMessage | None:
    """Run EDIT or DELETE under the next change number; the message after, or None."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(NEXT_CHANGE, (conversation,)).fetchone()
            done = row is not None and conn.execute(
                statement, (text, ts, int(row[0]), conversation, message_id)).rowcount == 1
            if not done:  # no such message: the counter goes back with the rollback
                conn.execute("ROLLBACK")
                return None
            found = conn.execute(FIND_MESSAGE, (conversation, message_id)).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if checkpoint:
            _forget_words(conn)
            _truncate_wal(conn)
        return message_from_row(found)
    except sqlite3.Error as exc:
        raise StoreError(describe(exc)) from None


def _forget_words(conn: sqlite3.Connection) -> None:
    """Take a deleted text's words out of the search index's file pages (FTS_SECURE_DELETE)."""
    if not FTS_SECURE_DELETE:
        conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")


def secure_search_index(conn: sqlite3.Connection) -> None:
    """Where SQLite has it, make the search index forget deleted words as they go."""
    if FTS_SECURE_DELETE:
        conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('secure-delete', 1)")


def _truncate_wal(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the file and empty it: the old page with the deleted text was in it.

    secure_delete has zeroed the text in the new version of its page; the checkpoint writes
    that version over the file's, and TRUNCATE leaves a WAL of 0 bytes. It waits (up to the
    lock timeout) for readers on an older snapshot, which still need the old page.
    """
    for _ in range(CHECKPOINT_TRIES):
        busy, _log, _copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return
    log.warning("a deleted message's old page is still in the WAL: readers kept it busy; "
                "the next checkpoint removes it")


def react(conn: sqlite3.Connection, conversation: str, message_id: int, emoji: str, party: str,
          name: str, add: bool, limit: int) -> StoredMessage | TooManyReactions | None:
    """Change a message's reactions under the next change number; the message after, None,
    or TooManyReactions past `limit`, returned: the writer hands a returned exception to the
    caller as raised, and ends its thread on one raised that is no sqlite3.Error."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(REACTIONS_OF, (conversation, message_id)).fetchone()
            number = conn.execute(NEXT_CHANGE, (conversation,)).fetchone()
            if row is None or number is None:
                conn.execute("ROLLBACK")
                return None
            try:
                after = reactions.changed(row[0], emoji, party, name, add, limit)
            except TooManyReactions as exc:
                conn.execute("ROLLBACK")
                return exc
            conn.execute(SET_REACTIONS, (after, int(number[0]), conversation, message_id))
            found = conn.execute(FIND_MESSAGE, (conversation, message_id)).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return message_from_row(found)
    except sqlite3.Error as exc:
        raise StoreError(describe(exc)) from None


def find(conn: sqlite3.Connection, conversation: str, message_id: int) -> StoredMessage | None:
    row = conn.execute(FIND_MESSAGE, (conversation, message_id)).fetchone()
    return None if row is None else message_from_row(row)


def changes(conn: sqlite3.Connection, conversation: str, after_change: int,
            limit: int) -> list[StoredMessage]:
    rows = conn.execute(CHANGES, (conversation, after_change, limit)).fetchall()
    return [message_from_row(row) for row in rows]


def last_change(conn: sqlite3.Connection, conversation: str) -> int:
    row = conn.execute(LAST_CHANGE, (conversation,)).fetchone()
    return 0 if row is None else int(row[0])

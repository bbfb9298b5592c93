"""`chat_server.py copy-history FROM TO`: everything a history store holds, into another store,
and then its accounts (with their passkeys), invites and rooms (copy_accounts.py; sessions
are not copied).

Ids, order, timestamps, each conversation's counter, the retired floor and the cids still in
their window are kept. Each conversation is copied in chunks, one transaction per chunk that
also raises the target's counter: a copy interrupted anywhere leaves whole chunks, and a rerun
goes on after the target's highest id per conversation (inserting with ON CONFLICT DO NOTHING),
so nothing is copied twice and nothing is skipped. A target that holds another history (another
message at an id, or a counter ahead of the source's) is refused before anything mixes.
The source may also be the Redis history store of earlier versions (copy_redis.py), read only.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import sys
import time
from collections.abc import Sequence

import psycopg

from chat.commands import CommandParser, say
from chat.store.base import IDEMPOTENCY_WINDOW_MS, StoreError
from chat.store.copy_accounts import check_accounts, copy_accounts
from chat.store.copy_sides import (
    CopyError,
    Row,
    Side,
    Source,
    UsageError,
    kind,
    open_source,
    open_target,
)
from chat.store.postgres_schema import one_line
from chat.store.sql import READ_COLUMNS
from chat.store.sqlite_schema import describe

# Messages per chunk (one transaction on the target): big enough that a commit's flush is
# shared by many rows, small enough that a statement stays far below the statement timeout.
CHUNK_MESSAGES = 500
# The least time between two progress lines (s): a line per chunk would flood a terminal.
PROGRESS_INTERVAL_S = 1.0

_TARGET_MAX_ID = "SELECT max(id) FROM messages WHERE conversation = ?"
_INSERT_MESSAGE = (f"INSERT INTO messages ({READ_COLUMNS})"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                   " ON CONFLICT (conversation, id) DO NOTHING")
# What a message of the Redis history of earlier versions (sql.MESSAGE_COLUMNS only) has for
# the lifecycle's columns: not edited, not deleted, no change, no author kept, no reactions.
_NO_LIFECYCLE: Row = (None, None, 0, None, None)
# {greater} is max() in SQLite, greatest() in PostgreSQL (copy_sides.Side.greater).
_RAISE_COUNTER = ("INSERT INTO conversations (key, last_id, last_ts, last_change)"
                  " VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                  " last_id = {greater}(conversations.last_id, excluded.last_id),"
                  " last_ts = {greater}(conversations.last_ts, excluded.last_ts),"
                  " last_change = {greater}(conversations.last_change,"
                  " excluded.last_change)")
_RAISE_FLOOR = "UPDATE retired SET last_id = {greater}(last_id, ?)"
_INSERT_CID = ("INSERT INTO cids (user_key, cid, conversation, id, ts) VALUES (?, ?, ?, ?, ?)"
               " ON CONFLICT (user_key, cid) DO NOTHING")


@dataclasses.dataclass(slots=True)
class Tally:
    """What a copy did, for its progress lines and summary."""

    conversations: int = 0  # in the source
    done: int = 0  # conversations finished
    copied: int = 0  # messages inserted into the target
    present: int = 0  # messages the target already held (a rerun)
    cids: int = 0
    floor: int = 0
    accounts: int = 0
    invites: int = 0
    last_line: float = dataclasses.field(default_factory=time.monotonic)


def copy_history(source: Source, target: Side, *, chunk: int = CHUNK_MESSAGES,
                 out: Tally | None = None) -> Tally:
    """Copy everything `source` holds into `target` (see the module's docstring)."""
    tally = out if out is not None else Tally()
    conversations = source.conversations()
    tally.conversations = len(conversations)
    starts = [_check_target(source, target, str(row[0]), int(row[1]))
              for row in conversations]  # all before anything is written
    if isinstance(source, Side):  # the Redis history of earlier versions holds no accounts
        check_accounts(source, target)
    tally.floor = source.floor()
    with target.transaction():
        target.execute(_RAISE_FLOOR.format(greater=target.greater), (tally.floor,))
    for (key, last_id, last_ts, *rest), after in zip(conversations, starts, strict=True):
        last_change = int(rest[0]) if rest else 0  # the Redis history had no changes
        _copy_conversation(source, target, key, after, int(last_id), int(last_ts),
                           last_change, chunk, tally)
        tally.done += 1
    cutoff = time.time_ns() // 1_000_000 - IDEMPOTENCY_WINDOW_MS
    cids = source.live_cids(cutoff)
    for start in range(0, len(cids), chunk):
        with target.transaction():
            tally.cids += target.execute_many(_INSERT_CID, cids[start:start + chunk])
    if isinstance(source, Side):
        copied = copy_accounts(source, target)
        tally.accounts, tally.invites = copied["accounts"], copied["invites"]
    return tally


def _check_target(source: Source, target: Side, key: str, last_id: int) -> int:
    """The target's highest id in conversation `key` (0: none); CopyError if the target holds
    another history there: a counter ahead of the source's, or another message at that id."""
    counter = target.value("SELECT last_id FROM conversations WHERE key = ?", (key,))
    if counter is not None and counter > last_id:
        raise CopyError(f"{target.name} holds another history: conversation {key!r} counts to "
                        f"id {counter} there but to {last_id} in {source.name}")
    after = target.value(_TARGET_MAX_ID, (key,))
    if after is None:
        return 0
    _check_same(source, target, key, [after])
    return int(after)


def _copy_conversation(source: Source, target: Side, key: str, after: int, last_id: int,
                       last_ts: int, last_change: int, chunk: int, tally: Tally) -> None:
    """Copy one conversation's messages after id `after` (the target's highest), and raise
    the target's counter to the source's."""
    raise_counter = _RAISE_COUNTER.format(greater=target.greater)
    while True:
        rows = _full(source.after(key, after, chunk))
        with target.transaction():
            inserted = target.execute_many(_INSERT_MESSAGE, rows) if rows else 0
            if inserted < len(rows):  # another copy ran at once: what it stored must match
                _check_same(source, target, key, [row[1] for row in rows], rows)
            top_id = max([last_id, *(row[1] for row in rows)])
            top_ts = max([last_ts, *(row[5] for row in rows)])
            target.execute(raise_counter, (key, top_id, top_ts, last_change))
        tally.copied += inserted
        tally.present += len(rows) - inserted
        _progress(tally, source, target)
        if len(rows) < chunk:
            return
        after = rows[-1][1]


def _check_same(source: Source, target: Side, key: str, ids: Sequence[int],
                rows: Sequence[Row] | None = None) -> None:
    """CopyError unless the target's messages at `ids` are the source's (`rows`, if read)."""
    low, high = min(ids), max(ids)
    if rows is None:
        rows = _full(source.between(key, low, high))
    theirs = {row[1]: row for row in target.between(key, low, high)}
    for row in rows:
        held = theirs.get(row[1])
        if held is not None and held != row:
            raise CopyError(f"{target.name} holds another history: message {row[1]} of "
                            f"{key!r} differs from {source.name}'s; copy into an empty store")


def _full(rows: Sequence[Row]) -> list[Row]:
    """Rows of sql.READ_COLUMNS (those of a Redis history padded with _NO_LIFECYCLE)."""
    return [row if len(row) > 11 else (*row, *_NO_LIFECYCLE) for row in rows]


def _progress(tally: Tally, source: Source, target: Side, *, final: bool = False) -> None:
    now = time.monotonic()
    if not final and now - tally.last_line < PROGRESS_INTERVAL_S:
        return
    tally.last_line = now
    print(f"copy-history: {source.name} -> {target.name}: {tally.done}/{tally.conversations}"
          f" conversations, {tally.copied} messages copied", flush=True)


def main(argv: Sequence[str]) -> int:
    """The command: 0 once all is copied, 2 for bad arguments, 1 if the copy failed."""
    parser = CommandParser(
        prog="chat_server.py copy-history", description="Copy a history store (a SQLite file or a "
        "postgresql:// URL) into another, keeping ids, timestamps and counters, then its "
        "accounts (with their passkeys), invites and rooms (not its sessions: everyone signs "
        "in again); or the Redis "
        "history of a cluster of an earlier version (redis://host:port/db, as its --db named "
        "it; only read) into one. A rerun after an interruption goes on where it stopped. "
        "The source may be in use; do not serve the target until the copy is done.")
    parser.add_argument("source", metavar="FROM", help="SQLite file, postgresql:// URL, or "
                        "redis://host:port/db (an earlier version's --db)")
    parser.add_argument("target", metavar="TO", help="SQLite file (created if missing) or "
                        "postgresql:// URL (its tables are created or migrated first)")
    parser.add_argument("--chunk-messages", type=int, default=CHUNK_MESSAGES, metavar="N",
                        help=f"messages per transaction on TO (default {CHUNK_MESSAGES})")
    args = parser.parse(argv)
    urls = [args.source, args.target]
    # psycopg warns on stderr when it abandons a pipeline (executemany's) after an error: the
    # error itself is reported below, once, in one line.
    logging.getLogger("psycopg").setLevel(logging.ERROR)
    if args.chunk_messages < 1:
        parser.error(f"--chunk-messages is {args.chunk_messages}; it must be 1 or more")
    try:
        kind(args.source, source=True)
        kind(args.target)
        if args.source == args.target:
            raise UsageError("FROM and TO name the same store")
        return _run(args.source, args.target, args.chunk_messages)
    except UsageError as exc:
        say(f"copy-history: {exc}", urls=urls)
        return 2
    except (CopyError, StoreError) as exc:
        say(f"copy-history: failed: {exc}", urls=urls)
        return 1
    except sqlite3.Error as exc:
        say(f"copy-history: failed: {describe(exc)}", urls=urls)
        return 1
    except psycopg.Error as exc:
        say(f"copy-history: failed: {one_line(exc)}", urls=urls)
        return 1
    except KeyboardInterrupt:  # each chunk is committed whole or not at all
        say("copy-history: interrupted; run it again to go on where it stopped", urls=urls)
        return 130


def _run(source_url: str, target_url: str, chunk: int) -> int:
    source = open_source(source_url)
    tally = Tally()
    try:
        target = open_target(target_url)
        try:
            copy_history(source, target, chunk=chunk, out=tally)
        finally:
            target.close()
            _progress(tally, source, target, final=True)
    finally:
        source.close()
    print(f"copy-history: done: {tally.conversations} conversations, {tally.copied} messages "
          f"copied ({tally.present} already there), {tally.cids} cids, retired floor "
          f"{tally.floor}; {tally.accounts} accounts and {tally.invites} invites (sessions "
          "are not copied: everyone signs in again)", file=sys.stdout, flush=True)
    return 0

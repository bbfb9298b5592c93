"""One group of appends in one PostgreSQL transaction: ids, cids and repeats, pipelined."""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from chat.record import StoredMessage
from chat.store.base import IDEMPOTENCY_WINDOW_MS, CidReused
from chat.store.postgres_retention import Connection
from chat.store.postgres_schema import message_from_row
from chat.store.sql import FIND_MESSAGE, postgres

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
    INSERT INTO messages (conversation, id, username, avatar, text, ts, cid, recipient, guest,
                          reply_to, bot, author)
    SELECT %(conversation)s, last_id, %(username)s, %(avatar)s, %(text)s, %(ts)s, %(cid)s,
           %(to)s, %(guest)s, %(reply_to)s, %(bot)s, %(author)s FROM counter
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


class Raced(Exception):
    """Another node stored a cid of this batch since the batch looked it up."""



async def store_batch(conn: Connection, messages: list[StoredMessage]) -> list[Outcome]:
    """Store the messages on `conn`, in its transaction; raises what makes it roll back."""
    # Pipelined: the cid look-up and the counter locks go in one round trip, the appends in a
    # second (a repeat whose original must be read, one more).
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
    """Append `messages` in order, pipelined; them with their ids. Raced if a cid was taken."""
    if not messages:
        return []
    params: list[dict[str, Any]] = [
        {"conversation": m.conversation, "username": m.username, "avatar": m.avatar,
         "text": m.text, "ts": m.ts, "cid": m.cid, "to": m.to, "guest": int(m.guest),
         "reply_to": m.reply_to,
         "bot": int(m.bot),
         "author": m.author, "user_key": m.username.casefold(), "window": IDEMPOTENCY_WINDOW_MS}
        for m in messages]
    stored: list[StoredMessage] = []
    async with conn.cursor() as cur:
        await cur.executemany(_APPEND, params, returning=True)
        for message in messages:
            row = await cur.fetchone()
            assert row is not None
            message_id, claimed = row
            if not claimed:
                raise Raced(message.cid)
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

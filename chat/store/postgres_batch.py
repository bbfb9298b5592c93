"""One group of appends in one round trip: a server-side function stores it and announces it.

`chat_append(batch, channel, window_ms)` (created by the schema's migration v19) runs as one
statement, so in one implicit transaction: the ids, the messages, the cid claims and the commit
notification (postgres_notify.py) commit together or not at all. Python sends the batch as JSON
and reads one row per message back; the only other round trip is a read of the original of a
repeated cid, which only a resend after a lost acknowledgement makes.
"""

from __future__ import annotations

import dataclasses

import psycopg

from chat.protocol import jsoncodec
from chat.record import StoredMessage
from chat.store.base import IDEMPOTENCY_WINDOW_MS, CidReused
from chat.store.postgres_append import RACED_SQLSTATE, REUSED, STORED
from chat.store.postgres_retention import Connection
from chat.store.postgres_schema import message_from_row
from chat.store.sql import FIND_MESSAGE, postgres

_FIND_MESSAGE = postgres(FIND_MESSAGE)
CALL = "SELECT outcome, id, ts FROM chat_append(%s::jsonb, %s, %s)"

Outcome = tuple[StoredMessage, bool] | Exception


class Raced(Exception):
    """Another node stored a cid of this batch since the batch looked it up."""


async def store_batch(conn: Connection, messages: list[StoredMessage],
                      channel: str) -> list[Outcome]:
    """Store the messages and announce them on `channel`, committed; raises what rolled back."""
    try:
        cursor = await conn.execute(CALL, (encode(messages), channel, IDEMPOTENCY_WINDOW_MS))
        rows = await cursor.fetchall()
    except psycopg.Error as exc:
        if exc.sqlstate == RACED_SQLSTATE:
            raise Raced(str(exc)) from None
        raise
    stored: dict[tuple[str, int], StoredMessage] = {}
    outcomes: list[Outcome] = []
    for message, (outcome, message_id, ts) in zip(messages, rows, strict=True):
        if outcome == STORED:
            stored[message.conversation, message_id] = dataclasses.replace(message,
                                                                           id=message_id)
            outcomes.append((stored[message.conversation, message_id], True))
        elif outcome == REUSED:
            assert message.cid is not None
            outcomes.append(CidReused(message.cid))
        elif (original := stored.get((message.conversation, message_id))) is not None:
            outcomes.append((original, False))  # a repeat within the batch
        else:
            outcomes.append(await _original(conn, message, message_id, ts))
    return outcomes


def encode(messages: list[StoredMessage]) -> str:
    """chat_append's `batch` argument: the messages as a JSON array of its record's fields."""
    return jsoncodec.dumps([
        {"conversation": m.conversation, "user_key": m.username.casefold(),
         "username": m.username, "avatar": m.avatar, "text": m.text, "ts": m.ts, "cid": m.cid,
         "recipient": m.to, "guest": int(m.guest), "reply_to": m.reply_to, "bot": int(m.bot),
         "author": m.author} for m in messages]).decode()


async def _original(conn: Connection, message: StoredMessage, message_id: int,
                    ts: int) -> Outcome:
    """The message a repeated cid names; if retention deleted it, its id and ts with the
    repeat's text."""
    found = await (await conn.execute(_FIND_MESSAGE, (message.conversation, message_id))
                   ).fetchone()
    if found is not None:
        return message_from_row(found), False
    return dataclasses.replace(message, id=message_id, ts=ts), False

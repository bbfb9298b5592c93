"""PostgreSQL's side of the message lifecycle (chat/store/base.py): each edit or delete one
transaction on the store's pool; the counter's row lock orders a conversation's changes."""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
import psycopg_pool

from chat.record import StoredMessage
from chat.store import reactions
from chat.store.base import StoreError
from chat.store.postgres_retention import Connection
from chat.store.postgres_schema import message_from_row, one_line
from chat.store.sql import (
    CHANGES,
    DELETE,
    EDIT,
    FIND_MESSAGE,
    LAST_CHANGE,
    NEXT_CHANGE,
    REACTIONS_OF,
    SET_REACTIONS,
    postgres,
)

_NEXT_CHANGE, _EDIT, _DELETE = postgres(NEXT_CHANGE), postgres(EDIT), postgres(DELETE)
_FIND, _CHANGES, _LAST_CHANGE = postgres(FIND_MESSAGE), postgres(CHANGES), postgres(LAST_CHANGE)
_REACTIONS_OF, _SET_REACTIONS = postgres(REACTIONS_OF), postgres(SET_REACTIONS)


class Lifecycle:
    """Mixed into PostgresStore, which provides `_open` and `_connection()`."""

    _open: bool

    def _connection(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        raise NotImplementedError

    async def find(self, conversation: str, message_id: int) -> StoredMessage | None:
        rows = await self._lifecycle_rows(_FIND, (conversation, message_id))
        return message_from_row(rows[0]) if rows else None

    async def edit(self, conversation: str, message_id: int, text: str,
                   ts: int) -> StoredMessage | None:
        return await self._change(_EDIT, conversation, message_id, text, ts)

    async def delete(self, conversation: str, message_id: int,
                     ts: int) -> StoredMessage | None:
        # The old row version keeps the text until vacuum reuses its space: docs/deployment.md.
        return await self._change(_DELETE, conversation, message_id, "", ts)

    async def react(self, conversation: str, message_id: int, emoji: str, party: str,
                    name: str, add: bool, limit: int) -> StoredMessage | None:
        if not self._open:
            raise StoreError("the history store is not open")
        try:
            async with self._connection() as conn, conn.transaction() as tx:
                # The counter's row lock first: a conversation's reactions change one at a time.
                number = await (await conn.execute(_NEXT_CHANGE, (conversation,))).fetchone()
                row = await (await conn.execute(_REACTIONS_OF, (conversation,
                                                                message_id))).fetchone()
                if number is None or row is None:
                    raise psycopg.Rollback(tx)
                after = reactions.changed(row[0], emoji, party, name, add, limit)
                await conn.execute(_SET_REACTIONS, (after, int(number[0]), conversation,
                                                    message_id))
                found = await (await conn.execute(_FIND, (conversation, message_id))).fetchone()
                return message_from_row(found) if found is not None else None
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StoreError(one_line(exc)) from None
        return None  # rolled back

    async def changes(self, conversation: str, after_change: int,
                      limit: int) -> list[StoredMessage]:
        rows = await self._lifecycle_rows(_CHANGES, (conversation, after_change, limit))
        return [message_from_row(row) for row in rows]

    async def last_change(self, conversation: str) -> int:
        rows = await self._lifecycle_rows(_LAST_CHANGE, (conversation,))
        return int(rows[0][0]) if rows else 0

    async def _change(self, statement: str, conversation: str, message_id: int, text: str,
                      ts: int) -> StoredMessage | None:
        if not self._open:
            raise StoreError("the history store is not open")
        try:
            async with self._connection() as conn, conn.transaction() as tx:
                row = await (await conn.execute(_NEXT_CHANGE, (conversation,))).fetchone()
                if row is None:
                    return None
                done = await conn.execute(statement, (text, ts, int(row[0]), conversation,
                                                      message_id))
                if done.rowcount != 1:  # the counter goes back with the rollback
                    raise psycopg.Rollback(tx)
                found = await (await conn.execute(_FIND, (conversation, message_id))).fetchone()
                return message_from_row(found) if found is not None else None
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StoreError(one_line(exc)) from None
        return None  # rolled back

    async def _lifecycle_rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        if not self._open:
            raise StoreError("the history store is not open")
        try:
            async with self._connection() as conn:
                return await (await conn.execute(sql, params)).fetchall()
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StoreError(one_line(exc)) from None

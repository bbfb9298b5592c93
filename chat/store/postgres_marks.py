"""PostgreSQL's read marks and last-seen times (chat/store/base.py's ReadMarks), each one
statement in autocommit on the store's pool."""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
import psycopg_pool

from chat.store.base import StoreError, direct_patterns
from chat.store.postgres_retention import Connection
from chat.store.postgres_schema import one_line
from chat.store.sql import DIRECT_OF, LAST_SEEN, MARK_READ, READ_MARKS, SAW, postgres


class Marks:
    """Mixed into PostgresStore, which provides `_open` and `_connection()`."""

    _open: bool

    def _connection(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        raise NotImplementedError

    async def mark_read(self, party: str, conversation: str, last_read: int) -> int:
        rows = await self._rows(postgres(MARK_READ), (party, conversation, last_read))
        return int(rows[0][0])

    async def read_marks(self, party: str) -> dict[str, int]:
        return {key: int(last) for key, last in await self._rows(postgres(READ_MARKS), (party,))}

    async def direct_conversations(self, party: str) -> list[tuple[str, int]]:
        rows = await self._rows(postgres(DIRECT_OF), direct_patterns(party))
        return [(key, int(last)) for key, last in rows]

    async def saw(self, party: str, ts: int) -> None:
        await self._rows(postgres(SAW), (party, ts), fetch=False)

    async def last_seen(self, party: str) -> int | None:
        rows = await self._rows(postgres(LAST_SEEN), (party,))
        return int(rows[0][0]) if rows else None

    async def _rows(self, sql: str, params: tuple[str | int, ...], *,
                    fetch: bool = True) -> list[tuple[Any, ...]]:
        if not self._open:
            raise StoreError("the history store is not open")
        try:
            async with self._connection() as conn:
                cursor = await conn.execute(sql, params)
                return await cursor.fetchall() if fetch else []
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StoreError(one_line(exc)) from None

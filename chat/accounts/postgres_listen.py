"""PostgreSQL's LISTEN for the revocations: a NOTIFY in a revocation's transaction wakes the
RevocationWatch at once (its poll remains the fallback); a lost connection is opened again."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from psycopg import sql as pgsql

from chat.accounts.watch import RevocationWatch
from chat.store.base import StoreError
from chat.store.postgres_options import PostgresOptions
from chat.store.postgres_retention import Connection
from chat.store.postgres_schema import connect, one_line

log = logging.getLogger("chat.accounts")

# A lost LISTEN connection is opened again after this (s).
RELISTEN_S = 1.0


class RevocationListener:
    """A connection of its own LISTENing on `channel`, waking `watch` at each NOTIFY."""

    def __init__(self, url: str, options: PostgresOptions, channel: str,
                 watch: RevocationWatch) -> None:
        self._url = url
        self._options = options
        self._channel = channel
        self._watch = watch
        self._conn: Connection | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """LISTEN now (before the watch reads its first seq: nothing falls between)."""
        self._conn = await self._listen()

    def start(self) -> None:
        """Wake the watch at each NOTIFY from now on, until close."""
        conn, self._conn = self._conn, None
        self._task = asyncio.create_task(self._wake_on_notify(conn))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def _listen(self) -> Connection:
        conn = await connect(self._url, self._options)
        try:
            # Named apart from the pool's connections in pg_stat_activity (as the commits'
            # listener is: chat/store/postgres_notify.py).
            await conn.execute("SET application_name = 'simple-chat revocations'")
            await conn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(self._channel)))
        except psycopg.Error as exc:
            await conn.close()
            raise StoreError(one_line(exc)) from None
        return conn

    async def _wake_on_notify(self, conn: Connection | None) -> None:
        """Wake the watcher at each NOTIFY; after a lost connection, listen again and read."""
        try:
            while True:
                try:
                    if conn is None:
                        conn = await self._listen()
                        self._watch.wake()  # what was committed while nobody listened
                    async for _ in conn.notifies():
                        self._watch.wake()
                except (psycopg.Error, StoreError) as exc:
                    log.warning("listening for revocations failed (retried in %.0f s): %s",
                                RELISTEN_S, exc)
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        await conn.close()
                    conn = None
                await asyncio.sleep(RELISTEN_S)
        finally:
            if conn is not None:
                await conn.close()

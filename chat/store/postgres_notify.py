"""Commits announced by PostgreSQL itself: NOTIFY in each batch's transaction, LISTEN per node.

A batch's transaction ends with one or more `pg_notify` calls naming, per conversation it
appended to, the first and the last id it stored there. PostgreSQL delivers a notification
only if, and once, its transaction commits, to every connection LISTENing on the channel at
that moment: so every node hears of every committed message even if the node that committed
it dies before its own broker publish (docs/deployment.md, "Delivery guarantee").

The payload is a JSON array of `[conversation, first_id, last_id]` entries. The channel is
scoped to the schema the store uses, so chats in other schemas of one database stay apart.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from chat.protocol import jsoncodec
from chat.store.base import StoreError
from chat.store.postgres_options import PostgresOptions
from chat.store.postgres_schema import connection_options, one_line

log = logging.getLogger("chat.store")

# Identifiers (channel names) are at most 63 bytes (NAMEDATALEN - 1).
CHANNEL_MAX_BYTES = 63
_CHANNEL_PREFIX = "chat_commits_"
# A lost LISTEN connection is opened again after this, doubling up to the max (s): quickly back
# after a PostgreSQL restart, without hammering a server that is down.
RECONNECT_FIRST_S = 0.2
RECONNECT_MAX_S = 5.0
# The LISTEN connection is checked (SELECT 1) this often (s): a server that vanished without
# closing the socket is noticed within about this.
QUIET_CHECK_S = 5.0

# The LISTEN connection's name in pg_stat_activity (the pool's are "simple-chat").
APPLICATION_NAME = "simple-chat commits"

OnCommit = Callable[[str, int, int], None]  # conversation, first id, last id


def channel_for(schema: str, prefix: str = _CHANNEL_PREFIX) -> str:
    """The NOTIFY channel of the chat whose tables are in `schema` (commits; another `prefix`
    for other news, as chat/accounts/ announces revocations on chat_accounts_<schema>)."""
    name = prefix + schema
    if len(name.encode()) <= CHANNEL_MAX_BYTES:
        return name
    return prefix + hashlib.sha256(schema.encode()).hexdigest()[:40]


def parse(payload: str) -> list[tuple[str, int, int]]:
    """The entries of a payload; ValueError for one this module did not write."""
    try:
        entries = jsoncodec.loads(payload)
        if not isinstance(entries, list):
            raise TypeError(type(entries).__name__)
        return [(str(conversation), int(first), int(last))
                for conversation, first, last in entries]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a commit notification: {payload[:80]!r}") from exc


class CommitListener:
    """One connection LISTENing on the chat's channel; reconnects when it is lost.

    `on_commit` is called per conversation of each notification; `on_resumed` each time the
    connection is back after a loss (what was committed meanwhile was announced to no one here).
    """

    def __init__(self, url: str, channel: str, on_commit: OnCommit,
                 on_resumed: Callable[[], None], options: PostgresOptions | None = None) -> None:
        self._url = url
        self._options = options
        self._channel = channel
        self._on_commit = on_commit
        self._on_resumed = on_resumed
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def start(self) -> None:
        """LISTEN (if that fails now, it is retried in the background, as after a loss)."""
        conn: psycopg.AsyncConnection[TupleRow] | None
        try:
            conn = await self._listen()
        except StoreError as exc:
            log.warning("cannot listen for commits yet (retrying): %s", exc)
            conn = None
        self._task = asyncio.create_task(self._run(conn))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    async def _listen(self) -> psycopg.AsyncConnection[TupleRow]:
        try:
            options = connection_options(self._url, self._options)
            options["application_name"] = APPLICATION_NAME
            conn = await psycopg.AsyncConnection.connect(**options)  # type: ignore[arg-type]
        except (psycopg.Error, ValueError, OSError) as exc:
            raise StoreError(one_line(exc)) from None
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        except psycopg.Error as exc:
            await conn.close()
            raise StoreError(one_line(exc)) from None
        self._listening.set()
        return conn

    async def _run(self, conn: psycopg.AsyncConnection[TupleRow] | None) -> None:
        if conn is None:
            conn = await self._reconnect()
            self._on_resumed()
        while True:
            try:
                await self._receive(conn)
            except psycopg.Error as exc:
                log.warning("lost the connection that listens for commits: %s", one_line(exc))
            finally:
                self._listening.clear()
                await conn.close()
            conn = await self._reconnect()
            self._on_resumed()

    async def _receive(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        while True:
            async for note in conn.notifies(timeout=QUIET_CHECK_S):
                try:
                    entries = parse(note.payload)
                except ValueError as exc:
                    log.warning("ignored a notification on %s: %s", note.channel, exc)
                    continue
                for conversation, first, last in entries:
                    self._on_commit(conversation, first, last)
            # Raises if the server is gone (notifications that come meanwhile are kept for the
            # next round).
            await conn.execute("SELECT 1")

    async def _reconnect(self) -> psycopg.AsyncConnection[TupleRow]:
        delay = RECONNECT_FIRST_S
        while True:
            await asyncio.sleep(delay)
            try:
                conn = await self._listen()
            except StoreError as exc:
                log.info("listening for commits again failed (retried in %.1f s): %s",
                         delay, exc)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            log.warning("listening for commits again")
            return conn

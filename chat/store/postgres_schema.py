"""The PostgreSQL history database: connecting, the schema, and the migrations that build it."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import psycopg
from psycopg.rows import TupleRow

from chat.record import StoredMessage
from chat.store.base import StoreError
from chat.store.postgres_options import PostgresOptions
from chat.urls import redacted

# Any constant: the advisory lock nodes starting at once take, so one migrates and the others
# then find the schema up to date.
MIGRATION_LOCK = 0x5C4A7_0001


async def _v1_history(conn: psycopg.AsyncConnection[TupleRow]) -> None:
    """SQLite's schema as of its version 2, side by side: BIGINT ids and ms, no WITHOUT ROWID."""
    # last_id outlives the messages: ids are never reused, even once retention deleted them all.
    await conn.execute("CREATE TABLE conversations (key TEXT PRIMARY KEY, last_id BIGINT NOT NULL,"
                       " last_ts BIGINT NOT NULL DEFAULT 0)")
    await conn.execute("CREATE INDEX conversations_by_last_ts ON conversations (last_ts)")
    await conn.execute("CREATE TABLE messages (conversation TEXT NOT NULL, id BIGINT NOT NULL,"
                       " username TEXT NOT NULL, avatar TEXT NOT NULL, text TEXT NOT NULL,"
                       " ts BIGINT NOT NULL, cid TEXT, recipient TEXT,"
                       " PRIMARY KEY (conversation, id))")
    await conn.execute("CREATE INDEX messages_by_ts ON messages (ts)")  # for `days` retention
    # Where each cid's message is, for the idempotency window (a reference, as SQLite's v2).
    await conn.execute("CREATE TABLE cids (user_key TEXT NOT NULL, cid TEXT NOT NULL,"
                       " conversation TEXT NOT NULL, id BIGINT NOT NULL, ts BIGINT NOT NULL,"
                       " PRIMARY KEY (user_key, cid))")
    await conn.execute("CREATE INDEX cids_by_ts ON cids (ts)")
    # The highest last id of any conversation room retention deleted (as SQLite's).
    await conn.execute("CREATE TABLE retired (last_id BIGINT NOT NULL)")
    await conn.execute("INSERT INTO retired VALUES (0)")


Migration = Callable[[psycopg.AsyncConnection[TupleRow]], Awaitable[None]]
# Applied in order; schema_version says how many already are. Append, never edit.
MIGRATIONS: list[Migration] = [_v1_history]


def connection_options(url: str, settings: PostgresOptions | None = None) -> dict[str, object]:
    """The keyword arguments of every connection to `url`; ValueError for a malformed URL."""
    settings = settings or PostgresOptions()
    try:
        given = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ValueError(f"{redacted(url)} is not a PostgreSQL URL: {one_line(exc)}") from None
    # The URL's own options (?options=-csearch_path%3Dchat, say) come first; ours are added.
    options = (f"{given.get('options') or ''}"
               f" -c statement_timeout={settings.statement_timeout_ms}")
    # libpq takes whole seconds (and reads 0 as "wait forever"): round up.
    connect_timeout = max(1, math.ceil(settings.connect_timeout_s))
    return {"conninfo": url, "autocommit": True, "connect_timeout": connect_timeout,
            "options": options.strip(), "application_name": "simple-chat"}


async def connect(url: str, settings: PostgresOptions | None = None,
                  ) -> psycopg.AsyncConnection[TupleRow]:
    """One connection in autocommit mode (transactions are explicit); StoreError if refused."""
    try:
        options = connection_options(url, settings)
        return await psycopg.AsyncConnection.connect(**options)  # type: ignore[arg-type]
    except (psycopg.Error, ValueError, OSError) as exc:
        raise StoreError(one_line(exc)) from None


async def migrate(conn: psycopg.AsyncConnection[TupleRow]) -> int:
    """Bring the schema up to date in one transaction; the version it ends at."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = await (await conn.execute("SELECT version FROM schema_version")).fetchone()
        version = int(str(row[0])) if row else 0
        if row is None:
            await conn.execute("INSERT INTO schema_version VALUES (0)")
        if version > len(MIGRATIONS):
            raise StoreError(f"the database has schema version {version}, newer than this "
                             f"server's {len(MIGRATIONS)}; run a newer server")
        for step in MIGRATIONS[version:]:
            await step(conn)
        version = max(version, len(MIGRATIONS))
        # Always writes, so a read-only role fails here, at start-up, not at the first message.
        await conn.execute("UPDATE schema_version SET version = %s", (version,))
    return version


def one_line(exc: BaseException) -> str:
    """A one-line reason (psycopg's messages can span lines: DETAIL, HINT, connection tries)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def message_from_row(row: TupleRow) -> StoredMessage:
    """A StoredMessage from a row of MESSAGE_COLUMNS."""
    return StoredMessage(*row)

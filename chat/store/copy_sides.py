"""The two ends of copy-history: a SQLite file or a PostgreSQL database, opened synchronously
(a source may also be the Redis history store of earlier versions: copy_redis.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import psycopg

from chat.store import postgres_schema, sqlite_schema
from chat.store.base import StoreError
from chat.store.sql import READ_COLUMNS, postgres
from chat.urls import REDIS_DB_PREFIXES, redacted

Dialect = Literal["sqlite", "postgresql"]
Row = tuple[Any, ...]
Kind = Literal["sqlite", "postgresql", "redis"]

POSTGRES_PREFIXES = ("postgresql://", "postgres://")
# Side by side: the greater of two values is max() in SQLite, greatest() in PostgreSQL.
_GREATER = {"sqlite": "max", "postgresql": "greatest"}
URL_FORMS = "a SQLite file nor a postgresql://user:password@host:port/dbname URL"

# What a source is read with (SQL shared by both dialects).
# With the change counter and the lifecycle's columns (edits, tombstones, authors, reactions).
_CONVERSATIONS = "SELECT key, last_id, last_ts, last_change FROM conversations ORDER BY key"
AFTER = (f"SELECT {READ_COLUMNS} FROM messages WHERE conversation = ? AND id > ?"
         " ORDER BY id LIMIT ?")
_MESSAGE_RANGE = (f"SELECT {READ_COLUMNS} FROM messages WHERE conversation = ?"
                  " AND id BETWEEN ? AND ? ORDER BY id")
_LIVE_CIDS = "SELECT user_key, cid, conversation, id, ts FROM cids WHERE ts > ?"


class UsageError(ValueError):
    """An argument names no store copy-history can use (exit 2)."""


class CopyError(Exception):
    """The copy cannot go on: a store refused, or the target holds another history (exit 1)."""


class Source(Protocol):
    """What copy-history reads: a SQL Side, or copy_redis.RedisSource. Rows are as the SQL
    tables hold them: conversations (key, last_id, last_ts); messages in sql.MESSAGE_COLUMNS'
    order; cids (user_key, cid, conversation, id, ts)."""

    name: str

    def conversations(self) -> list[Row]: ...
    def floor(self) -> int: ...
    def after(self, key: str, after_id: int, limit: int) -> list[Row]: ...
    def between(self, key: str, low: int, high: int) -> list[Row]: ...
    def live_cids(self, cutoff_ms: int) -> list[Row]: ...
    def close(self) -> None: ...


def kind(url: str, *, source: bool = False) -> Kind:
    """Which store `url` names; UsageError for one copy-history cannot copy (from, if
    `source`: the old Redis history store can only be read)."""
    if source and url.startswith(REDIS_DB_PREFIXES):
        from chat.store.copy_redis import check_url  # it imports this module

        check_url(url)
        return "redis"
    if url.startswith(POSTGRES_PREFIXES):
        try:
            postgres_schema.connection_options(url)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        try:
            urlsplit(url).port  # noqa: B018 (raises ValueError for a port that is not a number)
        except ValueError:
            raise UsageError(f"{redacted(url)}: the port is not a number 0-65535") from None
        return "postgresql"
    if not url or url == ":memory:" or "://" in url or url.startswith("file:"):
        if url.startswith(REDIS_DB_PREFIXES):
            raise UsageError(f"{redacted(url)!r} is neither {URL_FORMS} (a redis:// history "
                             "is only ever copied from, into one of those)")
        raise UsageError(f"{redacted(url)!r} is neither {URL_FORMS}"
                         + (" (nor a redis://host:port/db URL)" if source else ""))
    return "sqlite"


class Side:
    """One store: a connection in autocommit mode, its dialect, and a name fit for output."""

    def __init__(self, conn: Any, dialect: Dialect, url: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self.name = redacted(url)

    @property
    def greater(self) -> str:
        """The SQL function that gives the greater of two values."""
        return _GREATER[self.dialect]

    def sql(self, text: str) -> str:
        """`text` (with SQLite's `?` markers) in this dialect."""
        return text if self.dialect == "sqlite" else postgres(text)

    def rows(self, text: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(row) for row in self.conn.execute(self.sql(text), params).fetchall()]

    def value(self, text: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row (None without one)."""
        found = self.rows(text, params)
        return found[0][0] if found else None

    def execute(self, text: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the rows it changed."""
        return int(self.conn.execute(self.sql(text), params).rowcount)

    def execute_many(self, text: str, rows: Sequence[Row]) -> int:
        """Run a statement once per row; the rows it changed in all."""
        cursor = self.conn.cursor()
        try:
            cursor.executemany(self.sql(text), rows)
            return int(cursor.rowcount)
        finally:
            cursor.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit what the block did, or roll it all back if it raises."""
        if self.dialect == "postgresql":
            with self.conn.transaction():
                yield
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    # Read as a source (the Source protocol).
    def conversations(self) -> list[Row]:
        return self.rows(_CONVERSATIONS)

    def floor(self) -> int:
        return int(self.value("SELECT last_id FROM retired") or 0)

    def after(self, key: str, after_id: int, limit: int) -> list[Row]:
        return self.rows(AFTER, (key, after_id, limit))

    def between(self, key: str, low: int, high: int) -> list[Row]:
        return self.rows(_MESSAGE_RANGE, (key, low, high))

    def live_cids(self, cutoff_ms: int) -> list[Row]:
        return self.rows(_LIVE_CIDS, (cutoff_ms,))

    def close(self) -> None:
        self.conn.close()


def open_source(url: str) -> Source:
    """The store to copy from, read-only, at the schema version this server writes."""
    dialect = kind(url, source=True)
    if dialect == "redis":
        from chat.store.copy_redis import open_redis_source  # it imports this module

        return open_redis_source(url)
    if dialect == "sqlite":
        if not os.path.isfile(url):
            raise UsageError(f"{url!r} is not a file")
        try:
            conn = sqlite_schema.connect(url, lock_timeout_s=sqlite_schema.LOCK_TIMEOUT_S)
        except sqlite3.Error as exc:
            raise CopyError(f"cannot open {url!r}: {sqlite_schema.describe(exc)}") from None
        side = Side(conn, dialect, url)
        expected = len(sqlite_schema.MIGRATIONS)
    else:
        side = Side(_connect_postgres(url), dialect, url)
        expected = len(postgres_schema.MIGRATIONS)
    try:
        version = side.value("SELECT version FROM schema_version")
    except (sqlite3.Error, psycopg.Error):
        side.close()
        raise CopyError(f"{side.name} holds no chat history (no schema_version table)") from None
    if version != expected:
        side.close()
        raise CopyError(f"{side.name} has schema version {version}; this server's is {expected}:"
                        " start a server of this version on it once (it migrates), then copy")
    return side


def open_target(url: str) -> Side:
    """The store to copy into, created if need be, its schema migrated to this server's."""
    dialect = kind(url)
    if dialect == "sqlite":
        try:
            conn = sqlite_schema.connect(url, lock_timeout_s=sqlite_schema.LOCK_TIMEOUT_S,
                                         synchronous="FULL")
            sqlite_schema.migrate(conn)
        except sqlite3.Error as exc:
            raise CopyError(f"cannot open {url!r}: {sqlite_schema.describe(exc)}") from None
        return Side(conn, "sqlite", url)
    asyncio.run(_migrate_postgres(url))
    return Side(_connect_postgres(url), "postgresql", url)


async def _migrate_postgres(url: str) -> None:
    """The server's own migrations (async psycopg: they are shared with PostgresStore)."""
    try:
        conn = await postgres_schema.connect(url)
    except StoreError as exc:
        raise CopyError(f"cannot connect to {redacted(url)}: {exc}") from None
    try:
        await postgres_schema.migrate(conn)
    except psycopg.Error as exc:
        raise CopyError(f"cannot migrate {redacted(url)}: {postgres_schema.one_line(exc)}",
                        ) from None
    finally:
        await conn.close()


def _connect_postgres(url: str) -> psycopg.Connection[Any]:
    try:
        options = postgres_schema.connection_options(url)
        return psycopg.connect(**options)  # type: ignore[arg-type]
    except psycopg.Error as exc:
        raise CopyError(f"cannot connect to {redacted(url)}: "
                        f"{postgres_schema.one_line(exc)}") from None

"""History stores: the interface, and the factory that picks a backend from --db."""

from chat.record import StoredMessage, dm_key
from chat.store.base import IDEMPOTENCY_WINDOW_MS, CidReused, HistoryStore, StoreError
from chat.store.postgres_options import PostgresOptions
from chat.store.sqlite import SQLiteStore
from chat.urls import is_redis_db, redacted


def open_store(db: str, *, per_conversation: int, days: float, room_days: float = 0,
               postgres: PostgresOptions | None = None) -> HistoryStore:
    """The store for `--db`: a SQLite file, or for `:memory:` a SQLite database in memory
    (nothing on disk); a `postgresql://` URL gives a PostgresStore (psycopg, imported only then,
    so the server needs it only when it uses PostgreSQL), connecting as `postgres` says.
    ValueError for a `redis://` URL: Redis carries a cluster's deliveries and presence, not its
    history."""
    if db.startswith(("postgresql://", "postgres://")):
        from chat.store.postgres import PostgresStore

        return PostgresStore(db, per_conversation, days, room_days=room_days, options=postgres)
    if is_redis_db(db):
        raise ValueError(f"--db {redacted(db)!r}: history lives in SQLite or PostgreSQL now, "
                         "not Redis; give a file path, :memory: or postgresql://")
    return SQLiteStore(db, per_conversation, days, room_days=room_days)


__all__ = [
    "IDEMPOTENCY_WINDOW_MS",
    "CidReused",
    "HistoryStore",
    "PostgresOptions",
    "SQLiteStore",
    "StoreError",
    "StoredMessage",
    "dm_key",
    "open_store",
]

"""History stores: the interface, and the factory that picks a backend from --db."""

from chat.record import StoredMessage, dm_key
from chat.store.base import IDEMPOTENCY_WINDOW_MS, CidReused, HistoryStore, StoreError
from chat.store.memory import MemoryStore
from chat.store.postgres_options import PostgresOptions
from chat.store.sqlite import SQLiteStore
from chat.urls import is_redis_db


def open_store(db: str, *, per_conversation: int, days: float, room_days: float = 0,
               publish: bool = False, postgres: PostgresOptions | None = None) -> HistoryStore:
    """The store for `--db`: a SQLite file, for `:memory:` a MemoryStore (nothing on disk), and
    for a `redis://` URL a RedisStore that several processes share (imported only then, so the
    server needs the redis package only when it uses Redis); with `publish` it also announces
    each new message on the cluster's broker. A `postgresql://` URL gives a PostgresStore
    (psycopg, likewise imported only then), connecting as `postgres` says."""
    if db.startswith(("postgresql://", "postgres://")):
        from chat.store.postgres import PostgresStore

        return PostgresStore(db, per_conversation, days, room_days=room_days, options=postgres)
    if is_redis_db(db):
        from chat.store.redis import RedisStore

        return RedisStore(db, per_conversation, days, room_days=room_days, publish=publish)
    if db == ":memory:":
        return MemoryStore(per_conversation, days, room_days=room_days)
    return SQLiteStore(db, per_conversation, days, room_days=room_days)


__all__ = [
    "IDEMPOTENCY_WINDOW_MS",
    "CidReused",
    "HistoryStore",
    "MemoryStore",
    "PostgresOptions",
    "SQLiteStore",
    "StoreError",
    "StoredMessage",
    "dm_key",
    "open_store",
]

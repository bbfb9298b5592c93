"""History stores: the interface, and the factory that picks a backend from --db."""

from chat.store.base import HistoryStore, StoredMessage, StoreError, dm_key
from chat.store.memory import MemoryStore


def open_store(db: str, *, per_conversation: int, days: float) -> HistoryStore:
    """The store for `--db` (until SQLite lands: in memory)."""
    return MemoryStore(per_conversation)


__all__ = ["HistoryStore", "MemoryStore", "StoreError", "StoredMessage", "dm_key", "open_store"]

"""SQL text the SQLite and PostgreSQL stores share, written once with SQLite's `?` markers."""

from __future__ import annotations

# `guest` last: added by a migration (1: written by a guest, no account; 0 before it existed).
MESSAGE_COLUMNS = "conversation, id, username, avatar, text, ts, cid, recipient, guest"

# Reads: the same in both dialects.
LATEST = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation = ? ORDER BY id DESC LIMIT ?"
BEFORE = (f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation = ? AND id < ?"
          " ORDER BY id DESC LIMIT ?")
AFTER = (f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation = ? AND id > ?"
         " ORDER BY id LIMIT ?")
FIND_CID = "SELECT conversation, id, ts FROM cids WHERE user_key = ? AND cid = ?"
FIND_MESSAGE = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation = ? AND id = ?"

# Retention: the same in both dialects (row values and `DELETE ... WHERE (a, b) IN` are in both).
# SQLite's cids is WITHOUT ROWID (keyed by its primary key): no rowid to pick a batch by.
EXPIRE_CIDS = ("DELETE FROM cids WHERE (user_key, cid) IN"
               " (SELECT user_key, cid FROM cids WHERE ts <= ? LIMIT ?)")
LAST_ID = "SELECT last_id FROM conversations WHERE key = ?"
ABANDONED = ("SELECT key, last_id FROM conversations WHERE last_ts < ? AND key != ?"
             " ORDER BY last_ts LIMIT ?")
FORGET_COUNTER = "DELETE FROM conversations WHERE key = ?"


def postgres(sql: str) -> str:
    """The same statement with psycopg's `%s` markers (the shared text holds no `%` or `'?'`)."""
    assert "%" not in sql, sql
    assert "'" not in sql, sql
    return sql.replace("?", "%s")

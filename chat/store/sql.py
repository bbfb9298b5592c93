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

# Read marks (chat/people/reading.py): the last id a party read of a conversation. A mark never
# moves backwards: the update keeps the larger of the two (CASE: SQLite's max() and
# PostgreSQL's GREATEST() differ).
MARK_READ = ("INSERT INTO read_marks (party, conversation, last_read) VALUES (?, ?, ?)"
             " ON CONFLICT (party, conversation) DO UPDATE SET last_read = CASE WHEN"
             " excluded.last_read > read_marks.last_read THEN excluded.last_read"
             " ELSE read_marks.last_read END RETURNING last_read")
READ_MARKS = "SELECT conversation, last_read FROM read_marks WHERE party = ?"
# A party's direct conversations (record.dm_key): its id first or second. The patterns are
# parameters (the shared text holds no '%'); party ids hold no '_' or '%'.
DIRECT_OF = "SELECT key, last_id FROM conversations WHERE key LIKE ? OR key LIKE ?"

# Last seen (chat/people/presence.py): when a party's last connection to a server closed (ms).
SAW = ("INSERT INTO last_seen (party, ts) VALUES (?, ?) ON CONFLICT (party) DO UPDATE SET"
       " ts = CASE WHEN excluded.ts > last_seen.ts THEN excluded.ts ELSE last_seen.ts END")
LAST_SEEN = "SELECT ts FROM last_seen WHERE party = ?"


def postgres(sql: str) -> str:
    """The same statement with psycopg's `%s` markers (the shared text holds no `%` or `'?'`)."""
    assert "%" not in sql, sql
    assert "'" not in sql, sql
    return sql.replace("?", "%s")

# Rooms (chat/rooms/store.py): written in SQLite's words; the PostgreSQL migration reads
# INTEGER as BIGINT, and BIGSERIAL is each one's auto-increasing key (never reused).
ROOM_TABLES = (
    "CREATE TABLE rooms (name TEXT PRIMARY KEY, visibility TEXT NOT NULL"
    " CHECK (visibility IN ('public', 'private')), topic TEXT NOT NULL DEFAULT '',"
    " owner_id INTEGER, created_ts INTEGER NOT NULL,"
    " removals INTEGER NOT NULL DEFAULT 0)",
    "INSERT INTO rooms (name, visibility, topic, owner_id, created_ts)"
    " VALUES ('general', 'public', '', NULL, 0)",
    # Accounts' memberships only: a guest's last as its connections do.
    "CREATE TABLE room_members (room TEXT NOT NULL, account_id INTEGER NOT NULL,"
    " role TEXT NOT NULL CHECK (role IN ('member', 'moderator', 'owner')),"
    " joined_ts INTEGER NOT NULL, PRIMARY KEY (room, account_id))",
    "CREATE INDEX room_members_by_account ON room_members (account_id)",
    # A ban or mute of a party (a:<account id>, g:<guest>) or a guest's address (ip:<group>);
    # name_key lets `unban` name a guest who has left; until_ts is ms (FOREVER: until lifted).
    "CREATE TABLE room_sanctions (room TEXT NOT NULL, kind TEXT NOT NULL"
    " CHECK (kind IN ('ban', 'mute')), target TEXT NOT NULL, name_key TEXT NOT NULL,"
    " until_ts INTEGER NOT NULL, PRIMARY KEY (room, kind, target))",
    "CREATE TABLE audit (seq BIGSERIAL, ts INTEGER NOT NULL, actor_id INTEGER,"
    " actor TEXT NOT NULL, action TEXT NOT NULL, room TEXT NOT NULL, target TEXT,"
    " target_name TEXT, details TEXT NOT NULL)",
    "CREATE INDEX audit_by_room ON audit (room, seq)",
    # Messages a moderator removed: hidden from history, resume and pages (rooms.removals
    # counts them, so a room with none costs no read).
    "CREATE TABLE removed_messages (room TEXT NOT NULL, id INTEGER NOT NULL,"
    " by_id INTEGER, ts INTEGER NOT NULL, PRIMARY KEY (room, id))",
)

# Files (issue 18, chat/files/store.py): uploads' records (the bytes are on disk by sha256) and
# which messages carry them. `attached` is 1 once a message carried the file: an upload never
# attached is swept after --unattached-upload-ttl.
FILE_TABLES = (
    "CREATE TABLE files (id TEXT PRIMARY KEY, owner_id INTEGER NOT NULL, name TEXT NOT NULL,"
    " size INTEGER NOT NULL, type TEXT NOT NULL, sha256 TEXT NOT NULL, width INTEGER,"
    " height INTEGER, thumb_sha256 TEXT, thumb_type TEXT, created_ts INTEGER NOT NULL,"
    " attached INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX files_by_owner ON files (owner_id)",
    "CREATE INDEX files_by_sha ON files (sha256)",
    "CREATE INDEX files_by_thumb ON files (thumb_sha256)",
    "CREATE INDEX files_unattached ON files (attached, created_ts)",
    "CREATE TABLE file_links (conversation TEXT NOT NULL, message_id INTEGER NOT NULL,"
    " file_id TEXT NOT NULL, PRIMARY KEY (conversation, message_id, file_id))",
    "CREATE INDEX file_links_by_file ON file_links (file_id)",
)

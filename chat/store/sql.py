"""SQL text the SQLite and PostgreSQL stores share, written once with SQLite's `?` markers."""

from __future__ import annotations

# `guest`, `reply_to` and `bot` last: added by migrations (guest 1: written by a guest, no
# account; bot 1: by a bot account or a webhook; 0 before they existed; reply_to: the id of
# the message of the conversation it answers, or NULL).
MESSAGE_COLUMNS = ("conversation, id, username, avatar, text, ts, cid, recipient, guest, reply_to,"
                   " bot")

# What reads return: MESSAGE_COLUMNS, then the message lifecycle's columns (issue 16, migrations
# appended): when it was last edited (ms, NULL: never), deleted (ms, NULL: not; its text is ''),
# the conversation's change number of its last change (0: none), its author's party, and its
# reactions (JSON, chat/store/reactions.py; NULL: none).
READ_COLUMNS = f"{MESSAGE_COLUMNS}, edited_ts, deleted_ts, change_seq, author, reactions"

# Reads: the same in both dialects.
LATEST = f"SELECT {READ_COLUMNS} FROM messages WHERE conversation = ? ORDER BY id DESC LIMIT ?"
BEFORE = (f"SELECT {READ_COLUMNS} FROM messages WHERE conversation = ? AND id < ?"
          " ORDER BY id DESC LIMIT ?")
AFTER = (f"SELECT {READ_COLUMNS} FROM messages WHERE conversation = ? AND id > ?"
         " ORDER BY id LIMIT ?")
# Unread counts (chat/people/reading.py): the messages after a read mark that are still there
# (a deleted message's tombstone is not unread, nor is its mention).
UNREAD = (f"SELECT {READ_COLUMNS} FROM messages WHERE conversation = ? AND id > ?"
          " AND deleted_ts IS NULL ORDER BY id LIMIT ?")
FIND_CID = "SELECT conversation, id, ts FROM cids WHERE user_key = ? AND cid = ?"
FIND_MESSAGE = f"SELECT {READ_COLUMNS} FROM messages WHERE conversation = ? AND id = ?"

# The message lifecycle (chat/history/changes.py): edits and deletes change the row in place
# (the search index follows the messages table by its triggers), each numbered by its
# conversation's change counter (conversations.last_change) so a client learns on resume what
# changed since the number it holds. A delete keeps the row as a tombstone (text '', no ids
# skipped: a resume's gap check stays exact); reads leave tombstones out.
NEXT_CHANGE = ("UPDATE conversations SET last_change = last_change + 1 WHERE key = ?"
               " RETURNING last_change")
LAST_CHANGE = "SELECT last_change FROM conversations WHERE key = ?"
EDIT = ("UPDATE messages SET text = ?, edited_ts = ?, change_seq = ? WHERE conversation = ?"
        " AND id = ? AND deleted_ts IS NULL")
DELETE = ("UPDATE messages SET text = ?, deleted_ts = ?, change_seq = ? WHERE conversation = ?"
          " AND id = ? AND deleted_ts IS NULL")
# A reaction is a change too: read, changed (chat/store/reactions.py), written back under the
# next change number, in one transaction (the counter's row lock orders them).
REACTIONS_OF = ("SELECT reactions FROM messages WHERE conversation = ? AND id = ?"
                " AND deleted_ts IS NULL")
SET_REACTIONS = ("UPDATE messages SET reactions = ?, change_seq = ? WHERE conversation = ?"
                 " AND id = ?")
# `change_seq > 0` first: SQLite then plans the read once, not at every call (a reconnect
# storm asks it at every join: 21 us a read before, 5 after, on the 2-core machine).
CHANGES = (f"SELECT {READ_COLUMNS} FROM messages WHERE conversation = ? AND change_seq > 0"
           " AND change_seq > ? ORDER BY change_seq LIMIT ?")


def by_ids(count: int) -> str:
    """The messages of a conversation with `count` given ids (replies' originals), then LIMIT."""
    marks = ", ".join("?" * count)
    return (f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation = ? AND id IN ({marks})"
            " ORDER BY id LIMIT ?")

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

# Webhooks (chat/hooks/store.py, issue 17), in SQLite's words as ROOM_TABLES. An incoming
# hook is found by the SHA-256 of its secret (the secret itself is shown once, never stored);
# an outgoing one keeps its signing key in the clear, since every call is signed with it.
# A revoked hook keeps its row (revoked_ts) for the record; `id` is a random public name.
HOOK_TABLES = (
    "CREATE TABLE webhooks (id TEXT PRIMARY KEY, kind TEXT NOT NULL"
    " CHECK (kind IN ('incoming', 'outgoing')), room TEXT NOT NULL, name TEXT NOT NULL,"
    " secret_hash TEXT UNIQUE, url TEXT, triggers TEXT NOT NULL DEFAULT '',"
    " signing_key TEXT, created_by INTEGER, created_ts INTEGER NOT NULL, revoked_ts INTEGER)",
    "CREATE INDEX webhooks_by_room ON webhooks (room, kind)",
)

# Personal access tokens and bots (chat/accounts/tokens.py), in SQLite's words as ROOM_TABLES.
TOKEN_TABLES = (
    "CREATE TABLE api_tokens (id TEXT PRIMARY KEY, account_id INTEGER NOT NULL"
    " REFERENCES accounts (id), name TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,"
    " scopes TEXT NOT NULL, created_ts INTEGER NOT NULL, created_by INTEGER,"
    " last_used_ts INTEGER)",
    "CREATE INDEX api_tokens_by_account ON api_tokens (account_id)",
    # Accounts that are bots: made by an admin, without a password or passkey, used by tokens.
    "CREATE TABLE bots (account_id INTEGER PRIMARY KEY REFERENCES accounts (id),"
    " created_by INTEGER, created_ts INTEGER NOT NULL)",
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

# Secrets the server makes for itself, one per name (chat/accounts/sql_store.py server_secret):
# today the key of the decoy passkey ids a sign-in shows for a name without passkeys
# (chat/accounts/passkey_rules.py). Hex; in the database, so every node uses the same one.
SECRET_TABLES = ("CREATE TABLE server_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)",)

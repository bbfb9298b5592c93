"""The SQLite history file: connection settings, the schema, and the migrations that build it."""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any, Literal

from chat.record import StoredMessage
from chat.store.base import StoreError
from chat.store.sql import (
    FILE_TABLES,
    HOOK_TABLES,
    ROOM_TABLES,
    SECRET_TABLES,
    TOKEN_TABLES,
)
from chat.store.sql import MESSAGE_COLUMNS as MESSAGE_COLUMNS  # re-exported

Synchronous = Literal["FULL", "NORMAL"]

# How long a write waits for another process's lock before it fails: a message that cannot be
# stored within this is better reported to its sender than delivered late.
LOCK_TIMEOUT_S = 2.0
# Keeps the -wal file from staying at its high-water mark after a burst (bytes).
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
# The expiry given to invites made before invites expired: the default TTL (7 days, ms).
INVITE_TTL_BEFORE_MS = 7 * 24 * 60 * 60 * 1000


def _v1_history(conn: sqlite3.Connection) -> None:
    """Conversations with their id counters, messages, and the cids of the idempotency window."""
    # last_id outlives the messages: ids are never reused, even once retention deleted them all.
    conn.execute("CREATE TABLE conversations (key TEXT PRIMARY KEY, last_id INTEGER NOT NULL)"
                 " WITHOUT ROWID")
    conn.execute("CREATE TABLE messages (conversation TEXT NOT NULL, id INTEGER NOT NULL,"
                 " username TEXT NOT NULL, avatar TEXT NOT NULL, text TEXT NOT NULL,"
                 " ts INTEGER NOT NULL, cid TEXT, recipient TEXT, UNIQUE (conversation, id))")
    conn.execute("CREATE INDEX messages_by_ts ON messages (ts)")  # for `days` retention
    # A copy of each message sent with a cid, kept for the window even if retention deletes
    # the message itself, so a repeat always gets the original acknowledgement.
    conn.execute("CREATE TABLE cids (user_key TEXT NOT NULL, cid TEXT NOT NULL,"
                 " conversation TEXT NOT NULL, id INTEGER NOT NULL, username TEXT NOT NULL,"
                 " avatar TEXT NOT NULL, text TEXT NOT NULL, ts INTEGER NOT NULL,"
                 " recipient TEXT, PRIMARY KEY (user_key, cid))")
    conn.execute("CREATE INDEX cids_by_ts ON cids (ts)")


def _v2_references(conn: sqlite3.Connection) -> None:
    """Cids point at their message instead of copying it; conversations know their last ts."""
    # A cid row was ~100 bytes plus the whole text (up to 4,000 characters) for 10 minutes;
    # now it is the key and where the message is. A repeat reads the message itself.
    conn.execute("CREATE TABLE cid_refs (user_key TEXT NOT NULL, cid TEXT NOT NULL,"
                 " conversation TEXT NOT NULL, id INTEGER NOT NULL, ts INTEGER NOT NULL,"
                 " PRIMARY KEY (user_key, cid)) WITHOUT ROWID")
    conn.execute("INSERT INTO cid_refs SELECT user_key, cid, conversation, id, ts FROM cids")
    conn.execute("DROP TABLE cids")  # drops cids_by_ts with it
    conn.execute("ALTER TABLE cid_refs RENAME TO cids")
    conn.execute("CREATE INDEX cids_by_ts ON cids (ts)")
    # Room retention finds abandoned conversations by the ts of their newest message.
    conn.execute("ALTER TABLE conversations ADD COLUMN last_ts INTEGER NOT NULL DEFAULT 0")
    conn.execute("UPDATE conversations SET last_ts = coalesce((SELECT ts FROM messages"
                 " WHERE conversation = key AND id = last_id), 0)")
    conn.execute("CREATE INDEX conversations_by_last_ts ON conversations (last_ts)")
    # The highest last id of any conversation room retention deleted: a conversation without
    # a counter starts above it, so no id is ever used twice in one conversation.
    conn.execute("CREATE TABLE retired (last_id INTEGER NOT NULL)")
    conn.execute("INSERT INTO retired VALUES (0)")


def _v3_accounts(conn: sqlite3.Connection) -> None:
    """Accounts, sessions, invites, login-failure counters, revocations (chat/accounts/)."""
    # AUTOINCREMENT: an account id is never reused, even the highest after a delete; what
    # belongs to a person is keyed by it. Secrets are only ever stored hashed.
    conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                 " name TEXT NOT NULL, name_key TEXT NOT NULL UNIQUE, email TEXT,"
                 " role TEXT NOT NULL CHECK (role IN ('admin', 'member')),"
                 " disabled INTEGER NOT NULL DEFAULT 0, created_ts INTEGER NOT NULL,"
                 " password_hash TEXT NOT NULL)")
    conn.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,"
                 " account_id INTEGER NOT NULL REFERENCES accounts (id),"
                 " created_ts INTEGER NOT NULL, last_seen_ts INTEGER NOT NULL,"
                 " address TEXT NOT NULL, user_agent TEXT NOT NULL)")
    conn.execute("CREATE INDEX sessions_by_account ON sessions (account_id)")
    conn.execute("CREATE TABLE invites (code_hash TEXT PRIMARY KEY, created_by INTEGER,"
                 " created_ts INTEGER NOT NULL, used_by INTEGER, used_ts INTEGER)")
    conn.execute("CREATE TABLE login_failures (key TEXT PRIMARY KEY,"
                 " failures INTEGER NOT NULL, last_ts INTEGER NOT NULL)")
    # Written in the transaction that ends sessions; every node polls it for what to close.
    conn.execute("CREATE TABLE revocations (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                 " account_id INTEGER NOT NULL, session_id TEXT, ts INTEGER NOT NULL)")


def _v4_passkeys(conn: sqlite3.Connection) -> None:
    """Passkeys (WebAuthn credentials) and the ceremonies begun (chat/accounts/passkeys.py)."""
    # An account with passkeys only has password_hash '' (no password opens it).
    conn.execute("CREATE TABLE passkeys (id TEXT PRIMARY KEY,"
                 " account_id INTEGER NOT NULL REFERENCES accounts (id),"
                 " public_key BLOB NOT NULL, sign_count INTEGER NOT NULL,"
                 " transports TEXT NOT NULL, user_handle TEXT NOT NULL, label TEXT NOT NULL,"
                 " created_ts INTEGER NOT NULL, last_used_ts INTEGER)")
    conn.execute("CREATE INDEX passkeys_by_account ON passkeys (account_id)")
    # In the database, not a node's memory: any node finishes a ceremony another began.
    conn.execute("CREATE TABLE passkey_challenges (challenge_hash TEXT PRIMARY KEY,"
                 " purpose TEXT NOT NULL, account_id INTEGER, data TEXT NOT NULL,"
                 " expires_ts INTEGER NOT NULL, address TEXT NOT NULL)")
    conn.execute("CREATE INDEX passkey_challenges_by_expiry ON passkey_challenges (expires_ts)")
    conn.execute("CREATE INDEX passkey_challenges_by_address ON passkey_challenges (address)")


def _v5_registrations(conn: sqlite3.Connection) -> None:
    """Registrations follow the revocations' path: a row with the new account's name key."""
    # Every node hears it as it hears a revocation and closes a guest holding the name.
    conn.execute("ALTER TABLE revocations ADD COLUMN name_key TEXT")


def _v6_legacy_names(conn: sqlite3.Connection) -> None:
    """Which account an admin gave each old name's direct conversations to (adopt-dms)."""
    # The case-folded name as conversation keys from before accounts spell it.
    conn.execute("CREATE TABLE legacy_names (name TEXT PRIMARY KEY, account_id INTEGER NOT NULL,"
                 " ts INTEGER NOT NULL)")


def _v7_guest_marks(conn: sqlite3.Connection) -> None:
    """Messages remember whether a guest wrote them, so history pages mark them as live ones."""
    # Rows from before are unmarked (0): before accounts everyone was what a guest is now.
    conn.execute("ALTER TABLE messages ADD COLUMN guest INTEGER NOT NULL DEFAULT 0")


def _v8_external_ids(conn: sqlite3.Connection) -> None:
    """Accounts an embedding application's users sign in as (`--jwt-key`), by their `sub`."""
    conn.execute("CREATE TABLE external_ids (sub TEXT PRIMARY KEY,"
                 " account_id INTEGER NOT NULL UNIQUE REFERENCES accounts (id),"
                 " ts INTEGER NOT NULL)")


def _v9_read_marks(conn: sqlite3.Connection) -> None:
    """Read marks: the last id each party (an account, record.dm_key's `a:<id>`) read of each
    conversation (chat/people/reading.py)."""
    conn.execute("CREATE TABLE read_marks (party TEXT NOT NULL, conversation TEXT NOT NULL,"
                 " last_read INTEGER NOT NULL, PRIMARY KEY (party, conversation)) WITHOUT ROWID")


def _v10_last_seen(conn: sqlite3.Connection) -> None:
    """When each account (its party, `a:<id>`) was last seen online (chat/people/presence.py)."""
    conn.execute("CREATE TABLE last_seen (party TEXT PRIMARY KEY, ts INTEGER NOT NULL)"
                 " WITHOUT ROWID")


def _v11_rooms(conn: sqlite3.Connection) -> None:
    """Rooms, accounts' durable memberships, bans and mutes, the audit log (chat/rooms/)."""
    for statement in ROOM_TABLES:
        conn.execute(statement.replace("BIGSERIAL", "INTEGER PRIMARY KEY AUTOINCREMENT"))


def _v12_invite_expiry(conn: sqlite3.Connection) -> None:
    """Invites expire (chat/accounts/: `accounts invite --ttl-days`)."""
    # NULL: never (only a store's caller that gives no expiry). An invite made before this
    # expires as one made now would by default: a week after it was made.
    conn.execute("ALTER TABLE invites ADD COLUMN expires_ts INTEGER")
    conn.execute("UPDATE invites SET expires_ts = created_ts + ?", (INVITE_TTL_BEFORE_MS,))


def _v13_replies(conn: sqlite3.Connection) -> None:
    """A message may answer another of its conversation (issue 16): that one's id, or NULL."""
    conn.execute("ALTER TABLE messages ADD COLUMN reply_to INTEGER")


def _v14_webhooks(conn: sqlite3.Connection) -> None:
    """Incoming and outgoing webhooks of rooms (chat/hooks/, issue 17)."""
    for statement in HOOK_TABLES:
        conn.execute(statement)


def _v15_api_tokens(conn: sqlite3.Connection) -> None:
    """Personal access tokens (their hashes) and bot accounts (chat/accounts/tokens.py), and
    messages remember whether a bot wrote them (as `guest`)."""
    for statement in TOKEN_TABLES:
        conn.execute(statement)
    conn.execute("ALTER TABLE messages ADD COLUMN bot INTEGER NOT NULL DEFAULT 0")


def _v16_message_changes(conn: sqlite3.Connection) -> None:
    """Edits, deletes and the change counter (chat/history/changes.py, docs/protocol.md)."""
    for column in ("edited_ts INTEGER", "deleted_ts INTEGER",
                   "change_seq INTEGER NOT NULL DEFAULT 0", "author TEXT", "reactions TEXT"):
        conn.execute(f"ALTER TABLE messages ADD COLUMN {column}")
    # Partial: only changed messages are in it, so appends pay nothing for it.
    conn.execute("CREATE INDEX messages_by_change ON messages (conversation, change_seq)"
                 " WHERE change_seq > 0")
    conn.execute("ALTER TABLE conversations ADD COLUMN last_change INTEGER NOT NULL DEFAULT 0")


def _v17_search(conn: sqlite3.Connection) -> None:
    """Full-text search (chat/store/search.py): an FTS5 index over messages' text, kept in
    step with every insert, update of the text, and delete of a row by triggers."""
    # External content: the index holds the words, the text stays in `messages` alone (no
    # second copy to delete). Keyed by messages' rowid, which nothing here changes (the online
    # backup copies pages as they are; a manual VACUUM may renumber: then 'rebuild').
    # unicode61 keeps diacritics (remove_diacritics 0), as PostgreSQL's 'simple' config does:
    # both backends find the same messages.
    # The conversation's words are indexed too (not ranked): a search within one room then
    # reads that room's hits only, not every room's (10x faster over 1M messages:
    # docs/performance.md, "Search").
    conn.execute("CREATE VIRTUAL TABLE messages_fts USING fts5(text, conversation,"
                 " content='messages', content_rowid='rowid',"
                 " tokenize='unicode61 remove_diacritics 0')")
    conn.execute("CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN"
                 " INSERT INTO messages_fts (rowid, text, conversation)"
                 " VALUES (new.rowid, new.text, new.conversation); END")
    conn.execute("CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN"
                 " INSERT INTO messages_fts (messages_fts, rowid, text, conversation)"
                 " VALUES ('delete', old.rowid, old.text, old.conversation); END")
    conn.execute("CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN"
                 " INSERT INTO messages_fts (messages_fts, rowid, text, conversation)"
                 " VALUES ('delete', old.rowid, old.text, old.conversation);"
                 " INSERT INTO messages_fts (rowid, text, conversation)"
                 " VALUES (new.rowid, new.text, new.conversation); END")
    # The history already stored: read once, in this migration's transaction (docs/search.md:
    # about a minute per million messages, the file grows by about a third of the text).
    conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")


def _v18_files(conn: sqlite3.Connection) -> None:
    """Uploaded files' records and the messages that carry them (chat/files/)."""
    for statement in FILE_TABLES:
        conn.execute(statement)


def _v19_server_secrets(conn: sqlite3.Connection) -> None:
    """Secrets the server makes for itself (chat/store/sql.py SECRET_TABLES)."""
    for statement in SECRET_TABLES:
        conn.execute(statement)


# Applied in order; the file's schema_version says how many already are. Append, never edit.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1_history, _v2_references,
                                                          _v3_accounts, _v4_passkeys,
                                                          _v5_registrations, _v6_legacy_names,
                                                          _v7_guest_marks, _v8_external_ids,
                                                          _v9_read_marks, _v10_last_seen,
                                                          _v11_rooms, _v12_invite_expiry,
                                                          _v13_replies,
                                                          _v14_webhooks,
                                                          _v15_api_tokens,
                                                          _v16_message_changes,
                                                          _v17_search,
                                                          _v18_files,
                                                          _v19_server_secrets]


def memory_uri() -> str:
    """The URI of a new, empty in-memory database that this process's connections can share."""
    # SQLite's memdb VFS (3.36+): a name starting with "/" is one database for every connection
    # of the process that opens it, freed when the last closes; unique, so stores never share.
    # Not `mode=memory&cache=shared`: a shared cache locks per table and fails a reader with
    # SQLITE_LOCKED (no busy wait) while a writer holds the table, and the writer likewise.
    return f"file:/chat-memory-{uuid.uuid4().hex}?vfs=memdb"


def connect(path: str, *, lock_timeout_s: float, synchronous: Synchronous | None = None,
            in_memory: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit); the writer's to a file sets
    WAL, a reader's is read-only. `in_memory`: `path` is a memory_uri()."""
    conn = sqlite3.connect(path, timeout=lock_timeout_s, isolation_level=None, uri=in_memory)
    try:
        if in_memory:
            # Its rollback journal stays in memory and nothing is fsynced: WAL (which memdb
            # cannot do: journal_mode stays "memory"), synchronous and the WAL's size limit
            # change nothing there. One connection reads and writes (SQLiteStore), so no reader
            # ever waits on a writer's lock.
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens it now
        elif synchronous is not None:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"the file system does not support WAL mode ({mode} instead)")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
            # A deleted message's text is overwritten with zeros in the file, not left in a
            # free page (chat/history/changes.py; the WAL is checkpointed after each delete).
            conn.execute("PRAGMA secure_delete = ON")
        else:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the header
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date in one transaction; the version it ends at."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version: int = row[0] if row else 0
        if row is None:
            conn.execute("INSERT INTO schema_version VALUES (0)")
        if version > len(MIGRATIONS):
            raise StoreError(f"the file has schema version {version}, newer than this "
                             f"server's {len(MIGRATIONS)}; run a newer server")
        for step in MIGRATIONS[version:]:
            step(conn)
        version = max(version, len(MIGRATIONS))
        # Always writes, so a read-only file fails here, at start-up, not at the first message.
        conn.execute("UPDATE schema_version SET version = ?", (version,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return version


def describe(exc: BaseException) -> str:
    """A one-line reason for a failed open or write, with a hint where SQLite's is terse."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    hints = {
        "unable to open database file": "the path must name a file in a writable directory",
        "disk I/O error": "the disk refused a write: is it full, or mounted read-only?",
        "database or disk is full": "the disk is full",
        "file is not a database": "the file is not a SQLite database, or it is corrupt",
        "attempt to write a readonly database": "the file or its directory is read-only",
        "database disk image is malformed": "the file is corrupt",
        "database is locked": "another process holds the file's write lock",
    }
    hint = hints.get(text)
    return f"{text} ({hint})" if hint else text


def message_from_row(row: tuple[Any, ...]) -> StoredMessage:
    """A StoredMessage from a row of MESSAGE_COLUMNS or READ_COLUMNS (sql.py)."""
    message = StoredMessage(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
                            bool(row[8]), row[9], bot=bool(row[10]))
    if len(row) == 11:
        return message
    return dataclasses.replace(message, edited=row[11], deleted=row[12], change=int(row[13]),
                               author=row[14], reactions=row[15])

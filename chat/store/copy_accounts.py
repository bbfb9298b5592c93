"""copy-history's second half: the accounts and invites, by id, so everyone keeps their
account, their password and their direct conversations (keyed by account id) in the new store;
with them the tables that belong to accounts: passkeys (a way in, as the password hash is),
external ids (an embedding application's user stays the same account) and legacy names (which
account adopted each old name's conversations, moved with the history; without it the name
could be adopted a second time, by another account); read marks and last-seen times (unread
counts and presence survive the move); and the rooms, which live beside them.

Sessions are not copied: the source may still be served while the copy runs, and a session
ended there afterwards (a logout, a revocation, a disabled account) would live on in the
target with no revocation to tell anyone; a stolen token would open sockets again. Everyone
signs in once after the move instead. Login-failure counters, revocations and passkey
challenges (a ceremony begun on the source is finished there, within 5 minutes) are a running
server's own short-lived bookkeeping and are not copied either.

Rows are upserted by their key: a rerun (say, just before the switch) brings each account's
newest password hash, role and disabled state. A target holding accounts the source lacks, or
another name at an id, is refused before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from chat.store.copy_sides import CopyError, Side

ACCOUNT_COLUMNS = "id, name, name_key, email, role, disabled, created_ts, password_hash"
INVITE_COLUMNS = "code_hash, created_by, created_ts, used_by, used_ts, expires_ts"
PASSKEY_COLUMNS = ("id, account_id, public_key, sign_count, transports, user_handle, label,"
                   " created_ts, last_used_ts")


@dataclass(frozen=True, slots=True)
class Table:
    """One account table as copy-history copies it: its columns, key, and what a rerun
    refreshes (every other column)."""

    name: str
    columns: str
    key: str
    # The target's rows are deleted first, not only upserted: a row deleted on the source
    # between two runs must not live on in the target.
    replace: bool = False
    # PostgreSQL draws the key from an identity sequence: set past the copied keys after.
    identity: bool = False

    def select(self) -> str:
        return f"SELECT {self.columns} FROM {self.name} ORDER BY {self.key}"

    def upsert(self) -> str:
        names = [column.strip() for column in self.columns.split(",")]
        keys = {column.strip() for column in self.key.split(",")}
        refreshed = ", ".join(f"{name} = excluded.{name}" for name in names if name not in keys)
        action = f"DO UPDATE SET {refreshed}" if refreshed else "DO NOTHING"  # all key
        return (f"INSERT INTO {self.name} ({self.columns}) VALUES"
                f" ({', '.join('?' for _ in names)})"
                f" ON CONFLICT ({self.key}) {action}")


# In this order: the others name accounts. Not passkey_challenges: a challenge lives 5 minutes
# for a ceremony the source's server began, and the target is not served until the copy is
# done, so by then none could be finished anyway.
TABLES = [Table("accounts", ACCOUNT_COLUMNS, "id", identity=True),
          Table("invites", INVITE_COLUMNS, "code_hash"),
          # A passkey its owner deleted (a lost device) must stop opening the account.
          Table("passkeys", PASSKEY_COLUMNS, "id", replace=True),
          Table("external_ids", "sub, account_id, ts", "sub"),
          Table("legacy_names", "name, account_id, ts", "name"),
          # The rooms live in the accounts' database (chat/rooms/store.py): who owns, moderates
          # and may read a private room, its bans and mutes (mirrored, as a member removed or a
          # ban lifted on the source stays so), the messages moderators removed (without them
          # a removed message would be read again) and the audit log.
          Table("rooms", "name, visibility, topic, owner_id, created_ts, removals", "name"),
          Table("room_members", "room, account_id, role, joined_ts", "room, account_id",
                replace=True),
          Table("room_sanctions", "room, kind, target, name_key, until_ts", "room, kind, target",
                replace=True),
          Table("removed_messages", "room, id, by_id, ts", "room, id"),
          Table("audit", "seq, ts, actor_id, actor, action, room, target, target_name, details",
                "seq", identity=True),
          # Rooms' webhooks (chat/hooks/store.py), revoked ones too (as the source has them).
          Table("webhooks", "id, kind, room, name, secret_hash, url, triggers, signing_key,"
                " created_by, created_ts, revoked_ts", "id", replace=True),
          # API tokens (their hashes; mirrored: a token revoked on the source stays revoked)
          # and which accounts are bots (chat/accounts/tokens.py).
          Table("api_tokens", "id, account_id, name, token_hash, scopes, created_ts,"
                " created_by, last_used_ts", "id", replace=True),
          Table("bots", "account_id, created_by, created_ts", "account_id"),
          # Files' records (chat/files/store.py; their bytes are in --files-dir, which the
          # target's servers must use too), mirrored: a file deleted on the source stays so.
          Table("files", "id, owner_id, name, size, type, sha256, width, height, thumb_sha256,"
                " thumb_type, created_ts, attached", "id", replace=True),
          Table("file_links", "conversation, message_id, file_id",
                "conversation, message_id, file_id", replace=True),
          # What each account read of each conversation and when it was last online
          # (chat/people/): without them a move makes every message unread again.
          Table("read_marks", "party, conversation, last_read", "party, conversation"),
          Table("last_seen", "party, ts", "party"),
          # The server's own secrets: the decoy passkey ids a name without passkeys is shown
          # stay what they were before the move (new ones would tell that the name has none).
          Table("server_secrets", "name, value", "name")]


def check_accounts(source: Side, target: Side) -> None:
    """CopyError if the target holds an account the source does not (by id and name key)."""
    theirs = {int(row[0]): str(row[1]) for row in source.rows(
        "SELECT id, name_key FROM accounts")}
    for account_id, key in target.rows("SELECT id, name_key FROM accounts ORDER BY id"):
        if theirs.get(int(account_id)) != key:
            raise CopyError(f"{target.name} holds other accounts: {key!r} (id {account_id}) "
                            f"is not {source.name}'s; copy into an empty store")


def copy_accounts(source: Side, target: Side) -> dict[str, int]:
    """Copy every table of TABLES in one transaction; the rows read from each."""
    copied: dict[str, int] = {}
    rows = {table.name: source.rows(table.select()) for table in TABLES}
    with target.transaction():
        for table in TABLES:
            if table.replace:
                target.execute(f"DELETE FROM {table.name}")
            if rows[table.name]:
                target.execute_many(table.upsert(), rows[table.name])
            copied[table.name] = len(rows[table.name])
        for table in TABLES:
            if target.dialect == "postgresql" and table.identity:
                # Keys were given, not drawn: the next row made there must come after them.
                target.execute(f"SELECT setval(pg_get_serial_sequence(?, ?), max({table.key}))"
                               f" FROM {table.name} HAVING count(*) > 0",
                               (table.name, table.key))
        # SQLite's AUTOINCREMENT counter follows the highest id inserted by itself.
    return copied

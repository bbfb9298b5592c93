"""copy-history's second half: the accounts and invites, by id, so everyone keeps their
account, their password and their direct conversations (keyed by account id) in the new store;
with them the tables that belong to accounts: passkeys (a way in, as the password hash is),
external ids (an embedding application's user stays the same account) and legacy names (which
account adopted each old name's conversations, moved with the history; without it the name
could be adopted a second time, by another account).

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

    def select(self) -> str:
        return f"SELECT {self.columns} FROM {self.name} ORDER BY {self.key}"

    def upsert(self) -> str:
        names = [column.strip() for column in self.columns.split(",")]
        refreshed = ", ".join(f"{name} = excluded.{name}" for name in names if name != self.key)
        return (f"INSERT INTO {self.name} ({self.columns}) VALUES"
                f" ({', '.join('?' for _ in names)})"
                f" ON CONFLICT ({self.key}) DO UPDATE SET {refreshed}")


# In this order: the others name accounts. Not passkey_challenges: a challenge lives 5 minutes
# for a ceremony the source's server began, and the target is not served until the copy is
# done, so by then none could be finished anyway.
TABLES = [Table("accounts", ACCOUNT_COLUMNS, "id"), Table("invites", INVITE_COLUMNS, "code_hash"),
          # A passkey its owner deleted (a lost device) must stop opening the account.
          Table("passkeys", PASSKEY_COLUMNS, "id", replace=True),
          Table("external_ids", "sub, account_id, ts", "sub"),
          Table("legacy_names", "name, account_id, ts", "name")]


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
        if target.dialect == "postgresql":
            # Ids were given, not drawn: the next account created there must come after them.
            target.execute("SELECT setval(pg_get_serial_sequence(?, ?), max(id))"
                           " FROM accounts HAVING count(*) > 0", ("accounts", "id"))
        # SQLite's AUTOINCREMENT counter follows the highest id inserted by itself.
    return copied

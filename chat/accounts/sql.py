"""SQL text the SQLite and PostgreSQL account stores share, written once with `?` markers
(chat.store.sql.postgres gives PostgreSQL's); rows become Accounts and Sessions here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chat.accounts.model import ROLES, Account, Revocation, Session

ACCOUNT_COLUMNS = "id, name, name_key, email, role, disabled, created_ts"
SESSION_COLUMNS = "id, account_id, created_ts, last_seen_ts, address, user_agent"

# The role is decided in the inserting statement, under the transaction's lock: the first
# account ever is an admin. The two roles are parameters (the shared text holds no quotes).
CREATE_ACCOUNT = ("INSERT INTO accounts (name, name_key, email, role, disabled, created_ts,"
                  " password_hash) SELECT ?, ?, ?,"
                  " CASE WHEN EXISTS (SELECT 1 FROM accounts) THEN ? ELSE ? END, 0, ?, ?"
                  f" RETURNING {ACCOUNT_COLUMNS}")
# An embedding application's user (--jwt-key) is bound to an account on first sign-in.
EXTERNAL_ACCOUNT = (f"SELECT a.{', a.'.join(ACCOUNT_COLUMNS.split(', '))} FROM external_ids e"
                    " JOIN accounts a ON a.id = e.account_id WHERE e.sub = ?")
BIND_EXTERNAL = "INSERT INTO external_ids (sub, account_id, ts) VALUES (?, ?, ?)"
# No argon2 hash starts with '!': a password never verifies against it (Passwords.verify).
NO_PASSWORD = "!external"
USE_INVITE = ("UPDATE invites SET used_by = ?, used_ts = ? WHERE code_hash = ?"
              " AND used_by IS NULL")
ACCOUNT_BY_ID = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?"
ACCOUNT_BY_KEY = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name_key = ?"
LIST_ACCOUNTS = (f"SELECT {ACCOUNT_COLUMNS}, (SELECT count(*) FROM sessions"
                 " WHERE sessions.account_id = accounts.id) FROM accounts ORDER BY id")
PASSWORD_HASH = "SELECT password_hash FROM accounts WHERE id = ?"
SET_PASSWORD_HASH = "UPDATE accounts SET password_hash = ? WHERE id = ?"
SET_DISABLED = "UPDATE accounts SET disabled = ? WHERE id = ?"
SET_ROLE = "UPDATE accounts SET role = ? WHERE id = ?"

CREATE_SESSION = (f"INSERT INTO sessions ({SESSION_COLUMNS}, token_hash)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?)")
SESSION_BY_TOKEN = (f"SELECT s.id, s.account_id, s.created_ts, s.last_seen_ts, s.address,"
                    f" s.user_agent, a.{', a.'.join(ACCOUNT_COLUMNS.split(', '))}"
                    " FROM sessions s JOIN accounts a ON a.id = s.account_id"
                    " WHERE s.token_hash = ?")
TOUCH_SESSION = "UPDATE sessions SET last_seen_ts = ? WHERE id = ? AND last_seen_ts < ?"
SESSIONS_OF = (f"SELECT {SESSION_COLUMNS} FROM sessions WHERE account_id = ?"
               " ORDER BY last_seen_ts DESC, id")
SESSION_ACCOUNT = "SELECT account_id FROM sessions WHERE id = ?"
DELETE_SESSION = "DELETE FROM sessions WHERE id = ?"
DELETE_SESSIONS_OF = "DELETE FROM sessions WHERE account_id = ?"

CREATE_INVITE = "INSERT INTO invites (code_hash, created_by, created_ts) VALUES (?, ?, ?)"

FAILURES = "SELECT failures, last_ts FROM login_failures WHERE key = ?"
# From 1 again when the last failure is older than the forget-before cutoff (the 3rd `?`).
RECORD_FAILURE = ("INSERT INTO login_failures (key, failures, last_ts) VALUES (?, 1, ?)"
                  " ON CONFLICT (key) DO UPDATE SET last_ts = excluded.last_ts,"
                  " failures = CASE WHEN login_failures.last_ts < ? THEN 1"
                  " ELSE login_failures.failures + 1 END"
                  " RETURNING failures, last_ts")
CLEAR_FAILURES = "DELETE FROM login_failures WHERE key = ?"
FORGIVE_FAILURE = ("UPDATE login_failures SET failures = failures - 1 WHERE key = ?"
                   " AND failures > 0")

REVOKE = ("INSERT INTO revocations (account_id, session_id, ts) VALUES (?, ?, ?)"
          " RETURNING seq")
# A registration, written in the account's creating transaction: every node hears it as it
# hears revocations, and closes a guest who holds the name (chat/node/signins.py).
REGISTERED = ("INSERT INTO revocations (account_id, session_id, ts, name_key) VALUES (?, NULL,"
              " ?, ?) RETURNING seq")
LAST_REVOCATION = "SELECT coalesce(max(seq), 0) FROM revocations"
REVOCATIONS_AFTER = ("SELECT seq, account_id, session_id, ts, name_key FROM revocations"
                     " WHERE seq > ? ORDER BY seq LIMIT ?")
# Most revocations a watcher reads at once (rows): a burst is read in several rounds.
REVOCATIONS_PER_READ = 1000


def account_from_row(row: Sequence[Any]) -> Account:
    """An Account from a row of ACCOUNT_COLUMNS."""
    role = str(row[4])
    assert role in ROLES, role
    return Account(int(row[0]), str(row[1]), str(row[2]),
                   None if row[3] is None else str(row[3]),
                   "admin" if role == "admin" else "member", bool(row[5]), int(row[6]))


def session_from_row(row: Sequence[Any]) -> Session:
    """A Session from a row of SESSION_COLUMNS."""
    return Session(str(row[0]), int(row[1]), int(row[2]), int(row[3]), str(row[4]), str(row[5]))


def revocation_from_row(row: Sequence[Any]) -> Revocation:
    """A Revocation from a row of REVOCATIONS_AFTER."""
    return Revocation(int(row[0]), int(row[1]), None if row[2] is None else str(row[2]),
                      int(row[3]), None if row[4] is None else str(row[4]))

"""SQL text the SQLite and PostgreSQL account stores share, written once with `?` markers
(chat.store.sql.postgres gives PostgreSQL's); rows become Accounts and Sessions here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chat.accounts.model import INVITE_ID_CHARS, ROLES, Account, Invite, Revocation, Session

ACCOUNT_COLUMNS = "id, name, name_key, email, role, disabled, created_ts"
SESSION_COLUMNS = "id, account_id, created_ts, last_seen_ts, address, user_agent"

# The role is decided in the inserting statement, under the transaction's lock: the first
# account ever is an admin. The two roles are parameters (the shared text holds no quotes).
CREATE_ACCOUNT = ("INSERT INTO accounts (name, name_key, email, role, disabled, created_ts,"
                  " password_hash) SELECT ?, ?, ?,"
                  " CASE WHEN EXISTS (SELECT 1 FROM accounts) THEN ? ELSE ? END, 0, ?, ?"
                  f" RETURNING {ACCOUNT_COLUMNS}")
# Unused and unexpired at the creation's ts (the 4th `?`).
USE_INVITE = ("UPDATE invites SET used_by = ?, used_ts = ? WHERE code_hash = ?"
              " AND used_by IS NULL AND (expires_ts IS NULL OR expires_ts > ?)")
ACCOUNT_BY_ID = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?"
ACCOUNT_BY_KEY = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name_key = ?"
LIST_ACCOUNTS = (f"SELECT {ACCOUNT_COLUMNS}, (SELECT count(*) FROM sessions"
                 " WHERE sessions.account_id = accounts.id) FROM accounts ORDER BY id")
PASSWORD_HASH = "SELECT password_hash FROM accounts WHERE id = ?"
SET_PASSWORD_HASH = "UPDATE accounts SET password_hash = ? WHERE id = ?"
SET_DISABLED = "UPDATE accounts SET disabled = ? WHERE id = ?"
SET_ROLE = "UPDATE accounts SET role = ? WHERE id = ?"
# A row if the account is an enabled admin and no other is: demoting or disabling it would
# leave no one to manage the server. Read inside the changing transaction, under its lock.
IS_LAST_ADMIN = ("SELECT 1 FROM accounts WHERE id = ? AND role = ? AND disabled = 0"
                 " AND NOT EXISTS (SELECT 1 FROM accounts WHERE role = ? AND disabled = 0"
                 " AND id <> ?)")

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

CREATE_INVITE = ("INSERT INTO invites (code_hash, created_by, created_ts, expires_ts)"
                 " VALUES (?, ?, ?, ?)")
LIST_INVITES = ("SELECT i.code_hash, i.created_ts, i.expires_ts, i.used_ts, a.name"
                " FROM invites i LEFT JOIN accounts a ON a.id = i.used_by"
                " ORDER BY i.created_ts, i.code_hash")
# An unused invite whose hash starts with the given id expires at the given ts (now).
EXPIRE_INVITE = ("UPDATE invites SET expires_ts = ? WHERE substr(code_hash, 1, ?) = ?"
                 " AND used_by IS NULL AND (expires_ts IS NULL OR expires_ts > ?)")

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
LAST_REVOCATION = "SELECT coalesce(max(seq), 0) FROM revocations"
REVOCATIONS_AFTER = ("SELECT seq, account_id, session_id, ts FROM revocations WHERE seq > ?"
                     " ORDER BY seq LIMIT ?")
# Most revocations a watcher reads at once (rows): a burst is read in several rounds.
REVOCATIONS_PER_READ = 1000

# The sweep (chat/accounts/sweep.py), a batch of at most the last `?` rows per statement.
# Expired: unused since the idle cutoff, or created before the maximum-age cutoff.
DELETE_EXPIRED_SESSIONS = ("DELETE FROM sessions WHERE id IN (SELECT id FROM sessions"
                           " WHERE last_seen_ts < ? OR created_ts < ? LIMIT ?)"
                           " RETURNING id, account_id")
PRUNE_FAILURES = ("DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures"
                  " WHERE last_ts < ? LIMIT ?)")
PRUNE_REVOCATIONS = ("DELETE FROM revocations WHERE seq IN (SELECT seq FROM revocations"
                     " WHERE ts < ? LIMIT ?)")


def is_last_admin_params(account_id: int) -> tuple[int, str, str, int]:
    """The parameters of IS_LAST_ADMIN for `account_id`."""
    return (account_id, "admin", "admin", account_id)


def invite_from_row(row: Sequence[Any]) -> Invite:
    """An Invite from a row of LIST_INVITES."""
    return Invite(str(row[0])[:INVITE_ID_CHARS], int(row[1]),
                  None if row[2] is None else int(row[2]),
                  None if row[3] is None else int(row[3]), None if row[4] is None else str(row[4]))


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
                      int(row[3]))

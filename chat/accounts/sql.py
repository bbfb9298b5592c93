"""SQL text the SQLite and PostgreSQL account stores share, written once with `?` markers
(chat.store.sql.postgres gives PostgreSQL's); rows become Accounts and Sessions here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chat.accounts.model import (
    INVITE_ID_CHARS,
    ROLES,
    Account,
    Challenge,
    Invite,
    Passkey,
    Revocation,
    Session,
)

ACCOUNT_COLUMNS = "id, name, name_key, email, role, disabled, created_ts"
JOINED_ACCOUNT_COLUMNS = f"a.{', a.'.join(ACCOUNT_COLUMNS.split(', '))}"  # `accounts a` joined
SESSION_COLUMNS = "id, account_id, created_ts, last_seen_ts, address, user_agent"

# The role is decided in the inserting statement, under the transaction's lock: the first
# account ever is an admin. The two roles are parameters (the shared text holds no quotes).
CREATE_ACCOUNT = ("INSERT INTO accounts (name, name_key, email, role, disabled, created_ts,"
                  " password_hash) SELECT ?, ?, ?,"
                  " CASE WHEN EXISTS (SELECT 1 FROM accounts) THEN ? ELSE ? END, 0, ?, ?"
                  f" RETURNING {ACCOUNT_COLUMNS}")
# An embedding application's user (--jwt-key) is bound to an account on first sign-in.
_EXTERNAL_JOINED = " FROM external_ids e JOIN accounts a ON a.id = e.account_id"
EXTERNAL_ACCOUNT = f"SELECT {JOINED_ACCOUNT_COLUMNS}{_EXTERNAL_JOINED} WHERE e.sub = ?"
BIND_EXTERNAL = "INSERT INTO external_ids (sub, account_id, ts) VALUES (?, ?, ?)"
# An account without a password (an application's user, or passkeys only): login refuses it.
NO_PASSWORD = ""
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
_SESSION_AND_ACCOUNT = ("s.id, s.account_id, s.created_ts, s.last_seen_ts, s.address,"
                        f" s.user_agent, {JOINED_ACCOUNT_COLUMNS}")
_SESSIONS_JOINED = " FROM sessions s JOIN accounts a ON a.id = s.account_id"
SESSION_BY_TOKEN = f"SELECT {_SESSION_AND_ACCOUNT}{_SESSIONS_JOINED} WHERE s.token_hash = ?"


def in_list(count: int) -> str:
    """`(?, ?, ...)`: `count` markers for an IN list (a batch of coalesced lookups)."""
    return f"({', '.join('?' * count)})"


def sessions_by_tokens(count: int) -> str:
    """SESSION_BY_TOKEN for `count` token hashes at once, each row ending with its hash."""
    return (f"SELECT {_SESSION_AND_ACCOUNT}, s.token_hash{_SESSIONS_JOINED}"
            f" WHERE s.token_hash IN {in_list(count)}")


def external_accounts(count: int) -> str:
    """EXTERNAL_ACCOUNT for `count` subs at once, each row ending with its sub."""
    return (f"SELECT {JOINED_ACCOUNT_COLUMNS}, e.sub{_EXTERNAL_JOINED}"
            f" WHERE e.sub IN {in_list(count)}")


def touch_sessions(count: int) -> str:
    """Set `count` sessions' last-seen time, never back: parameters (ts, ts, *ids)."""
    return ("UPDATE sessions SET last_seen_ts = ? WHERE last_seen_ts < ?"
            f" AND id IN {in_list(count)}")


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
# A registration, written in the account's creating transaction: every node hears it as it
# hears revocations, and closes a guest who holds the name (chat/node/signins.py).
REGISTERED = ("INSERT INTO revocations (account_id, session_id, ts, name_key) VALUES (?, NULL,"
              " ?, ?) RETURNING seq")
# API tokens (chat/accounts/tokens.py): deleted with a revocation of the sessions id
# `t:<token id>` (chat/node/signins.py closes the token's sockets).
DELETE_TOKEN = "DELETE FROM api_tokens WHERE id = ? RETURNING account_id"
DELETE_OWN_TOKEN = "DELETE FROM api_tokens WHERE id = ? AND account_id = ? RETURNING account_id"
TOKEN_SESSION_PREFIX = "t:"  # a socket opened with an API token: its Auth.session_id


def delete_token_step(token_id: str, account_id: int | None) -> tuple[str, tuple[Any, ...]]:
    """The statement that deletes a token (of `account_id`; None: anyone's)."""
    if account_id is None:
        return DELETE_TOKEN, (token_id,)
    return DELETE_OWN_TOKEN, (token_id, account_id)


LAST_REVOCATION = "SELECT coalesce(max(seq), 0) FROM revocations"
REVOCATIONS_AFTER = ("SELECT seq, account_id, session_id, ts, name_key FROM revocations"
                     " WHERE seq > ? ORDER BY seq LIMIT ?")
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
# Passkey ceremonies begun and never finished, expired before now: create_challenge forgets
# them too, but only when another ceremony begins.
PRUNE_CHALLENGES = ("DELETE FROM passkey_challenges WHERE challenge_hash IN (SELECT"
                    " challenge_hash FROM passkey_challenges WHERE expires_ts < ? LIMIT ?)")


def is_last_admin_params(account_id: int) -> tuple[int, str, str, int]:
    """The parameters of IS_LAST_ADMIN for `account_id`."""
    return (account_id, "admin", "admin", account_id)


def invite_from_row(row: Sequence[Any]) -> Invite:
    """An Invite from a row of LIST_INVITES."""
    return Invite(str(row[0])[:INVITE_ID_CHARS], int(row[1]),
                  None if row[2] is None else int(row[2]),
                  None if row[3] is None else int(row[3]), None if row[4] is None else str(row[4]))


PASSKEY_COLUMNS = ("id, account_id, public_key, sign_count, transports, user_handle, label,"
                   " created_ts, last_used_ts")
CREATE_PASSKEY = f"INSERT INTO passkeys ({PASSKEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
PASSKEY_BY_ID = f"SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE id = ?"
PASSKEYS_OF = f"SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE account_id = ? ORDER BY created_ts, id"
# Compare-and-set on the counter read before the signature was checked: of two sign-ins
# with the same counter value (a cloned authenticator, a replay) only one gets through.
USE_PASSKEY = ("UPDATE passkeys SET sign_count = ?, last_used_ts = ? WHERE id = ?"
               " AND sign_count = ?")
# Never the last way in: an account keeps a password or another passkey.
DELETE_PASSKEY = ("DELETE FROM passkeys WHERE id = ? AND account_id = ?"
                  " AND (EXISTS (SELECT 1 FROM accounts WHERE id = ? AND length(password_hash) > 0)"
                  " OR (SELECT count(*) FROM passkeys WHERE account_id = ?) > 1)")
FORGET_EXPIRED_CHALLENGES = "DELETE FROM passkey_challenges WHERE expires_ts < ?"
CHALLENGES_OF = "SELECT count(*) FROM passkey_challenges WHERE address = ?"
CREATE_CHALLENGE = ("INSERT INTO passkey_challenges (challenge_hash, purpose, account_id, data,"
                    " expires_ts, address) VALUES (?, ?, ?, ?, ?, ?)")
# Taken (deleted) by the finish that presents it, expired or not: used once at most.
TAKE_CHALLENGE = ("DELETE FROM passkey_challenges WHERE challenge_hash = ?"
                  " RETURNING challenge_hash, purpose, account_id, data, expires_ts, address")


def passkey_from_row(row: Sequence[Any]) -> Passkey:
    """A Passkey from a row of PASSKEY_COLUMNS."""
    transports = tuple(t for t in str(row[4]).split(",") if t)
    return Passkey(str(row[0]), int(row[1]), bytes(row[2]), int(row[3]), transports,
                   str(row[5]), str(row[6]), int(row[7]),
                   None if row[8] is None else int(row[8]))


def passkey_params(passkey: Passkey) -> tuple[Any, ...]:
    """CREATE_PASSKEY's parameters."""
    return (passkey.id, passkey.account_id, passkey.public_key, passkey.sign_count,
            ",".join(passkey.transports), passkey.user_handle, passkey.label,
            passkey.created_ts, passkey.last_used_ts)


def challenge_from_row(row: Sequence[Any]) -> Challenge:
    """A Challenge from a row of TAKE_CHALLENGE."""
    return Challenge(str(row[0]), str(row[1]), None if row[2] is None else int(row[2]),
                     str(row[3]), int(row[4]), str(row[5]))


def challenge_params(challenge: Challenge) -> tuple[Any, ...]:
    """CREATE_CHALLENGE's parameters."""
    return (challenge.challenge_hash, challenge.purpose, challenge.account_id, challenge.data,
            challenge.expires_ts, challenge.address)


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


# A node-independent secret by name (server_secrets): made once by whichever node asks first;
# every other node, and every later start, reads the same one.
MAKE_SECRET = "INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
SECRET = "SELECT value FROM server_secrets WHERE name = ?"

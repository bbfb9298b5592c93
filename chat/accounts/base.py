"""The account store interface: what the account service needs from any backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from chat.accounts.adopt import Adopted
from chat.accounts.model import (
    Account,
    Challenge,
    Invite,
    Passkey,
    Revocation,
    Role,
    Session,
    Sweep,
    Swept,
)

OnRevocation = Callable[[Revocation], None]


class NameTaken(Exception):
    """Another account holds this name key (the same name up to case and look-alikes)."""


class InviteInvalid(Exception):
    """No open invite has this code hash: never created, already used, or expired."""


class LastAdmin(Exception):
    """The change would leave no enabled admin: refused, nothing changed."""


class PasskeyTaken(Exception):
    """A passkey with this credential id is registered already (to whichever account)."""


class AccountStore(Protocol):
    """Accounts, their sessions, invites and login-failure counters, durable and shared by
    every node (and the admin command) that opens the same database.

    Guarantees:
    - Name keys are unique: create_account raises NameTaken for a key another account holds,
      whatever the interleaving of concurrent creations (the database's unique index decides).
    - The first account ever created is an admin, every later one a member: decided inside the
      creating transaction under a lock (SQLite's write lock, a PostgreSQL advisory lock), so
      two concurrent first registrations cannot both become admin.
    - An invite is consumed before its expiry, in the transaction that creates its account,
      by exactly one: a second creation with the same code (or one after the expiry) raises
      InviteInvalid and creates nothing; a creation that fails (NameTaken) leaves the invite
      unused.
    - Secrets are stored only as hashes: sessions by the sha256 of their token, invites by the
      sha256 of their code, passwords as argon2id hashes made by the caller.
    - Ending sessions (one, or all of an account's), disabling an account and setting a
      password with `end_sessions` write a Revocation in the same transaction; a watcher
      (watch_revocations) on any node hears of each once, in `seq` order, within the poll
      interval (SQLite) or at once (PostgreSQL's NOTIFY, with the poll as a fallback).
    - With `keep_an_admin`, "is another enabled admin left?" is read and the change made in
      one transaction under a lock (SQLite's write lock, a PostgreSQL advisory lock), so two
      concurrent demotions (or disablings) of the last two admins cannot both succeed.
    - Login attempts are counted per key before the password is checked (try_attempt), so
      any number of concurrent attempts meet the throttle as if they came one by one.
    - A passkey's credential id is unique across accounts (PasskeyTaken); its sign count
      moves only by compare-and-set (use_passkey), so one counter value signs in once.
    - A passkey ceremony's challenge is taken (deleted) by the first finish that presents it,
      on any node: single use, whatever the interleaving.
    - Ids of accounts are never reused. Timestamps are ms since the epoch, given by the caller.
    Every method raises chat.store.StoreError when the database fails.
    """

    async def start(self) -> None:
        """Open the database and bring its schema up to date."""
        ...

    async def close(self) -> None:
        """Stop the watchers, close connections the store opened."""
        ...

    async def create_account(self, name: str, name_key: str, email: str | None,
                             password_hash: str, ts: int, *, invite_hash: str | None = None,
                             passkey: Passkey | None = None) -> Account:
        """A new account (admin if it is the first); NameTaken, InviteInvalid, PasskeyTaken.
        `password_hash` '' means no password; `passkey` (its account_id ignored) is added in
        the same transaction: an account made with a passkey never exists without it."""
        ...

    async def account_by_id(self, account_id: int) -> Account | None: ...

    async def account_by_external(self, sub: str) -> Account | None:
        """The account bound to an embedding application's user id (`--jwt-key`'s `sub`)."""
        ...

    async def accounts_by_external(self, subs: Sequence[str]) -> dict[str, Account]:
        """account_by_external for several subs in one call (those bound to none left out)."""
        ...

    async def create_external(self, sub: str, name: str, name_key: str, ts: int) -> Account:
        """A new member account without a password, bound to `sub`, in one transaction;
        NameTaken if the name key or `sub` is another account's."""
        ...

    async def account_by_name_key(self, name_key: str) -> Account | None: ...

    async def list_accounts(self) -> list[tuple[Account, int]]:
        """Every account with its number of sessions, oldest account first."""
        ...

    async def password_hash(self, account_id: int) -> str | None: ...

    async def set_password_hash(self, account_id: int, password_hash: str, ts: int, *,
                                end_sessions: bool = False) -> bool:
        """Replace the hash (a rehash, or a reset that also ends every session); whether the
        account exists."""
        ...

    async def set_disabled(self, account_id: int, disabled: bool, ts: int, *,
                           keep_an_admin: bool = False) -> bool:
        """Disable (ending every session) or enable; whether the account exists. With
        `keep_an_admin`, LastAdmin instead of disabling the last enabled admin."""
        ...

    async def set_role(self, account_id: int, role: Role, *,
                       keep_an_admin: bool = False) -> bool:
        """Whether the account exists. With `keep_an_admin`, LastAdmin instead of demoting
        the last enabled admin."""
        ...

    async def create_session(self, session: Session, token_hash: str) -> None: ...

    async def session_by_token_hash(self, token_hash: str) -> tuple[Session, Account] | None:
        """The session whose token hashes to this, with its account."""
        ...

    async def sessions_by_token_hashes(self, token_hashes: Sequence[str]
                                       ) -> dict[str, tuple[Session, Account]]:
        """session_by_token_hash for several hashes in one call: each hash that has a session
        maps to it (the others are left out)."""
        ...

    async def touch_sessions(self, session_ids: Sequence[str], ts: int) -> None:
        """Record that the sessions were used at `ts` (a later time already written stays)."""
        ...

    async def sessions_of(self, account_id: int) -> list[Session]:
        """The account's sessions, most recently used first."""
        ...

    async def delete_session(self, session_id: str, ts: int) -> bool:
        """End one session; whether it existed."""
        ...

    async def delete_sessions_of(self, account_id: int, ts: int) -> int:
        """End every session of the account; how many there were."""
        ...

    async def delete_token(self, token_id: str, account_id: int | None, ts: int) -> bool:
        """Delete an API token (of `account_id`; None: anyone's) and write its revocation (the
        session id `t:<token id>`: its sockets close on every node); whether it existed."""
        ...

    async def create_invite(self, code_hash: str, created_by: int | None, ts: int,
                            expires_ts: int | None = None) -> None:
        """A single-use invite (`created_by` None: made by the admin command), usable until
        `expires_ts` (None: no expiry)."""
        ...

    async def list_invites(self) -> list[Invite]:
        """Every invite, used, expired or open, oldest first."""
        ...

    async def expire_invite(self, invite_id: str, ts: int) -> bool:
        """Make the open invite whose id (Invite.id) this is expire at `ts`; whether one did."""
        ...

    async def failures(self, key: str) -> tuple[int, int] | None:
        """The login-failure counter of `key`: (failures, ts of the last), or None."""
        ...

    async def try_attempt(self, keys: Sequence[str], ts: int, *, forget_before: int,
                          wait_ms: Callable[[tuple[int, int] | None], int]) -> int:
        """Atomically: if `wait_ms(counter)` is above 0 for any key's counter, change nothing
        and return the longest wait (ms); else count the attempt as one more failure on every
        key (from 1 again if its last was before `forget_before`) and return 0. Counting
        before the password is checked means concurrent attempts cannot all slip through
        before the first failure is recorded; a success then clears or forgives it."""
        ...

    async def clear_failures(self, key: str) -> None: ...

    async def forgive_failure(self, key: str) -> None:
        """Count one failure fewer for `key` (an attempt that succeeded after all)."""
        ...

    async def sweep(self, sweep: Sweep) -> Swept:
        """Delete expired sessions (each with a Revocation, so live sockets close on every
        node), old login-failure counters, old revocations and expired passkey challenges, in
        transactions of at most `sweep.batch` rows each. Safe on several nodes at once: a
        session is deleted, and revoked, by one (PostgreSQL: one node sweeps at a time, the
        others skip the round)."""
        ...

    async def add_passkey(self, passkey: Passkey) -> None:
        """Register a passkey; PasskeyTaken if its credential id is."""
        ...

    async def passkey_by_id(self, credential_id: str) -> Passkey | None: ...

    async def passkeys_of(self, account_id: int) -> list[Passkey]:
        """The account's passkeys, oldest first."""
        ...

    async def use_passkey(self, credential_id: str, seen_count: int, new_count: int,
                          ts: int) -> bool:
        """Move the sign count from `seen_count` to `new_count` and note the use; False if
        the count was no longer `seen_count` (another sign-in got there first)."""
        ...

    async def delete_passkey(self, credential_id: str, account_id: int) -> bool:
        """Delete one of the account's passkeys unless it is the account's last way in (no
        password, no other passkey); whether it did."""
        ...

    async def create_challenge(self, challenge: Challenge, ts: int, *,
                               max_per_address: int) -> bool:
        """Store a ceremony's challenge, unless its address has `max_per_address` stored
        already (False); those expired before `ts` are forgotten first."""
        ...

    async def take_challenge(self, challenge_hash: str) -> Challenge | None:
        """Remove and return the challenge with this hash (expired or not); None if absent."""
        ...

    async def server_secret(self, name: str) -> bytes:
        """The random secret stored under `name`, made at the first ask: the same for every
        node and every start (kept in the store, copied with the accounts)."""
        ...

    async def adopt_dms(self, account_id: int, old_name: str, ts: int) -> Adopted:
        """Give the direct conversations stored under `old_name` before accounts to the
        account, in one transaction (chat/accounts/adopt.py); AccountError if another account
        has that name's. Only for the admin command: nothing else may use the store meanwhile."""
        ...

    async def watch_revocations(self, callback: OnRevocation) -> None:
        """From now on, call `callback` for each revocation committed by anyone, until close."""
        ...

    # The same database for what else belongs to accounts (chat/rooms/store.py): statements
    # in SQLite's words with `?` markers and no quotes (chat.store.sql.postgres), run as given.

    async def sql_rows(self, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """The rows of one read."""
        ...

    async def sql_writes(self, steps: Sequence[tuple[str, tuple[Any, ...]]]) -> list[int]:
        """Run the statements in one transaction; the rows each changed."""
        ...

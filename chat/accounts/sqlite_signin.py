"""The sign-in half of the SQLite account store (sqlite_store.py has the accounts): sessions
ended, login-failure counters, passkeys and their ceremonies, and the sweep that prunes what
sign-ins leave behind; and the transaction every write of both halves runs in. Every end of a
session is recorded as a revocation in its transaction, so live sockets close on every node
(each polls the table)."""

from __future__ import annotations

import contextlib
import sqlite3
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from chat.accounts import sql
from chat.accounts.base import PasskeyTaken
from chat.accounts.model import Challenge, Passkey, Sweep, Swept
from chat.accounts.sql_store import SQLAccountStore

T = TypeVar("T")


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE (the file's write lock, waited for up to the lock timeout) ... COMMIT."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def record_revocation(conn: sqlite3.Connection, account_id: int, session_id: str | None,
                      ts: int) -> None:
    """A revocation in this transaction: every node closes what it ended (watch.py)."""
    conn.execute(sql.REVOKE, (account_id, session_id, ts)).fetchall()


def insert_passkey(conn: sqlite3.Connection, passkey: Passkey) -> None:
    """Add a passkey in this transaction; PasskeyTaken if its credential id is."""
    try:
        conn.execute(sql.CREATE_PASSKEY, sql.passkey_params(passkey))
    except sqlite3.IntegrityError:
        raise PasskeyTaken(passkey.id) from None


class SQLiteSignIn(SQLAccountStore):
    """Sessions, throttle counters, passkeys and ceremonies, the sweep: each a transaction on
    the store's thread and connection, which the subclass (SQLiteAccounts) gives."""

    @abstractmethod
    async def _call(self, run: Callable[..., T], *args: Any) -> T:
        """`run(*args)` on the store's thread; StoreError for a database failure."""

    @abstractmethod
    def _db(self) -> sqlite3.Connection:
        """The store's connection (StoreError when closed)."""

    async def delete_session(self, session_id: str, ts: int) -> bool:
        def run() -> bool:
            with transaction(self._db()) as conn:
                row = conn.execute(sql.SESSION_ACCOUNT, (session_id,)).fetchone()
                if row is None:
                    return False
                conn.execute(sql.DELETE_SESSION, (session_id,))
                record_revocation(conn, int(row[0]), session_id, ts)
                return True
        return await self._call(run)

    async def delete_sessions_of(self, account_id: int, ts: int) -> int:
        def run() -> int:
            with transaction(self._db()) as conn:
                count = conn.execute(sql.DELETE_SESSIONS_OF, (account_id,)).rowcount
                if count:
                    record_revocation(conn, account_id, None, ts)
                return count
        return await self._call(run)

    async def delete_token(self, token_id: str, account_id: int | None, ts: int) -> bool:
        def run() -> bool:
            with transaction(self._db()) as conn:
                row = conn.execute(*sql.delete_token_step(token_id, account_id)).fetchone()
                if row is None:
                    return False
                record_revocation(conn, int(row[0]), sql.TOKEN_SESSION_PREFIX + token_id, ts)
                return True
        return await self._call(run)

    async def try_attempt(self, keys: Sequence[str], ts: int, *, forget_before: int,
                          wait_ms: Callable[[tuple[int, int] | None], int]) -> int:
        def run() -> int:
            with transaction(self._db()) as conn:  # the write lock: attempts one at a time
                counters = [conn.execute(sql.FAILURES, (key,)).fetchone() for key in keys]
                wait = max((wait_ms(None if row is None else (int(row[0]), int(row[1])))
                            for row in counters), default=0)
                if wait <= 0:
                    for key in keys:
                        conn.execute(sql.RECORD_FAILURE, (key, ts, forget_before)).fetchall()
                return max(wait, 0)
        return await self._call(run)

    async def sweep(self, sweep: Sweep) -> Swept:
        swept = Swept()

        def run() -> bool:
            """One batch of each, in one transaction (the write lock: one sweeper at a time);
            whether any was full (more may be left)."""
            with transaction(self._db()) as conn:
                ended = conn.execute(sql.DELETE_EXPIRED_SESSIONS, (
                    sweep.idle_before, sweep.created_before, sweep.batch)).fetchall()
                for session_id, account_id in ended:
                    record_revocation(conn, int(account_id), str(session_id), sweep.ts)
                failures = conn.execute(sql.PRUNE_FAILURES,
                                        (sweep.failures_before, sweep.batch)).rowcount
                revocations = conn.execute(sql.PRUNE_REVOCATIONS,
                                           (sweep.revocations_before, sweep.batch)).rowcount
                challenges = conn.execute(sql.PRUNE_CHALLENGES, (sweep.ts, sweep.batch)).rowcount
            swept.sessions += len(ended)
            swept.failures += failures
            swept.revocations += revocations
            swept.challenges += challenges
            return max(len(ended), failures, revocations, challenges) >= sweep.batch

        while await self._call(run):
            pass
        return swept

    async def add_passkey(self, passkey: Passkey) -> None:
        def run() -> None:
            with transaction(self._db()) as conn:
                insert_passkey(conn, passkey)
        await self._call(run)

    async def delete_passkey(self, credential_id: str, account_id: int) -> bool:
        return await self._write(sql.DELETE_PASSKEY,
                                 (credential_id, account_id, account_id, account_id)) > 0

    async def create_challenge(self, challenge: Challenge, ts: int, *,
                               max_per_address: int) -> bool:
        def run() -> bool:
            with transaction(self._db()) as conn:
                conn.execute(sql.FORGET_EXPIRED_CHALLENGES, (ts,))
                row = conn.execute(sql.CHALLENGES_OF, (challenge.address,)).fetchone()
                if row[0] >= max_per_address:
                    return False
                conn.execute(sql.CREATE_CHALLENGE, sql.challenge_params(challenge))
                return True
        return await self._call(run)

    async def take_challenge(self, challenge_hash: str) -> Challenge | None:
        def run() -> Challenge | None:
            with transaction(self._db()) as conn:
                row = conn.execute(sql.TAKE_CHALLENGE, (challenge_hash,)).fetchone()
                return None if row is None else sql.challenge_from_row(row)
        return await self._call(run)

"""The sign-in half of the PostgreSQL account store (postgres_store.py has the accounts):
sessions ended, login-failure counters, passkeys and their ceremonies, and the sweep that
prunes what sign-ins leave behind. Every end of a session is recorded as a revocation in its
transaction (the subclass's _revoke), so live sockets close on every node."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

import psycopg
import psycopg_pool

from chat.accounts import sql
from chat.accounts.base import PasskeyTaken
from chat.accounts.model import Challenge, Passkey, Sweep, Swept
from chat.accounts.sql_store import SQLAccountStore
from chat.store.base import StoreError
from chat.store.postgres_retention import Connection
from chat.store.postgres_schema import one_line
from chat.store.sql import postgres as pg

# One node sweeps at a time (held for the round, on the sweeping connection; the others skip).
SWEEP_LOCK = 0x5C4A7_0005
# A counter row, locked, with its values: made (0 failures: no wait) for a key never seen,
# else locked by the no-op update, so the sweep cannot delete it between (as it could between
# an INSERT ... DO NOTHING and a SELECT ... FOR UPDATE).
_LOCK_COUNTER = ("INSERT INTO login_failures (key, failures, last_ts) VALUES (?, 0, 0)"
                 " ON CONFLICT (key) DO UPDATE SET failures = login_failures.failures"
                 " RETURNING failures, last_ts")


class PostgresSignIn(SQLAccountStore):
    """Sessions, throttle counters, passkeys and ceremonies, the sweep: over the pool, the
    transactions and the revocations the subclass (PostgresAccounts) gives."""

    _pool: psycopg_pool.AsyncConnectionPool[Connection] | None

    @abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Connection]:
        """A pooled connection in a transaction; StoreError for a database failure."""

    @abstractmethod
    async def _revoke(self, conn: Connection, account_id: int, session_id: str | None,
                      ts: int, *, registered: str | None = None) -> None:
        """Record a revocation and announce it, at this transaction's commit."""

    @abstractmethod
    async def _revoke_all(self, conn: Connection, ended: Sequence[tuple[int, str | None]],
                          ts: int) -> None:
        """Record revocations of (account id, session id or None), announced at the commit."""

    @staticmethod
    async def _add_passkey(conn: Connection, passkey: Passkey) -> None:
        # A savepoint: the unique violation is told apart from the account's own (NameTaken).
        try:
            async with conn.transaction():
                await conn.execute(pg(sql.CREATE_PASSKEY), sql.passkey_params(passkey))
        except psycopg.errors.UniqueViolation:
            raise PasskeyTaken(passkey.id) from None

    async def delete_session(self, session_id: str, ts: int) -> bool:
        async with self._transaction() as conn:
            row = await (await conn.execute(pg(sql.SESSION_ACCOUNT + " FOR UPDATE"),
                                            (session_id,))).fetchone()
            if row is None:
                return False
            await conn.execute(pg(sql.DELETE_SESSION), (session_id,))
            await self._revoke(conn, int(row[0]), session_id, ts)
            return True

    async def delete_sessions_of(self, account_id: int, ts: int) -> int:
        async with self._transaction() as conn:
            count = (await conn.execute(pg(sql.DELETE_SESSIONS_OF), (account_id,))).rowcount
            if count:
                await self._revoke(conn, account_id, None, ts)
            return count

    async def delete_token(self, token_id: str, account_id: int | None, ts: int) -> bool:
        async with self._transaction() as conn:
            statement, params = sql.delete_token_step(token_id, account_id)
            row = await (await conn.execute(pg(statement), params)).fetchone()
            if row is None:
                return False
            await self._revoke(conn, int(row[0]), sql.TOKEN_SESSION_PREFIX + token_id, ts)
            return True

    async def try_attempt(self, keys: Sequence[str], ts: int, *, forget_before: int,
                          wait_ms: Callable[[tuple[int, int] | None], int]) -> int:
        async with self._transaction() as conn:
            counters = []
            for key in sorted(keys):  # locked in one order: two attempts never deadlock
                row = await (await conn.execute(pg(_LOCK_COUNTER), (key,))).fetchone()
                assert row is not None
                counters.append((int(row[0]), int(row[1])))
            wait = max((wait_ms(counter) for counter in counters), default=0)
            if wait <= 0:
                for key in keys:
                    await conn.execute(pg(sql.RECORD_FAILURE), (key, ts, forget_before))
            return max(wait, 0)

    async def sweep(self, sweep: Sweep) -> Swept:
        swept = Swept()
        if self._pool is None:
            raise StoreError("the account store is not open")
        try:
            async with self._pool.connection() as conn:
                row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)",
                                                (SWEEP_LOCK,))).fetchone()
                if not (row and row[0]):
                    return swept  # another node is sweeping now
                try:
                    while await self._sweep_batch(conn, sweep, swept):
                        pass
                finally:
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (SWEEP_LOCK,))
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StoreError(one_line(exc)) from None
        return swept

    async def _sweep_batch(self, conn: Connection, sweep: Sweep, swept: Swept) -> bool:
        """One batch of each, in one transaction; whether any was full (more may be left)."""
        async with conn.transaction():
            ended = await (await conn.execute(pg(sql.DELETE_EXPIRED_SESSIONS), (
                sweep.idle_before, sweep.created_before, sweep.batch))).fetchall()
            if ended:
                await self._revoke_all(conn, [(int(row[1]), str(row[0])) for row in ended],
                                       sweep.ts)
            failures = (await conn.execute(pg(sql.PRUNE_FAILURES),
                                           (sweep.failures_before, sweep.batch))).rowcount
            revocations = (await conn.execute(pg(sql.PRUNE_REVOCATIONS),
                                              (sweep.revocations_before, sweep.batch))).rowcount
            challenges = (await conn.execute(pg(sql.PRUNE_CHALLENGES),
                                             (sweep.ts, sweep.batch))).rowcount
        swept.sessions += len(ended)
        swept.failures += failures
        swept.revocations += revocations
        swept.challenges += challenges
        return max(len(ended), failures, revocations, challenges) >= sweep.batch

    async def add_passkey(self, passkey: Passkey) -> None:
        async with self._transaction() as conn:
            await self._add_passkey(conn, passkey)

    async def delete_passkey(self, credential_id: str, account_id: int) -> bool:
        async with self._transaction() as conn:
            # The account row locked first: two deletes of its last two passkeys take turns,
            # so the second sees the first's and keeps one.
            await conn.execute(pg("SELECT 1 FROM accounts WHERE id = ? FOR UPDATE"),
                               (account_id,))
            return (await conn.execute(pg(sql.DELETE_PASSKEY), (
                credential_id, account_id, account_id, account_id))).rowcount > 0

    async def create_challenge(self, challenge: Challenge, ts: int, *,
                               max_per_address: int) -> bool:
        async with self._transaction() as conn:
            await conn.execute(pg(sql.FORGET_EXPIRED_CHALLENGES), (ts,))
            # Concurrent begins from one address may each count the others as absent: the
            # bound holds within the number of them at once, which is what it is for.
            row = await (await conn.execute(pg(sql.CHALLENGES_OF),
                                            (challenge.address,))).fetchone()
            if row is not None and row[0] >= max_per_address:
                return False
            await conn.execute(pg(sql.CREATE_CHALLENGE), sql.challenge_params(challenge))
            return True

    async def take_challenge(self, challenge_hash: str) -> Challenge | None:
        row = await self._one(sql.TAKE_CHALLENGE, (challenge_hash,))
        return None if row is None else sql.challenge_from_row(row)

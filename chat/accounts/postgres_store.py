"""Accounts in the PostgreSQL database the history lives in, on the history store's pool."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import psycopg
import psycopg_pool

from chat.accounts import sql
from chat.accounts.adopt import Adopted, adopt
from chat.accounts.base import InviteInvalid, LastAdmin, NameTaken, OnRevocation, PasskeyTaken
from chat.accounts.model import Account, Challenge, Passkey, Role, Sweep, Swept
from chat.accounts.postgres_listen import RevocationListener
from chat.accounts.sql_store import Row, SQLAccountStore
from chat.accounts.watch import RevocationWatch
from chat.store.base import StoreError
from chat.store.postgres_notify import channel_for
from chat.store.postgres_options import PostgresOptions
from chat.store.postgres_retention import Connection
from chat.store.postgres_schema import connect, connection_options, migrate, one_line
from chat.store.sql import postgres as pg

# Any constants: the advisory locks that make "the first account is an admin" and "seq order
# is commit order" hold across nodes (taken in the transaction, released at its end).
FIRST_ADMIN_LOCK = 0x5C4A7_0002
REVOCATION_LOCK = 0x5C4A7_0003
# One node sweeps at a time (held for the round, on the sweeping connection; the others skip).
SWEEP_LOCK = 0x5C4A7_0005
# ... and that "another enabled admin remains" still holds when a demotion commits.
ADMINS_LOCK = 0x5C4A7_0004
# The channel a revocation's transaction NOTIFYs: chat_accounts_<schema>.
CHANNEL_PREFIX = "chat_accounts_"
# With NOTIFY waking the watcher at once, the poll is only a fallback (a lost LISTEN) (s).
REVOCATION_POLL_S = 5.0
# A counter row, locked, with its values: made (0 failures: no wait) for a key never seen,
# else locked by the no-op update, so the sweep cannot delete it between (as it could between
# an INSERT ... DO NOTHING and a SELECT ... FOR UPDATE).
_LOCK_COUNTER = ("INSERT INTO login_failures (key, failures, last_ts) VALUES (?, 0, 0)"
                 " ON CONFLICT (key) DO UPDATE SET failures = login_failures.failures"
                 " RETURNING failures, last_ts")
# Connections of a pool of its own (the admin command's): it runs one thing at a time.
OWN_POOL_SIZE = 2


class PostgresAccounts(SQLAccountStore):
    """An AccountStore in PostgreSQL.

    The server passes the history store's pool: accounts and history share one budget of
    connections (--db-pool-size), and a node needs no second pool for a few logins a second.
    Without one (the admin command), it opens a small pool of its own. Its LISTEN connection
    is its own, as the history's commit listener's is.
    """

    def __init__(self, url: str, options: PostgresOptions | None = None, *,
                 pool: psycopg_pool.AsyncConnectionPool[Connection] | None = None,
                 revocation_poll_s: float = REVOCATION_POLL_S) -> None:
        self._url = url
        self._options = options or PostgresOptions()
        self._pool = pool
        self._own_pool = pool is None
        self._channel = ""
        self._watch = RevocationWatch(self._revocations_after, revocation_poll_s)
        self._listener: RevocationListener | None = None
        self._closed = False

    async def start(self) -> None:
        conn = await connect(self._url, self._options)
        try:
            await migrate(conn)
            row = await (await conn.execute("SELECT current_schema()")).fetchone()
            self._channel = channel_for(str(row[0]) if row else "public", CHANNEL_PREFIX)
        except psycopg.Error as exc:
            raise StoreError(one_line(exc)) from None
        finally:
            await conn.close()
        if self._own_pool:
            options = connection_options(self._url, self._options)
            self._pool = psycopg_pool.AsyncConnectionPool(
                str(options.pop("conninfo")), kwargs=options, min_size=1,
                max_size=OWN_POOL_SIZE, open=False, timeout=self._options.pool_timeout_s)
            await self._pool.open(wait=True, timeout=self._options.connect_timeout_s)

    async def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.close()
        await self._watch.close()
        if self._own_pool and self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        """A pooled connection in a transaction; StoreError for a database failure."""
        if self._pool is None:
            raise StoreError("the account store is not open")
        try:
            async with self._pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.errors.UniqueViolation:
            raise  # create_account's NameTaken
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StoreError(one_line(exc)) from None

    async def _one(self, statement: str, params: Row) -> Row | None:
        async with self._transaction() as conn:
            return await (await conn.execute(pg(statement), params)).fetchone()

    async def _all(self, statement: str, params: Row) -> list[Row]:
        async with self._transaction() as conn:
            return await (await conn.execute(pg(statement), params)).fetchall()

    async def _write(self, statement: str, params: Row) -> int:
        async with self._transaction() as conn:
            return (await conn.execute(pg(statement), params)).rowcount

    async def sql_writes(self, steps: Sequence[tuple[str, tuple[Any, ...]]]) -> list[int]:
        async with self._transaction() as conn:
            return [(await conn.execute(pg(statement), params)).rowcount
                    for statement, params in steps]

    async def _revoke(self, conn: Connection, account_id: int, session_id: str | None,
                      ts: int, *, registered: str | None = None) -> None:
        """Record a revocation (or, with `registered`, a registration under that name key)
        and announce it, both at this transaction's commit."""
        if registered is None:
            await self._revoke_all(conn, [(account_id, session_id)], ts)
            return
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (REVOCATION_LOCK,))
        row = await (await conn.execute(pg(sql.REGISTERED), (account_id, ts, registered))
                     ).fetchone()
        assert row is not None
        await conn.execute("SELECT pg_notify(%s, %s)", (self._channel, str(row[0])))

    async def _revoke_all(self, conn: Connection, ended: Sequence[tuple[int, str | None]],
                          ts: int) -> None:
        """Record revocations of (account id, session id or None) and announce them (one
        NOTIFY: a watcher reads all that follow its last seq), at this transaction's commit."""
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (REVOCATION_LOCK,))
        seq = 0
        for account_id, session_id in ended:
            row = await (await conn.execute(pg(sql.REVOKE),
                                            (account_id, session_id, ts))).fetchone()
            assert row is not None
            seq = int(row[0])
        await conn.execute("SELECT pg_notify(%s, %s)", (self._channel, str(seq)))

    async def create_account(self, name: str, name_key: str, email: str | None,
                             password_hash: str, ts: int, *, invite_hash: str | None = None,
                             passkey: Passkey | None = None) -> Account:
        try:
            async with self._transaction() as conn:
                # Held to the commit: a concurrent creation sees this account, or waits.
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (FIRST_ADMIN_LOCK,))
                row = await (await conn.execute(pg(sql.CREATE_ACCOUNT), (
                    name, name_key, email, "member", "admin", ts, password_hash))).fetchone()
                assert row is not None
                account = sql.account_from_row(row)
                if invite_hash is not None and not (await conn.execute(
                        pg(sql.USE_INVITE), (account.id, ts, invite_hash, ts))).rowcount:
                    raise InviteInvalid()
                if passkey is not None:
                    await self._add_passkey(conn, dataclasses.replace(passkey,
                                                                      account_id=account.id))
                await self._revoke(conn, account.id, None, ts, registered=name_key)
                return account
        except psycopg.errors.UniqueViolation:
            raise NameTaken(name_key) from None

    async def create_external(self, sub: str, name: str, name_key: str, ts: int) -> Account:
        try:
            async with self._transaction() as conn:
                # 'member' for both roles: never the first admin, whatever comes first.
                row = await (await conn.execute(pg(sql.CREATE_ACCOUNT), (
                    name, name_key, None, "member", "member", ts, sql.NO_PASSWORD))).fetchone()
                assert row is not None
                account = sql.account_from_row(row)
                await conn.execute(pg(sql.BIND_EXTERNAL), (sub, account.id, ts))
                await self._revoke(conn, account.id, None, ts, registered=name_key)
                return account
        except psycopg.errors.UniqueViolation:
            raise NameTaken(name_key) from None

    @staticmethod
    async def _add_passkey(conn: Connection, passkey: Passkey) -> None:
        # A savepoint: the unique violation is told apart from the account's own (NameTaken).
        try:
            async with conn.transaction():
                await conn.execute(pg(sql.CREATE_PASSKEY), sql.passkey_params(passkey))
        except psycopg.errors.UniqueViolation:
            raise PasskeyTaken(passkey.id) from None

    async def set_password_hash(self, account_id: int, password_hash: str, ts: int, *,
                                end_sessions: bool = False) -> bool:
        async with self._transaction() as conn:
            if not (await conn.execute(pg(sql.SET_PASSWORD_HASH),
                                       (password_hash, account_id))).rowcount:
                return False
            if end_sessions:
                await conn.execute(pg(sql.DELETE_SESSIONS_OF), (account_id,))
                await self._revoke(conn, account_id, None, ts)
            return True

    async def _keep_an_admin(self, conn: Connection, account_id: int) -> None:
        """LastAdmin if the account is the last enabled admin; the lock, held to the commit,
        makes a concurrent demotion wait for this one and then read its result."""
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADMINS_LOCK,))
        if await (await conn.execute(pg(sql.IS_LAST_ADMIN),
                                     sql.is_last_admin_params(account_id))).fetchone():
            raise LastAdmin(account_id)

    async def set_disabled(self, account_id: int, disabled: bool, ts: int, *,
                           keep_an_admin: bool = False) -> bool:
        async with self._transaction() as conn:
            if disabled and keep_an_admin:
                await self._keep_an_admin(conn, account_id)
            if not (await conn.execute(pg(sql.SET_DISABLED),
                                       (int(disabled), account_id))).rowcount:
                return False
            if disabled:
                await conn.execute(pg(sql.DELETE_SESSIONS_OF), (account_id,))
                await self._revoke(conn, account_id, None, ts)
            return True

    async def set_role(self, account_id: int, role: Role, *,
                       keep_an_admin: bool = False) -> bool:
        async with self._transaction() as conn:
            if role != "admin" and keep_an_admin:
                await self._keep_an_admin(conn, account_id)
            return (await conn.execute(pg(sql.SET_ROLE), (role, account_id))).rowcount > 0

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

    async def watch_revocations(self, callback: OnRevocation) -> None:
        self._watch.add(callback)
        if self._watch.running or self._closed:
            return
        listener = RevocationListener(self._url, self._options, self._channel, self._watch)
        await listener.open()  # before reading the last seq: nothing falls between
        try:
            row = await self._one(sql.LAST_REVOCATION, ())
        except StoreError:
            await listener.close()
            raise
        if self._closed or self._watch.running:  # closed (or started) while that was read
            await listener.close()
            return
        self._watch.start(int(row[0]) if row else 0)
        listener.start()
        self._listener = listener

    async def adopt_dms(self, account_id: int, old_name: str, ts: int) -> Adopted:
        async with self._transaction() as conn:
            async def run(statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
                cursor = await conn.execute(pg(statement), params)
                return await cursor.fetchall() if cursor.description else []
            return await adopt(run, account_id, old_name, ts)

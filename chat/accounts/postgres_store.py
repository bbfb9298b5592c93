"""Accounts in the PostgreSQL database the history lives in, on the history store's pool."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import psycopg
import psycopg_pool
from psycopg import sql as pgsql

from chat.accounts import sql
from chat.accounts.adopt import Adopted, adopt
from chat.accounts.base import InviteInvalid, NameTaken, OnRevocation, PasskeyTaken
from chat.accounts.model import Account, Challenge, Passkey, Revocation, Role, Session
from chat.accounts.watch import RevocationWatch
from chat.store.base import StoreError
from chat.store.postgres_notify import channel_for
from chat.store.postgres_options import PostgresOptions
from chat.store.postgres_retention import Connection
from chat.store.postgres_schema import connect, connection_options, migrate, one_line
from chat.store.sql import postgres as pg

log = logging.getLogger("chat.accounts")

# Any constants: the advisory locks that make "the first account is an admin" and "seq order
# is commit order" hold across nodes (taken in the transaction, released at its end).
FIRST_ADMIN_LOCK = 0x5C4A7_0002
REVOCATION_LOCK = 0x5C4A7_0003
# The channel a revocation's transaction NOTIFYs: chat_accounts_<schema>.
CHANNEL_PREFIX = "chat_accounts_"
# With NOTIFY waking the watcher at once, the poll is only a fallback (a lost LISTEN) (s).
REVOCATION_POLL_S = 5.0
_ENSURE_COUNTER = ("INSERT INTO login_failures (key, failures, last_ts) VALUES (?, 0, 0)"
                   " ON CONFLICT (key) DO NOTHING")
# A lost LISTEN connection is opened again after this (s).
RELISTEN_S = 1.0
# Connections of a pool of its own (the admin command's): it runs one thing at a time.
OWN_POOL_SIZE = 2


class PostgresAccounts:
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
        self._listener: asyncio.Task[None] | None = None
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
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
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

    async def _one(self, statement: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        async with self._transaction() as conn:
            return await (await conn.execute(pg(statement), params)).fetchone()

    async def _all(self, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        async with self._transaction() as conn:
            return await (await conn.execute(pg(statement), params)).fetchall()

    async def _write(self, statement: str, params: tuple[Any, ...]) -> int:
        async with self._transaction() as conn:
            return (await conn.execute(pg(statement), params)).rowcount

    async def sql_rows(self, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await self._all(statement, params)

    async def sql_writes(self, steps: Sequence[tuple[str, tuple[Any, ...]]]) -> list[int]:
        async with self._transaction() as conn:
            return [(await conn.execute(pg(statement), params)).rowcount
                    for statement, params in steps]

    async def _revoke(self, conn: Connection, account_id: int, session_id: str | None,
                      ts: int, *, registered: str | None = None) -> None:
        """Record a revocation (or, with `registered`, a registration under that name key)
        and announce it, both at this transaction's commit."""
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (REVOCATION_LOCK,))
        statement, params = ((sql.REVOKE, (account_id, session_id, ts)) if registered is None
                             else (sql.REGISTERED, (account_id, ts, registered)))
        row = await (await conn.execute(pg(statement), params)).fetchone()
        assert row is not None
        await conn.execute("SELECT pg_notify(%s, %s)", (self._channel, str(row[0])))

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
                        pg(sql.USE_INVITE), (account.id, ts, invite_hash))).rowcount:
                    raise InviteInvalid()
                if passkey is not None:
                    await self._add_passkey(conn, dataclasses.replace(passkey,
                                                                      account_id=account.id))
                await self._revoke(conn, account.id, None, ts, registered=name_key)
                return account
        except psycopg.errors.UniqueViolation:
            raise NameTaken(name_key) from None

    async def account_by_external(self, sub: str) -> Account | None:
        row = await self._one(sql.EXTERNAL_ACCOUNT, (sub,))
        return None if row is None else sql.account_from_row(row)

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

    async def account_by_id(self, account_id: int) -> Account | None:
        row = await self._one(sql.ACCOUNT_BY_ID, (account_id,))
        return None if row is None else sql.account_from_row(row)

    async def account_by_name_key(self, name_key: str) -> Account | None:
        row = await self._one(sql.ACCOUNT_BY_KEY, (name_key,))
        return None if row is None else sql.account_from_row(row)

    async def list_accounts(self) -> list[tuple[Account, int]]:
        return [(sql.account_from_row(row), int(row[-1]))
                for row in await self._all(sql.LIST_ACCOUNTS, ())]

    async def password_hash(self, account_id: int) -> str | None:
        row = await self._one(sql.PASSWORD_HASH, (account_id,))
        return None if row is None else str(row[0])

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

    async def set_disabled(self, account_id: int, disabled: bool, ts: int) -> bool:
        async with self._transaction() as conn:
            if not (await conn.execute(pg(sql.SET_DISABLED),
                                       (int(disabled), account_id))).rowcount:
                return False
            if disabled:
                await conn.execute(pg(sql.DELETE_SESSIONS_OF), (account_id,))
                await self._revoke(conn, account_id, None, ts)
            return True

    async def set_role(self, account_id: int, role: Role) -> bool:
        return await self._write(sql.SET_ROLE, (role, account_id)) > 0

    async def create_session(self, session: Session, token_hash: str) -> None:
        await self._write(sql.CREATE_SESSION, (
            session.id, session.account_id, session.created_ts, session.last_seen_ts,
            session.address, session.user_agent, token_hash))

    async def session_by_token_hash(self, token_hash: str) -> tuple[Session, Account] | None:
        row = await self._one(sql.SESSION_BY_TOKEN, (token_hash,))
        if row is None:
            return None
        return sql.session_from_row(row[:6]), sql.account_from_row(row[6:])

    async def touch_session(self, session_id: str, ts: int) -> None:
        await self._write(sql.TOUCH_SESSION, (ts, session_id, ts))

    async def sessions_of(self, account_id: int) -> list[Session]:
        return [sql.session_from_row(row) for row in await self._all(sql.SESSIONS_OF,
                                                                      (account_id,))]

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

    async def create_invite(self, code_hash: str, created_by: int | None, ts: int) -> None:
        await self._write(sql.CREATE_INVITE, (code_hash, created_by, ts))

    async def failures(self, key: str) -> tuple[int, int] | None:
        row = await self._one(sql.FAILURES, (key,))
        return None if row is None else (int(row[0]), int(row[1]))

    async def try_attempt(self, keys: Sequence[str], ts: int, *, forget_before: int,
                          wait_ms: Callable[[tuple[int, int] | None], int]) -> int:
        async with self._transaction() as conn:
            counters = []
            for key in sorted(keys):  # locked in one order: two attempts never deadlock
                # A row to lock (0 failures: no wait) even for a key never seen before.
                await conn.execute(pg(_ENSURE_COUNTER), (key,))
                row = await (await conn.execute(pg(sql.FAILURES + " FOR UPDATE"),
                                                (key,))).fetchone()
                assert row is not None
                counters.append((int(row[0]), int(row[1])))
            wait = max((wait_ms(counter) for counter in counters), default=0)
            if wait <= 0:
                for key in keys:
                    await conn.execute(pg(sql.RECORD_FAILURE), (key, ts, forget_before))
            return max(wait, 0)

    async def clear_failures(self, key: str) -> None:
        await self._write(sql.CLEAR_FAILURES, (key,))

    async def forgive_failure(self, key: str) -> None:
        await self._write(sql.FORGIVE_FAILURE, (key,))

    async def add_passkey(self, passkey: Passkey) -> None:
        async with self._transaction() as conn:
            await self._add_passkey(conn, passkey)

    async def passkey_by_id(self, credential_id: str) -> Passkey | None:
        row = await self._one(sql.PASSKEY_BY_ID, (credential_id,))
        return None if row is None else sql.passkey_from_row(row)

    async def passkeys_of(self, account_id: int) -> list[Passkey]:
        return [sql.passkey_from_row(row) for row in await self._all(sql.PASSKEYS_OF,
                                                                      (account_id,))]

    async def use_passkey(self, credential_id: str, seen_count: int, new_count: int,
                          ts: int) -> bool:
        return await self._write(sql.USE_PASSKEY,
                                 (new_count, ts, credential_id, seen_count)) > 0

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
        conn = await self._listen()  # before reading the last seq: nothing falls between
        try:
            row = await self._one(sql.LAST_REVOCATION, ())
        except StoreError:
            await conn.close()
            raise
        if self._closed or self._watch.running:  # closed (or started) while that was read
            await conn.close()
            return
        self._watch.start(int(row[0]) if row else 0)
        self._listener = asyncio.create_task(self._wake_on_notify(conn))

    async def _listen(self) -> Connection:
        conn = await connect(self._url, self._options)
        try:
            # Named apart from the pool's connections in pg_stat_activity (as the commits'
            # listener is: chat/store/postgres_notify.py).
            await conn.execute("SET application_name = 'simple-chat revocations'")
            await conn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(self._channel)))
        except psycopg.Error as exc:
            await conn.close()
            raise StoreError(one_line(exc)) from None
        return conn

    async def _wake_on_notify(self, conn: Connection | None) -> None:
        """Wake the watcher at each NOTIFY; after a lost connection, listen again and read."""
        try:
            while True:
                try:
                    if conn is None:
                        conn = await self._listen()
                        self._watch.wake()  # what was committed while nobody listened
                    async for _ in conn.notifies():
                        self._watch.wake()
                except (psycopg.Error, StoreError) as exc:
                    log.warning("listening for revocations failed (retried in %.0f s): %s",
                                RELISTEN_S, exc)
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        await conn.close()
                    conn = None
                await asyncio.sleep(RELISTEN_S)
        finally:
            if conn is not None:
                await conn.close()

    async def adopt_dms(self, account_id: int, old_name: str, ts: int) -> Adopted:
        async with self._transaction() as conn:
            async def run(statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
                cursor = await conn.execute(pg(statement), params)
                return await cursor.fetchall() if cursor.description else []
            return await adopt(run, account_id, old_name, ts)

    async def _revocations_after(self, seq: int) -> list[Revocation]:
        rows = await self._all(sql.REVOCATIONS_AFTER, (seq, sql.REVOCATIONS_PER_READ))
        return [sql.revocation_from_row(row) for row in rows]

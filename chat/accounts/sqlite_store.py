"""Accounts in the SQLite history file (or its own in-memory database for `:memory:`)."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from chat.accounts import sql
from chat.accounts.adopt import Adopted, adopt
from chat.accounts.base import InviteInvalid, LastAdmin, NameTaken, OnRevocation
from chat.accounts.model import Account, Passkey, Role
from chat.accounts.sql_store import Row
from chat.accounts.sqlite_signin import (
    SQLiteSignIn,
    insert_passkey,
    record_revocation,
    transaction,
)
from chat.accounts.watch import RevocationWatch
from chat.store.base import StoreError
from chat.store.sqlite_reads import BatchedReads
from chat.store.sqlite_schema import LOCK_TIMEOUT_S, connect, describe, memory_uri, migrate

T = TypeVar("T")

# How often a node reads the revocations table for what another process committed (s): the
# longest a disabled account's socket stays open on a SQLite server.
REVOCATION_POLL_S = 1.0


def _rows(conn: sqlite3.Connection, read: tuple[str, Row]) -> list[Row]:
    """A statement's rows: `read` is the statement and its parameters."""
    return conn.execute(*read).fetchall()


def _keep_an_admin(conn: sqlite3.Connection, account_id: int) -> None:
    """LastAdmin if the account is the last enabled admin (read under the write lock)."""
    if conn.execute(sql.IS_LAST_ADMIN, sql.is_last_admin_params(account_id)).fetchone():
        raise LastAdmin(account_id)


class SQLiteAccounts(SQLiteSignIn):
    """An AccountStore on its own connection to the history file, used from one thread.

    A connection of its own, not the history writer's: account writes are rare and small, and
    WAL lets them interleave with the writer's groups (each waits for the other's lock at
    most the lock timeout), so the history writer stays the group-commit loop it is. The admin
    command opens only this, never the history store (which would run retention).
    """

    def __init__(self, path: str, *, lock_timeout_s: float = LOCK_TIMEOUT_S,
                 revocation_poll_s: float = REVOCATION_POLL_S) -> None:
        self._in_memory = path == ":memory:"
        self._path = memory_uri() if self._in_memory else path
        self._lock_timeout_s = lock_timeout_s
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="accounts")
        self._conn: sqlite3.Connection | None = None
        self._watch = RevocationWatch(self._revocations_after, revocation_poll_s)
        # A reconnect storm's reads (memberships, a room's access) share hops to the thread.
        self._reads: BatchedReads[tuple[str, Row], Row] = BatchedReads(
            self._thread, self._db, _rows)

    async def start(self) -> None:
        self._conn = await self._call(self._open)

    def _open(self) -> sqlite3.Connection:
        conn = connect(self._path, lock_timeout_s=self._lock_timeout_s, synchronous="FULL",
                       in_memory=self._in_memory)
        try:
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        await self._watch.close()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._thread, conn.close)
        self._thread.shutdown(wait=False)

    async def _call(self, run: Callable[..., T], *args: Any) -> T:
        """`run(*args)` on the store's thread; StoreError for a database failure."""
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._thread, partial(run, *args))
        except sqlite3.Error as exc:
            raise StoreError(describe(exc)) from None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("the account store is not open")
        return self._conn

    async def _one(self, statement: str, params: Row) -> Row | None:
        row: Row | None = await self._call(
            lambda: self._db().execute(statement, params).fetchone())
        return row

    async def _all(self, statement: str, params: Row) -> list[Row]:
        return await self._reads.read((statement, params))

    async def _write(self, statement: str, params: Row) -> int:
        def run() -> int:
            with transaction(self._db()) as conn:
                return conn.execute(statement, params).rowcount
        return await self._call(run)

    async def sql_writes(self, steps: Sequence[tuple[str, tuple[Any, ...]]]) -> list[int]:
        def run() -> list[int]:
            with transaction(self._db()) as conn:
                return [conn.execute(statement, params).rowcount for statement, params in steps]
        return await self._call(run)

    async def create_account(self, name: str, name_key: str, email: str | None,
                             password_hash: str, ts: int, *, invite_hash: str | None = None,
                             passkey: Passkey | None = None) -> Account:
        def run() -> Account:
            with transaction(self._db()) as conn:
                try:
                    row = conn.execute(sql.CREATE_ACCOUNT, (name, name_key, email, "member",
                                                            "admin", ts, password_hash)).fetchone()
                except sqlite3.IntegrityError:
                    raise NameTaken(name_key) from None
                account = sql.account_from_row(row)
                if invite_hash is not None and not conn.execute(
                        sql.USE_INVITE, (account.id, ts, invite_hash, ts)).rowcount:
                    raise InviteInvalid()
                if passkey is not None:
                    insert_passkey(conn, dataclasses.replace(passkey, account_id=account.id))
                conn.execute(sql.REGISTERED, (account.id, ts, name_key)).fetchall()
                return account
        return await self._call(run)

    async def create_external(self, sub: str, name: str, name_key: str, ts: int) -> Account:
        def run() -> Account:
            with transaction(self._db()) as conn:
                try:
                    # 'member' for both roles: never the first admin, whatever comes first.
                    row = conn.execute(sql.CREATE_ACCOUNT, (name, name_key, None, "member",
                                                            "member", ts, sql.NO_PASSWORD)
                                       ).fetchone()
                    account = sql.account_from_row(row)
                    conn.execute(sql.BIND_EXTERNAL, (sub, account.id, ts))
                except sqlite3.IntegrityError:
                    raise NameTaken(name_key) from None
                conn.execute(sql.REGISTERED, (account.id, ts, name_key)).fetchall()
                return account
        return await self._call(run)

    async def set_password_hash(self, account_id: int, password_hash: str, ts: int, *,
                                end_sessions: bool = False) -> bool:
        def run() -> bool:
            with transaction(self._db()) as conn:
                if not conn.execute(sql.SET_PASSWORD_HASH, (password_hash, account_id)).rowcount:
                    return False
                if end_sessions:
                    conn.execute(sql.DELETE_SESSIONS_OF, (account_id,))
                    record_revocation(conn, account_id, None, ts)
                return True
        return await self._call(run)

    async def set_disabled(self, account_id: int, disabled: bool, ts: int, *,
                           keep_an_admin: bool = False) -> bool:
        def run() -> bool:
            with transaction(self._db()) as conn:  # the write lock: the check holds to COMMIT
                if disabled and keep_an_admin:
                    _keep_an_admin(conn, account_id)
                if not conn.execute(sql.SET_DISABLED, (int(disabled), account_id)).rowcount:
                    return False
                if disabled:
                    conn.execute(sql.DELETE_SESSIONS_OF, (account_id,))
                    record_revocation(conn, account_id, None, ts)
                return True
        return await self._call(run)

    async def set_role(self, account_id: int, role: Role, *,
                       keep_an_admin: bool = False) -> bool:
        def run() -> bool:
            with transaction(self._db()) as conn:
                if role != "admin" and keep_an_admin:
                    _keep_an_admin(conn, account_id)
                return conn.execute(sql.SET_ROLE, (role, account_id)).rowcount > 0
        return await self._call(run)

    async def watch_revocations(self, callback: OnRevocation) -> None:
        self._watch.add(callback)
        if not self._watch.running and self._conn is not None:
            try:
                row = await self._one(sql.LAST_REVOCATION, ())
            except StoreError:
                if self._conn is None:
                    return  # closed meanwhile (a server stopping as it starts)
                raise
            # Closed while that was read (a server stopping as it starts): start nothing that
            # close() would not stop.
            if self._conn is not None and not self._watch.running:
                self._watch.start(int(row[0]) if row else 0)

    async def adopt_dms(self, account_id: int, old_name: str, ts: int) -> Adopted:
        # Each statement on the store's thread, the transaction held across them: only the
        # admin command calls this, with nothing else running on the store meanwhile.
        async def run(statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            return await self._call(lambda: self._db().execute(statement, params).fetchall())
        await self._call(lambda: self._db().execute("BEGIN IMMEDIATE"))
        try:
            moved = await adopt(run, account_id, old_name, ts)
            await self._call(lambda: self._db().execute("COMMIT"))
        except BaseException:
            await self._call(lambda: self._db().in_transaction
                             and self._db().execute("ROLLBACK"))
            raise
        return moved

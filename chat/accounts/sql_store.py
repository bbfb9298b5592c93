"""What the SQLite and PostgreSQL account stores share: every operation that is one statement
(a read, or a write in a transaction of its own), written once over three primitives each
store gives in its own way (a thread for SQLite, a pool for PostgreSQL)."""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from chat.accounts import sql
from chat.accounts.model import Account, Invite, Passkey, Revocation, Session

Row = tuple[Any, ...]
SECRET_BYTES = 32  # a server secret's size: 256 random bits, an HMAC-SHA-256 key's own


class SQLAccountStore(ABC):
    """The one-statement half of an AccountStore; subclasses add connections, transactions
    of several statements and the revocation watch. Statements are in `?` form (sql.py)."""

    @abstractmethod
    async def _one(self, statement: str, params: Row) -> Row | None:
        """The first row of a read (None without one)."""

    @abstractmethod
    async def _all(self, statement: str, params: Row) -> list[Row]:
        """Every row of a read."""

    @abstractmethod
    async def _write(self, statement: str, params: Row) -> int:
        """Run one statement in a transaction of its own; the rows it changed."""

    async def sql_rows(self, statement: str, params: Row) -> list[Row]:
        return await self._all(statement, params)

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

    async def create_session(self, session: Session, token_hash: str) -> None:
        await self._write(sql.CREATE_SESSION, (
            session.id, session.account_id, session.created_ts, session.last_seen_ts,
            session.address, session.user_agent, token_hash))

    async def session_by_token_hash(self, token_hash: str) -> tuple[Session, Account] | None:
        row = await self._one(sql.SESSION_BY_TOKEN, (token_hash,))
        if row is None:
            return None
        return sql.session_from_row(row[:6]), sql.account_from_row(row[6:])

    async def sessions_by_token_hashes(self, token_hashes: Sequence[str]
                                       ) -> dict[str, tuple[Session, Account]]:
        if not token_hashes:
            return {}
        rows = await self._all(sql.sessions_by_tokens(len(token_hashes)), tuple(token_hashes))
        return {str(row[-1]): (sql.session_from_row(row[:6]), sql.account_from_row(row[6:-1]))
                for row in rows}

    async def touch_sessions(self, session_ids: Sequence[str], ts: int) -> None:
        if session_ids:
            await self._write(sql.touch_sessions(len(session_ids)), (ts, ts, *session_ids))

    async def sessions_of(self, account_id: int) -> list[Session]:
        return [sql.session_from_row(row)
                for row in await self._all(sql.SESSIONS_OF, (account_id,))]

    async def create_invite(self, code_hash: str, created_by: int | None, ts: int,
                            expires_ts: int | None = None) -> None:
        await self._write(sql.CREATE_INVITE, (code_hash, created_by, ts, expires_ts))

    async def list_invites(self) -> list[Invite]:
        return [sql.invite_from_row(row) for row in await self._all(sql.LIST_INVITES, ())]

    async def expire_invite(self, invite_id: str, ts: int) -> bool:
        return await self._write(sql.EXPIRE_INVITE, (ts, len(invite_id), invite_id, ts)) > 0

    async def failures(self, key: str) -> tuple[int, int] | None:
        row = await self._one(sql.FAILURES, (key,))
        return None if row is None else (int(row[0]), int(row[1]))

    async def clear_failures(self, key: str) -> None:
        await self._write(sql.CLEAR_FAILURES, (key,))

    async def forgive_failure(self, key: str) -> None:
        await self._write(sql.FORGIVE_FAILURE, (key,))

    async def account_by_external(self, sub: str) -> Account | None:
        row = await self._one(sql.EXTERNAL_ACCOUNT, (sub,))
        return None if row is None else sql.account_from_row(row)

    async def accounts_by_external(self, subs: Sequence[str]) -> dict[str, Account]:
        if not subs:
            return {}
        rows = await self._all(sql.external_accounts(len(subs)), tuple(subs))
        return {str(row[-1]): sql.account_from_row(row[:-1]) for row in rows}

    async def passkey_by_id(self, credential_id: str) -> Passkey | None:
        row = await self._one(sql.PASSKEY_BY_ID, (credential_id,))
        return None if row is None else sql.passkey_from_row(row)

    async def passkeys_of(self, account_id: int) -> list[Passkey]:
        return [sql.passkey_from_row(row)
                for row in await self._all(sql.PASSKEYS_OF, (account_id,))]

    async def use_passkey(self, credential_id: str, seen_count: int, new_count: int,
                          ts: int) -> bool:
        return await self._write(sql.USE_PASSKEY,
                                 (new_count, ts, credential_id, seen_count)) > 0

    async def server_secret(self, name: str) -> bytes:
        row = await self._one(sql.SECRET, (name,))
        if row is None:  # the first ask anywhere: ours, or another node's that got there first
            await self._write(sql.MAKE_SECRET, (name, secrets.token_hex(SECRET_BYTES)))
            row = await self._one(sql.SECRET, (name,))
            assert row is not None
        return bytes.fromhex(str(row[0]))

    async def _revocations_after(self, seq: int) -> list[Revocation]:
        rows = await self._all(sql.REVOCATIONS_AFTER, (seq, sql.REVOCATIONS_PER_READ))
        return [sql.revocation_from_row(row) for row in rows]

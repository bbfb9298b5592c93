"""Accounts: who owns a name (passwords, sessions, invites, roles), kept in the history's
database. Never imports tornado.web: handlers translate HTTP into calls on AccountService."""

from __future__ import annotations

from typing import Any

from chat.accounts.base import AccountStore, InviteInvalid, NameTaken
from chat.accounts.model import Account, AccountError, Revocation, Session
from chat.accounts.policy import AccountPolicy
from chat.accounts.service import AccountService
from chat.store.postgres_options import PostgresOptions
from chat.urls import is_postgres_db, is_redis_db, redacted


def open_accounts(db: str, *, postgres: PostgresOptions | None = None, pool: Any = None,
                  revocation_poll_s: float = 1.0) -> AccountStore:
    """The account store for `--db`: in the SQLite file (its own connection; for `:memory:`
    a database of its own), or in PostgreSQL (on `pool`, the history store's, if given)."""
    if is_postgres_db(db):
        from chat.accounts.postgres_store import PostgresAccounts

        return PostgresAccounts(db, postgres, pool=pool, revocation_poll_s=revocation_poll_s)
    if is_redis_db(db):
        raise ValueError(f"--db {redacted(db)!r}: accounts live in SQLite or PostgreSQL")
    from chat.accounts.sqlite_store import SQLiteAccounts

    return SQLiteAccounts(db, revocation_poll_s=revocation_poll_s)


__all__ = [
    "Account",
    "AccountError",
    "AccountPolicy",
    "AccountService",
    "AccountStore",
    "InviteInvalid",
    "NameTaken",
    "Revocation",
    "Session",
    "open_accounts",
]

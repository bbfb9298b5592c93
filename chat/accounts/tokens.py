"""Personal access tokens and bot accounts: what lets another program use the HTTP API.

A token is `chat_pat_` and 256 random bits (base64url), shown once. The store keeps its sha256
(chat.accounts.service.secret_hash), as it keeps sessions': the token is random and long, so
no one can guess it from the hash, and a fast hash keeps each request's look-up an index probe;
a slow password hash (argon2) protects guessable secrets and would cost every API request tens
of milliseconds for nothing. The prefix makes a leaked token recognisable (secret scanners,
logs), as GitHub's `ghp_` does.

Written once for SQLite and PostgreSQL over the account store's `sql_rows` / `sql_writes`
(chat/rooms/store.py does the same); the tables are chat/store/sql.py's TOKEN_TABLES.
Nothing is cached: each request reads its token's row, so a revoked token stops working at
once on every node that shares the database. Reads asked together share one store call
(chat/coalesce.py), as session lookups do: a storm of a program's sockets, or a burst of its
requests, costs one call per batch.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from chat.accounts import sql
from chat.accounts.model import Account, AccountError
from chat.accounts.policy import TOUCH_INTERVAL_MS
from chat.accounts.service import TOKEN_BYTES, AccountService, check_name, secret_hash
from chat.coalesce import Coalesced
from chat.people.names import name_key

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
TOKEN_PREFIX = "chat_pat_"  # what every personal access token starts with (and nothing else)
TOKEN_ID_BYTES = 9  # 72 bits: public, names a token in lists and paths
TOKEN_NAME_MAX_CHARS = 64  # a label to tell tokens apart, no more
# Tokens one account holds at most: a script run in a loop cannot fill the table.
TOKENS_PER_ACCOUNT = 100

_COLUMNS = "t.id, t.account_id, t.name, t.scopes, t.created_ts, t.created_by, t.last_used_ts"


def _by_hashes(count: int) -> str:
    """Tokens by `count` hashes: each row its token, its account, whether that is a bot, and
    the hash."""
    return (f"SELECT {_COLUMNS}, {sql.JOINED_ACCOUNT_COLUMNS}, EXISTS (SELECT 1 FROM bots b"
            " WHERE b.account_id = t.account_id), t.token_hash FROM api_tokens t"
            f" JOIN accounts a ON a.id = t.account_id WHERE t.token_hash IN {sql.in_list(count)}")


def _touch(count: int) -> str:
    """Set `count` tokens' last use, never back: parameters (ts, ts, *ids)."""
    return ("UPDATE api_tokens SET last_used_ts = ? WHERE (last_used_ts IS NULL"
            f" OR last_used_ts < ?) AND id IN {sql.in_list(count)}")


class Resolved(NamedTuple):
    """A live token, its account, and whether that account is a bot."""

    token: ApiToken
    account: Account
    bot: bool


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A personal access token as its owner (or an admin) sees it: never the secret."""

    id: str
    account_id: int
    name: str
    scopes: tuple[Scope, ...]
    created_ts: int  # ms
    created_by: int | None  # the account that made it (an admin, for a bot's); None: the CLI
    last_used_ts: int | None  # ms, to the minute; None: never used

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "account_id": self.account_id, "name": self.name,
                "scopes": list(self.scopes), "created_ts": self.created_ts,
                "last_used_ts": self.last_used_ts}


def _token(row: Sequence[object]) -> ApiToken:
    token_id, account_id, name, scopes, created, by, used = row[:7]
    return ApiToken(str(token_id), int(str(account_id)), str(name),
                    tuple(s for s in SCOPES if s in str(scopes).split()), int(str(created)),
                    None if by is None else int(str(by)), None if used is None else int(str(used)))


def check_scopes(scopes: object, account: Account) -> tuple[Scope, ...]:
    """The scopes asked for, in SCOPES' order; AccountError naming what is wrong."""
    if (not isinstance(scopes, list) or not scopes
            or not all(isinstance(scope, str) for scope in scopes)):
        raise AccountError("invalid_field", f"scopes must be a non-empty list of "
                           f"{', '.join(SCOPES)}")
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise AccountError("invalid_field", f"unknown scope {str(unknown[0])[:20]!r}; the "
                           f"scopes are {', '.join(SCOPES)}")
    if "admin" in scopes and account.role != "admin":
        raise AccountError("forbidden", "only an admin account's token may have the admin scope")
    return tuple(scope for scope in SCOPES if scope in scopes)


class Tokens:
    """Create, list, revoke and resolve tokens; create and list bots."""

    def __init__(self, accounts: AccountService,
                 clock: Callable[[], float] = time.time) -> None:
        self.accounts = accounts
        self.sql = accounts.store
        self._clock = clock
        self.lookups: Coalesced[str, Resolved] = Coalesced(self._by_hashes)
        self.touches: Coalesced[str, None] = Coalesced(self._touch)

    def _now(self) -> int:
        return int(self._clock() * 1000)

    async def create(self, owner: Account, name: str, scopes: object,
                     by: Account | None) -> tuple[str, ApiToken]:
        """A new token of `owner` (made by `by`; None: the admin command): (its secret, shown
        once; the token)."""
        label = name.strip()
        if not 1 <= len(label) <= TOKEN_NAME_MAX_CHARS:
            raise AccountError("invalid_field", f"a token's name is 1 to {TOKEN_NAME_MAX_CHARS}"
                               f" characters; {label[:40]!r} has {len(label)}")
        checked = check_scopes(scopes, owner)
        if len(await self.of(owner.id)) >= TOKENS_PER_ACCOUNT:
            raise AccountError("too_many_tokens", f"an account holds at most "
                               f"{TOKENS_PER_ACCOUNT} tokens; revoke one first")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        token = ApiToken(secrets.token_urlsafe(TOKEN_ID_BYTES), owner.id, label, checked,
                         self._now(), None if by is None else by.id, None)
        await self.sql.sql_writes([(
            "INSERT INTO api_tokens (id, account_id, name, token_hash, scopes, created_ts,"
            " created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (token.id, owner.id, label, secret_hash(secret), " ".join(checked),
             token.created_ts, token.created_by))])
        return secret, token

    async def of(self, account_id: int) -> list[ApiToken]:
        """The account's tokens, oldest first."""
        rows = await self.sql.sql_rows(f"SELECT {_COLUMNS} FROM api_tokens t"
                                       " WHERE t.account_id = ? ORDER BY t.created_ts, t.id",
                                       (account_id,))
        return [_token(row) for row in rows]

    async def every(self) -> list[tuple[ApiToken, str]]:
        """Every token with its account's name, oldest first (for admins)."""
        rows = await self.sql.sql_rows(f"SELECT {_COLUMNS}, a.name FROM api_tokens t JOIN"
                                       " accounts a ON a.id = t.account_id"
                                       " ORDER BY t.created_ts, t.id", ())
        return [(_token(row), str(row[7])) for row in rows]

    async def revoke(self, token_id: str, account_id: int | None) -> bool:
        """Delete a token of the account's (None: anyone's, for an admin); whether one was. It
        stops working at the next request, on every node, and its sockets close (4003)."""
        return await self.sql.delete_token(token_id, account_id, self._now())

    async def resolve(self, secret: str) -> Resolved | None:
        """The live token this secret is, with its account; None for an unknown or revoked
        token, or a disabled account."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        found = await self.lookups.ask(secret_hash(secret))
        if found is None or found.account.disabled:
            return None
        used = found.token.last_used_ts
        if used is None or self._now() - used >= TOUCH_INTERVAL_MS:
            await self.touches.ask(found.token.id)
        return found

    async def _by_hashes(self, hashes: list[str]) -> dict[str, Resolved]:
        rows = await self.sql.sql_rows(_by_hashes(len(hashes)), tuple(hashes))
        return {str(row[-1]): Resolved(_token(row), sql.account_from_row(row[7:-2]),
                                       bool(row[-2]))
                for row in rows}

    async def _touch(self, token_ids: list[str]) -> dict[str, None]:
        now = self._now()
        await self.sql.sql_writes([(_touch(len(token_ids)), (now, now, *token_ids))])
        return {}

    # Bots

    async def create_bot(self, name: str, by: Account | None) -> Account:
        """A new bot account (a member, without password or passkey: it signs in by tokens
        only), made by an admin (`by`; None: the admin command)."""
        if by is not None and by.role != "admin":
            raise AccountError("forbidden", "only an admin creates bots")
        account = await self.accounts.insert(check_name(name), None, "", None)
        if account.role != "member":  # the first account ever is an admin: never a bot
            await self.sql.set_role(account.id, "member")
            account = await self.accounts.find(account.name)
        await self.sql.sql_writes([(
            "INSERT INTO bots (account_id, created_by, created_ts) VALUES (?, ?, ?)",
            (account.id, None if by is None else by.id, self._now()))])
        return account

    async def bots(self) -> list[Account]:
        """Every bot account, oldest first."""
        rows = await self.sql.sql_rows("SELECT account_id FROM bots ORDER BY account_id", ())
        found = [await self.sql.account_by_id(int(row[0])) for row in rows]
        return [account for account in found if account is not None]

    async def is_bot(self, account_id: int) -> bool:
        rows = await self.sql.sql_rows("SELECT 1 FROM bots WHERE account_id = ?", (account_id,))
        return bool(rows)

    async def bot(self, name: str) -> Account:
        """The bot of this name; AccountError no_such_bot for any other name."""
        account = await self.sql.account_by_name_key(name_key(name.strip()))
        if account is None or not await self.is_bot(account.id):
            raise AccountError("no_such_bot", f"no bot is named {name.strip()[:40]!r}")
        return account

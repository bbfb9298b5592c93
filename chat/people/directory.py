"""The names online on this node: who may take a name, and when it is free again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from time import monotonic

from chat.accounts.model import Account
from chat.people.connections import Client, User
from chat.people.embedding import Embedded
from chat.people.identity import (
    RESERVED_TOKENS,
    account_party,
    account_token,
    avatar_for,
    embedded_token,
    guest_party,
    new_token,
    token_matches,
)
from chat.people.names import name_key
from chat.protocol.parse import ProtocolError
from chat.roster.base import Roster, token_digest

Registered = Callable[[str], Awaitable[Account | None]]  # the account of a name key, if any
# Whether an account was registered under a name key since a monotonic time (heard lately).
RegisteredSince = Callable[[str, float], bool]


async def _nobody(key: str) -> Account | None:
    return None


def _never(key: str, since: float) -> bool:
    return False


class Gone(Exception):
    """The connection closed while its request waited: nothing is left to answer."""


class Directory(dict[str, User]):
    """Users with a connection on this node, by name key (`names.name_key`: look-alikes are one).

    The roster decides for the whole chat: a name's first connection here claims it there, its
    last one releases it. `on_first` and `on_last` follow a user's first and last connection
    here (the hub subscribes to its direct messages meanwhile). `avatars`: the kind of avatar
    a new user gets (`--avatars`).

    A connection signed in (`client.auth`) is its account's user, under the account's name,
    with the account's token (identity.account_token): all its connections on every node are
    one user. A guest (`guests`: allowed at all) takes a name no account holds (`registered`
    looks it up, any look-alike spelling included) and proves it with the token it was given.
    """

    def __init__(self, roster: Roster, on_first: Callable[[User], asyncio.Future[None]],
                 on_last: Callable[[User], None], avatars: str = "initials",
                 registered: Registered = _nobody, guests: bool = True,
                 registered_since: RegisteredSince = _never) -> None:
        super().__init__()
        self.avatars = avatars
        self.roster = roster
        self.registered = registered
        self.registered_since = registered_since
        self.guests = guests
        self.by_party: dict[str, User] = {}  # the same users by User.party
        self._on_first = on_first
        self._on_last = on_last
        self._claiming: dict[str, asyncio.Future[None]] = {}  # names the roster is asked for

    async def claim(
        self, client: Client, username: str | None, email: str | None, token: str | None,
        request: str | None,
    ) -> User:
        """The connection's user: its own, one online here (with its token), or a new one."""
        if client.user is not None:
            if username is not None and name_key(username) != client.user.key:
                raise ProtocolError(
                    "username_mismatch",
                    f"this connection is {client.user.name!r}; it cannot speak as {username!r}",
                    request=request, field="username",
                )
            return client.user
        account = client.auth.account if client.auth is not None else None
        embedded = client.auth.embedded if client.auth is not None else None
        if embedded is not None and account is None:
            if username is not None and name_key(username) != name_key(embedded.name):
                raise ProtocolError(
                    "not_your_name", f"this connection's token names {embedded.name!r}; it "
                    f"cannot join as {username!r}", request=request, field="username")
            username, token = embedded.name, embedded_token(embedded.sub)
        elif account is not None:
            if username is not None and name_key(username) != name_key(account.name):
                raise ProtocolError(
                    "not_your_name", f"this connection is signed in as {account.name!r}; it "
                    f"cannot join as {username!r}", request=request, field="username")
            username, token = account.name, account_token(account.id)
        elif not self.guests:
            raise ProtocolError("sign_in_required", "this server has no guests: sign in to "
                                "chat", request=request)
        elif username is None:
            raise ProtocolError("missing_field", "the field 'username' is required",
                                request=request, field="username")
        elif token is not None and token.startswith(RESERVED_TOKENS):
            raise self._taken(username, request)  # an account's token is never a guest's
        key = name_key(username)
        while key in self._claiming:  # another connection is claiming it: wait for its answer
            await asyncio.shield(self._claiming[key])
        if client.closed:
            raise Gone
        user = self.get(key)
        if user is None:
            return await self._claim_new(client, username, email, token, request, account,
                                         embedded)
        if not token_matches(token, user.token):
            raise self._taken(username, request) if user.guest else self._registered(
                username, request)
        user.clients.add(client)
        client.user = user
        return user

    async def _claim_new(self, client: Client, username: str, email: str | None,
                         token: str | None, request: str | None,
                         account: Account | None, embedded: Embedded | None) -> User:
        key = name_key(username)
        waiting = self._claiming[key] = asyncio.get_running_loop().create_future()
        asked = monotonic()
        try:
            if account is None and await self.registered(key) is not None:
                raise self._registered(username, request)
            if client.closed:
                raise Gone
            avatar = avatar_for(self.avatars, email if account is None else account.email,
                                username)
            vouched = account is not None or embedded is not None
            fresh = token if vouched and token is not None else new_token()
            claim = await self.roster.claim(key, username, avatar, token, fresh,
                                            legacy=not client.typed)
            if claim is None:
                raise self._taken(username, request)
            if client.closed:  # gone while the roster answered: give the name back
                self.roster.release(key)
                raise Gone
            if account is None and self.registered_since(key, asked):
                # Registered after the store was asked, and heard before this user existed
                # here to be closed: the account wins (docs/protocol.md, "Signing in").
                self.roster.release(key)
                raise self._registered(username, request)
            # Not an account: the party follows from the token, so every node computes it from
            # the roster's digest (party_of); an embedded user's token is `jwt:<sub>`.
            party = (account_party(account.id) if account is not None
                     else guest_party(token_digest(claim.token)))
            user = self[key] = User(claim.name, claim.avatar, claim.token, party, account,
                                    guest=not vouched,
                                    bot=client.auth is not None and client.auth.bot)
            self.by_party[party] = user
            user.clients.add(client)
            client.user = user
            await self._on_first(user)  # a close meanwhile has released it again
            if client.closed:
                raise Gone
        finally:
            del self._claiming[key]
            waiting.set_result(None)
        return user

    @staticmethod
    def _registered(username: str, request: str | None) -> ProtocolError:
        return ProtocolError(
            "name_registered", f"{username!r} (or a name that looks like it) belongs to an "
            "account: sign in as it, or choose another name", request=request,
            field="username")

    @staticmethod
    def _taken(username: str, request: str | None) -> ProtocolError:
        return ProtocolError("username_taken", f"{username!r} is already online",
                             request=request, field="username")

    async def party_of(self, name: str) -> tuple[str, str, bool] | None:
        """Whom a name means now: (its spelling, its party id, online), or None for nobody.

        A user online here, else one online on another node (roster.elsewhere: a guest's id
        follows from its token's digest; an account's from the account), else a registered
        account, online or not. A guest who has left is nobody: its conversations stay its own.
        """
        key = name_key(name)
        user = self.get(key)
        if user is not None:
            return user.name, user.party, bool(user.typed_clients())
        account = await self.registered(key)
        held = await self.roster.elsewhere(key)
        if held is not None:
            spelling, token_hash = held
            if account is not None and token_hash == token_digest(account_token(account.id)):
                return spelling, account_party(account.id), True
            return spelling, guest_party(token_hash), True
        if account is not None:
            return account.name, account_party(account.id), False
        return None

    def release(self, client: Client) -> None:
        """Forget a closed connection; the name is free once its user has none left."""
        user = client.user
        if user is None:
            return
        user.clients.discard(client)
        if not user.clients and self.get(user.key) is user:
            del self[user.key]
            self.by_party.pop(user.party, None)
            self.roster.release(user.key)
            self._on_last(user)

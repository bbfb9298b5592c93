"""The names online on this node: who may take a name, and when it is free again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from chat.people.connections import Client, User
from chat.people.identity import avatar_for, new_token, token_matches
from chat.people.names import name_key
from chat.protocol.parse import ProtocolError
from chat.roster.base import Roster


class Gone(Exception):
    """The connection closed while its request waited: nothing is left to answer."""


class Directory(dict[str, User]):
    """Users with a connection on this node, by name key (`names.name_key`: look-alikes are one).

    The roster decides for the whole chat: a name's first connection here claims it there, its
    last one releases it. `on_first` and `on_last` follow a user's first and last connection
    here (the hub subscribes to its direct messages meanwhile). `avatars`: the kind of avatar
    a new user gets (`--avatars`).
    """

    def __init__(self, roster: Roster, on_first: Callable[[User], asyncio.Future[None]],
                 on_last: Callable[[User], None], avatars: str = "initials") -> None:
        super().__init__()
        self.avatars = avatars
        self.roster = roster
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
        if username is None:
            raise ProtocolError("missing_field", "the field 'username' is required",
                                request=request, field="username")
        key = name_key(username)
        while key in self._claiming:  # another connection is claiming it: wait for its answer
            await asyncio.shield(self._claiming[key])
        if client.closed:
            raise Gone
        user = self.get(key)
        if user is None:
            return await self._claim_new(client, username, email, token, request)
        if not token_matches(token, user.token):
            raise self._taken(username, request)
        user.clients.add(client)
        client.user = user
        return user

    async def _claim_new(self, client: Client, username: str, email: str | None,
                         token: str | None, request: str | None) -> User:
        key = name_key(username)
        waiting = self._claiming[key] = asyncio.get_running_loop().create_future()
        try:
            avatar = avatar_for(self.avatars, email, username)
            claim = await self.roster.claim(key, username, avatar, token, new_token(),
                                            legacy=not client.typed)
            if claim is None:
                raise self._taken(username, request)
            if client.closed:  # gone while the roster answered: give the name back
                self.roster.release(key)
                raise Gone
            user = self[key] = User(claim.name, claim.avatar, claim.token)
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
    def _taken(username: str, request: str | None) -> ProtocolError:
        return ProtocolError("username_taken", f"{username!r} is already online",
                             request=request, field="username")

    def release(self, client: Client) -> None:
        """Forget a closed connection; the name is free once its user has none left."""
        user = client.user
        if user is None:
            return
        user.clients.discard(client)
        if not user.clients and self.get(user.key) is user:
            del self[user.key]
            self.roster.release(user.key)
            self._on_last(user)

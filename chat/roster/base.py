"""Who is online and in which room, on every node of the chat: the interface and its records."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

Member = dict[str, Any]  # {"username", "avatar"} (+ "guest" or "bot": true), as `presence` lists


class MemberPage(NamedTuple):
    """Some of a room's members, in the order of their keys (chat.names.name_key)."""

    total: int  # the room's members in all, on every node
    members: list[Member]  # at most the limit asked for, after the key asked for
    more: bool  # members after the last of this page exist


class RosterError(Exception):
    """The roster's backend could not take a change or answer (Redis down)."""


class Rebuilding(RosterError):
    """No new name now: the roster was lost (Redis restarted empty) and is being counted again."""


class Claim(NamedTuple):
    """A name granted to a connection: its spelling and avatar as first claimed, and the token."""

    name: str
    avatar: str
    token: str


def token_digest(token: str) -> str:
    """What the roster keeps of a token: enough to check one, useless to present as one."""
    return hashlib.sha256(token.encode()).hexdigest()


class Roster(Protocol):
    """Names online and room members, counted per node, for every node of the chat.

    The hub calls it on a user's FIRST connection on this node (claim, enter) and on its LAST
    (release, exit); the roster counts nodes. Each call takes effect in the order it was made,
    whatever the order in which the returned awaitables are awaited: a release made before a
    claim of the same name is applied before it.

    `enter` publishes a `join` notice on the room's channel when the user was in the room on no
    node; `exit` (and a dead node's removal) publishes `leave` when it is in the room on none.
    """

    async def start(self, on_lost: Callable[[], None] | None = None) -> None:
        """Join the chat's nodes; `on_lost` runs when the roster lost this node's state (Redis
        restarted empty): the hub then claims and enters again everything it holds."""
        ...

    async def close(self) -> None: ...

    def claim(self, key: str, name: str, avatar: str, token: str | None, fresh: str, *,
              legacy: bool = False, again: bool = False) -> Awaitable[Claim | None]:
        """Take a name for this node; None if another node holds it and `token` is not its.

        A name nobody holds gets the token `fresh`; one held elsewhere keeps its own. `legacy`:
        the user has only tutorial connections (no direct messages reach it). `again`: a name
        this node held before the roster was lost, claimed again. While the roster is being
        rebuilt after a loss, a new name (not `again`) fails with Rebuilding.
        """
        ...

    def release(self, key: str) -> None: ...

    def enter(self, room: str, key: str, name: str, avatar: str,
              limit: int, guest: bool = False, bot: bool = False) -> Awaitable[MemberPage]:
        """Count the user in the room on this node; the room's first `limit` members after that.

        The `join` notice carries `count`, the room's members once it is counted (and `guest`
        or `bot` for such a user, as the member's record does).
        """
        ...

    def exit(self, room: str, key: str) -> None: ...

    def members(self, room: str, after: str | None, limit: int) -> Awaitable[MemberPage]:
        """At most `limit` of the room's members on every node whose key sorts after `after`.

        Keys sort by code point; reading a page costs its size, not the room's.
        """
        ...

    def active(self, key: str, ts: int) -> None:
        """The user (held by this node) was active at `ts` (ms); the latest time is kept."""
        ...

    def activity(self, keys: list[str]) -> Awaitable[list[int | None]]:
        """Per key, the user's last activity on any node (ms; 0: none reported yet), or None
        when the name is online on no node (people/presence.py)."""
        ...

    def elsewhere(self, key: str) -> Awaitable[tuple[str, str] | None]:
        """(name, token digest) of a user online on another node (for a direct message), else
        None. The digest tells whose the name is (people/directory.py's party_of).

        None too for a user with only tutorial connections: they receive no direct messages.
        """
        ...

"""Who is online and in which room, on every node of the chat: the interface; one process's."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import NamedTuple, Protocol, TypeVar

from chat import channels, events

T = TypeVar("T")

Member = dict[str, str]  # {"username": ..., "avatar": ...}, as `presence` events list them


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

    async def start(self) -> None: ...

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

    def enter(self, room: str, key: str, name: str, avatar: str) -> Awaitable[list[Member]]:
        """Count the user in the room on this node; the room's members after that."""
        ...

    def exit(self, room: str, key: str) -> None: ...

    def members(self, room: str) -> Awaitable[list[Member]]:
        """The room's members on every node, sorted by case-folded name."""
        ...

    def elsewhere(self, key: str) -> Awaitable[str | None]:
        """The name of a user online on another node (for a direct message), else None.

        None too for a user with only tutorial connections: they receive no direct messages.
        """
        ...


async def ready(value: T) -> T:
    """An awaitable of a value already computed (the change it reports is already made)."""
    return value


class LocalRoster:
    """One process alone (`memory://`): no other node, notices delivered at once."""

    def __init__(self, deliver: Callable[[str, bytes], None]) -> None:
        self._deliver = deliver
        self._rooms: dict[str, dict[str, Member]] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def claim(self, key: str, name: str, avatar: str, token: str | None, fresh: str, *,
              legacy: bool = False, again: bool = False) -> Awaitable[Claim | None]:
        # The hub asks only for a name it does not hold, and this process is the only node.
        return ready(Claim(name, avatar, fresh))

    def release(self, key: str) -> None:
        return None

    def enter(self, room: str, key: str, name: str, avatar: str) -> Awaitable[list[Member]]:
        members = self._rooms.setdefault(room, {})
        if key not in members:
            members[key] = {"username": name, "avatar": avatar}
            self._deliver(channels.room(room),
                          channels.notice_payload(events.joined(room, name, avatar)))
        return self.members(room)

    def exit(self, room: str, key: str) -> None:
        members = self._rooms.get(room)
        member = members.pop(key, None) if members is not None else None
        if member is None:
            return
        if not members:
            del self._rooms[room]
        self._deliver(channels.room(room),
                      channels.notice_payload(events.left(room, member["username"])))

    def members(self, room: str) -> Awaitable[list[Member]]:
        members = self._rooms.get(room, {})
        return ready([members[key] for key in sorted(members)])

    def elsewhere(self, key: str) -> Awaitable[str | None]:
        return ready(None)

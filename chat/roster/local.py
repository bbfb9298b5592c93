"""One process's roster (`memory://`): no other node, so every answer is known at once."""

from __future__ import annotations

import bisect
from collections.abc import Awaitable, Callable
from typing import TypeVar

from chat.delivery import channels
from chat.roster.base import Claim, Member, MemberPage

T = TypeVar("T")


async def ready(value: T) -> T:
    """An awaitable of a value already computed (the change it reports is already made)."""
    return value


class LocalRoster:
    """One process alone (`memory://`): no other node, notices delivered at once."""

    def __init__(self, deliver: Callable[[str, bytes], None]) -> None:
        self._deliver = deliver
        self._rooms: dict[str, dict[str, Member]] = {}
        self._keys: dict[str, list[str]] = {}  # each room's member keys, sorted, for pages
        self._active: dict[str, int] = {}  # names held -> last activity (ms), 0: none yet

    async def start(self, on_lost: Callable[[], None] | None = None) -> None:
        return None  # one process: nothing to lose

    async def close(self) -> None:
        return None

    def claim(self, key: str, name: str, avatar: str, token: str | None, fresh: str, *,
              legacy: bool = False, again: bool = False) -> Awaitable[Claim | None]:
        # The hub asks only for a name it does not hold, and this process is the only node.
        self._active[key] = 0
        return ready(Claim(name, avatar, fresh))

    def release(self, key: str) -> None:
        self._active.pop(key, None)

    def active(self, key: str, ts: int) -> None:
        if key in self._active:
            self._active[key] = max(self._active[key], ts)

    def activity(self, keys: list[str]) -> Awaitable[list[int | None]]:
        return ready([self._active.get(key) for key in keys])

    def enter(self, room: str, key: str, name: str, avatar: str,
              limit: int, guest: bool = False, bot: bool = False) -> Awaitable[MemberPage]:
        members = self._rooms.setdefault(room, {})
        if key not in members:
            members[key] = channels.member_record(name, avatar, guest, bot)
            bisect.insort(self._keys.setdefault(room, []), key)
            self._deliver(channels.room(room),
                          channels.join_payload(room, name, avatar, len(members), guest,
                                                bot))
        return self.members(room, None, limit)

    def exit(self, room: str, key: str) -> None:
        members = self._rooms.get(room, {})
        member = members.pop(key, None)
        if member is None:
            return
        keys = self._keys[room]
        del keys[bisect.bisect_left(keys, key)]
        if not members:
            del self._rooms[room], self._keys[room]
        self._deliver(channels.room(room),
                      channels.leave_payload(room, member["username"], len(members)))

    def members(self, room: str, after: str | None, limit: int) -> Awaitable[MemberPage]:
        members, keys = self._rooms.get(room, {}), self._keys.get(room, [])
        start = 0 if after is None else bisect.bisect_right(keys, after)
        page = keys[start:start + limit]
        return ready(MemberPage(len(keys), [members[key] for key in page],
                                start + limit < len(keys)))

    def elsewhere(self, key: str) -> Awaitable[tuple[str, str] | None]:
        return ready(None)

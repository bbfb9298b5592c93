"""What a node does when its cluster backends come back: fill gaps, count itself in again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from chat.delivery.fanout import Fanout
from chat.people.connections import User
from chat.people.directory import Directory
from chat.rooms.access import RoomAccess
from chat.rooms.recheck import recheck
from chat.rooms.registry import Rooms
from chat.roster.base import Claim, Roster

log = logging.getLogger("chat.hub")

# The user's name went to someone else on another node while this node was counted out of the
# roster (Redis lost it): this node's connections of the user end (docs/protocol.md).
CLOSE_NAME_LOST = 4001


class Recovery:
    """The broker's and the roster's callbacks for a node that was cut off from the others."""

    def __init__(self, fanout: Fanout, rooms: Rooms, users: Directory, roster: Roster,
                 access: RoomAccess | None = None) -> None:
        self.fanout = fanout
        self.rooms = rooms
        self.users = users
        self.roster = roster
        self.access = access  # None: no accounts, so no moderation to have missed

    def broker_back(self) -> None:
        """The broker reconnected: fill what this node missed, apply the moderation it missed
        (chat/rooms/recheck.py), and resend presence lists."""
        self.fanout.fill_all()
        if self.access is not None:
            background(recheck(self.access, self.rooms, self.users))
        background(self.rooms.refresh_presence())

    def roster_lost(self) -> None:
        """The roster lost this node's state (Redis restarted empty): count it all again."""
        for user in list(self.users.values()):
            # Asked now, not when a task starts: in order with a release that may follow, and
            # before any new claim this node sends.
            claim = self.roster.claim(user.key, user.name, user.avatar, user.token, user.token,
                                      legacy=not user.typed_clients(), again=True)
            background(self._claimed_again(user, claim))
        for entered in self.rooms.count_again(self.users):
            background(entered)

    async def _claimed_again(self, user: User, claim: Awaitable[Claim | None]) -> None:
        if await claim is not None:
            return
        # Someone else holds it now (granted while this node was counted out): one holder only.
        log.warning("%r was taken on another node while this one was counted out; closing its "
                    "%d connection(s) here", user.name, len(user.clients))
        for client in list(user.clients):
            client.peer.close(CLOSE_NAME_LOST, f"{user.name!r} is now held by someone else on "
                              "another server; join again")


_running: set[asyncio.Future[Any]] = set()  # background work, kept from the collector


def background(pending: Awaitable[Any]) -> None:
    """Run an awaitable whose result nobody waits for; log its failure."""
    task = asyncio.ensure_future(pending)
    _running.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Future[Any]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("a background roster update failed: %s", task.exception())

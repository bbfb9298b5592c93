"""The rooms this node has members in: entering, leaving, and presence through the roster."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

from chat.addresses import address_group
from chat.config import Settings
from chat.delivery import channels
from chat.delivery.fanout import Subscriptions
from chat.limits import HourlyQuota
from chat.people.connections import Client, User
from chat.people.directory import Gone
from chat.people.names import name_key
from chat.protocol import events
from chat.protocol.frame import Frame
from chat.protocol.parse import DEFAULT_ROOM, ProtocolError
from chat.rooms.room import Room
from chat.roster.base import MemberPage, Roster, RosterError

log = logging.getLogger("chat.rooms")


class Rooms(dict[str, Room]):
    """Rooms by name, each subscribed to on the broker while this node has a member in it.

    The roster counts a user in a room once per node: `enter` on the user's first connection in
    the room here, `exit` on its last (the roster publishes the join and leave notices).
    """

    def __init__(self, settings: Settings, roster: Roster, subscriptions: Subscriptions) -> None:
        super().__init__()
        self.settings = settings
        self.roster = roster
        self.subscriptions = subscriptions
        # Every room opened here costs memory, and once posted to, disk until room retention:
        # one user or address may open only so many that were not open already.
        self.created_by_user = HourlyQuota(settings.room_creations_per_user)
        self.created_by_address = HourlyQuota(settings.room_creations_per_ip)
        # (room, user key) -> the roster exit a closed connection's user is owed, after
        # join-grace: back in the room here before then, the user never left (no notices).
        self._leaving: dict[tuple[str, str], asyncio.TimerHandle] = {}

    def open(self, name: str) -> Room:
        """The room, made (and subscribed to) if this node has none of its members yet."""
        room = self.get(name)
        if room is None:
            room = self[name] = Room(name, self.subscriptions.add(channels.room(name)))
        return room

    def of(self, client: Client, name: str, request: str, **refs: Any) -> Room:
        """A room the client is in, or ProtocolError('not_in_room')."""
        room = self.get(name)
        if room is None or name not in client.rooms:
            raise ProtocolError("not_in_room", f"you are not in the room {name!r}",
                                request=request, room=name, **refs)
        return room

    async def enter(self, client: Client, user: User, name: str) -> tuple[Room, MemberPage]:
        """Put the client in a room; the room and its first members, on every node."""
        limit = self.settings.max_rooms_per_connection
        if len(client.rooms) >= limit:
            raise ProtocolError("too_many_rooms", f"a connection may be in {limit} rooms",
                                request="join", room=name, limit=limit)
        if name not in self:
            if len(self) >= self.settings.max_rooms:
                raise ProtocolError("too_many_rooms", f"the server holds its limit of "
                                    f"{self.settings.max_rooms:,} rooms", request="join",
                                    room=name)
            self._count_creation(client, user, name)
        room = self.open(name)
        room.add_member(user.key, client)
        client.join_room(name)
        if client.typed:  # the tutorial's page shows no notices
            room.listen(client)
        await room.subscribed  # before our join notice is published, or any history read
        if client.closed:
            raise Gone  # the hub's disconnect() has taken it out again
        pending = self._leaving.pop((name, user.key), None)
        if pending is not None:  # back within join-grace: still counted in the roster
            pending.cancel()
            room.count_in(user.key)
        try:
            if not room.count_in(user.key):
                return room, await self.page(name)
            return room, await self.roster.enter(name, user.key, user.name, user.avatar,
                                                 self.settings.presence_max_members,
                                                 guest=user.guest, bot=user.bot)
        except RosterError as exc:
            log.warning("roster unavailable for a join to %s: %s", name, exc)
            self.exit(client, name)
            raise ProtocolError("broker_down", "the chat's other servers cannot be reached "
                                "now; try again shortly", request="join", room=name) from None

    def _count_creation(self, client: Client, user: User, name: str) -> None:
        """Spend one of the user's and the address's room creations, or refuse the join."""
        now = time.monotonic()
        address = address_group(client.address)  # an IPv6 /64 is one address
        for quota, who, setting in (
                (self.created_by_user, user.key, "room-creations-per-user"),
                (self.created_by_address, address, "room-creations-per-ip")):
            if not quota.allows(who, now):
                who_said = "one user" if quota is self.created_by_user else "one address"
                raise ProtocolError(
                    "too_many_rooms", f"{name!r} is a new room, and {who_said} may open at "
                    f"most {quota.per_hour:,} new rooms per hour ({setting}); join a room "
                    "that is open, or try again later", request="join", room=name,
                    limit=quota.per_hour)
        self.created_by_user.take(user.key, now)
        self.created_by_address.take(address, now)

    def exit(self, client: Client, name: str, *, closed: bool = False) -> None:
        """Take the client out of a room; the room goes when its last member here does.

        `closed`: the connection closed (not a `leave`): its user stays counted in the room
        for join-grace, so that coming back (here or on another node) makes no notices.
        """
        client.leave_room(name)
        if client.typing_at:
            client.typing_at.pop(name, None)
        room = self.get(name)
        if room is None or client.user is None:
            return
        key = client.user.key
        if room.remove_member(key, client) and room.count_out(key):
            grace = self.settings.join_grace
            if closed and grace > 0:
                self._leaving[(name, key)] = asyncio.get_running_loop().call_later(
                    grace, self._exit_late, name, key)
            else:
                self.roster.exit(name, key)
        if not room.users and name != DEFAULT_ROOM:
            del self[name]
            self.subscriptions.remove(channels.room(name))

    def _exit_late(self, name: str, key: str) -> None:
        """join-grace is over and the user did not come back here: it leaves the room."""
        if self._leaving.pop((name, key), None) is not None:
            self.roster.exit(name, key)

    def forget_leaving(self) -> None:
        """The node leaves the cluster: the roster takes out all it counted, at once."""
        for pending in self._leaving.values():
            pending.cancel()
        self._leaving.clear()

    def page(self, name: str, after: str | None = None,
             limit: int | None = None) -> Awaitable[MemberPage]:
        """Members of a room after the username `after`, at most presence-max-members."""
        most = self.settings.presence_max_members
        # `after` is compared as the roster's keys are made: User.key, the name's key.
        return self.roster.members(name, None if after is None else name_key(after),
                                   most if limit is None else min(limit, most))

    async def refresh_presence(self) -> None:
        """Send every room's members to its listeners (notices may have been lost meanwhile)."""
        for room in list(self.values()):
            try:
                page = await self.page(room.name)
            except RosterError as exc:
                log.warning("could not read the members of %s: %s", room.name, exc)
                return
            frame = Frame.of(events.presence(room.name, page.members, page.total, page.more))
            for client in list(room.listeners):
                client.peer.send(frame)
                room.presented(client)

    def count_again(self, users: dict[str, User]) -> list[Awaitable[Any]]:
        """Enter every member again (after the roster lost this node's state)."""
        return [self.roster.enter(room.name, key, users[key].name, users[key].avatar, 0,
                                  guest=users[key].guest, bot=users[key].bot)
                for room in list(self.values()) for key in room.entered if key in users]


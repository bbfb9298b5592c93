"""Moderation this node missed while its broker was down, applied from the store.

Controls (chat/rooms/control.py) go through the broker and are lost while it is down; the
store holds every decision. So when the broker is back, each local user's standing is read
again and applied as its control would have been: a ban or a kick (no membership left) takes
the user out of the room, a room made private sends its guests out, mutes are set or lifted,
a server-wide ban closes the user's sockets, and a room with removed messages is marked so that
history reads and gap fills skip them. The `by` of such an event is empty: the node does not
know who decided.
"""

from __future__ import annotations

import logging

from chat.addresses import address_group
from chat.people.connections import Client, User
from chat.people.directory import Directory
from chat.protocol import events
from chat.rooms.access import RoomAccess, left_ms
from chat.rooms.control import now_ms
from chat.rooms.registry import Rooms
from chat.rooms.room import Room
from chat.rooms.store import FOREVER, SERVER_WIDE, Access
from chat.store.base import StoreError

log = logging.getLogger("chat.rooms")

UNKNOWN_ACTOR = ""  # the `by` of an event applied from the store: who decided is not known


async def recheck(access: RoomAccess, rooms: Rooms, users: Directory) -> None:
    """Read every local user's standing again and apply what changed (one read per user and
    room: a node of 10,000 room members makes 10,000 reads, once per broker outage)."""
    try:
        for user in list(users.values()):
            await _server_ban(access, user)
        for room in list(rooms.values()):
            await _room(access, room)
    except StoreError as exc:  # the next outage's end, or a rejoin, checks again
        log.warning("could not read again who may stay in the rooms: %s", exc)


async def _server_ban(access: RoomAccess, user: User) -> None:
    if not user.clients:
        return
    first = next(iter(user.clients))
    standing = await _standing(access, SERVER_WIDE, user, first)
    if standing.banned_until is not None:
        access.controls.apply(None, user, {
            "op": "close", "ban_until": standing.banned_until,
            "reason": f"banned from this server {left_ms(standing.banned_until, now_ms())}"})


async def _room(access: RoomAccess, room: Room) -> None:
    standing_of: dict[str, tuple[User, Access]] = {}
    for clients in list(room.users.values()):
        client = next(iter(clients), None)
        user = client.user if client is not None else None
        if client is None or user is None:
            continue
        standing_of[user.party] = (user, await _standing(access, room.name, user, client))
    for party, (user, standing) in standing_of.items():
        info = standing.room
        if info is None:
            continue
        if info.removals:
            room.removals = True
        control = _control(room.name, user, standing)
        if control is not None:
            access.controls.apply(room, None, control)
            continue
        until = standing.muted_until
        access.controls.apply(room, None, {"op": "mute", "party": party, "until": until or 0})


def _control(name: str, user: User, standing: Access) -> dict[str, object] | None:
    """The eviction the user's standing calls for, as its control would have said; None."""
    info = standing.room
    assert info is not None
    if standing.banned_until is not None:
        shown = standing.banned_until if standing.banned_until < FOREVER else None
        return {"op": "evict", "party": user.party, "ban_until": standing.banned_until,
                "event": events.moderated(name, "ban", UNKNOWN_ACTOR, shown)}
    if user.account is not None and standing.role is None:  # kicked, or left elsewhere
        return {"op": "evict", "party": user.party,
                "event": events.moderated(name, "kick", UNKNOWN_ACTOR)}
    if user.account is None and info.visibility == "private":
        return {"op": "evict", "party": user.party,
                "event": events.moderated(name, "private", UNKNOWN_ACTOR)}
    return None


async def _standing(access: RoomAccess, name: str, user: User, client: Client) -> Access:
    """As RoomAccess.access, but a store error propagates (recheck stops and logs it)."""
    targets = [user.party]
    if user.guest:
        targets.append("ip:" + address_group(client.address))
    return await access.store.access(name, user.account.id if user.account else None,
                                     targets, now_ms())

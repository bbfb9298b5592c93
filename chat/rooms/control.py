"""Controls between nodes about rooms (channels.py `c` payloads): evictions, mutes, notices.

A moderation action is decided on one node and written to the store there; every node then
applies it to its own connections when the control comes back through the broker: a kicked
or banned user's sockets leave the room on every node at once, a mute holds on every node.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from chat.addresses import address_group
from chat.broker.base import Broker, BrokerError
from chat.delivery import channels
from chat.people.connections import Client, User
from chat.protocol.frame import Frame
from chat.rooms.registry import Rooms
from chat.rooms.room import Room

CLOSE_BANNED = 4005  # the user was banned from the whole server (docs/protocol.md, Closing)
# (room, address group, the guest's name key, until ms): a guest banned by session here is
# banned by address too, by the node that holds its connections (only it knows the address).
OnGuestBanned = Callable[[str, str, str, int], None]


def now_ms() -> int:
    return int(time.time() * 1000)


class Controls:
    """Publishes controls, and applies those that reach this node to its connections."""

    def __init__(self, rooms: Rooms, broker: Broker) -> None:
        self.rooms = rooms
        self.broker = broker
        self.on_guest_banned: OnGuestBanned | None = None

    async def to_room(self, room: str, op: str, **fields: Any) -> None:
        """A control to every node with members in `room` (lost if the broker is down)."""
        with contextlib.suppress(BrokerError):  # the store holds the decision; joins check it
            await self.broker.publish(channels.room(room), channels.control_payload(op, **fields))

    async def to_user(self, party: str, event: dict[str, Any] | None = None,
                      op: str = "notify", **fields: Any) -> None:
        """An event to every connection of a user, on every node (or another op: `close`)."""
        with contextlib.suppress(BrokerError):
            await self.broker.publish(channels.user(party),
                                      channels.control_payload(op, event=event, **fields))

    def apply(self, room: Room | None, user: User | None, control: dict[str, Any]) -> None:
        """The fan-out's callback: a control delivered on a room's or a user's channel."""
        op = control.get("op")
        event = control.get("event")
        frame = Frame.of(event) if isinstance(event, dict) else None
        if user is not None and op == "notify" and frame is not None:
            for client in user.typed_clients():
                client.peer.send(frame)
        if user is not None and op == "close":  # banned from the server: every socket closes
            until = control.get("ban_until")
            for client in list(user.clients):
                if isinstance(until, int) and user.guest and self.on_guest_banned is not None:
                    self.on_guest_banned("", address_group(client.address), user.key, until)
                client.peer.close(CLOSE_BANNED, str(control.get("reason", "banned")))
        if room is None:
            return
        if op == "removed":  # a message was removed: history reads filter from now on
            room.removals = True
        if op in ("notify", "removed") and frame is not None:
            for client in list(room.listeners):
                client.peer.send(frame)
        elif op == "evict":
            party = str(control.get("party"))
            self._evict(room, frame, lambda user: user.party == party, control)
        elif op == "guests_out":
            self._evict(room, frame, lambda user: user.account is None, control)
        elif op == "mute":
            until = int(control.get("until") or 0)
            party = str(control.get("party"))
            if until > now_ms():
                room.muted[party] = until
            else:
                room.muted.pop(party, None)

    def _evict(self, room: Room, frame: Frame | None, who: Callable[[User], bool],
               control: dict[str, Any]) -> None:
        leaving: list[Client] = [client for clients in room.users.values() for client in clients
                                 if client.user is not None and who(client.user)]
        until = control.get("ban_until")
        for client in leaving:
            self.rooms.exit(client, room.name)
            if frame is not None:
                client.reply(frame)
            user = client.user
            if (isinstance(until, int) and user is not None and user.guest
                    and self.on_guest_banned is not None):
                self.on_guest_banned(room.name, address_group(client.address), user.key, until)

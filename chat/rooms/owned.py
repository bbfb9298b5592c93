"""The rooms' durable side on one node: owners, private rooms and moderation, with accounts.

A server without accounts has no one to own a room, so it keeps only the controls between
nodes (evictions, notices) and refuses `room`, `rooms` and the moderation frames.
"""

from __future__ import annotations

from dataclasses import dataclass

from chat.accounts.service import AccountService
from chat.broker.base import Broker
from chat.config import Settings
from chat.delivery.fanout import Fanout
from chat.history.replay import Replay
from chat.people.directory import Directory
from chat.protocol.parse import ProtocolError
from chat.rooms.access import RoomAccess
from chat.rooms.control import Controls
from chat.rooms.moderation import Moderation
from chat.rooms.registry import Rooms
from chat.rooms.store import RoomStore
from chat.store.base import HistoryStore


@dataclass
class OwnedRooms:
    """The controls every node applies, and (with accounts) access and moderation."""

    controls: Controls
    access: RoomAccess | None = None
    moderation: Moderation | None = None

    @classmethod
    def wire(cls, settings: Settings, accounts: AccountService | None, rooms: Rooms,
             broker: Broker, users: Directory, history: HistoryStore, fanout: Fanout,
             replay: Replay) -> OwnedRooms:
        """Build them and hook them into the fan-out and the history reads."""
        controls = Controls(rooms, broker)
        fanout.on_control = controls.apply
        if accounts is None:
            return cls(controls)
        access = RoomAccess(settings, RoomStore(accounts.store), accounts.store, controls)
        controls.on_guest_banned = access.ban_address
        replay.rooms = rooms  # removed messages are hidden from history reads
        replay.hidden = access.store.removed_between
        fanout.removed = access.store.removed_between  # and from the gap fills
        return cls(controls, access, Moderation(access, users, history))

    def access_for(self, room: str, request: str) -> RoomAccess:
        """The rooms' durable side, or ProtocolError on a server without accounts."""
        if self.access is None:
            raise ProtocolError("forbidden", "this server keeps no accounts, so rooms have no "
                                "owners, settings nor moderation", request=request, room=room)
        return self.access

    def moderation_for(self, room: str, request: str) -> Moderation:
        """Moderation, or the same ProtocolError as access_for on a server without accounts."""
        self.access_for(room, request)
        assert self.moderation is not None  # wired together with access
        return self.moderation

"""One room on this node: its audiences and the state machine that keeps its readers in id order.

A connection reads a room's messages in three steps: held while its history is read (`hold`:
live messages are kept for it meanwhile), settling once that is sent (`settle`: its history may
hold a message whose live copy is still in the broker), then a reader (the first broadcast past
what it was sent makes it one). Members read the rooms they joined; before joining, a connection
watches `general` (the tutorial's page shows the chat before you join): the same steps, with the
first id it read live remembered (`watch`). Only this class writes these fields; the others read.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any

from chat.people.connections import Client
from chat.protocol import events
from chat.protocol.frame import Frame
from chat.record import StoredMessage


class HeldNotices:
    """A room's join and leave notices held back for one notice-interval (chat/rooms/notices.py)."""

    __slots__ = ("changes", "count")

    def __init__(self) -> None:
        # User key -> the first and the last notice about that user in this interval.
        self.changes: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.count: int | None = None  # the room's members, as the latest notice counted them

    def add(self, about: str, event: dict[str, Any]) -> None:
        """Hold a notice about the user `about`; it is sent in order of each user's last change."""
        first, _ = self.changes.pop(about, (event, event))
        self.changes[about] = (first, event)
        if isinstance(event.get("count"), int):
            self.count = event["count"]


class Arrival(enum.Enum):
    """What a room does with a stored message the broker delivers (`Room.accept`)."""

    LIVE = "broadcast it now"
    REPEAT = "sent already"
    HELD = "held while the messages before it are read"
    GAP = "held: messages before it are missing; fill them"


class Room:
    """A room's audiences, kept as ready-made sets so that fan-out is one loop."""

    __slots__ = ("entered", "filling", "fresh", "held", "joining", "last_id", "listeners",
                 "muted", "name", "readers", "removals", "settling", "subscribed", "users",
                 "version", "watchers")

    def __init__(self, name: str, subscribed: asyncio.Future[None]) -> None:
        self.name = name
        self.subscribed = subscribed  # done once the broker delivers this room's channel
        self.readers: set[Client] = set()  # receive `message` events
        self.listeners: set[Client] = set()  # members that receive notices (typed ones)
        self.users: dict[str, set[Client]] = {}  # user key -> its connections in the room
        # Readers that are not members (see the module's docstring) -> the first id read live.
        self.watchers: dict[Client, int] = {}
        # Clients waiting for their history read: live messages are held for them meanwhile.
        self.joining: dict[Client, list[tuple[int, Frame]]] = {}
        # Clients just caught up, with the last id each was sent, until a broadcast passes it
        # (broadcasts come in id order).
        self.settling: dict[Client, int] = {}
        self.last_id = 0  # the last message broadcast here (0: none yet)
        # Counts broadcasts and resets: a history read started at one version holds all a
        # reader needs as long as the version is still the same when the reader is held.
        self.version = 0
        # Live messages held while the ones before them are read from the store (a gap).
        self.filling: list[StoredMessage] | None = None
        self.entered: set[str] = set()  # user keys this node counts in the room in the roster
        # Notices held while the room churns (None: quiet, the next notice goes at once).
        self.held: HeldNotices | None = None
        # Listeners whose member list may not reflect the state the held notices started from,
        # so they get each changed user's final state: True once their `presence` was sent.
        self.fresh: dict[Client, bool] = {}
        # Parties muted here -> when the mute ends (ms since the epoch; chat/rooms/control.py).
        self.muted: dict[str, int] = {}
        # Whether moderators removed messages here: history reads then skip those (replay.py).
        self.removals = False

    # Members

    def add_member(self, key: str, client: Client) -> None:
        """One more connection of the user `key` in the room."""
        self.users.setdefault(key, set()).add(client)

    def remove_member(self, key: str, client: Client) -> bool:
        """Take a member's connection out of every audience; True if the user has none left."""
        self.drop(client)
        self.listeners.discard(client)
        self.fresh.pop(client, None)
        connections = self.users.get(key)
        if connections is None:
            return False
        connections.discard(client)
        if connections:
            return False
        del self.users[key]
        return True

    def count_in(self, key: str) -> bool:
        """Note that the roster counts the user here; False if it already did."""
        if key in self.entered:
            return False
        self.entered.add(key)
        return True

    def count_out(self, key: str) -> bool:
        """Note that the roster no longer counts the user here; False if it did not."""
        if key not in self.entered:
            return False
        self.entered.discard(key)
        return True

    # Notices

    def listen(self, client: Client) -> None:
        """Send the client this room's notices (its `presence` is on the way)."""
        self.listeners.add(client)
        self.fresh[client] = False

    def presented(self, client: Client) -> None:
        """A `presence` list of this room was sent to the client."""
        if self.held is None:
            self.fresh.pop(client, None)
        elif client in self.listeners:
            self.fresh[client] = True

    def hold_notices(self) -> HeldNotices:
        """Start holding join and leave notices (the room churns)."""
        self.held = HeldNotices()
        return self.held

    def release_notices(self) -> HeldNotices | None:
        """Stop holding notices: those held, to send (then notices_sent())."""
        held, self.held = self.held, None
        return held

    def notices_sent(self) -> None:
        """The held notices were sent: listeners presented meanwhile have the true list now."""
        self.fresh = {client: sent for client, sent in self.fresh.items() if not sent}

    # Readers

    def hold(self, client: Client) -> None:
        """The client's history is being read: keep the live messages for it meanwhile."""
        self.joining[client] = []

    def unhold(self, client: Client) -> list[tuple[int, Frame]] | None:
        """The live messages kept for the client; None if it was dropped meanwhile."""
        return self.joining.pop(client, None)

    def settle(self, client: Client, last_id: int) -> None:
        """The client was sent everything up to `last_id`: it reads live from the next one."""
        self.settling[client] = last_id

    def watch(self, client: Client, first_live: int) -> None:
        """The client reads the room without being a member, live from the id `first_live` on."""
        self.watchers[client] = first_live

    def watched_from(self, client: Client) -> int | None:
        """The first id a watching client read live; None if it does not watch the room."""
        first = self.watchers.get(client)
        return first if first is not None and self.reads(client) else None

    def end_watch(self, client: Client) -> None:
        """The watching client joined the room: it reads on, as a member."""
        self.watchers.pop(client, None)

    def drop(self, client: Client) -> None:
        """Forget a client as a reader of this room, wherever it is in joining it."""
        self.readers.discard(client)
        self.joining.pop(client, None)
        self.settling.pop(client, None)
        self.watchers.pop(client, None)

    def reads(self, client: Client) -> bool:
        """Whether the client receives this room's messages live."""
        return client in self.readers or client in self.settling

    # Messages

    def accept(self, stored: StoredMessage) -> Arrival:
        """Take a message the broker delivered: LIVE is for `broadcast`, GAP for a fill."""
        if self.filling is not None:
            self.filling.append(stored)
            return Arrival.HELD
        floor = self.floor()
        if floor is None:
            return Arrival.LIVE
        if stored.id <= floor:
            return Arrival.REPEAT  # sent already (read from the store while filling a gap)
        if stored.id > floor + 1:
            self.filling = [stored]
            return Arrival.GAP
        return Arrival.LIVE

    def broadcast(self, stored: StoredMessage) -> int:
        """Send a message to the readers (and to those settling, past their floor); how many."""
        self.last_id = stored.id
        self.version += 1
        frame = Frame.of(events.message(stored))
        readers = self.readers
        for client in readers:
            client.peer.send(frame)
        sent = len(readers)
        if self.settling:
            for client, sent_up_to in list(self.settling.items()):
                if stored.id > sent_up_to:
                    del self.settling[client]
                    readers.add(client)
                    client.peer.send(frame)
                    sent += 1
        for held in self.joining.values():
            held.append((stored.id, frame))
        return sent

    def skip(self, message_id: int) -> None:
        """Go on past a message no reader is sent (a moderator removed it)."""
        self.last_id = message_id

    # Gaps

    def begin_fill(self) -> None:
        """Hold live messages until end_fill(), while the ones before them are read."""
        if self.filling is None:
            self.filling = []

    @property
    def is_filling(self) -> bool:
        return self.filling is not None

    def floor(self) -> int | None:
        """The id every reader has had (None: unknown), so the next live one is floor + 1."""
        if self.last_id or self.readers:
            # 0 with readers: ids began again (reset_history); the next is 1 but for a
            # reader taken in meanwhile, which `settling` shields from repeats.
            return self.last_id if self.last_id else None
        # Nothing broadcast here yet: every reader came through a history read and waits in
        # `settling` with the last id it was sent; the lowest is where the room's feed starts.
        return min(self.settling.values(), default=None)

    def filling_from(self) -> int:
        """The id after which a fill reads the store (-1: no reader, nothing to read)."""
        floor = self.floor()
        return -1 if floor is None else floor

    def reset_history(self) -> None:
        """The store's ids went back (Redis lost its data): count from 0 again."""
        self.last_id = 0
        self.version += 1
        for client in list(self.settling):
            del self.settling[client]
            self.readers.add(client)

    def end_fill(self, missed: list[StoredMessage], *, final: bool = False,
                 ) -> list[StoredMessage]:
        """What was read (`missed`) and what was held, in id order, past the floor: to
        broadcast. A hole past the last id read is a message committed after the read and
        still on its way (a message is committed before those after it): what lies beyond
        the hole stays held, and the room is still filling. `final`: no read is to come (the
        store failed): everything, holes and all, so that live delivery goes on."""
        held, self.filling = self.filling or [], None
        floor = self.floor()
        merged = {m.id: m for m in (*missed, *held) if floor is None or m.id > floor}
        read_up_to = max((m.id for m in missed), default=0)
        ready: list[StoredMessage] = []
        last = floor
        for message_id in sorted(merged):
            if not final and last is not None and message_id > max(last + 1, read_up_to):
                self.filling = [merged[i] for i in sorted(merged) if i >= message_id]
                break
            ready.append(merged[message_id])
            last = message_id
        return ready

"""The hub's records: a connection (Client), a user, a room. Only the hub changes them."""

from __future__ import annotations

import asyncio
from collections.abc import Set as AbstractSet
from typing import Any, Protocol

from chat.limits import TokenBucket
from chat.names import name_key
from chat.record import StoredMessage
from chat.wire import Frame


class Peer(Protocol):
    """The transport side of one connection, as the hub sees it."""

    def send(self, frame: Frame) -> None:
        """Queue a frame; never blocks, never raises (a failing peer closes itself)."""

    def reply(self, frame: Frame) -> None:
        """Queue a frame the client asked for; its bytes never count as the client being slow."""

    def close(self, code: int, reason: str) -> None:
        """Send what is queued, then close the WebSocket with `code`."""


_NO_ROOMS: frozenset[str] = frozenset()


class Client:
    """One WebSocket connection."""

    __slots__ = ("address", "bucket", "closed", "legacy", "peer", "rooms", "strikes",
                 "typing_at", "user", "watch_from")

    def __init__(self, peer: Peer, address: str, bucket: TokenBucket) -> None:
        self.peer = peer
        self.address = address
        self.bucket = bucket
        self.strikes = 0  # frames refused in a row by the rate limit
        self.user: User | None = None
        self.legacy = False  # speaks the tutorial's frame: receives only `message` events
        # The shared empty set until the first join (most connections of a big idle crowd never
        # join); only join_room() and leave_room() change it.
        self.rooms: AbstractSet[str] = _NO_ROOMS
        # Room -> monotonic time of its last typing notice; made on first use, as most
        # connections never type (an idle connection's every byte counts).
        self.typing_at: dict[str, float] | None = None
        self.closed = False
        # The first id of `general` this connection read live before joining: it has them all.
        self.watch_from = 0

    def join_room(self, name: str) -> None:
        if not isinstance(self.rooms, set):
            self.rooms = set()
        self.rooms.add(name)

    def leave_room(self, name: str) -> None:
        if isinstance(self.rooms, set):
            self.rooms.discard(name)

    def notify(self, frame: Frame) -> None:
        """Send a frame that is not a `message` event (legacy clients would show it blank)."""
        if not self.legacy:
            self.peer.send(frame)

    def reply(self, frame: Frame) -> None:
        """Answer the client's own request with a frame that is not a `message` event."""
        if not self.legacy:
            self.peer.reply(frame)


class User:
    """A name that is online, with all its connections."""

    __slots__ = ("avatar", "clients", "key", "name", "token")

    def __init__(self, name: str, avatar: str, token: str) -> None:
        self.name = name
        self.key = name_key(name)
        self.avatar = avatar
        self.token = token
        self.clients: set[Client] = set()

    def typed_clients(self) -> set[Client]:
        """The connections that understand every event type."""
        return {client for client in self.clients if not client.legacy}


class HeldNotices:
    """A room's join and leave notices held back for one notice-interval (chat/notices.py)."""

    __slots__ = ("changes", "count")

    def __init__(self) -> None:
        # User key -> the first and the last notice about that user in this interval.
        self.changes: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.count: int | None = None  # the room's members, as the latest notice counted them


class Room:
    """A room's audiences, kept as ready-made sets so that fan-out is one loop."""

    __slots__ = ("entered", "filling", "fresh", "held", "joining", "last_id", "listeners",
                 "name", "readers", "settling", "subscribed", "users")

    def __init__(self, name: str, subscribed: asyncio.Future[None]) -> None:
        self.name = name
        self.subscribed = subscribed  # done once the broker delivers this room's channel
        self.readers: set[Client] = set()  # receive `message` events
        self.listeners: set[Client] = set()  # members that receive notices (not legacy)
        self.users: dict[str, set[Client]] = {}  # user key -> its connections in the room
        # Clients waiting for their history read: live messages are held for them meanwhile.
        self.joining: dict[Client, list[tuple[int, Frame]]] = {}
        # Clients just caught up: the history they read may hold a message whose live copy has
        # not come yet (still in the broker). Each waits here, with the last id it was sent,
        # until a broadcast passes that id (broadcasts come in id order).
        self.settling: dict[Client, int] = {}
        self.last_id = 0  # the last message broadcast here (0: none yet)
        # Live messages held while the ones before them are read from the store (a gap).
        self.filling: list[StoredMessage] | None = None
        self.entered: set[str] = set()  # user keys this node counts in the room in the roster
        # Notices held while the room churns (None: quiet, the next notice goes at once).
        self.held: HeldNotices | None = None
        # Listeners whose member list may not reflect the state the held notices started from,
        # so they get each changed user's final state: True once their `presence` was sent.
        self.fresh: dict[Client, bool] = {}

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

    def drop(self, client: Client) -> None:
        """Forget a client as a reader of this room, wherever it is in joining it."""
        self.readers.discard(client)
        self.joining.pop(client, None)
        self.settling.pop(client, None)

    def reads(self, client: Client) -> bool:
        """Whether the client receives this room's messages live."""
        return client in self.readers or client in self.settling


class Stats:
    """Counters the hub keeps for /healthz and /metrics."""

    __slots__ = ("deliveries", "errors", "evicted", "gap_fills", "messages", "rate_limited",
                 "store_failing", "store_failures")

    def __init__(self) -> None:
        self.messages = 0  # room and direct messages stored and sent
        self.deliveries = 0  # frames of those messages handed to connections
        self.errors = 0  # error events sent
        self.rate_limited = 0  # frames refused by the rate limit
        self.evicted = 0  # slow readers dropped (counted by the transport)
        self.store_failures = 0  # appends the store refused
        self.store_failing = 0  # appends refused in a row since the last it took (/healthz)
        self.gap_fills = 0  # rooms caught up from the store (messages the broker lost)

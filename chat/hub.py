"""Connections, rooms, presence and fan-out: the one place that decides who gets what."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from chat import events
from chat.config import Settings
from chat.limits import ConnectionCounter, TokenBucket
from chat.protocol import (
    DEFAULT_ROOM,
    Command,
    Direct,
    History,
    Join,
    Leave,
    LegacyPost,
    Post,
    ProtocolError,
    Typing,
    parse,
    peek,
)
from chat.replay import Replay
from chat.state import Client, Peer, Room, Stats, User
from chat.store.base import HistoryStore, StoredMessage, StoreError, dm_key
from chat.users import Directory
from chat.wire import Frame

log = logging.getLogger("chat.hub")

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008


class Hub:
    """The chat: every connection, user and room of this process, and what each frame does."""

    def __init__(
        self,
        settings: Settings,
        store: HistoryStore,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.replay = Replay(store, settings.history_on_join)
        self.clients: set[Client] = set()
        self.users = Directory()  # names online
        self.rooms: dict[str, Room] = {DEFAULT_ROOM: Room(DEFAULT_ROOM)}
        self.connections = ConnectionCounter(
            settings.max_connections, settings.max_connections_per_ip
        )
        self.stats = Stats()
        self._clock = clock
        self._monotonic = monotonic
        self.started = monotonic()
        self._drained: asyncio.Event | None = None
        self.observe_store_latency: Callable[[float], None] = lambda seconds: None
        self._handlers: dict[type, Callable[[Client, Any], Awaitable[None] | None]] = {
            Join: self._join, Post: self._post, Direct: self._direct, Typing: self._typing,
            Leave: self._leave, History: self._history, LegacyPost: self._legacy,
        }

    # Connections

    def refusal(self, address: str) -> tuple[int, str] | None:
        """(HTTP status, reason) if a new connection from `address` must be refused."""
        return self.connections.refusal(address)

    def connect(self, peer: Peer, address: str) -> tuple[Client, Awaitable[None]]:
        """Register a connection; await the second value before reading its frames."""
        bucket = TokenBucket(self.settings.rate_limit, self.settings.rate_burst, self._monotonic())
        client = Client(peer, address, bucket)
        self.clients.add(client)
        self.connections.add(address)
        # Before it joins, a connection reads `general` (the tutorial's page shows the chat
        # before you join): its recent history as message events, then live ones.
        return client, self.replay.catch_up(
            client, self.rooms[DEFAULT_ROOM], None, watching=True)

    def disconnect(self, client: Client) -> None:
        """Remove a connection from everything it joined; safe to call twice."""
        if client.closed:
            return
        client.closed = True
        self.clients.discard(client)
        self.connections.remove(client.address)
        general = self.rooms[DEFAULT_ROOM]
        general.drop(client)
        for name in list(client.rooms):
            self._exit(client, name)
        self.users.release(client)
        if not self.clients and self._drained is not None:
            self._drained.set()

    async def drained(self) -> None:
        """Return once no connection is left."""
        if self.clients:
            self._drained = asyncio.Event()
            await self._drained.wait()

    def close_all(self, code: int = CLOSE_GOING_AWAY, reason: str = "server shutting down") -> None:
        """Close every connection (graceful shutdown)."""
        for client in list(self.clients):
            client.peer.close(code, reason)

    def receive(self, client: Client, text: str) -> Awaitable[None] | None:
        """Act on one text frame; an awaitable if the action waits on the store."""
        if client.closed:
            return None
        if not client.bucket.take(self._monotonic()):
            self._refuse_for_rate(client, text)
            return None
        client.strikes = 0
        try:
            command: Command = parse(text, max_text_chars=self.settings.max_text_chars)
            pending = self._handlers[type(command)](client, command)
        except ProtocolError as err:
            self._error(client, err)
            return None
        return None if pending is None else self._guard(client, pending)

    async def _guard(self, client: Client, pending: Awaitable[None]) -> None:
        try:
            await pending
        except ProtocolError as err:
            self._error(client, err)

    def _refuse_for_rate(self, client: Client, text: str) -> None:
        self.stats.rate_limited += 1
        client.strikes += 1
        if client.strikes >= self.settings.rate_abuse_frames:
            client.peer.close(CLOSE_POLICY, "rate limit exceeded repeatedly")
            return
        request, cid = peek(text)  # so that the client knows which send to retry
        self._error(client, ProtocolError(
            "rate_limited",
            f"more than {self.settings.rate_limit:g} frames per second; slow down",
            request=request, cid=cid, limit=self.settings.rate_limit,
        ))

    def _error(self, client: Client, err: ProtocolError) -> None:
        self.stats.errors += 1
        client.peer.send(Frame.of(events.error(err, legacy=client.legacy)))

    # Identity and rooms

    def _user(self, client: Client, request: str, **refs: Any) -> User:
        if client.user is None:
            raise ProtocolError("not_joined", "join first", request=request, **refs)
        return client.user

    def _room_of(self, client: Client, name: str, request: str, **refs: Any) -> Room:
        room = self.rooms.get(name)
        if room is None or name not in client.rooms:
            raise ProtocolError("not_in_room", f"you are not in the room {name!r}",
                                request=request, room=name, **refs)
        return room

    def _enter(self, client: Client, user: User, name: str) -> Room:
        if len(client.rooms) >= self.settings.max_rooms_per_connection:
            raise ProtocolError(
                "too_many_rooms",
                f"a connection may be in {self.settings.max_rooms_per_connection} rooms",
                request="join", room=name, limit=self.settings.max_rooms_per_connection,
            )
        room = self.rooms.get(name)
        if room is None:
            if len(self.rooms) >= self.settings.max_rooms:
                raise ProtocolError("too_many_rooms",
                                    f"the server holds its limit of {self.settings.max_rooms:,} "
                                    "rooms", request="join", room=name)
            room = self.rooms[name] = Room(name)
        first_of_user = user.key not in room.users
        room.users.setdefault(user.key, set()).add(client)
        client.join_room(name)
        if first_of_user:
            self._notify(room.listeners, events.joined(name, user.name, user.avatar))
        if not client.legacy:
            room.listeners.add(client)
        return room

    def _exit(self, client: Client, name: str) -> None:
        client.leave_room(name)
        if client.typing_at:
            client.typing_at.pop(name, None)
        room = self.rooms.get(name)
        if room is None or client.user is None:
            return
        room.drop(client)
        room.listeners.discard(client)
        key = client.user.key
        connections = room.users.get(key)
        if connections is not None:
            connections.discard(client)
            if not connections:
                del room.users[key]
                self._notify(room.listeners, events.left(name, client.user.name))
        if not room.users and name != DEFAULT_ROOM:
            del self.rooms[name]

    # Fan-out

    def _notify(self, clients: Iterable[Client], event: dict[str, Any]) -> None:
        frame = Frame.of(event)
        for client in clients:
            client.peer.send(frame)

    def _broadcast(self, room: Room, stored: StoredMessage) -> None:
        frame = Frame.of(events.message(stored))
        readers = room.readers
        for client in readers:
            client.peer.send(frame)
        self.stats.deliveries += len(readers)
        if room.settling:
            for client, sent_up_to in list(room.settling.items()):
                if stored.id > sent_up_to:
                    del room.settling[client]
                    readers.add(client)
                    client.peer.send(frame)
                    self.stats.deliveries += 1
        for held in room.joining.values():
            held.append((stored.id, frame))

    # Commands

    def _join(self, client: Client, cmd: Join) -> Awaitable[None] | None:
        if client.legacy:
            raise ProtocolError("unknown_type", "a tutorial client cannot join rooms",
                                request="join")
        was_watching = client.user is None
        user = self.users.claim(client, cmd.username, cmd.email, cmd.token, "join")
        if cmd.room in client.rooms:
            self._welcome(client, user, self.rooms[cmd.room])
            return None
        room = self._enter(client, user, cmd.room)
        self._welcome(client, user, room)
        general = self.rooms[DEFAULT_ROOM]
        if was_watching and general.reads(client):
            if room is general:  # read live all along: only what came before the feed is missing
                return self.replay.catch_up_watcher(client, general, cmd.since)
            general.drop(client)  # a joined connection reads only its rooms
        return self.replay.catch_up(client, room, cmd.since)

    def _welcome(self, client: Client, user: User, room: Room) -> None:
        client.notify(Frame.of(events.welcome(user.name, user.avatar, user.token, client.rooms)))
        client.notify(Frame.of(events.presence(room.name, room.presence(self.users))))

    def _legacy(self, client: Client, cmd: LegacyPost) -> Awaitable[None] | None:
        if client.user is None:
            client.legacy = True  # its first frame is the tutorial's: so are its events
            user = self.users.claim(client, cmd.username, cmd.email, None, None)
            self._enter(client, user, DEFAULT_ROOM)
        elif not client.legacy:
            raise ProtocolError("unknown_type", "this connection speaks typed frames; "
                                "add a type", request=None)
        else:
            self.users.claim(client, cmd.username, None, None, None)
        if not cmd.text:
            return None
        return self._post(client, Post(DEFAULT_ROOM, cmd.text, None))

    async def _post(self, client: Client, cmd: Post) -> None:
        user = self._user(client, "message", cid=cmd.cid)
        joined = self._room_of(client, cmd.room, "message", cid=cmd.cid)
        joined.appending += 1  # a history read now may see this message before its broadcast
        try:
            stored, created = await self._append(
                client, cmd.room, user, cmd.text, cmd.cid, "message")
        finally:
            joined.appending -= 1
        room = self.rooms.get(cmd.room)
        if not created or room is None:
            client.peer.send(Frame.of(events.message(stored)))  # the original acknowledgement
            return
        self._broadcast(room, stored)

    async def _direct(self, client: Client, cmd: Direct) -> None:
        user = self._user(client, "dm", cid=cmd.cid, to=cmd.to)
        target = self.users.get(cmd.to.casefold())
        if target is None or not target.typed_clients():
            raise ProtocolError(
                "not_online", f"{cmd.to!r} is not online (or only on a tutorial client)",
                request="dm", to=cmd.to, cid=cmd.cid)
        stored, created = await self._append(
            client, dm_key(user.name, target.name), user, cmd.text, cmd.cid, "dm",
            to=target.name)
        frame = Frame.of(events.direct(stored))
        if not created:
            client.peer.send(frame)
            return
        recipients = user.typed_clients() | target.typed_clients()
        recipients.add(client)
        for recipient in recipients:
            recipient.peer.send(frame)
        self.stats.deliveries += len(recipients)

    async def _append(
        self, client: Client, conversation: str, user: User, text: str, cid: str | None,
        request: str, to: str | None = None,
    ) -> tuple[StoredMessage, bool]:
        started = self._monotonic()
        try:
            stored, created = await self.store.append(
                conversation, username=user.name, avatar=user.avatar, text=text,
                ts=int(self._clock() * 1000), cid=cid, to=to)
        except StoreError as exc:
            self.stats.store_failures += 1
            log.error("could not store a message in %s: %s", conversation, exc)
            raise ProtocolError("store_failed", "the message could not be stored; "
                                "it was not sent", request=request, cid=cid) from None
        self.observe_store_latency(self._monotonic() - started)
        if created:
            self.stats.messages += 1
        return stored, created

    def _typing(self, client: Client, cmd: Typing) -> None:
        user = self._user(client, "typing", room=cmd.room)
        room = self._room_of(client, cmd.room, "typing")
        now = self._monotonic()
        if client.typing_at is None:
            client.typing_at = {}
        last = client.typing_at.get(cmd.room)
        if last is not None and now - last < self.settings.typing_interval:
            return  # ephemeral: dropping extras loses nothing
        client.typing_at[cmd.room] = now
        others = [c for c in room.listeners if c.user is not user]
        self._notify(others, events.typing(room.name, user.name))

    def _leave(self, client: Client, cmd: Leave) -> None:
        user = self._user(client, "leave", room=cmd.room)
        self._room_of(client, cmd.room, "leave")
        self._exit(client, cmd.room)
        client.notify(Frame.of(events.left(cmd.room, user.name)))  # the acknowledgement

    async def _history(self, client: Client, cmd: History) -> None:
        user = self._user(client, "history")
        if cmd.peer is not None:
            conversation = dm_key(user.name, cmd.peer)  # includes the asker: always private
        else:
            assert cmd.room is not None
            conversation = self._room_of(client, cmd.room, "history").name
        try:
            page, more = await self.replay.page(conversation, cmd.before, cmd.limit)
        except StoreError as exc:
            raise ProtocolError("store_failed", f"history could not be read: {exc}",
                                request="history") from None
        render = events.direct if cmd.peer is not None else events.message
        client.notify(Frame.of(events.history(
            [render(stored) for stored in page], room=cmd.room, peer=cmd.peer, more=more)))

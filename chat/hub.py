"""Connections, rooms, presence and commands: the one place that decides who gets what."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from chat import channels, events
from chat.broker.base import Broker, BrokerError
from chat.broker.memory import MemoryBroker
from chat.config import Settings
from chat.fanout import Fanout, Subscriptions
from chat.legacy import TUTORIAL
from chat.limits import ConnectionCounter, TokenBucket
from chat.messages import Messages, check_broker
from chat.protocol import (
    DEFAULT_ROOM,
    Command,
    Direct,
    History,
    Join,
    Leave,
    LegacyPost,
    Members,
    Post,
    ProtocolError,
    Typing,
    parse,
    peek,
)
from chat.record import dm_key
from chat.replay import Replay
from chat.rooms import Rooms
from chat.roster import Claim, LocalRoster, MemberPage, Rebuilding, Roster, RosterError
from chat.state import Client, Peer, Stats, User
from chat.store.base import HistoryStore, StoreError
from chat.users import Directory, Gone
from chat.wire import Frame

log = logging.getLogger("chat.hub")

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
# The user's name went to someone else on another node while this node was counted out of the
# roster (Redis lost it): this node's connections of the user end (docs/protocol.md).
CLOSE_NAME_LOST = 4001


class Hub:
    """The chat as this node sees it: its connections, users and rooms, and what frames do.

    Every room message, direct message and notice goes out through the broker and comes back
    through `fanout`, which sends it to this node's connections: with `memory://` at once, with
    Redis to every node of the cluster. The roster counts names and room members over all nodes.
    """

    def __init__(
        self,
        settings: Settings,
        store: HistoryStore,
        broker: Broker | None = None,
        roster: Roster | None = None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.replay = Replay(store, settings.history_on_join, settings.history_bytes)
        self.broker: Broker = broker if broker is not None else MemoryBroker()
        self.subscriptions = Subscriptions(self.broker)
        self.clients: set[Client] = set()
        self.users = Directory(  # names online on this node
            roster if roster is not None else LocalRoster(self._deliver),
            lambda user: self.subscriptions.add(channels.user(user.key)),
            lambda user: self.subscriptions.remove(channels.user(user.key)))
        self.roster = self.users.roster
        self.rooms = Rooms(settings, self.roster, self.subscriptions)
        self.stats = Stats()
        self.fanout = Fanout(self.rooms, self.users, self.stats, store,
                             notice_interval=settings.notice_interval)
        self.messages = Messages(store, self.broker, self.roster, self.users, self.stats,
                                 clock=clock, monotonic=monotonic)
        self.connections = ConnectionCounter(
            settings.max_connections, settings.max_connections_per_ip
        )
        self._monotonic = monotonic
        # Bytes of history pages each connection may still read (made on its first page).
        self._history_budgets: dict[Client, TokenBucket] = {}
        self.started = monotonic()
        self._starting: asyncio.Future[None] | None = None
        self._drained: asyncio.Event | None = None
        self._handlers: dict[type, Callable[[Client, Any], Awaitable[None] | None]] = {
            Join: self._join, Post: self._post, Direct: self._direct, Typing: self._typing,
            Leave: self._leave, History: self._history, Members: self._members,
            LegacyPost: self._legacy,
        }

    # Life cycle

    async def start(self) -> None:
        """Start the broker and the roster (once; later calls wait for the first)."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        await self.broker.start(self._deliver)
        await self.roster.start()
        await self.rooms.open(DEFAULT_ROOM).subscribed  # every connection reads it before joining

    async def close(self) -> None:
        """Leave the cluster (this node's users leave their rooms) and stop the broker."""
        await self.roster.close()
        await self.broker.close()

    def _deliver(self, channel: str, payload: bytes) -> None:
        self.fanout.deliver(channel, payload)

    def broker_back(self) -> None:
        """The broker reconnected: fill what this node missed, and resend presence lists."""
        self.fanout.fill_all()
        _background(self.rooms.refresh_presence())

    def roster_lost(self) -> None:
        """The roster lost this node's state (Redis restarted empty): count it all again."""
        for user in list(self.users.values()):
            # Asked now, not when a task starts: in order with a release that may follow, and
            # before any new claim this node sends.
            claim = self.roster.claim(user.key, user.name, user.avatar, user.token, user.token,
                                      legacy=not user.typed_clients(), again=True)
            _background(self._claimed_again(user, claim))
        for entered in self.rooms.count_again(self.users):
            _background(entered)

    async def _claimed_again(self, user: User, claim: Awaitable[Claim | None]) -> None:
        if await claim is not None:
            return
        # Someone else holds it now (granted while this node was counted out): one holder only.
        log.warning("%r was taken on another node while this one was counted out; closing its "
                    "%d connection(s) here", user.name, len(user.clients))
        for client in list(user.clients):
            client.peer.close(CLOSE_NAME_LOST, f"{user.name!r} is now held by someone else on "
                              "another server; join again")

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
        return client, self._watch_general(client)

    async def _watch_general(self, client: Client) -> None:
        # Before it joins, a connection watches `general` (chat/room.py).
        await self.start()
        if not client.closed:
            await self.replay.watch(client, self.rooms[DEFAULT_ROOM])

    def disconnect(self, client: Client) -> None:
        """Remove a connection from everything it joined; safe to call twice."""
        if client.closed:
            return
        client.closed = True
        self.clients.discard(client)
        self.connections.remove(client.address)
        self._history_budgets.pop(client, None)
        general = self.rooms.get(DEFAULT_ROOM)
        if general is not None:
            general.drop(client)
        for name in list(client.rooms):
            self.rooms.exit(client, name)
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
        """Act on one text frame; an awaitable if the action waits on the store or roster."""
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
        return None if pending is None else self._guard(client, pending, text)

    async def _guard(self, client: Client, pending: Awaitable[None], text: str) -> None:
        try:
            await pending
        except ProtocolError as err:
            self._error(client, err)
        except Rebuilding as exc:
            request, cid = peek(text)
            self._error(client, ProtocolError("broker_down", str(exc), request=request, cid=cid))
        except RosterError as exc:
            log.warning("the roster failed a request: %s", exc)
            request, cid = peek(text)
            self._error(client, ProtocolError(
                "broker_down", "the chat's other servers cannot be reached now; try again "
                "shortly", request=request, cid=cid))
        except Gone:
            pass

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
        client.error(events.error(err))

    # Rooms

    def _user(self, client: Client, request: str, **refs: Any) -> User:
        if client.user is None:
            raise ProtocolError("not_joined", "join first", request=request, **refs)
        return client.user

    # Commands

    async def _join(self, client: Client, cmd: Join) -> None:
        if not client.typed:
            raise ProtocolError("unknown_type", "a tutorial client cannot join rooms",
                                request="join")
        check_broker(self.broker, "join", room=cmd.room)
        user = await self.users.claim(client, cmd.username, cmd.email, cmd.token, "join")
        if cmd.room in client.rooms:
            self._welcome(client, user, cmd.room, await self.rooms.page(cmd.room))
            return
        room, page = await self.rooms.enter(client, user, cmd.room)
        self._welcome(client, user, room.name, page)
        general = self.rooms[DEFAULT_ROOM]
        first_live = general.watched_from(client)
        if first_live is not None:
            if room is general:  # read live all along: only what came before the feed is missing
                general.end_watch(client)
                await self.replay.catch_up_watcher(client, general, cmd.since, first_live)
                return
            general.drop(client)  # a joined connection reads only its rooms
        await self.replay.catch_up(client, room, cmd.since)

    def _welcome(self, client: Client, user: User, name: str, page: MemberPage) -> None:
        client.reply(Frame.of(events.welcome(user.name, user.avatar, user.token, client.rooms,
                                              self.settings.max_text_chars)))
        client.reply(Frame.of(events.presence(name, page.members, page.total, page.more)))
        room = self.rooms.get(name)
        if room is not None:
            room.presented(client)

    async def _legacy(self, client: Client, cmd: LegacyPost) -> None:
        if client.user is None:
            client.dialect = TUTORIAL  # its first frame is the tutorial's: so are its events
            check_broker(self.broker, "message")
            user = await self.users.claim(client, cmd.username, cmd.email, None, None)
            await self.rooms.enter(client, user, DEFAULT_ROOM)
        elif client.typed:
            raise ProtocolError("unknown_type", "this connection speaks typed frames; "
                                "add a type", request=None)
        else:
            await self.users.claim(client, cmd.username, None, None, None)
        if cmd.text:
            await self._post(client, Post(DEFAULT_ROOM, cmd.text, None))

    async def _post(self, client: Client, cmd: Post) -> None:
        user = self._user(client, "message", cid=cmd.cid)
        self.rooms.of(client, cmd.room, "message", cid=cmd.cid)
        await self.messages.post(client, user, cmd)

    async def _direct(self, client: Client, cmd: Direct) -> None:
        await self.messages.direct(client, self._user(client, "dm", cid=cmd.cid, to=cmd.to), cmd)

    async def _typing(self, client: Client, cmd: Typing) -> None:
        user = self._user(client, "typing", room=cmd.room)
        room = self.rooms.of(client, cmd.room, "typing")
        now = self._monotonic()
        if client.typing_at is None:
            client.typing_at = {}
        last = client.typing_at.get(cmd.room)
        if last is not None and now - last < self.settings.typing_interval:
            return  # ephemeral: dropping extras loses nothing
        client.typing_at[cmd.room] = now
        payload = channels.notice_payload(events.typing(room.name, user.name))
        with contextlib.suppress(BrokerError):  # ephemeral: not worth an error
            await self.broker.publish(channels.room(room.name), payload)

    def _leave(self, client: Client, cmd: Leave) -> None:
        user = self._user(client, "leave", room=cmd.room)
        self.rooms.of(client, cmd.room, "leave")
        self.rooms.exit(client, cmd.room)
        client.reply(Frame.of(events.left(cmd.room, user.name)))  # the acknowledgement

    async def _members(self, client: Client, cmd: Members) -> None:
        self._user(client, "members", room=cmd.room)
        room = self.rooms.of(client, cmd.room, "members")
        page = await self.rooms.page(room.name, cmd.after, cmd.limit)
        client.reply(Frame.of(events.members(room.name, page.members, page.total, page.more,
                                              cmd.after)))

    async def _history(self, client: Client, cmd: History) -> None:
        user = self._user(client, "history")
        if cmd.peer is not None:
            conversation = dm_key(user.name, cmd.peer)  # includes the asker: always private
        else:
            assert cmd.room is not None
            conversation = self.rooms.of(client, cmd.room, "history").name
        budget = self._history_budgets.get(client)
        if budget is None:
            rate = self.settings.history_bytes_per_s
            budget = TokenBucket(rate, self.settings.history_bytes, self._monotonic())
            self._history_budgets[client] = budget
        self._check_history_budget(budget, 0)  # in debt: not even worth reading the store
        try:
            page, more = await self.replay.page(conversation, cmd.before, cmd.limit)
        except StoreError as exc:
            log.warning("history of %s could not be read: %s", conversation, exc)
            raise ProtocolError("store_failed", f"history could not be read: {exc}",
                                request="history") from None
        frame = self.replay.page_frame(page, more, room=cmd.room, peer=cmd.peer)
        self._check_history_budget(budget, len(frame.payload))
        client.reply(frame)

    def _check_history_budget(self, budget: TokenBucket, size: int) -> None:
        """Spend `size` bytes of a connection's history budget, or refuse the page."""
        if not budget.spend(size, self._monotonic()):
            self.stats.rate_limited += 1
            rate = self.settings.history_bytes_per_s
            raise ProtocolError(
                "rate_limited", f"more than {rate:,} bytes of history per second; "
                "ask again shortly", request="history", limit=rate)


_running: set[asyncio.Future[Any]] = set()  # background work, kept from the collector


def _background(pending: Awaitable[Any]) -> None:
    """Run an awaitable whose result nobody waits for; log its failure."""
    task = asyncio.ensure_future(pending)
    _running.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Future[Any]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("a background roster update failed: %s", task.exception())

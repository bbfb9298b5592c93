"""This node's connections and the commands they send: parsed, rate-limited, dispatched."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from time import monotonic

from chat.accounts.service import AccountService
from chat.broker.base import Broker
from chat.broker.memory import MemoryBroker
from chat.config import Settings
from chat.delivery import channels
from chat.delivery.catchup import Catchup, CommitFeed
from chat.delivery.fanout import Fanout, Subscriptions
from chat.delivery.sending import Messages
from chat.files.attach import WithFiles
from chat.files.service import Files
from chat.history.changes import MessageChanges
from chat.history.paging import Pages
from chat.history.replay import Replay
from chat.limits import ConnectionCounter, TokenBucket
from chat.node.actions import AccountActions
from chat.node.dispatch import Dispatcher
from chat.node.faults import Faults
from chat.node.recovery import Recovery
from chat.node.scopes import check_scope
from chat.node.signins import CLOSE_NAME_REGISTERED, SignIns
from chat.node.status import Stats, Status
from chat.people.connections import Auth, Client, Peer, User
from chat.people.directory import Directory, Gone
from chat.people.presence import Presence
from chat.people.reading import Reading
from chat.protocol import events
from chat.protocol.parse import (
    DEFAULT_ROOM,
    Active,
    Command,
    Direct,
    Post,
    ProtocolError,
    Typing,
    parse,
    peek,
)
from chat.rooms.membership import Membership
from chat.rooms.owned import OwnedRooms
from chat.rooms.registry import Rooms
from chat.roster.base import Rebuilding, Roster, RosterError
from chat.roster.local import LocalRoster
from chat.search.service import Searcher
from chat.store.base import HistoryStore
from chat.tasks import Background

log = logging.getLogger("chat.hub")

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008


class Hub:
    """This node's connections, and their frames: parsed, rate-limited, then dispatched
    (chat/node/dispatch.py) to the services this composes.

    Who receives what is decided by each room's audiences (chat/rooms/room.py), the fan-out of
    broker deliveries (chat/delivery/fanout.py) and a connection's dialect
    (chat/protocol/tutorial.py). Every room message, direct message and notice goes out through
    the broker and comes back through `fanout`:
    with `memory://` at once, with Redis to every node of the cluster. A store that announces
    its commits (PostgreSQL) also tells `catchup` of every stored message, so one whose node
    died before publishing it still reaches this node. The roster counts names and room
    members over all nodes.
    """

    def __init__(
        self,
        settings: Settings,
        store: HistoryStore,
        broker: Broker | None = None,
        roster: Roster | None = None,
        *,
        observe_store_latency: Callable[[float], None] | None = None,
        accounts: AccountService | None = None,
        files: Files | None = None,
    ) -> None:
        if files is not None:  # history reads come with each message's files (issue 18)
            store = WithFiles(store, files.store)
        self.settings = settings
        self.store = store
        self.signins = SignIns(accounts, settings.jwt_key, self._name_registered)
        self.broker: Broker = broker if broker is not None else MemoryBroker()
        self.subscriptions = Subscriptions(self.broker)
        self.clients: set[Client] = set()
        self.users = Directory(  # names online on this node
            roster if roster is not None else LocalRoster(self._deliver),
            self._subscribe_user, self._unsubscribe_user, settings.avatars,
            self.signins.registered, settings.guests, self.signins.registered_since)
        self.roster = self.users.roster
        self.rooms = Rooms(settings, self.roster, self.subscriptions)
        self.stats = Stats()
        self.replay = Replay(store, settings.history_on_join, settings.history_bytes,
                             settings.avatars)
        self.pages = Pages(settings, self.replay, self.stats, self.users)
        self.fanout = Fanout(self.rooms, self.users, self.stats, store,
                             notice_interval=settings.notice_interval,
                             notices_max_members=settings.notices_max_members)
        self.messages = Messages(store, self.broker, self.roster, self.users, self.stats,
                                 observe_store_latency, Faults.from_environ())
        self.messages.replay = self.replay  # replies: their originals, read as history is
        self.messages.files = files
        self.catchup = Catchup(self.fanout, self.users, store)
        # Owners, private rooms and moderation come with accounts (chat/rooms/owned.py).
        self.owned = OwnedRooms.wire(settings, accounts, self.rooms, self.broker, self.users,
                                     store, self.fanout, self.replay)
        # Edits and deletes (issue 16): any caller's, checked in the service.
        self.changes = MessageChanges(store, self.broker, settings.edit_window,
                                      self.owned.moderation.moderates
                                      if self.owned.moderation is not None else None,
                                      settings.max_reactions)
        if self.owned.moderation is not None:
            self.owned.moderation.changes = self.changes
        if files is not None:  # a deleted message's files go with it, unless others carry them
            self.changes.on_deleted.append(
                lambda stored: files.release_files(stored.conversation, [stored.id]))
        self.membership = Membership(settings, self.broker, self.users, self.rooms, self.replay,
                                     self.owned.access)
        self.recovery = Recovery(self.fanout, self.rooms, self.users, self.roster,
                                 self.owned.access)
        self.reading = Reading(store, self.broker, self.users, self.rooms, settings.unread_max)
        self.presence = Presence(settings.away_after, store, self.broker, self.users)
        # An account's messages and memberships without a socket (the HTTP API, webhooks).
        self.actions = (None if self.owned.access is None else AccountActions(
            settings, self.messages, self.owned.access, self.replay, self.users, self.start,
            self.changes))
        self.dispatcher = Dispatcher(self.broker, self.users, self.rooms, self.owned,
                                     self.membership, self.messages, self.pages, self.reading,
                                     self.presence, self.changes)
        # Search (issue 16, chat/search/): within what each user may read; the HTTP API can
        # call self.searcher.search with a User of its own, no socket needed.
        self.searcher = Searcher(settings, store, self.owned.access.store
                                 if self.owned.access is not None else None, self.users)
        self.dispatcher.searcher = self.searcher
        self.connections = ConnectionCounter(
            settings.max_connections, settings.max_connections_per_ip
        )
        self.started = monotonic()
        self._starting: asyncio.Future[None] | None = None
        self._drained: asyncio.Event | None = None
        # What else stops with the node, after its connections (outgoing webhooks' calls).
        self.closing: list[Callable[[], Awaitable[None]]] = []

    # Life cycle

    async def start(self) -> None:
        """Start the broker and the roster (once; later calls wait for the first)."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        # A store several nodes share (PostgreSQL); with memory:// this process is the only one.
        if isinstance(self.store, CommitFeed) and not isinstance(self.broker, MemoryBroker):
            await self.store.watch(self.catchup.committed, self.catchup.resumed)
        await self.broker.start(self._deliver, self.recovery.broker_back)
        await self.roster.start(self.recovery.roster_lost)
        await self.rooms.open(DEFAULT_ROOM).subscribed  # every connection reads it before joining
        if self.owned.access is not None:  # its pre-join readers skip removed messages too
            await self.owned.access.mark_removals(self.rooms[DEFAULT_ROOM])
        await self.signins.start()  # each node follows the revocations itself

    async def close(self) -> None:
        """Leave the cluster (this node's users leave their rooms) and stop the broker.

        A connection still open (the shutdown's grace ran out, or a test's server stopped
        before its clients' closes arrived) is let go here, so that what its leaving starts
        (its last-seen write, its unsubscriptions) runs now, not after the loop is gone.
        """
        for client in list(self.clients):
            self.disconnect(client)
        self.rooms.forget_leaving()
        for close in self.closing:
            await close()
        await self.presence.close()
        for background in self._background():
            await background.close()
        await self.subscriptions.close()
        await self.roster.close()
        await self.broker.close()

    def _background(self) -> list[Background]:
        """The services' work that runs on after its caller (gap fills, address bans)."""
        found = [self.fanout.fills, self.catchup.reads]
        if self.owned.access is not None:
            found.append(self.owned.access.background)
        return found

    def _deliver(self, channel: str, payload: bytes) -> None:
        self.fanout.deliver(channel, payload)

    def _subscribe_user(self, user: User) -> asyncio.Future[None]:
        return self.subscriptions.add(channels.user(user.party))

    def _unsubscribe_user(self, user: User) -> None:
        self.subscriptions.remove(channels.user(user.party))
        self.presence.gone(user)

    def status(self) -> Status:
        """The node's counts and health, now (for /healthz and /metrics)."""
        stats = self.stats
        return Status(
            connections=len(self.clients), users=len(self.users), rooms=len(self.rooms),
            broker_up=self.broker.healthy, store_ok=not stats.store_failing,
            uptime_s=monotonic() - self.started, messages=stats.messages,
            deliveries=stats.deliveries, errors=stats.errors, rate_limited=stats.rate_limited,
            evicted=stats.evicted, store_failures=stats.store_failures,
            gap_fills=stats.gap_fills, token_sockets=stats.token_sockets,
            scope_refused=stats.scope_refused)

    # Connections

    def refusal(self, address: str) -> tuple[int, str] | None:
        """(HTTP status, reason) if a new connection from `address` must be refused."""
        return self.connections.refusal(address)

    async def authenticate(self, token: str) -> Auth | None:
        """Whom an upgrade's token signs in, or None (chat/node/signins.py)."""
        return await self.signins.authenticate(token)

    def connect(self, peer: Peer, address: str,
                auth: Auth | None = None) -> tuple[Client, Awaitable[None]]:
        """Register a connection; await the second value before reading its frames."""
        bucket = TokenBucket(self.settings.rate_limit, self.settings.rate_burst, monotonic())
        client = Client(peer, address, bucket, auth)
        if auth is not None and auth.scopes is not None:
            self.stats.token_sockets += 1
        self.clients.add(client)
        self.signins.add(client)
        self.connections.add(address)
        return client, self._watch_general(client)

    async def _watch_general(self, client: Client) -> None:
        # Before it joins, a connection watches `general` (chat/rooms/room.py), the tutorial's
        # page's behaviour; only while guests may read: with --guests off, nothing is readable
        # before signing in (docs/protocol.md, "Signing in and guests").
        await self.start()
        if client.closed or (client.auth is None and not self.settings.guests):
            return
        await self.replay.watch(client, self.rooms[DEFAULT_ROOM])

    def disconnect(self, client: Client) -> None:
        """Remove a connection from everything it joined; safe to call twice."""
        if client.closed:
            return
        client.closed = True
        self.clients.discard(client)
        self.signins.remove(client)
        self.connections.remove(client.address)
        self.pages.forget(client)
        general = self.rooms.get(DEFAULT_ROOM)
        if general is not None:
            general.drop(client)
        for name in list(client.rooms):
            self.rooms.exit(client, name, closed=True)
        self.users.release(client)
        if not self.clients and self._drained is not None:
            self._drained.set()

    def _name_registered(self, key: str) -> None:
        """An account was registered under a name a guest (or an embedded user) holds here:
        the account wins; each node closes its own connections of that user."""
        user = self.users.get(key)
        if user is None or user.account is not None:
            return
        err = ProtocolError("name_registered", f"{user.name!r} is now a registered account's "
                            "name: join with another name, or sign in as it", request=None,
                            field="username")
        for client in list(user.clients):
            self._error(client, err)
            client.peer.close(CLOSE_NAME_REGISTERED, "this name was registered as an account")

    def evicted(self) -> None:
        """Count a connection the transport dropped for not reading its frames."""
        self.stats.evicted += 1

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
        if not client.bucket.take(monotonic()):
            self._refuse_for_rate(client, text)
            return None
        client.strikes = 0
        try:
            command: Command = parse(text, max_text_chars=self.settings.max_text_chars)
            if client.auth is not None and client.auth.scopes is not None:
                self._check_scope(client.auth, command, text)  # an API token's connection
            if client.user is not None and isinstance(command, (Post, Direct, Typing, Active)):
                self.presence.touch(client.user)  # the person is there: not away
            pending = self.dispatcher.dispatch(client, command)
        except ProtocolError as err:
            self._error(client, err)
            return None
        return None if pending is None else self._guard(client, pending, text)

    def _check_scope(self, auth: Auth, command: Command, text: str) -> None:
        try:
            check_scope(auth, command, text)
        except ProtocolError:
            self.stats.scope_refused += 1
            raise

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

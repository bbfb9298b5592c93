"""The Redis broker: PUBLISH/SUBSCRIBE through redis-py's asyncio client, shared by every node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from chat.broker.base import BrokerError, Deliver
from chat.delivery.channels import scope
from chat.urls import redacted

log = logging.getLogger("chat.broker")

BACKOFF_FIRST_S = 0.1  # the first reconnect attempt: soon, a restart is often quick
BACKOFF_MAX_S = 5.0  # the longest wait between attempts: a node is back within ~5 s of Redis
CONNECT_TIMEOUT_S = 2.0  # an unreachable host fails an attempt after this
COMMAND_TIMEOUT_S = 5.0  # a publish to a Redis that stopped answering raises after this
# Most publishes in one pipeline (one write, one round trip). The first publish goes at once;
# those made while a pipeline is out go together in the next. Waiting for each reply instead
# spaced a node's messages a round trip apart: each then reached the other nodes alone, one
# socket write per connection per message (docs/performance.md, "Publishes in pipelines").
PUBLISH_BATCH_MAX = 512


def backoff_delays(first: float = BACKOFF_FIRST_S,
                   most: float = BACKOFF_MAX_S) -> Iterator[float]:
    """Endless waits: doubling from `first` up to `most`, each jittered to 50-100 %.

    The jitter keeps the nodes of a cluster from reconnecting in lockstep after Redis restarts.
    """
    delay = first
    while True:
        yield delay * random.uniform(0.5, 1.0)
        delay = min(delay * 2, most)


def closed_transport(exc: BaseException) -> bool:
    """Whether `exc` is uvloop refusing a write on a transport the server closed: redis-py's
    own reconnect sends HELLO on the dead connection, and uvloop raises RuntimeError there
    where asyncio's loop raises an OSError (both: Redis went away, not a bug here)."""
    return isinstance(exc, RuntimeError) and "the handler is closed" in str(exc)


class RedisBroker:
    """`redis://host:port/db`: one connection reads every subscribed channel, in order.

    One reader task owns the subscriber connection and delivers messages in the order Redis sent
    them. `subscribe` returns once Redis confirmed the subscription, so a publish made after it
    (from any node) is delivered. When the subscriber connection breaks the broker turns
    unhealthy, reconnects with backoff, resubscribes every channel, turns healthy once Redis
    confirmed them all, and then calls `on_reconnect`: messages published meanwhile are lost to
    this node, so the hub catches its clients up from history. Publishes go out on a second
    connection in pipelines, one pipeline at a time, so one broker's publishes reach Redis in
    call order.
    """

    def __init__(self, url: str, *, backoff_first_s: float = BACKOFF_FIRST_S,
                 backoff_max_s: float = BACKOFF_MAX_S) -> None:
        self.url = redacted(url)  # for messages: the password stays out of logs
        self.on_reconnect: Callable[[], None] | None = None  # given to start()
        self._backoff = (backoff_first_s, backoff_max_s)
        # No retries inside redis-py: a failure must reach us at once (publish raises, the
        # reader reconnects with its own backoff) instead of stalling the caller.
        options: dict[str, Any] = {
            "retry": Retry(NoBackoff(), 0),
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            "socket_keepalive": True,
        }
        # One pipeline at a time (below): the pool lends the same connection to each.
        self._client: Redis = Redis.from_url(url, socket_timeout=COMMAND_TIMEOUT_S, **options)
        self._sub_client: Redis = Redis.from_url(url, **options)
        self._pubsub: PubSub | None = None  # the reader's connection, while there is one
        # Redis Pub/Sub ignores database numbers: channels are scoped to the URL's database, so
        # that chats on two databases of one server do not hear each other.
        self._scope = scope(url)
        self._channels: set[str] = set()  # what we want; resubscribed after every reconnect
        self._awaiting: set[str] = set()  # resubscribed, not yet confirmed: not healthy yet
        self._confirmed: dict[str, list[asyncio.Future[None]]] = {}  # subscribe() calls waiting
        self._lock = asyncio.Lock()  # one of: (un)subscribe, or resubscribing after a reconnect
        # Publishes wait here in call order for the pipeline that carries them.
        self._outgoing: deque[tuple[str, bytes, asyncio.Future[None]]] = deque()
        self._sender: asyncio.Task[None] | None = None
        self.pipelines = 0  # sent, for tests: publishes made together share one
        # One pipeline (or the reconnect's ping) on the publishing connection at a time.
        self._publishing = asyncio.Lock()
        self._deliver: Deliver | None = None
        self._reader: asyncio.Task[None] | None = None
        self._healthy = False
        self._reconnected = False  # call on_reconnect when healthy again

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def start(self, deliver: Deliver,
                    on_reconnect: Callable[[], None] | None = None) -> None:
        """Connect, or raise BrokerError if Redis cannot be reached now."""
        self._deliver = deliver
        self.on_reconnect = on_reconnect
        try:
            await self._connect()
        except (RedisError, OSError) as exc:
            raise BrokerError(f"cannot reach Redis at {self.url}: {exc}") from exc
        self._reader = asyncio.create_task(self._read(), name="redis-broker-reader")

    async def close(self) -> None:
        self._healthy = False
        sender = self._sender
        if sender is not None and not sender.done():  # what was published goes out first
            await asyncio.wait({sender}, timeout=COMMAND_TIMEOUT_S)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        await self._drop_pubsub()
        await self._client.aclose()
        await self._sub_client.aclose()
        self._deliver = None

    async def subscribe(self, channel: str) -> None:
        """Subscribe; return once Redis confirmed it (at once while Redis is down)."""
        async with self._lock:
            self._channels.add(channel)
            if self._pubsub is None:
                return  # down: the reconnect subscribes it
            confirmed = asyncio.get_running_loop().create_future()
            self._confirmed.setdefault(channel, []).append(confirmed)
            try:
                await self._pubsub.subscribe(self._scope + channel)
            except (RedisError, OSError):
                return  # the reader notices the broken connection and resubscribes everything
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(confirmed, COMMAND_TIMEOUT_S)

    async def unsubscribe(self, channel: str) -> None:
        async with self._lock:
            self._channels.discard(channel)  # from now on the reader drops this channel's messages
            if self._pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(self._scope + channel)

    async def publish(self, channel: str, payload: bytes) -> None:
        if not self._healthy:
            raise BrokerError(f"Redis at {self.url} is down; reconnecting")
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outgoing.append((self._scope + channel, payload, sent))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="redis-broker-publisher")
        # Cancelling this await does not withdraw the publish: it goes out all the same.
        await sent

    async def _send(self) -> None:
        """Send what is queued, in pipelines of up to PUBLISH_BATCH_MAX, until none is left."""
        while self._outgoing:
            count = min(len(self._outgoing), PUBLISH_BATCH_MAX)
            batch = [self._outgoing.popleft() for _ in range(count)]
            error: BaseException | None = None
            try:
                async with self._publishing:
                    pipeline = self._client.pipeline(transaction=False)
                    for channel, payload, _ in batch:
                        pipeline.publish(channel, payload)
                    await pipeline.execute()
                    self.pipelines += 1
            except asyncio.CancelledError:  # close(): nothing queued is known to be sent
                stopped = BrokerError(f"publishing to Redis at {self.url} was stopped")
                self._settle([*batch, *self._outgoing], stopped)
                self._outgoing.clear()
                raise
            except (RedisError, OSError) as exc:
                error = BrokerError(f"publishing to Redis at {self.url} failed: {exc}")
            except Exception as exc:  # the sender goes on: a later publish may succeed
                if not closed_transport(exc):
                    log.exception("publishing to Redis at %s failed unexpectedly", self.url)
                error = BrokerError(f"publishing to Redis at {self.url} failed: {exc}")
            self._settle(batch, error)

    @staticmethod
    def _settle(batch: list[tuple[str, bytes, asyncio.Future[None]]],
                error: BaseException | None) -> None:
        for _, _, sent in batch:
            if sent.done():
                continue
            if error is None:
                sent.set_result(None)
            else:
                sent.set_exception(error)

    # The reader

    async def _connect(self) -> None:
        """A new subscriber connection, every channel subscribed (healthy once confirmed)."""
        pubsub = self._sub_client.pubsub()
        try:
            await pubsub.connect()  # type: ignore[no-untyped-call]
            async with self._publishing:
                await self._client.ping()  # the publishing connection must work too
            async with self._lock:  # no (un)subscribe between this snapshot and the reader
                self._awaiting = set(self._channels)
                if self._awaiting:
                    await pubsub.subscribe(*(self._scope + c for c in sorted(self._awaiting)))
                self._pubsub = pubsub
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        if not self._awaiting:
            self._become_healthy()

    def _become_healthy(self) -> None:
        self._healthy = True
        if self._reconnected:
            self._reconnected = False
            log.info("reconnected to Redis at %s; %d channels resubscribed",
                        self.url, len(self._channels))
            if self.on_reconnect is not None:
                try:
                    self.on_reconnect()
                except Exception:
                    log.exception("the broker's on_reconnect callback failed")

    async def _drop_pubsub(self) -> None:
        """Forget the broken connection; waiting subscribe() calls return (reconnects redo them)."""
        pubsub, self._pubsub = self._pubsub, None
        self._awaiting.clear()
        for waiting in self._confirmed.values():
            for confirmed in waiting:
                if not confirmed.done():
                    confirmed.set_result(None)
        self._confirmed.clear()
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _read(self) -> None:
        while True:
            try:
                await self._read_until_broken()
            except (RedisError, OSError) as exc:
                log.warning("lost Redis at %s (%s); reconnecting", self.url, exc)
            except Exception as exc:
                if not closed_transport(exc):
                    log.exception("the Redis broker's reader failed; reconnecting")
                else:
                    log.warning("lost Redis at %s (%s); reconnecting", self.url, exc)
            self._healthy = False
            self._reconnected = True
            await self._drop_pubsub()
            await self._reconnect()

    async def _read_until_broken(self) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind = message["type"]
            if kind == "message":
                self._deliver_one(self._unscoped(message["channel"]), message["data"])
            elif kind == "subscribe":
                self._on_subscribed(self._unscoped(message["channel"]))

    def _unscoped(self, channel: bytes) -> str:
        return channel.decode().removeprefix(self._scope)

    def _deliver_one(self, channel: str, payload: bytes) -> None:
        deliver = self._deliver
        if deliver is None or channel not in self._channels:
            return  # unsubscribed while this message was on its way
        try:
            deliver(channel, payload)
        except Exception:
            log.exception("delivering a message on channel %r failed", channel)

    def _on_subscribed(self, channel: str) -> None:
        for confirmed in self._confirmed.pop(channel, ()):
            if not confirmed.done():
                confirmed.set_result(None)
        if self._awaiting:
            self._awaiting.discard(channel)
            if not self._awaiting:
                self._become_healthy()

    async def _reconnect(self) -> None:
        for delay in backoff_delays(*self._backoff):
            await asyncio.sleep(delay)
            try:
                await self._connect()
            except (RedisError, OSError) as exc:
                log.debug("reconnecting to Redis at %s failed: %s", self.url, exc)
                continue
            return

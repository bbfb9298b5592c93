"""The broker contract, run against every backend; then Redis dying and coming back."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from chat.broker import Broker, BrokerError, MemoryBroker, open_broker
from chat.broker.redis import (
    COMMAND_TIMEOUT_S,
    PUBLISH_BATCH_MAX,
    RedisBroker,
    backoff_delays,
    closed_transport,
)
from tests.serverproc import OwnRedis, free_port

BACKENDS = ["memory", "redis"]
WAIT_S = 5.0  # the longest a test waits for a delivery or a state change


class Inbox:
    """A `deliver` callback that records (channel, payload) in order and can be awaited."""

    def __init__(self) -> None:
        self.got: list[tuple[str, bytes]] = []
        self._arrived = asyncio.Event()

    def __call__(self, channel: str, payload: bytes) -> None:
        self.got.append((channel, payload))
        self._arrived.set()

    async def wait_for(self, count: int) -> list[tuple[str, bytes]]:
        """Wait until `count` messages arrived; all of them."""
        async with asyncio.timeout(WAIT_S):
            while len(self.got) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.got

    async def settle(self) -> list[tuple[str, bytes]]:
        """What arrived after giving stray deliveries a moment to show up."""
        await asyncio.sleep(0.2)
        return self.got


@pytest.fixture(params=BACKENDS)
def broker_url(request: pytest.FixtureRequest) -> str:
    """The URL of one backend: memory://, or a redis-server this session started."""
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_server"))


@contextlib.asynccontextmanager
async def started(url: str, **kwargs: Any) -> AsyncIterator[tuple[Broker, Inbox]]:
    """A started broker for `url` and what it delivers; closed after."""
    broker = open_broker(url)
    inbox = Inbox()
    await broker.start(inbox, **kwargs)
    try:
        yield broker, inbox
    finally:
        await broker.close()


async def eventually(condition: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Wait until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.02)


# The contract: every backend


@pytest.mark.gen_test(timeout=20)
async def test_publish_reaches_subscribers_of_that_channel_only(broker_url: str) -> None:
    """A publish is delivered for the channel it names and for no other."""
    async with started(broker_url) as (broker, inbox):
        await broker.subscribe("room:a")
        await broker.subscribe("room:b")
        await broker.publish("room:a", b"to a")
        await broker.publish("room:c", b"to nobody")
        await broker.publish("room:b", b"to b")
        await inbox.wait_for(2)
        assert await inbox.settle() == [("room:a", b"to a"), ("room:b", b"to b")]


@pytest.mark.gen_test(timeout=20)
async def test_unsubscribe_stops_delivery(broker_url: str) -> None:
    """After unsubscribe returns, nothing more arrives for that channel; others go on."""
    async with started(broker_url) as (broker, inbox):
        await broker.subscribe("room:a")
        await broker.subscribe("room:b")
        await broker.publish("room:a", b"1")
        await broker.unsubscribe("room:a")
        await broker.publish("room:a", b"2")
        await broker.publish("room:b", b"3")
        await inbox.wait_for(1)
        got = await inbox.settle()
        assert ("room:a", b"2") not in got
        assert got[-1] == ("room:b", b"3")


@pytest.mark.gen_test(timeout=30)
async def test_order_is_preserved_for_a_thousand_messages(broker_url: str) -> None:
    """1,000 publishes, awaited one by one or made at once, arrive in the order they were made."""
    async with started(broker_url) as (broker, inbox):
        await broker.subscribe("room")
        for n in range(500):
            await broker.publish("room", b"%d" % n)
        await asyncio.gather(*(broker.publish("room", b"%d" % n) for n in range(500, 1000)))
        got = await inbox.wait_for(1000)
        assert [payload for _, payload in got] == [b"%d" % n for n in range(1000)]


@pytest.mark.gen_test(timeout=20)
async def test_binary_payloads_arrive_intact(broker_url: str) -> None:
    """Every byte value, NULs and invalid UTF-8 included, and a 1 MiB payload arrive unchanged."""
    payloads = [bytes(range(256)), b"\x00\xff\xfe\r\n*3\r\n", b"", bytes(range(256)) * 4096]
    async with started(broker_url) as (broker, inbox):
        await broker.subscribe("bin")
        for payload in payloads:
            await broker.publish("bin", payload)
        got = await inbox.wait_for(len(payloads))
        assert [payload for _, payload in got] == payloads


@pytest.mark.expect_errors(r"chat\.broker: delivering a message on channel 'room' failed")
@pytest.mark.gen_test(timeout=20)
async def test_a_failing_deliver_is_logged_and_delivery_goes_on(
    broker_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception from deliver is logged with its channel; the next message still arrives."""
    got: list[bytes] = []

    def deliver(channel: str, payload: bytes) -> None:
        if payload == b"bad":
            raise RuntimeError("the hub choked")
        got.append(payload)

    broker = open_broker(broker_url)
    await broker.start(deliver)
    try:
        await broker.subscribe("room")
        await broker.publish("room", b"bad")
        await broker.publish("room", b"good")
        await eventually(lambda: got == [b"good"])
        assert broker.healthy
    finally:
        await broker.close()
    assert any("'room'" in record.getMessage() and record.exc_info for record in caplog.records)


@pytest.mark.gen_test(timeout=20)
async def test_a_started_broker_is_healthy_and_closes_quietly(broker_url: str) -> None:
    """A broker reports healthy once started, and closing it twice does no harm."""
    broker = open_broker(broker_url)
    await broker.start(Inbox())
    assert broker.healthy
    await broker.close()
    await broker.close()


# Backend specifics


def test_open_broker_picks_the_backend_by_url() -> None:
    """memory:// opens a MemoryBroker and redis://host:port/db a RedisBroker."""
    assert isinstance(open_broker("memory://"), MemoryBroker)
    assert isinstance(open_broker("redis://127.0.0.1:6379/0"), RedisBroker)
    assert isinstance(open_broker("redis://localhost"), RedisBroker)


@pytest.mark.parametrize("url", [
    "", "memory", "memory://elsewhere", "amqp://127.0.0.1/", "redis://", "redis://host:port/0",
    "redis://127.0.0.1:6379/zero",
])
def test_open_broker_refuses_other_urls_clearly(url: str) -> None:
    """Any other URL is a ValueError that quotes it."""
    with pytest.raises(ValueError, match=repr(url).replace("\\", "\\\\")):
        open_broker(url)


@pytest.mark.gen_test
async def test_memory_delivers_synchronously_and_without_a_copy() -> None:
    """MemoryBroker hands the very payload object to deliver before publish returns."""
    async with started("memory://") as (broker, inbox):
        await broker.subscribe("room")
        payload = b"x" * 1000
        await broker.publish("room", payload)
        assert inbox.got[0][1] is payload


@pytest.mark.gen_test(timeout=20)
async def test_two_nodes_on_one_redis_see_each_others_publishes(redis_server: str) -> None:
    """Two brokers on one Redis behave as two nodes of one chat: each gets what the other sends."""
    async with started(redis_server) as (one, one_inbox), \
            started(redis_server) as (two, two_inbox):
        await one.subscribe("room")
        await two.subscribe("room")
        await one.publish("room", b"from one")
        await two.publish("room", b"from two")
        for inbox in (one_inbox, two_inbox):
            assert sorted(await inbox.wait_for(2)) == [("room", b"from one"), ("room", b"from two")]


@pytest.mark.gen_test(timeout=20)
async def test_publishes_made_together_share_pipelines_in_order(redis_server: str) -> None:
    """500 publishes made at once go out in a few pipelines, not 500 round trips, in order."""
    async with started(redis_server) as (broker, inbox):
        assert isinstance(broker, RedisBroker)
        await broker.subscribe("room")
        before = broker.pipelines
        await asyncio.gather(*(broker.publish("room", b"%d" % n) for n in range(500)))
        got = await inbox.wait_for(500)
        assert [payload for _, payload in got] == [b"%d" % n for n in range(500)]
        assert broker.pipelines - before in (1, 2, 3)  # the first alone, the rest behind it


@pytest.mark.gen_test(timeout=20)
async def test_more_publishes_than_a_pipeline_holds_split_in_order(redis_server: str) -> None:
    """Publishes beyond PUBLISH_BATCH_MAX go in further pipelines, all in call order."""
    count = 2 * PUBLISH_BATCH_MAX + 100
    async with started(redis_server) as (broker, inbox):
        assert isinstance(broker, RedisBroker)
        await broker.subscribe("room")
        before = broker.pipelines
        await asyncio.gather(*(broker.publish("room", b"%d" % n) for n in range(count)))
        got = await inbox.wait_for(count)
        assert [payload for _, payload in got] == [b"%d" % n for n in range(count)]
        assert broker.pipelines - before >= 3  # one pipeline holds PUBLISH_BATCH_MAX at most


@pytest.mark.gen_test(timeout=20)
async def test_a_cancelled_publish_still_goes_out(redis_server: str) -> None:
    """Cancelling the await of a publish does not withdraw it (it may already be sent)."""
    async with started(redis_server) as (broker, inbox):
        await broker.subscribe("room")
        task = asyncio.ensure_future(broker.publish("room", b"cancelled"))
        await asyncio.sleep(0)
        task.cancel()
        await broker.publish("room", b"after")
        got = await inbox.wait_for(2)
        assert got == [("room", b"cancelled"), ("room", b"after")]


@pytest.mark.gen_test(timeout=20)
async def test_a_broken_publishing_connection_fails_its_pipeline_then_reconnects(
    redis_server: str,
) -> None:
    """With the publishing connection killed by Redis, the next publish raises BrokerError;
    the one after it goes out on a new connection."""
    async with started(redis_server) as (broker, inbox):
        await broker.subscribe("room")
        await broker.publish("room", b"first")
        await inbox.wait_for(1)
        killer = Redis.from_url(redis_server)
        try:  # every normal client: the publishing one (not the subscriber, not this one)
            assert await killer.client_kill_filter(_type="normal", skipme=True) >= 1
        finally:
            await killer.aclose()
        with pytest.raises(BrokerError, match="publishing to Redis"):
            await broker.publish("room", b"lost")
        await broker.publish("room", b"second")
        got = await inbox.wait_for(2)
        assert got == [("room", b"first"), ("room", b"second")]


@pytest.mark.gen_test(timeout=20)
async def test_brokers_on_two_databases_of_one_redis_do_not_hear_each_other(
    redis_server: str,
) -> None:
    """Pub/Sub ignores database numbers; the broker's channels do not: two chats stay apart."""
    other_db = redis_server.rsplit("/", 1)[0] + "/9"
    async with started(redis_server) as (one, one_inbox), \
            started(other_db) as (two, two_inbox):
        await one.subscribe("room")
        await two.subscribe("room")
        await one.publish("room", b"chat one")
        await two.publish("room", b"chat two")
        assert await one_inbox.wait_for(1) == [("room", b"chat one")]
        assert await two_inbox.wait_for(1) == [("room", b"chat two")]
        assert (await one_inbox.settle(), await two_inbox.settle()) == (
            [("room", b"chat one")], [("room", b"chat two")])


@pytest.mark.gen_test(timeout=20)
async def test_redis_start_raises_when_redis_is_unreachable() -> None:
    """Starting against a port where nothing listens raises BrokerError naming the URL."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    broker = open_broker(url)
    with pytest.raises(BrokerError, match=url):
        await broker.start(Inbox())
    await broker.close()


def test_backoff_doubles_with_jitter_up_to_a_bound() -> None:
    """Reconnect waits double from 0.1 s, capped at 5 s, each jittered to 50-100 %."""
    delays = backoff_delays()
    waits = [next(delays) for _ in range(12)]
    bounds = [min(0.1 * 2**n, 5.0) for n in range(12)]
    assert all(bound / 2 <= wait <= bound for wait, bound in zip(waits, bounds, strict=True))


# Redis dies and comes back


@pytest.mark.gen_test(timeout=60)
async def test_redis_death_makes_publish_fail_and_a_restart_resumes_delivery(
    own_redis: OwnRedis,
) -> None:
    """Redis killed: unhealthy, publish raises. Restarted: resubscribed, healthy, delivering."""
    server = own_redis.start()
    url = own_redis.url
    reconnects: list[str] = []
    async with started(url, on_reconnect=lambda: reconnects.append("one")) as (one, inbox), \
            started(url, on_reconnect=lambda: reconnects.append("two")) as (two, _):
        await one.subscribe("room")
        await two.publish("room", b"before")
        await inbox.wait_for(1)

        server.kill()
        server.wait(5)
        await eventually(lambda: not one.healthy and not two.healthy)
        with pytest.raises(BrokerError):
            await one.publish("room", b"lost")
        with pytest.raises(BrokerError):
            await two.publish("room", b"lost")
        await one.subscribe("late")  # while down: subscribed on reconnect

        own_redis.start()
        await eventually(lambda: one.healthy and two.healthy)
        assert sorted(reconnects) == ["one", "two"]
        await two.publish("room", b"after")
        await two.publish("late", b"late")
        await one.publish("room", b"own")
        got = await inbox.wait_for(4)
        assert got == [("room", b"before"), ("room", b"after"), ("late", b"late"),
                       ("room", b"own")]


@pytest.mark.gen_test(timeout=30)
async def test_closing_while_redis_is_down_leaves_no_stray_task(
    own_redis: OwnRedis,
) -> None:
    """A broker closed while it is reconnecting stops its reader without a logged exception."""
    server = own_redis.start()
    url = own_redis.url
    async with started(url) as (broker, _):
        await broker.subscribe("room")
        server.kill()
        server.wait(5)
        await eventually(lambda: not broker.healthy)
        await asyncio.sleep(0.3)  # into the backoff loop
    assert all(task.get_name() != "redis-broker-reader" for task in asyncio.all_tasks())


@pytest.mark.gen_test(timeout=40)
async def test_closing_with_publishes_stuck_fails_each_of_them(own_redis: OwnRedis) -> None:
    """Redis stops answering (SIGSTOP) with publishes out and queued: close() gives them
    COMMAND_TIMEOUT_S, then each caller gets BrokerError; none waits for ever."""
    server = own_redis.start()
    async with started(own_redis.url) as (broker, inbox):
        await broker.subscribe("room")
        await broker.publish("room", b"before")
        await inbox.wait_for(1)
        server.send_signal(signal.SIGSTOP)
        try:
            stuck = [asyncio.ensure_future(broker.publish("room", b"%d" % n)) for n in range(3)]
            await asyncio.sleep(0.1)  # the first is out, the others queued behind it
            assert not any(task.done() for task in stuck)
            started_at = time.monotonic()
            await broker.close()
            assert time.monotonic() - started_at < 2 * COMMAND_TIMEOUT_S + 1
            for task in stuck:
                with pytest.raises(BrokerError):
                    await task
        finally:
            server.send_signal(signal.SIGCONT)


def test_a_write_on_a_closed_uvloop_transport_is_a_lost_connection() -> None:
    """uvloop's RuntimeError for a write on a transport the peer closed (what redis-py's own
    reconnect meets when Redis restarts) counts as Redis lost, not as a bug; others do not."""
    import uvloop

    async def write_after_close() -> BaseException:
        accepted: list[asyncio.StreamWriter] = []
        server = await asyncio.start_server(lambda _, writer: accepted.append(writer),
                                            "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await asyncio.sleep(0.01)  # uvloop closes the handle on its next iteration
        try:
            writer.writelines([b"HELLO 3\r\n"])
        except RuntimeError as exc:
            return exc
        finally:
            for other in accepted:
                other.close()
            server.close()
            await server.wait_closed()
            await asyncio.sleep(0.01)
        raise AssertionError("uvloop took a write on a closed transport")

    loop = uvloop.new_event_loop()
    try:
        assert closed_transport(loop.run_until_complete(write_after_close()))
    finally:
        loop.close()
    assert not closed_transport(RuntimeError("dictionary changed size during iteration"))
    assert not closed_transport(ValueError("the handler is closed"))

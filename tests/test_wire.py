"""The cluster's wire format: what Redis's Lua scripts publish is what channels.py builds."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from chat.delivery import channels
from chat.record import StoredMessage
from chat.roster.redis import RedisRoster
from chat.store.redis import RedisStore

pytestmark = pytest.mark.redis

# Every character JSON escapes, the ones cjson alone escapes ("/", DEL), and some beyond ASCII.
AWKWARD = 'a "quoted" \\ back/slash\b\f\n\r\t\x01\x1f\x7f é 漢字 😀 </script>'


class Published:
    """Every payload published under one chat's prefix, as Redis delivers it: raw bytes."""

    def __init__(self, url: str, prefix: str) -> None:
        self.client = Redis.from_url(url)
        self.pubsub = self.client.pubsub()
        self.pattern = channels.scope(url) + prefix + "*"

    async def next(self) -> tuple[str, bytes]:
        """The next (channel, payload) published."""
        deadline = asyncio.get_running_loop().time() + 5.0
        while asyncio.get_running_loop().time() < deadline:
            got = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if got is not None:  # None too for a subscription's confirmation
                return got["channel"].decode(), got["data"]
        raise AssertionError("nothing was published within 5 s")


@contextlib.asynccontextmanager
async def published(redis_server: str) -> AsyncIterator[tuple[Published, str]]:
    """A fresh prefix, and what is published under it from now on."""
    prefix = f"w{secrets.token_hex(4)}:"  # this test's keys and channels alone
    seen = Published(redis_server, prefix)
    await seen.pubsub.psubscribe(seen.pattern)
    try:
        yield seen, prefix
    finally:
        await seen.pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        await seen.client.aclose()


@pytest.mark.gen_test(timeout=20)
async def test_the_append_script_publishes_a_room_message_as_python_builds_it(
        redis_server: str) -> None:
    """A room message published by the append script is, byte for byte, message_payload()."""
    async with published(redis_server) as (seen, prefix):
        store = RedisStore(redis_server, prefix=prefix, publish=True)
        await store.start()
        try:
            for cid in ("c1", None):
                stored, _ = await store.append("lobby", username="Zoë/1", avatar="https://a/b.png",
                                               text=AWKWARD, ts=1_700_000_000_123, cid=cid)
                channel, payload = await seen.next()
                assert channel.endswith(channels.room("lobby", prefix))
                assert payload == channels.message_payload(stored)
        finally:
            await store.close()


@pytest.mark.gen_test(timeout=20)
async def test_the_append_script_publishes_a_direct_message_as_python_builds_it(
        redis_server: str) -> None:
    """A direct message reaches both parties' channels as message_payload() builds it."""
    async with published(redis_server) as (seen, prefix):
        store = RedisStore(redis_server, prefix=prefix, publish=True)
        await store.start()
        try:
            stored, _ = await store.append("@ann\x1fbob", username="Ann", avatar="x/y",
                                           text=AWKWARD, ts=5, cid="d1", to="Bob")
            got = [await seen.next(), await seen.next()]
        finally:
            await store.close()
        assert stored == StoredMessage("@ann\x1fbob", stored.id, "Ann", "x/y", AWKWARD, 5, "d1",
                                       "Bob")
        assert {payload for _, payload in got} == {channels.message_payload(stored)}
        assert sorted(channel.rpartition(":")[2] for channel, _ in got) == ["ann", "bob"]


@pytest.mark.gen_test(timeout=20)
async def test_the_roster_scripts_publish_joins_and_leaves_as_python_builds_them(
        redis_server: str) -> None:
    """A join and a leave published by the roster's scripts are join_payload(), leave_payload()."""
    async with published(redis_server) as (seen, prefix):
        roster = RedisRoster(redis_server, heartbeat=5, timeout=15, prefix=prefix)
        await roster.start()
        try:
            name, room = 'Zoë "/" 漢', "r/1"
            avatar = "https://www.gravatar.com/avatar/x?d=identicon"
            await roster.enter(room, "zoe", name, avatar, 10)
            assert await seen.next() == (channels.scope(redis_server) + channels.room(room, prefix),
                                         channels.join_payload(room, name, avatar, 1))
            roster.exit(room, "zoe")
            _, payload = await seen.next()
            assert payload == channels.leave_payload(room, name, 0)
        finally:
            await asyncio.wait_for(roster.close(), 10)

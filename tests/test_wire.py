"""The cluster's wire format: what the roster's Lua scripts publish is what channels.py builds."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from chat.delivery import channels
from chat.roster.redis import RedisRoster

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
async def test_the_roster_scripts_publish_joins_and_leaves_as_python_builds_them(
        redis_server: str) -> None:
    """A join and a leave published by the roster's scripts are join_payload(), leave_payload()."""
    async with published(redis_server) as (seen, prefix):
        roster = RedisRoster(redis_server, heartbeat=5, timeout=15, prefix=prefix)
        await roster.start()
        try:
            name, room = 'Zoë "/" 漢', "r/1"
            avatar = f"https://www.gravatar.com/avatar/x?d=identicon#{AWKWARD}"
            await roster.enter(room, "zoe", name, avatar, 10)
            assert await seen.next() == (channels.scope(redis_server) + channels.room(room, prefix),
                                         channels.join_payload(room, name, avatar, 1))
            roster.exit(room, "zoe")
            _, payload = await seen.next()
            assert payload == channels.leave_payload(room, name, 0)
            await roster.enter(room, "guest", "Guest", avatar, 10, guest=True)
            _, payload = await seen.next()
            assert payload == channels.join_payload(room, "Guest", avatar, 1, guest=True)
            assert payload.endswith(b',"guest":true}')
        finally:
            await asyncio.wait_for(roster.close(), 10)

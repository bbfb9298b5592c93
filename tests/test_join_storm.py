"""Joins of one room at once share a history read, and none of them misses a message for it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.ioloop import IOLoop

from chat.config import Settings
from chat.record import StoredMessage
from chat.store import SQLiteStore
from chat_server import ChatApplication, make_app
from tests.helpers import ChatClient, Connect

ROOM = "storm"
JOINERS = 30


class GatedStore(SQLiteStore):
    """An in-memory SQLite history whose reads of ROOM's latest messages wait for a gate after
    reading (so a read's snapshot is taken before what the test does next), and are counted."""

    def __init__(self, per_conversation: int) -> None:
        super().__init__(":memory:", per_conversation)
        self.reads = 0
        self.gate: asyncio.Event | None = None

    async def latest(self, conversation: str, limit: int) -> list[StoredMessage]:
        found = await super().latest(conversation, limit)
        if conversation == ROOM:
            self.reads += 1
            if self.gate is not None:
                await self.gate.wait()
        return found


@pytest.fixture
def app(settings: Settings, io_loop: IOLoop) -> Iterator[ChatApplication]:
    """The app on a GatedStore (no accounts: these clients are guests)."""
    store = GatedStore(settings.history_per_room)
    io_loop.run_sync(store.start)
    yield make_app(settings, store)
    io_loop.run_sync(store.close)


def gated(app: ChatApplication) -> GatedStore:
    assert isinstance(app.store, GatedStore)
    return app.store


async def reads_reach(store: GatedStore, count: int) -> None:
    """Wait until `count` reads of ROOM have started."""
    for _ in range(500):
        if store.reads >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{store.reads} reads of {ROOM} started, not {count}")


async def post(client: ChatClient, text: str) -> dict[str, Any]:
    """Send a message to ROOM and return its acknowledgement (the sender's own copy)."""
    await client.send({"type": "message", "room": ROOM, "text": text, "cid": text})
    while True:
        frame = await client.recv_type("message")
        if frame.get("cid") == text:
            return frame


def texts(history: dict[str, Any]) -> list[str]:
    return [m["message"] for m in history["messages"]]


# Many connections from 127.0.0.1 stand in for many users' addresses.
@pytest.mark.settings(rate_limit=0, max_connections_per_ip=0)
@pytest.mark.gen_test(timeout=30)
async def test_joins_at_once_share_one_read(app: ChatApplication, connect: Connect) -> None:
    """Thirty joins of a room while its history is being read wait for that one read."""
    store = gated(app)
    poster = await connect()
    await poster.join("poster", ROOM)
    await post(poster, "m1")
    reads_before = store.reads
    store.gate = asyncio.Event()
    joiners = [await connect() for _ in range(JOINERS)]
    for n, client in enumerate(joiners):
        await client.send({"type": "join", "username": f"j{n}", "room": ROOM})
    await reads_reach(store, reads_before + 1)
    for client in joiners:
        await client.recv_type("welcome")  # every join reached the server before the gate opens
    store.gate.set()
    for client in joiners:
        assert texts(await client.recv_type("history")) == ["m1"]
    assert store.reads == reads_before + 1


@pytest.mark.settings(rate_limit=0)
@pytest.mark.gen_test(timeout=30)
async def test_a_join_after_a_broadcast_does_not_share_an_older_read(
    app: ChatApplication, connect: Connect,
) -> None:
    """A join held after a message went out reads again: it gets that message, once."""
    store = gated(app)
    poster = await connect()
    await poster.join("poster", ROOM)
    await post(poster, "m1")
    reads_before = store.reads
    store.gate = asyncio.Event()
    ann, bob = await connect(), await connect()
    await ann.send({"type": "join", "username": "ann", "room": ROOM})
    await reads_reach(store, reads_before + 1)  # ann's read has its snapshot: m1 alone
    await post(poster, "m2")  # ann is held: m2 is kept for her
    await bob.send({"type": "join", "username": "bob", "room": ROOM})
    await reads_reach(store, reads_before + 2)  # bob's own read, after m2
    store.gate.set()
    assert texts(await ann.recv_type("history")) == ["m1"]
    assert (await ann.recv_type("message"))["message"] == "m2"
    assert texts(await bob.recv_type("history")) == ["m1", "m2"]
    await post(poster, "m3")
    assert (await bob.recv_type("message"))["message"] == "m3"  # no second m2 before it
    assert (await ann.recv_type("message"))["message"] == "m3"

"""History bounded in bytes: what a newcomer, a resume or a page is sent, and how fast pages go."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.ioloop import IOLoop

from chat.config import Settings
from chat.store import SQLiteStore
from chat_server import ChatApplication, make_app
from tests.helpers import ChatClient, Connect

EMOJI_TEXT = "😀" * 4000  # 4,000 characters; 16,000 bytes of JSON
ESCAPED_TEXT = '"\\' * 2000  # 4,000 characters; 8,000 bytes of JSON (each one escaped)
DEFAULT_BUDGET = Settings().history_bytes  # a quarter of max-queue-bytes: 256 KiB


async def post_many(client: ChatClient, text: str, count: int, room: str) -> list[int]:
    """Post `count` copies of `text`; their ids, once each is acknowledged."""
    ids = []
    for _ in range(count):
        await client.send({"type": "message", "room": room, "text": text})
        ids.append((await client.recv_type("message"))["id"])
    return ids


async def recv_raw(client: ChatClient) -> tuple[dict[str, Any], int]:
    """The next frame and its size in bytes, as it came over the wire."""
    text = await client.conn.read_message()
    assert isinstance(text, str), "the connection closed"
    return json.loads(text), len(text.encode())


async def recv_raw_type(client: ChatClient, kind: str) -> tuple[dict[str, Any], int]:
    """The next frame of type `kind` (skipping others) and its size in bytes."""
    while True:
        event, size = await recv_raw(client)
        if event["type"] == kind:
            return event, size


async def join_measured(client: ChatClient, **join: Any) -> tuple[int, dict[str, Any], int]:
    """Join; bytes of the `message` events read before the reply, the history and its size."""
    await client.send({"type": "join", **join})
    fed = 0
    while True:
        event, size = await recv_raw(client)
        if event["type"] == "message":
            fed += size
        elif event["type"] == "history":
            return fed, event, size


async def newcomer_fits(connect: Connect, text: str, budget: int) -> None:
    """Flood general and dev with 50 messages of `text`; a newcomer's history fits `budget`."""
    mallory = await connect()
    await mallory.join("mallory")
    await mallory.send({"type": "join", "room": "dev"})
    await mallory.recv_type("history")
    await post_many(mallory, text, 50, "general")
    dev = await post_many(mallory, text, 50, "dev")
    newcomer = await connect()
    fed, history, size = await join_measured(newcomer, username="newcomer", room="dev")
    assert 0 < fed <= budget  # general's recent messages, read before joining
    assert 0 < size <= budget
    ids = [m["id"] for m in history["messages"]]
    assert ids == dev[-len(ids):]  # the newest that fit
    assert (history["recovered"], history["more"]) == (True, True)
    resumer = await connect()
    fed, resumed, size = await join_measured(resumer, username="resumer", room="dev",
                                             since=dev[0])
    assert size <= budget
    assert (resumed["recovered"], resumed["more"]) == (False, True)
    await newcomer.send({"type": "history", "room": "dev", "before": ids[0], "limit": 200})
    page, size = await recv_raw_type(newcomer, "history")
    assert size <= budget
    assert page["messages"][-1]["id"] == ids[0] - 1
    assert page["more"] is (page["messages"][0]["id"] > dev[0])
    await newcomer.send({"type": "message", "room": "dev", "text": "still here"})
    assert (await newcomer.recv_type("message"))["id"] == dev[-1] + 1


@pytest.mark.settings(rate_limit=0)
@pytest.mark.gen_test(timeout=60)
async def test_text_with_nul_characters_is_refused_and_newcomers_get_in(connect: Connect) -> None:
    """The lock-out attack: 50 texts of 4,000 NULs are refused; a newcomer joins as usual."""
    mallory = await connect()
    await mallory.join("mallory")
    for n in range(50):
        await mallory.send({"type": "message", "text": "\x00" * 4000, "cid": f"n{n}"})
        error = await mallory.recv_type("error")
        assert (error["code"], error["cid"]) == ("invalid_text", f"n{n}")
        assert "U+0000" in error["reason"]
    newcomer = await connect()
    fed, history, _ = await join_measured(newcomer, username="newcomer", room="dev")
    assert (fed, history["messages"]) == (0, [])


@pytest.mark.settings(rate_limit=0)
@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("text", [EMOJI_TEXT, ESCAPED_TEXT], ids=["emoji", "escaped"])
async def test_history_of_wide_messages_is_sent_within_the_byte_budget(
    connect: Connect, text: str,
) -> None:
    """Join, resume and page each send at most history-max-bytes, the newest first."""
    await newcomer_fits(connect, text, DEFAULT_BUDGET)


@pytest.mark.settings(rate_limit=0, max_queue_bytes=512 * 1024)
@pytest.mark.gen_test(timeout=60)
async def test_a_newcomer_is_not_dropped_for_the_history_it_is_sent(connect: Connect) -> None:
    """With a queue bound below 50 wide messages, a newcomer still gets in and stays."""
    await newcomer_fits(connect, EMOJI_TEXT, 512 * 1024 // 4)


@pytest.mark.settings(rate_limit=0, history_max_bytes=40_000, history_bytes_per_s=1000)
@pytest.mark.gen_test(timeout=30)
async def test_history_pages_are_limited_in_bytes_per_second(connect: Connect) -> None:
    """A burst of page requests is answered up to the byte budget, then refused naming it."""
    alice = await connect()
    await alice.join("alice", room="dev")
    await post_many(alice, EMOJI_TEXT, 10, "dev")
    for _ in range(10):  # small requests, each asking for a large answer
        await alice.send({"type": "history", "room": "dev", "limit": 200})
    answered = refused = 0
    for _ in range(10):
        event, size = await recv_raw(alice)
        if event["type"] == "history":
            answered += size
        else:
            assert (event["code"], event["request"], event["limit"]) == (
                "rate_limited", "history", 1000)
            refused += 1
    assert 0 < answered <= 2 * 40_000  # the burst, passed by one page at most
    assert refused >= 7


@pytest.fixture
def app(settings: Settings, tmp_path: Path, io_loop: IOLoop) -> Iterator[ChatApplication]:
    """The app on a SQLite file of this test's own."""
    store = SQLiteStore(str(tmp_path / "history.db"), settings.history_per_room)
    io_loop.run_sync(store.start)
    yield make_app(settings, store)
    io_loop.run_sync(store.close)


@pytest.mark.gen_test
async def test_a_history_page_the_store_cannot_read_is_logged(
    connect: Connect, app: ChatApplication, caplog: pytest.LogCaptureFixture,
) -> None:
    """A page the store fails to read is answered store_failed and logged naming the room."""
    alice = await connect()
    await alice.join("alice", room="dev")
    await post_many(alice, "hello", 1, "dev")
    await app.store.close()  # every read now fails, as one of a damaged file does
    caplog.set_level(logging.WARNING, logger="chat.hub")
    await alice.send({"type": "history", "room": "dev", "before": 5})
    error = await alice.recv_type("error")
    assert (error["code"], error["request"]) == ("store_failed", "history")
    assert any(record.levelno == logging.WARNING and "dev" in record.getMessage()
               for record in caplog.records if record.name == "chat.hub")

"""permessage-deflate: off by default, and working end to end when --compression turns it on."""

from __future__ import annotations

import asyncio
import json
import random
import string
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from chat.config import ConfigError, Settings
from chat_server import ChatApplication
from tests.helpers import Connect, RawConnect


async def chat_client(ws_url: str) -> WebSocketClientConnection:
    conn = await websocket_connect(ws_url, compression_options={})
    await conn.write_message(json.dumps({"type": "join", "username": "zip"}))
    return conn


@pytest.mark.gen_test
async def test_compression_is_off_by_default(ws_url: str) -> None:
    """A client offering permessage-deflate is answered without it."""
    conn = await chat_client(ws_url)
    assert conn.headers is not None
    assert "Sec-WebSocket-Extensions" not in conn.headers
    assert json.loads(await conn.read_message() or "")["type"] == "welcome"
    conn.close()


@pytest.mark.settings(compression=True)
@pytest.mark.gen_test
async def test_compressed_connections_chat_with_plain_ones(ws_url: str, connect: Connect) -> None:
    """With --compression a deflate client and a plain one exchange messages."""
    zipped = await chat_client(ws_url)
    assert zipped.headers is not None
    assert "permessage-deflate" in zipped.headers["Sec-WebSocket-Extensions"]
    plain = await connect()
    await plain.join("plain")
    await plain.send({"type": "message", "text": "hello " * 200})
    while (event := json.loads(await zipped.read_message() or ""))["type"] != "message":
        pass
    assert event["message"] == ("hello " * 200)
    await zipped.write_message(json.dumps({"type": "message", "text": "back"}))
    assert (await plain.recv_type("message"))["message"] == "hello " * 200  # its own
    assert (await plain.recv_type("message"))["message"] == "back"
    zipped.close()


@pytest.mark.settings(compression=True, history_on_join=3, rate_limit=0)
@pytest.mark.gen_test
async def test_a_compressed_connection_reads_general_before_joining(
        ws_url: str, connect: Connect) -> None:
    """A deflate connection not yet joined is shown general's latest, a message frame each."""
    plain = await connect()
    await plain.join("plain")
    for text in ("one", "two", "three", "four"):
        await plain.send({"type": "message", "text": text})
        await plain.recv_type("message")
    zipped = await websocket_connect(ws_url, compression_options={})
    assert zipped.headers is not None and "permessage-deflate" in zipped.headers[
        "Sec-WebSocket-Extensions"]
    got = [json.loads(await zipped.read_message() or "") for _ in range(3)]
    assert [(e["type"], e["message"]) for e in got] == [
        ("message", "two"), ("message", "three"), ("message", "four")]
    zipped.close()


@pytest.mark.settings(compression=True, notice_interval=0.2, rate_limit=0)
@pytest.mark.gen_test(timeout=30)
async def test_a_compressed_member_gets_an_interval_of_held_joins_one_by_one(
        ws_url: str, connect: Connect) -> None:
    """Joins held for a notice-interval reach a deflate member as a frame each, in order."""
    zipped = await chat_client(ws_url)
    while json.loads(await zipped.read_message() or "")["type"] != "history":
        pass
    names = [f"joiner{i}" for i in range(6)]
    joiners = [await connect() for _ in names]
    for client, name in zip(joiners, names, strict=True):
        await client.join(name)  # the first is sent at once; the others are held, then folded
    got: list[str] = []
    while len(got) < len(names):
        event = json.loads(await zipped.read_message() or "")
        if event["type"] == "join":
            got.append(event["username"])
    assert got == names
    zipped.close()


def inflater(bits: int) -> Callable[[bytes], dict[str, Any]]:
    """Decode the server's compressed messages as a client whose window is 2**bits bytes."""
    window = zlib.decompressobj(-bits)
    return lambda payload: json.loads(window.decompress(payload + b"\x00\x00\xff\xff"))


@pytest.mark.settings(compression=True, max_text_chars=20_000)
@pytest.mark.gen_test
async def test_the_deflate_window_is_bounded_both_ways(
    raw_connect: RawConnect, connect: Connect,
) -> None:
    """The client's window is answered with 2**12 bytes, and the server's own fits in it."""
    raw = await raw_connect(extensions="permessage-deflate; client_max_window_bits")
    assert "client_max_window_bits=12" in raw.head
    inflate = inflater(12)  # a 15-bit window would reach back further and fail to decode
    poster = await connect()
    await poster.join("poster")
    part = "".join(random.Random(7).choice(string.ascii_letters) for _ in range(6000))
    await poster.send({"type": "message", "text": part + part})  # repeats 6,000 bytes back
    opcode, payload = await raw.read_frame()
    assert opcode == 0x1
    assert inflate(payload)["message"] == part + part


# Replies bob asks for and does not read (100 history pages of one message of 59,000 random
# letters, ~4.4 MB compressed) are past what the kernel takes, and the 4 KiB limit.
@pytest.mark.settings(compression=True, max_queue_bytes=4096, rate_limit=0,
                      history_bytes_per_s=0, max_text_chars=60_000,
                      max_message_bytes=128 * 1024)
@pytest.mark.gen_test(timeout=60)
async def test_compressed_replies_larger_than_the_limit_evict_no_one(
    raw_connect: RawConnect, connect: Connect, app: ChatApplication,
) -> None:
    """Compressed history over the limit is kept, unread; compressed live traffic is not."""
    alice = await connect()
    await alice.join("alice")
    noise = random.Random(1)
    texts = ["".join(noise.choice(string.ascii_letters) for _ in range(59_000))
             for _ in range(100)]
    for text in texts:
        await alice.send({"type": "message", "text": text})
        await alice.recv_type("message")
    bob = await raw_connect(rcvbuf=4096, extensions="permessage-deflate")
    bob.send_text({"type": "join", "username": "bob"})
    assert (await alice.recv_type("join"))["username"] == "bob"
    for before in range(101, 1, -1):
        bob.send_text({"type": "history", "room": "general", "before": before, "limit": 1})
    await asyncio.sleep(0.5)  # bob reads nothing yet: the replies wait in the stream
    assert app.hub.stats.evicted == 0
    inflate = inflater(15)
    pages: list[str] = []
    while len(pages) < 100:
        event = inflate((await bob.read_frame())[1])
        if event["type"] == "history" and "more" in event and "recovered" not in event:
            pages.append(event["messages"][0]["message"])
    assert pages == texts[::-1]
    for text in texts:  # live messages bob does not read: dropped, as any slow reader
        await alice.send({"type": "message", "text": text})
        await alice.recv_type("message")
        if "bob" not in app.hub.users:
            break
    assert app.hub.stats.evicted == 1


@pytest.mark.parametrize(("setting", "value", "rule"), [
    ("compression_window_bits", 8, "between 9 and 15"),
    ("compression_window_bits", 16, "between 9 and 15"),
    ("compression_mem_level", 0, "between 1 and 9"),
])
def test_deflate_bounds_out_of_range_are_refused(setting: str, value: int, rule: str) -> None:
    """A window or memLevel zlib cannot take is a settings error naming the value and range."""
    flag = setting.replace("_", "-")
    options: dict[str, Any] = {setting: value}
    with pytest.raises(ConfigError, match=f"--{flag} is {value}; it must be {rule}"):
        Settings(**options)

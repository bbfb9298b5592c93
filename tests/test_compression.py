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
from tornado.websocket import websocket_connect


async def chat_client(ws_url: str):
    conn = await websocket_connect(ws_url, compression_options={})
    await conn.write_message(json.dumps({"type": "join", "username": "zip"}))
    return conn


@pytest.mark.gen_test
async def test_compression_is_off_by_default(ws_url) -> None:
    """A client offering permessage-deflate is answered without it."""
    conn = await chat_client(ws_url)
    assert "Sec-WebSocket-Extensions" not in conn.headers
    assert json.loads(await conn.read_message())["type"] == "welcome"
    conn.close()


@pytest.mark.settings(compression=True)
@pytest.mark.gen_test
async def test_compressed_connections_chat_with_plain_ones(ws_url, connect) -> None:
    """With --compression a deflate client and a plain one exchange messages."""
    zipped = await chat_client(ws_url)
    assert "permessage-deflate" in zipped.headers["Sec-WebSocket-Extensions"]
    plain = await connect()
    await plain.join("plain")
    await plain.send({"type": "message", "text": "hello " * 200})
    while (event := json.loads(await zipped.read_message()))["type"] != "message":
        pass
    assert event["message"] == ("hello " * 200)
    await zipped.write_message(json.dumps({"type": "message", "text": "back"}))
    assert (await plain.recv_type("message"))["message"] == "hello " * 200  # its own
    assert (await plain.recv_type("message"))["message"] == "back"
    zipped.close()


def inflater(bits: int) -> Callable[[bytes], dict[str, Any]]:
    """Decode the server's compressed messages as a client whose window is 2**bits bytes."""
    window = zlib.decompressobj(-bits)
    return lambda payload: json.loads(window.decompress(payload + b"\x00\x00\xff\xff"))


# The history sent on connecting is ~4.4 MB even compressed: past what the kernel takes.
@pytest.mark.settings(compression=True, max_queue_bytes=4096, rate_limit=0, history_on_join=100,
                      max_text_chars=60_000, max_message_bytes=128 * 1024)
@pytest.mark.gen_test(timeout=60)
async def test_compressed_replies_larger_than_the_limit_evict_no_one(raw_connect, connect,
                                                                     app) -> None:
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
    await asyncio.sleep(0.2)  # bob reads nothing yet: the replies wait in the stream
    assert app.hub.stats.evicted == 0
    inflate = inflater(15)
    events = [inflate((await bob.read_frame())[1]) for _ in range(103)]
    assert [event["type"] for event in events] == ["message"] * 100 + [
        "welcome", "presence", "history"]
    assert [event["message"] for event in events[:100]] == texts
    for text in texts:  # live messages bob does not read: dropped, as any slow reader
        await alice.send({"type": "message", "text": text})
        await alice.recv_type("message")
        if "bob" not in app.hub.users:
            break
    assert app.hub.stats.evicted == 1


"""permessage-deflate: off by default, and working end to end when --compression turns it on."""

from __future__ import annotations

import json

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

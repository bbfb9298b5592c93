"""Bad input and hostile clients: errors or the right close code, never a broken server."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.websocket import websocket_connect

from chat_server import ChatApplication
from handlers.chatsocket import ChatSocket
from tests.helpers import ChatClient, Connect, RawConnect


async def still_serves(connect: Connect) -> None:
    client = await connect()
    assert (await client.join("after-check"))["type"] == "welcome"


@pytest.mark.gen_test
@pytest.mark.parametrize(("method", "status"), [("GET", 400), ("HEAD", 405), ("POST", 405)])
async def test_plain_http_to_ws_is_an_error_and_the_server_stays_up(
        http_server: HTTPServer, http_port: int, connect: Connect, method: str,
        status: int) -> None:
    """A plain GET, HEAD or POST to /ws gets an HTTP error; the server keeps serving."""
    with pytest.raises(HTTPClientError) as caught:
        await AsyncHTTPClient().fetch(f"http://127.0.0.1:{http_port}/ws", method=method,
                                      body=b"x" if method == "POST" else None)
    assert caught.value.code == status
    await still_serves(connect)


@pytest.mark.gen_test
async def test_cross_site_upgrade_is_refused(
    http_server: HTTPServer, http_port: int, ws_url: str,
) -> None:
    """An Origin from another site gets 403; the page's own origin is accepted."""
    with pytest.raises(HTTPClientError) as caught:
        await ChatClient.connect(ws_url, Origin="https://evil.example")
    assert caught.value.code == 403
    same = await ChatClient.connect(ws_url, Origin=f"http://127.0.0.1:{http_port}")
    same.close()


@pytest.mark.settings(allowed_origins=["https://chat.example.org/"])
@pytest.mark.gen_test
async def test_allowed_origins_widen_the_origin_check(http_server: HTTPServer, ws_url: str) -> None:
    """An origin named in --allowed-origins may connect; others still may not."""
    ok = await ChatClient.connect(ws_url, Origin="https://CHAT.example.org")
    ok.close()
    with pytest.raises(HTTPClientError):
        await ChatClient.connect(ws_url, Origin="https://chat.example.org.evil.example")


@pytest.mark.settings(max_message_bytes=2048)
@pytest.mark.gen_test
async def test_frame_over_the_size_limit_closes_with_1009(connect: Connect) -> None:
    """A frame over max-message-bytes closes with 1009 and is not relayed."""
    alice, big = await connect(), await connect()
    await alice.join("alice")
    await big.join("big")
    await alice.recv_type("join")
    await big.send({"type": "message", "text": "x" * 3000})
    assert await big.closed() == 1009
    await alice.recv_type("leave")
    await alice.nothing()


@pytest.mark.settings(max_text_chars=10)
@pytest.mark.gen_test
async def test_text_over_the_length_limit_is_refused(connect: Connect) -> None:
    """Text over max-text-chars gets too_long with the limit and is not relayed."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")
    await bob.join("bob")
    await alice.recv_type("join")
    await bob.send({"type": "message", "text": "x" * 11})
    error = await bob.recv()
    assert (error["code"], error["limit"]) == ("too_long", 10)
    await alice.nothing()


@pytest.mark.gen_test
async def test_binary_frame_closes_with_1003(connect: Connect) -> None:
    """A binary frame closes the connection with 1003."""
    client = await connect()
    await client.send(b"\x00\x01")
    assert await client.closed() == 1003


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (dict(opcode=0x1, payload=b'{"type": "\xff"}'), 1007),
        (dict(opcode=0x1, payload=b'{"type":"join"}', mask=False), 1002),
        (dict(opcode=0x8, payload=struct.pack("!H", 1005)), 1002),
        (dict(opcode=0x8, payload=struct.pack("!H", 999)), 1002),
        (dict(opcode=0x8, payload=struct.pack("!H", 5000)), 1002),
        (dict(opcode=0x8, payload=b"\x03"), 1002),
        (dict(opcode=0x8, payload=struct.pack("!H", 1000) + b"\xff"), 1007),
        (dict(opcode=0x3, payload=b"x"), 1002),
        (dict(opcode=0x1, payload=b"{}", rsv=0x40), 1002),
        (dict(opcode=0x9, payload=b"x", fin=False), 1002),
        (dict(opcode=0x0, payload=b"x"), 1002),
    ],
    ids=["invalid-utf8", "unmasked", "close-1005", "close-999", "close-5000",
         "close-1-byte", "close-reason-utf8", "reserved-opcode", "rsv-bits",
         "fragmented-ping", "orphan-continuation"],
)
async def test_rfc6455_violations_close_with_the_right_code(
        raw_connect: RawConnect, connect: Connect, frame: dict[str, Any], code: int) -> None:
    """Each protocol violation gets a close frame with the RFC's code; the server stays up."""
    raw = await raw_connect()
    raw.send_frame(**frame)
    assert await raw.close_code() == code
    await still_serves(connect)


@pytest.mark.gen_test
async def test_valid_close_code_is_echoed(raw_connect: RawConnect) -> None:
    """A normal close from the client is answered with the same code."""
    raw = await raw_connect()
    raw.send_frame(0x8, struct.pack("!H", 4000) + b"bye")
    assert await raw.close_code() == 4000


@pytest.mark.settings(rate_limit=5, rate_burst=3, rate_abuse_frames=6)
@pytest.mark.gen_test
async def test_rate_limit_answers_with_errors_then_closes_with_1008(connect: Connect) -> None:
    """Frames past the burst get rate_limited; a sustained flood closes with 1008."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")  # one token
    await bob.join("bob")
    await alice.recv_type("join")
    for n in range(2):
        await alice.send({"type": "message", "text": f"ok {n}"})
    await alice.send({"type": "message", "text": "too fast", "cid": "c9"})
    error = await alice.recv_type("error")
    assert (error["code"], error["request"], error["cid"]) == ("rate_limited", "message", "c9")
    assert [(await bob.recv_type("message"))["message"] for _ in range(2)] == ["ok 0", "ok 1"]
    for _ in range(10):
        await alice.send({"type": "message", "text": "flood"})
    assert await alice.closed() == 1008
    await bob.recv_type("leave")
    await bob.nothing()


@pytest.mark.settings(max_connections_per_ip=2)
@pytest.mark.gen_test
async def test_connections_per_address_are_limited(
    connect: Connect, ws_url: str, app: ChatApplication,
) -> None:
    """Past max-connections-per-ip an upgrade gets 429; a freed place can be taken again."""
    first, _ = await connect(), await connect()
    with pytest.raises(HTTPClientError) as caught:
        await ChatClient.connect(ws_url)
    assert caught.value.code == 429
    first.close()
    while app.hub.connections.total > 1:
        await asyncio.sleep(0.01)
    (await connect()).close()


@pytest.mark.settings(max_connections=1)
@pytest.mark.gen_test
async def test_total_connections_are_limited(connect: Connect, ws_url: str) -> None:
    """Past max-connections an upgrade gets 503."""
    await connect()
    with pytest.raises(HTTPClientError) as caught:
        await ChatClient.connect(ws_url)
    assert caught.value.code == 503


@pytest.mark.gen_test
async def test_connections_have_tcp_nodelay(connect: Connect, app: ChatApplication) -> None:
    """Every accepted socket has Nagle's algorithm off."""
    await connect()
    (client,) = app.hub.clients
    assert isinstance(client.peer, ChatSocket) and client.peer.ws_connection is not None
    stream = client.peer.ws_connection.stream
    assert stream is not None
    sock = stream.socket
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


@pytest.mark.settings(ping_interval=0.2, ping_timeout=0.2)
@pytest.mark.gen_test
async def test_peers_that_stop_answering_pings_are_removed(
    raw_connect: RawConnect, connect: Connect, app: ChatApplication,
) -> None:
    """A client that never answers pings is closed, removed, and its leave announced."""
    alice = await connect()
    await alice.join("alice")
    raw = await raw_connect()  # never answers a ping
    raw.send_text({"type": "join", "username": "mute"})
    await alice.recv_type("join")
    assert (await alice.recv_type("leave", timeout=3))["username"] == "mute"
    assert {c.user.name for c in app.hub.clients if c.user} == {"alice"}


@pytest.mark.settings(ping_interval=0.2, ping_timeout=0.2)
@pytest.mark.gen_test
async def test_peers_that_answer_pings_stay(connect: Connect) -> None:
    """Tornado's client answers pings, so it outlives several ping intervals."""
    alice = await connect()
    await alice.join("alice")
    await asyncio.sleep(1.0)
    await alice.send({"type": "message", "text": "still here"})
    assert (await alice.recv_type("message"))["message"] == "still here"


@pytest.mark.settings(max_queue_bytes=64 * 1024, rate_limit=0, max_text_chars=60_000,
                      max_message_bytes=128 * 1024)
@pytest.mark.gen_test(timeout=30)
async def test_slow_reader_is_dropped_and_delays_no_one(raw_connect: RawConnect, connect: Connect,
                                                       app: ChatApplication) -> None:
    """A client that stops reading is dropped once its queue passes the limit; others flow."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")
    await bob.join("bob")
    slow = await raw_connect(rcvbuf=4096)  # joins, then never reads again
    slow.send_text({"type": "join", "username": "slow"})
    await alice.recv_type("join")
    await bob.recv_type("join")
    text = "y" * 50_000
    notices = []
    for n in range(200):  # 10 MB towards each reader: more than any kernel buffers here
        await alice.send({"type": "message", "text": f"{n} {text}"})
        for reader in (alice, bob):
            while (got := await reader.recv())["type"] != "message":
                notices.append(got)
            assert got["message"].startswith(f"{n} ")
    assert app.hub.stats.evicted == 1
    assert "slow" not in app.hub.users
    leaves = [notice for notice in notices if notice["type"] == "leave"]
    assert leaves == [{"type": "leave", "room": "general", "username": "slow", "count": 2}] * 2


@pytest.mark.gen_test
async def test_hundreds_of_text_errors_do_not_close_the_connection(connect: Connect) -> None:
    """Errors are answers, not closes: the connection stays usable."""
    client = await connect()
    for _ in range(5):
        await client.send("not json")
        assert (await client.recv())["code"] == "invalid_json"
    assert (await client.join("fine"))["username"] == "fine"


@pytest.mark.gen_test
async def test_websocket_client_without_origin_is_accepted(
    http_server: HTTPServer, ws_url: str,
) -> None:
    """Non-browser clients (no Origin header) may connect."""
    conn = await websocket_connect(ws_url)
    await conn.write_message(json.dumps({"type": "join", "username": "cli"}))
    assert json.loads(await conn.read_message() or "")["type"] == "welcome"
    conn.close()

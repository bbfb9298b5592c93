"""Hundreds of clients misbehave and drop while a few keep chatting: nothing is lost or leaks."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tornado.httpserver import HTTPServer

from chat.people.names import name_key
from chat.protocol.parse import DEFAULT_ROOM
from chat_server import ChatApplication
from tests.helpers import ChatClient, RawClient, stop

STEADY = 4  # typed clients that chat through everything
STEADY_ROOM = "steady"  # a second room they all share; chaos clients come and go in it too
WAVES = 6
WAVE_SIZE = 50  # WAVES * WAVE_SIZE raw clients in all
MIN_MESSAGES = 15  # per steady client; they keep sending until the last wave is over
SEND_PAUSE_S = 0.03
MAX_MESSAGE_BYTES = 4096
SETTLE_TIMEOUT_S = 10.0

# Each act writes frames on a fresh raw connection; the close code the server answers with
# (None: the connection stays open until the client ends it).
Act = Callable[[RawClient, int], int | None]


def idle(raw: RawClient, i: int) -> None:
    """Connects, reads `general` (as the tutorial's page does before joining), says nothing."""


def legacy_join(raw: RawClient, i: int) -> None:
    raw.send_text({"email": f"c{i}@example.com", "username": f"legacy-{i}", "message": f"hi {i}"})
    raw.send_text({"email": f"c{i}@example.com", "username": f"legacy-{i}", "message": "again"})


def typed_join_general(raw: RawClient, i: int) -> None:
    raw.send_text({"type": "join", "username": f"chaos-{i}"})
    raw.send_text({"type": "message", "text": f"chaos {i} was here"})
    raw.send_text({"type": "typing", "room": DEFAULT_ROOM})


def typed_join_rooms(raw: RawClient, i: int) -> None:
    raw.send_text({"type": "join", "username": f"roamer-{i}", "room": f"chaos-{i % 7}"})
    raw.send_text({"type": "join", "username": f"roamer-{i}", "room": STEADY_ROOM})
    raw.send_text({"type": "message", "room": STEADY_ROOM, "text": f"roamer {i} passing"})
    raw.send_text({"type": "dm", "to": "steady-0", "text": "psst"})
    raw.send_text({"type": "leave", "room": f"chaos-{i % 7}"})


def impersonate(raw: RawClient, i: int) -> None:
    raw.send_text({"type": "join", "username": "STEADY-1"})  # refused: username_taken
    raw.send_text({"type": "message", "text": "not joined"})
    raw.send_text({"type": "dm", "to": "steady-2", "text": "not joined"})


def invalid_json(raw: RawClient, i: int) -> None:
    raw.send_frame(0x1, b"{not json")
    raw.send_frame(0x1, b"[1, 2]")
    raw.send_frame(0x1, b'{"type": "warp"}')
    raw.send_frame(0x9, b"ping")  # a valid ping among the garbage


def binary(raw: RawClient, i: int) -> int:
    raw.send_frame(0x2, b"\x00\x01\x02")
    return 1003


def oversized(raw: RawClient, i: int) -> int:
    raw.send_frame(0x1, b'"' + b"x" * MAX_MESSAGE_BYTES + b'"')
    return 1009


def unmasked(raw: RawClient, i: int) -> int:
    raw.send_frame(0x1, json.dumps({"type": "typing", "room": "general"}).encode(), mask=False)
    return 1002


def invalid_utf8(raw: RawClient, i: int) -> int:
    raw.send_frame(0x1, b'{"type": "message", "text": "\xff\xfe"}')
    return 1007


def bad_close_code(raw: RawClient, i: int) -> int:
    raw.send_frame(0x8, struct.pack("!H", (1005, 999, 5000)[i % 3]) + b"bye")
    return 1002


def reserved_opcode(raw: RawClient, i: int) -> int:
    raw.send_frame(0x3, b"?")
    return 1002


ACTS: list[Act] = [
    idle, legacy_join, typed_join_general, typed_join_rooms, impersonate, invalid_json,
    binary, oversized, unmasked, invalid_utf8, bad_close_code, reserved_opcode,
]
ENDINGS = ("abort", "close", "cut mid-frame")
VANISH_EVERY = 10  # every tenth client drops during the opening handshake instead


async def vanish_in_handshake(port: int, i: int, rng: random.Random) -> None:
    """Send all or half of the upgrade request, then drop before or after the 101 arrives."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    writer.write(request if i % 20 else request[: len(request) // 2])
    await asyncio.sleep(rng.uniform(0, 0.02))
    writer.transport.abort()


async def misbehave(port: int, i: int, rng: random.Random) -> None:
    """One raw client: connect, do act i, then leave by ending i."""
    if i % VANISH_EVERY == VANISH_EVERY - 1:
        await vanish_in_handshake(port, i, rng)
        return
    raw = await RawClient.connect(port)
    try:
        expected = ACTS[i % len(ACTS)](raw, i)
        ending = ENDINGS[(i // len(ACTS)) % len(ENDINGS)]
        await asyncio.sleep(rng.uniform(0, 0.2))  # steady messages reach it meanwhile
        if ending == "close":
            # After an act the server fails, it closes at once: a close sent after that would
            # meet a closed socket, whose reset can overtake the server's close frame.
            if expected is None:
                raw.send_frame(0x8, struct.pack("!H", 1000))
            code = await raw.close_code()
            assert code == (expected or 1000), f"act {i % len(ACTS)}: closed with {code}"
            raw.writer.close()
            await raw.writer.wait_closed()
        elif ending == "cut mid-frame":
            raw.writer.write(b"\x81\xfe\x10")  # a text frame header, cut short
            await asyncio.sleep(0)
    finally:
        raw.abort()


class Steady:
    """A typed client that chats, and records every steady message it reads."""

    def __init__(self, name: str, client: ChatClient) -> None:
        self.name = name
        self.client = client
        self.sent: list[tuple[str, str]] = []  # (room, cid) in sending order
        self.read: list[dict[str, Any]] = []  # message events from steady clients
        self.errors: list[dict[str, Any]] = []
        self.reader: asyncio.Task[None] | None = None

    async def read_all(self, steady_names: set[str]) -> None:
        while (text := await self.client.conn.read_message()) is not None:
            event = json.loads(text)
            if event["type"] == "message" and event["username"] in steady_names:
                self.read.append(event)
            elif event["type"] == "error":
                self.errors.append(event)

    async def chat(self, until: asyncio.Event) -> None:
        n = 0
        while n < MIN_MESSAGES or not until.is_set():
            room = (DEFAULT_ROOM, STEADY_ROOM)[n % 2]
            cid = f"{self.name}/{n}"
            self.sent.append((room, cid))
            await self.client.send({"type": "message", "room": room, "text": f"{cid} says hi",
                                    "cid": cid})
            n += 1
            await asyncio.sleep(SEND_PAUSE_S)


async def settle(condition: Callable[[], bool]) -> None:
    """Wait until `condition()` holds or SETTLE_TIMEOUT_S pass; the checks after it tell which."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT_S
    while not condition() and loop.time() < deadline:
        await asyncio.sleep(0.05)


@pytest.mark.settings(rate_limit=0, max_connections_per_ip=0, max_message_bytes=MAX_MESSAGE_BYTES)
@pytest.mark.gen_test(timeout=60)
async def test_steady_clients_chat_undisturbed_while_hundreds_misbehave_and_drop(
    app: ChatApplication, http_server: HTTPServer, http_port: int,
    connect: Callable[[], Awaitable[ChatClient]], caplog: pytest.LogCaptureFixture,
) -> None:
    """Steady clients get every message once and in order; the hub ends as if chaos never was."""
    caplog.set_level(logging.WARNING)
    hub = app.hub
    rng = random.Random(2)

    steady = [Steady(f"steady-{n}", await connect()) for n in range(STEADY)]
    names = {s.name for s in steady}
    for s in steady:
        await s.client.join(s.name)
        await s.client.join(s.name, room=STEADY_ROOM)
    for s in steady:
        s.reader = asyncio.create_task(s.read_all(names))
    chaos_over = asyncio.Event()
    chatting = asyncio.gather(*(s.chat(chaos_over) for s in steady))
    try:
        for wave in range(WAVES):
            await asyncio.gather(*(misbehave(http_port, wave * WAVE_SIZE + i, rng)
                                   for i in range(WAVE_SIZE)))
        chaos_over.set()
        await chatting
        sent = {(room, cid) for s in steady for room, cid in s.sent}
        await settle(lambda: all(len(s.read) >= len(sent) for s in steady))
        await settle(lambda: len(hub.clients) == STEADY)
        await asyncio.sleep(0.2)  # anything still in flight lands before the checks
    finally:
        await stop(chatting)
        for s in steady:
            if s.reader is not None:
                await stop(s.reader)

    for s in steady:
        assert s.errors == [], s.name
        got = [(e["room"], e["cid"]) for e in s.read]
        assert len(got) == len(set(got)), f"{s.name} read a message twice"
        assert set(got) == sent, f"{s.name} missed {sent - set(got)}"
        for e in s.read:
            assert e["message"] == f"{e['cid']} says hi"
        for room_name in (DEFAULT_ROOM, STEADY_ROOM):
            ids = [e["id"] for e in s.read if e["room"] == room_name]
            assert ids == sorted(set(ids)), f"{s.name} read {room_name} out of order"
        for sender in steady:
            assert [c for c in got if c in sender.sent] == sender.sent, (
                f"{s.name} read {sender.name}'s messages out of order")

    assert sorted(c.user.name if c.user else "(not joined)" for c in hub.clients) == sorted(names)
    assert set(hub.users) == {name_key(name) for name in names}
    assert set(hub.rooms) == {DEFAULT_ROOM, STEADY_ROOM}
    for room in hub.rooms.values():
        assert set(room.users) == set(hub.users), room.name
        assert room.readers == hub.clients, room.name
        assert room.listeners == hub.clients, room.name
        assert room.joining == {}, room.name
    assert hub.connections.total == STEADY
    assert dict(hub.connections._per_address) == {"127.0.0.1": STEADY}

    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []

"""Bounded growth: room retention and empty conversations on a real SQLite file, cid rows that
hold a reference, the schema migration to them, and room creations per user and per address."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from chat.store import SQLiteStore, StoredMessage, sqlite_schema
from chat.store.base import DAY_MS, IDEMPOTENCY_WINDOW_MS
from chat_server import ChatApplication
from tests.helpers import TIMEOUT_S, ChatClient, Connect, RawClient

AVATAR = "https://www.gravatar.com/avatar/0123456789abcdef0123456789abcdef?d=identicon&s=80"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "chat.db")


def rows(db: str, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


def file_bytes(db: str) -> int:
    return sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))


async def one_message_rooms(store: SQLiteStore, prefix: str, count: int, ts: int) -> None:
    """The attack: each room gets one message (with a cid) and is never posted to again."""
    for n in range(count):
        await store.append(f"{prefix}{n}", username=f"u{n % 10}", avatar=AVATAR,
                           text="one message, then never again " * 3, ts=ts, cid=f"{prefix}-{n}")


# Room retention and empty conversations, on a real file


@pytest.mark.gen_test(timeout=60)
async def test_abandoned_one_message_rooms_are_deleted_and_their_space_reused(db: str) -> None:
    """Retention deletes rooms whose newest message is older than room_days, counters and all,
    and the file does not grow when as many rooms are made and abandoned again."""
    old = now_ms() - 31 * DAY_MS
    store = SQLiteStore(db, room_days=30)
    await store.start()
    try:
        await store.prune()  # the pass at start is done: the next one is this test's
        await store.append("general", username="ann", avatar=AVATAR, text="hello", ts=old)
        await one_message_rooms(store, "r", 300, old)
        assert file_bytes(db) > 300 * 300  # each room costs hundreds of bytes until retention
        assert await store.prune() == 300
    finally:
        await store.close()
    assert rows(db, "SELECT key FROM conversations") == [("general",)]
    assert rows(db, "SELECT conversation FROM messages") == [("general",)]
    assert rows(db, "SELECT count(*) FROM cids") == [(0,)]
    size = os.path.getsize(db)
    async with contextlib.AsyncExitStack() as stack:
        again = SQLiteStore(db, room_days=30)
        await again.start()
        stack.push_async_callback(again.close)
        await again.prune()
        await one_message_rooms(again, "s", 300, old)
        assert await again.prune() == 300
    assert os.path.getsize(db) <= size + 8 * 4096  # freed pages were used again


@pytest.mark.gen_test
async def test_a_room_that_days_emptied_leaves_no_counter(db: str) -> None:
    """Once `days` retention deleted a conversation's every message, its counter row goes too,
    and its next message still gets an id above every id it had."""
    async with contextlib.AsyncExitStack() as stack:
        store = SQLiteStore(db, days=1)
        await store.start()
        stack.push_async_callback(store.close)
        await store.prune()  # the pass at start is done: the next one is this test's
        for room in ("quiet", "quiet", "general"):
            await store.append(room, username="ann", avatar="", text="old",
                               ts=now_ms() - 2 * DAY_MS)
        assert await store.prune() == 3
        assert rows(db, "SELECT key, last_id FROM conversations") == [("general", 1)]
        back, _ = await store.append("quiet", username="ann", avatar="", text="back",
                                     ts=now_ms())
        assert back.id == 3
        assert (await store.append("general", username="ann", avatar="", text="on",
                                   ts=now_ms()))[0].id == 2


@pytest.mark.gen_test
async def test_cid_rows_hold_a_reference_not_the_text(db: str) -> None:
    """A cid row holds its conversation, id and ts, never the text; a repeat still gets the
    original message, read from the messages table."""
    text = "a long message " * 250
    async with contextlib.AsyncExitStack() as stack:
        store = SQLiteStore(db)
        await store.start()
        stack.push_async_callback(store.close)
        original, _ = await store.append("dev", username="Ann", avatar=AVATAR, text=text,
                                         ts=now_ms(), cid="c1")
        columns = [row[1] for row in rows(db, "PRAGMA table_info(cids)")]
        assert columns == ["user_key", "cid", "conversation", "id", "ts"]
        assert rows(db, "SELECT * FROM cids") == [("ann", "c1", "dev", 1, original.ts)]
        assert await store.append("dev", username="ann", avatar="", text="resent",
                                  ts=now_ms(), cid="c1") == (original, False)


@pytest.mark.gen_test
async def test_a_file_of_the_previous_schema_upgrades_in_place(db: str) -> None:
    """A file written by the previous schema (cids holding copies) is migrated on opening:
    its cids become references that still answer repeats, and its ids go on."""
    ts = now_ms() - 1000
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (1)")
        sqlite_schema.MIGRATIONS[0](conn)  # the previous server's only migration
        conn.executemany("INSERT INTO conversations VALUES (?, ?)", [("general", 3), ("dev", 1)])
        kept = [("general", 2, "ann", "a", "two", ts, "c2", None),
                ("general", 3, "ann", "a", "three", ts + 1, None, None),
                ("dev", 1, "bob", "b", "dev one", ts + 2, "c3", None)]
        conn.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)", kept)
        # c1's message was deleted by retention; the old cids table kept a copy of it.
        copies = [("ann", "c1", "general", 1, "ann", "a", "one", ts - 1, None),
                  ("ann", "c2", "general", 2, "ann", "a", "two", ts, None),
                  ("bob", "c3", "dev", 1, "bob", "b", "dev one", ts + 2, None)]
        conn.executemany("INSERT INTO cids (user_key, cid, conversation, id, username, avatar,"
                         " text, ts, recipient) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", copies)
    async with contextlib.AsyncExitStack() as stack:
        store = SQLiteStore(db, room_days=30)
        await store.start()
        stack.push_async_callback(store.close)
        assert rows(db, "SELECT version FROM schema_version") == [
            (len(sqlite_schema.MIGRATIONS),)]
        assert "text" not in [row[1] for row in rows(db, "PRAGMA table_info(cids)")]
        assert rows(db, "SELECT key, last_id, last_ts FROM conversations ORDER BY key") == [
            ("dev", 1, ts + 2), ("general", 3, ts + 1)]
        again = await store.append("general", username="ann", avatar="a", text="two",
                                   ts=now_ms(), cid="c2")
        assert again == (StoredMessage("general", 2, "ann", "a", "two", ts, "c2"), False)
        pruned = await store.append("general", username="ann", avatar="a", text="one",
                                    ts=now_ms(), cid="c1")
        assert pruned == (StoredMessage("general", 1, "ann", "a", "one", ts - 1, "c1"), False)
        assert (await store.append("general", username="ann", avatar="a", text="four",
                                   ts=now_ms()))[0].id == 4
        assert (await store.append("dev", username="bob", avatar="b", text="dev two",
                                   ts=now_ms()))[0].id == 2
    assert now_ms() - ts < IDEMPOTENCY_WINDOW_MS  # the repeats above were within the window


# Room creations per user and per address, over a real server


async def join(client: ChatClient, username: str, room: str,
               **extra: Any) -> dict[str, Any]:
    """Send a join; the welcome, or the error that refused it."""
    await client.send({"type": "join", "username": username, "room": room, **extra})
    while True:
        frame = await client.recv()
        assert frame is not None
        if frame["type"] in ("welcome", "error"):
            return frame


async def raw_join_from(address: str, port: int, username: str, room: str) -> dict[str, Any]:
    """Join over a socket whose source address is `address` (any of 127/8 reaches the
    server); the welcome, or the error that refused it."""
    sock = socket.socket()
    sock.bind((address, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT_S)
    assert head.startswith(b"HTTP/1.1 101"), head
    client = RawClient(reader, writer)
    try:
        client.send_text({"type": "join", "username": username, "room": room})
        while True:
            _, payload = await client.read_frame()
            frame: dict[str, Any] = json.loads(payload)
            if frame["type"] in ("welcome", "error"):
                return frame
    finally:
        client.abort()


# Several connections of one user from one address stand in for connections from several
# addresses (a user on a laptop and a phone): max_connections_per_ip=0 and no address quota.
@pytest.mark.settings(room_creations_per_user=3, room_creations_per_ip=0,
                      max_connections_per_ip=0, rate_limit=0)
@pytest.mark.gen_test
async def test_one_user_opens_at_most_its_room_creations_per_hour(
    connect: Connect, app: ChatApplication,
) -> None:
    """A user's joins to rooms not open here are refused past room-creations-per-user, over
    all its connections; rooms already open stay open to it, and other users are unaffected."""
    laptop = await connect()
    token = (await join(laptop, "alice", "a1"))["token"]
    assert (await join(laptop, "alice", "a2"))["type"] == "welcome"
    phone = await connect()
    assert (await join(phone, "alice", "a3", token=token))["type"] == "welcome"
    refused = await join(phone, "alice", "a4", token=token)
    assert (refused["code"], refused["room"], refused["limit"]) == ("too_many_rooms", "a4", 3)
    assert "room-creations-per-user" in refused["reason"]
    assert "a4" not in app.hub.rooms
    bob = await connect()
    assert (await join(bob, "bob", "b1"))["type"] == "welcome"
    assert (await join(phone, "alice", "b1", token=token))["type"] == "welcome"
    assert (await join(phone, "alice", "a1", token=token))["type"] == "welcome"


@pytest.mark.settings(room_creations_per_user=0, room_creations_per_ip=4, max_rooms=20,
                      rate_limit=0)
@pytest.mark.gen_test
async def test_one_address_cannot_fill_max_rooms(
    connect: Connect, app: ChatApplication, http_port: int,
) -> None:
    """Many users from one address open at most room-creations-per-ip new rooms between them,
    far from max-rooms; a client from another address still opens one."""
    outcomes = []
    for n in range(10):
        client = await connect()
        outcomes.append(await join(client, f"user{n}", f"room{n}"))
    assert [o["type"] for o in outcomes] == ["welcome"] * 4 + ["error"] * 6
    assert {(o["code"], o["limit"]) for o in outcomes[4:]} == {("too_many_rooms", 4)}
    assert "room-creations-per-ip" in outcomes[4]["reason"]
    assert len(app.hub.rooms) == 1 + 4 < app.hub.settings.max_rooms
    other = await raw_join_from("127.0.0.2", http_port, "carol", "carols-room")
    assert other["type"] == "welcome"

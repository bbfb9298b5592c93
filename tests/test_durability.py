"""Acknowledged means stored: kill -9, a bad database path, and a store that fails at runtime."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.ioloop import IOLoop

from chat.config import Settings
from chat.store import SQLiteStore
from chat_server import ChatApplication, make_app
from tests.helpers import Connect, stop
from tests.serverproc import Spawn, WsConnect, assert_one_line_error, free_port, run


@pytest.mark.subprocess
@pytest.mark.gen_test(timeout=60)
async def test_every_acknowledged_message_survives_kill_9(
    spawn: Spawn, ws: WsConnect, tmp_path: Path,
) -> None:
    """Messages acknowledged before a SIGKILL are all in history after a restart, once each."""
    db = str(tmp_path / "chat.db")
    port = free_port()
    child = spawn(f"--port={port}", f"--db={db}", "--rate-limit=0", ready_port=port)
    sender = await ws(port)
    await sender.join("sender", room="durable")
    acknowledged: dict[str, int] = {}
    sent = 0

    async def pump() -> None:
        nonlocal sent
        while True:
            await sender.send({"type": "message", "room": "durable", "text": f"n{sent}",
                               "cid": f"c{sent}"})
            sent += 1
            await asyncio.sleep(0)

    async def collect() -> None:
        while True:
            frame = await sender.recv_or_none()
            if frame is None:
                return
            if frame.get("type") == "message":
                acknowledged[frame["cid"]] = frame["id"]

    pumping, collecting = asyncio.ensure_future(pump()), asyncio.ensure_future(collect())
    while len(acknowledged) < 300:
        await asyncio.sleep(0.01)
    child.proc.kill()  # SIGKILL, mid-stream
    child.proc.wait()
    await stop(pumping)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(collecting, 5)
    assert sent > len(acknowledged)  # some were in flight when it died

    port = free_port()
    spawn(f"--port={port}", f"--db={db}", "--rate-limit=0", ready_port=port)
    reader = await ws(port)
    await reader.join("reader", room="durable")
    stored: list[dict[str, Any]] = []
    before = None
    while True:
        request = {"type": "history", "room": "durable", "limit": 200}
        if before is not None:
            request["before"] = before
        await reader.send(request)
        page = await reader.recv_type("history")
        stored = page["messages"] + stored
        if not page["more"]:
            break
        before = page["messages"][0]["id"]
    by_cid: dict[str, list[int]] = {}
    for message in stored:
        by_cid.setdefault(message["cid"], []).append(message["id"])
    for cid, message_id in acknowledged.items():
        assert by_cid.get(cid) == [message_id], cid
    ids = [message["id"] for message in stored]
    assert ids == sorted(set(ids))


@pytest.mark.subprocess
@pytest.mark.parametrize("kind", ["missing-directory", "corrupt-file", "a-directory"])
def test_a_bad_database_path_is_one_line_and_a_nonzero_exit(tmp_path: Path, kind: str) -> None:
    """An unusable --db fails at start-up with one clear line, not a traceback."""
    if kind == "missing-directory":
        db = tmp_path / "no" / "such" / "dir" / "chat.db"
    elif kind == "corrupt-file":
        db = tmp_path / "chat.db"
        db.write_bytes(b"this is not a SQLite database\n" * 500)
    else:
        db = tmp_path
    result = run(f"--port={free_port()}", f"--db={db}", CHAT_DB=str(db))
    assert result.returncode != 0
    line = assert_one_line_error(result)
    assert "database" in line


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "history.db")


@pytest.fixture
def app(settings: Settings, db_path: str, io_loop: IOLoop) -> Iterator[ChatApplication]:
    """The app on a SQLite store that gives up on a locked file after 0.2 s."""
    store = SQLiteStore(db_path, lock_timeout_s=0.2)
    io_loop.run_sync(store.start)
    yield make_app(settings, store)
    io_loop.run_sync(store.close)


@pytest.mark.expect_errors(r"chat\.messages: could not store a message.*database is locked")
@pytest.mark.gen_test(timeout=30)
async def test_a_store_failure_reaches_the_sender_only_and_the_server_goes_on(
        connect: Connect, db_path: str) -> None:
    """While the file is locked, a post gets store_failed, nobody receives it; then all recovers."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")
    await bob.join("bob")
    await alice.recv_type("join")
    locker = sqlite3.connect(db_path, timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        await alice.send({"type": "message", "text": "lost?", "cid": "x1"})
        error = await alice.recv_type("error")
        assert (error["code"], error["cid"]) == ("store_failed", "x1")
        await bob.nothing(0.5)
    finally:
        locker.rollback()
        locker.close()
    await alice.send({"type": "message", "text": "stored", "cid": "x2"})
    assert (await bob.recv_type("message"))["message"] == "stored"
    await bob.send({"type": "history", "room": "general"})
    page = await bob.recv_type("history")
    assert [m["message"] for m in page["messages"]] == ["stored"]


async def health(port: int) -> tuple[int, dict[str, Any]]:
    """GET /healthz: its status and JSON body, whatever the status."""
    response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/healthz",
                                             raise_error=False)
    return response.code, json.loads(response.body)


@pytest.mark.expect_errors(r"chat\.messages: could not store a message.*database is locked")
@pytest.mark.gen_test(timeout=30)
async def test_healthz_reports_a_store_that_refuses_messages(
        connect: Connect, db_path: str, http_port: int) -> None:
    """/healthz answers 503 "store": "failing" after a failed append, and ok after a success."""
    alice = await connect()
    await alice.join("alice")
    locker = sqlite3.connect(db_path, timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        await alice.send({"type": "message", "text": "lost?", "cid": "h1"})
        assert (await alice.recv_type("error"))["code"] == "store_failed"
        code, body = await health(http_port)
        assert code == 503
        assert (body["status"], body["store"]) == ("unavailable", "failing")
    finally:
        locker.rollback()
        locker.close()
    await alice.send({"type": "message", "text": "stored", "cid": "h2"})
    assert (await alice.recv_type("message"))["message"] == "stored"
    code, body = await health(http_port)
    assert (code, body["status"], body["store"]) == (200, "ok", "ok")

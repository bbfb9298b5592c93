"""`chat_server.py backup`: an online copy of a SQLite history file, also while a server writes."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from chat.store.sqlite import SQLiteStore
from tests.helpers import run_apart, stop
from tests.serverproc import (
    ROOT,
    Spawn,
    WsConnect,
    assert_clean,
    assert_one_line_error,
    child_env,
    free_port,
    run,
)
from tests.test_copy_history import dump, populate

pytestmark = pytest.mark.subprocess


def test_a_backup_is_a_history_file_equal_to_its_source(tmp_path: Path) -> None:
    """A backup holds every row of the source file; a second backup never overwrites it."""
    db, copy = tmp_path / "chat.db", tmp_path / "copy.db"
    run_apart(populate(db))
    result = run("backup", str(db), str(copy))
    assert result.returncode == 0, result.stderr
    assert "backup: done" in result.stdout
    assert dump(str(copy)) == dump(str(db))
    assert not (tmp_path / "copy.db.partial").exists()
    copy.write_bytes(b"not a backup")
    again = run("backup", str(db), str(copy))
    assert again.returncode == 2
    assert "exists" in assert_one_line_error(again)
    assert copy.read_bytes() == b"not a backup"


def test_backup_refuses_postgresql_and_bad_arguments_in_one_line(tmp_path: Path) -> None:
    """A postgresql:// source gets the pg_dump advice, a missing source or a bad step size a
    reason, each exit 2 in one line with no password; no file is left behind."""
    target = tmp_path / "copy.db"
    cases = [
        (("postgresql://chat:secret@127.0.0.1:5432/chat", str(target)), "pg_dump"),
        ((str(tmp_path / "missing.db"), str(target)), "is not a file"),
        ((str(tmp_path / "missing.db"), "redis://:secret@127.0.0.1/0"), "SQLite file"),
        ((str(tmp_path / "missing.db"), str(target), "--step-pages=0"), "must be 1 or more"),
    ]
    for args, reason in cases:
        result = run("backup", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert reason in assert_one_line_error(result)
        assert "secret" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.gen_test(timeout=90)
async def test_a_backup_taken_while_a_server_writes_holds_every_acknowledged_message(
        tmp_path: Path, spawn: Spawn, ws: WsConnect) -> None:
    """A backup in one-page steps, taken while a server stores a message after another, opens
    as a valid store that holds every message acknowledged before the backup started, ids
    1..N with no gap, and takes new messages."""
    db, copy = tmp_path / "chat.db", tmp_path / "copy.db"
    port = free_port()
    child = spawn(f"--port={port}", f"--db={db}", "--rate-limit=0", ready_port=port)
    alice = await ws(port)
    await alice.join("alice")
    acked: list[tuple[int, str]] = []
    long_text = "x" * 3000  # a few hundred pages, so a one-page step is one of many

    async def keep_writing() -> None:
        n = 0
        while True:
            await alice.send({"type": "message", "room": "general", "text": f"{n} {long_text}"})
            message = await alice.recv_type("message")
            acked.append((message["id"], message["message"]))
            n += 1

    writer = asyncio.create_task(keep_writing())
    try:
        while len(acked) < 300:
            await asyncio.sleep(0.05)
        before = list(acked)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "chat_server.py", "backup", str(db), str(copy), "--step-pages=1",
            cwd=ROOT, env=child_env(), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        during = len(acked) - len(before)
    finally:
        await stop(writer)
    assert proc.returncode == 0, err.decode()
    assert "backup: done" in out.decode()
    assert during > 0  # the server kept storing while the backup ran
    assert child.stop() == 0
    assert_clean(child.stderr)

    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
    store = SQLiteStore(str(copy))
    await store.start()
    try:
        kept = [(m.id, m.text) for m in await store.after("general", 0, 10_000)]
        assert kept[:len(before)] == before
        assert [i for i, _ in kept] == list(range(1, len(kept) + 1))
        message, _ = await store.append("general", username="bob", avatar="", text="restored",
                                        ts=time.time_ns() // 1_000_000)
        assert message.id == len(kept) + 1
    finally:
        await store.close()

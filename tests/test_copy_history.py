"""`chat_server.py copy-history`: a SQLite file into PostgreSQL (and back), resumed, refused."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chat.store.base import DAY_MS
from chat.store.postgres import PostgresStore
from chat.store.sqlite import SQLiteStore
from tests.helpers import run_apart, stop
from tests.serverproc import (
    ROOT,
    RUN_TIMEOUT_S,
    Spawn,
    WsConnect,
    assert_clean,
    assert_one_line_error,
    child_env,
    free_port,
    run,
)

pytestmark = [pytest.mark.postgres, pytest.mark.subprocess]

TABLES = {
    # With the lifecycle's columns (issue 16): edits, tombstones, authors, reactions, changes.
    "messages": "SELECT conversation, id, username, avatar, text, ts, cid, recipient,"
                " edited_ts, deleted_ts, change_seq, author, reactions"
                " FROM messages ORDER BY conversation, id",
    "conversations": "SELECT key, last_id, last_ts, last_change FROM conversations ORDER BY key",
    "cids": "SELECT user_key, cid, conversation, id, ts FROM cids ORDER BY user_key, cid",
    "retired": "SELECT last_id FROM retired",
    # The people's state (issue 15): unread counts and presence survive a move.
    "read_marks": "SELECT party, conversation, last_read FROM read_marks"
                  " ORDER BY party, conversation",
    "last_seen": "SELECT party, ts FROM last_seen ORDER BY party",
}
# A direct conversation as stored before accounts (under the names): copied like any other.
ANN_BOB = "@ann\x1fbob"
WRITES_TIMEOUT_S = 30.0  # 200 acked messages take ~1 s here; CI machines are shared


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def dump(store: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table a history store holds, in a stable order."""
    if store.startswith("postgresql://"):
        with psycopg.connect(store) as conn:
            return {name: [tuple(r) for r in conn.execute(sql).fetchall()]
                    for name, sql in TABLES.items()}
    lite = sqlite3.connect(store)
    try:
        return {name: lite.execute(sql).fetchall() for name, sql in TABLES.items()}
    finally:
        lite.close()


async def populate(path: Path, *, lobby: int = 100, cap: int = 40) -> None:
    """A SQLite history: rooms and a direct conversation, the oldest pruned by the cap of 40,
    a room that room retention deleted (retired floor 70), cids in their window; in general
    an edited message, a deleted one and one with reactions (change number 3); read marks and
    last-seen times of two accounts."""
    store = SQLiteStore(str(path), per_conversation=cap, room_days=30)
    await store.start()
    try:
        for n in range(lobby):
            await store.append("lobby", username=("ann", "bob")[n % 2], avatar="a",
                               text=f"lobby {n} é 🙂", ts=now_ms(), cid=f"lobby-{n}")
        for n in range(30):
            await store.append("general", username="carol", avatar="", text=f"g{n}",
                               ts=now_ms(), author="a:3")
        await store.edit("general", 2, "g1, edited", now_ms())
        await store.delete("general", 3, now_ms())
        await store.react("general", 4, "👍", "a:1", "ann", True, 20)
        for n in range(20):
            await store.append(ANN_BOB, username=("ann", "bob")[n % 2], avatar="",
                               text=f"dm{n}", ts=now_ms(), cid=f"dm-{n}",
                               to=("bob", "ann")[n % 2])
        old = now_ms() - 40 * DAY_MS
        for n in range(70):
            await store.append("gone", username="ann", avatar="", text=f"old{n}", ts=old + n)
        await store.prune()  # lobby keeps its last 40; "gone" is retired: the floor is 70
        await store.mark_read("a:1", "lobby", 90)
        await store.mark_read("a:1", "general", 12)
        await store.mark_read("a:2", "lobby", 99)
        await store.saw("a:1", 1_700_000_000_000)
        await store.saw("a:2", 1_700_000_500_000)
    finally:
        await store.close()


def copy(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `chat_server.py copy-history ARGS` to completion."""
    return run("copy-history", *args)


def migrate(url: str) -> None:
    """Give a PostgreSQL schema the server's tables (as a node's start does)."""
    async def start_and_close() -> None:
        store = PostgresStore(url)
        await store.start()
        await store.close()
    run_apart(start_and_close())


@pytest.mark.gen_test(timeout=90)
async def test_a_copied_sqlite_history_is_served_by_a_node_on_postgresql(
        tmp_path: Path, postgres_url: str, spawn: Spawn, ws: WsConnect) -> None:
    """Copied into PostgreSQL, a SQLite history keeps every row (ids, ts, counters, the
    retired floor, cids, read marks, last-seen times); a node there resumes a client at the
    same `since` with exactly what follows, answers a cid sent before the copy with the
    original, and numbers on from the counters; copied back into a SQLite file, the history
    is the same again."""
    db = tmp_path / "chat.db"
    await populate(db)
    result = copy(str(db), postgres_url, "--chunk-messages=7")
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)
    assert "secret" not in result.stdout + result.stderr
    assert "done: 3 conversations, 90 messages copied (0 already there), 120 cids" in (
        result.stdout)
    source = dump(str(db))
    assert [row[1] for row in source["messages"] if row[0] == "lobby"] == list(range(61, 101))
    assert source["retired"] == [(70,)]
    assert dump(postgres_url) == source

    port = free_port()
    node = spawn(f"--port={port}", f"--db={postgres_url}", "--broker=memory://",
                 "--rate-limit=0", ready_port=port)
    ann = await ws(port)
    await ann.send({"type": "join", "username": "ann", "room": "lobby", "since": 80})
    history = await ann.recv_type("history")
    stored = [row for row in source["messages"] if row[0] == "lobby" and row[1] > 80]
    assert history["recovered"] is True
    assert [(m["id"], m["message"], m["ts"], m["username"]) for m in history["messages"]] == [
        (row[1], row[4], row[5], row[2]) for row in stored]
    await ann.send({"type": "message", "room": "lobby", "text": "again", "cid": "lobby-98"})
    repeat = await ann.recv_type("message")
    assert (repeat["id"], repeat["ts"], repeat["message"]) == (99, stored[-2][5], "lobby 98 é 🙂")
    await ann.send({"type": "message", "room": "lobby", "text": "after the copy"})
    assert (await ann.recv_type("message"))["id"] == 101
    await ann.send({"type": "history", "with": "bob", "limit": 50})
    dms = await ann.recv_type("history")
    # Copied (the dumps are equal), but a conversation kept under names is nobody's now: a
    # guest named ann cannot be shown to be that ann (docs/protocol.md).
    assert dms["messages"] == []
    await ann.send({"type": "join", "room": "fresh"})
    await ann.recv_type("history")
    await ann.send({"type": "message", "room": "fresh", "text": "new room"})
    assert (await ann.recv_type("message"))["id"] == 71  # above the retired floor
    assert node.stop() == 0
    assert_clean(node.stderr)

    back = tmp_path / "back.db"
    result = copy(postgres_url, str(back))
    assert result.returncode == 0, result.stderr
    assert dump(str(back)) == dump(postgres_url)


def test_a_copy_that_fails_mid_way_resumes_with_no_duplicate_and_no_gap(
        tmp_path: Path, postgres_url: str) -> None:
    """A target that refuses a row mid-way fails the copy (exit 1, one line) leaving whole
    chunks; the rerun copies the rest, and the target then equals the source."""
    db = tmp_path / "chat.db"
    run_apart(populate(db))
    migrate(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                     " IF NEW.conversation = 'lobby' AND NEW.id = 75 THEN"
                     " RAISE EXCEPTION 'injected failure at %', NEW.id; END IF;"
                     " RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON messages FOR EACH ROW"
                     " EXECUTE FUNCTION refuse()")
    failed = copy(str(db), postgres_url, "--chunk-messages=10")
    assert failed.returncode == 1
    line = assert_one_line_error(failed)
    assert "injected failure at 75" in line and "secret" not in failed.stderr
    partial = dump(postgres_url)
    assert [row[1] for row in partial["messages"] if row[0] == "lobby"] == list(range(61, 71))

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER refuse ON messages")
    again = copy(str(db), postgres_url, "--chunk-messages=10")
    assert again.returncode == 0, again.stderr
    assert "30 messages copied (0 already there)" in again.stdout  # lobby 71..100
    assert dump(postgres_url) == dump(str(db))


def test_a_copy_killed_mid_way_resumes_with_no_duplicate_and_no_gap(
        tmp_path: Path, postgres_url: str) -> None:
    """A copy killed with SIGKILL while it runs leaves whole chunks; the rerun copies exactly
    the rest."""
    db = tmp_path / "chat.db"
    run_apart(populate(db, lobby=3000, cap=10_000))
    # --chunk-messages=1: a transaction per message, so the copy runs for seconds.
    proc = subprocess.Popen([sys.executable, "chat_server.py", "copy-history", str(db),
                             postgres_url, "--chunk-messages=1"], cwd=ROOT, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the first progress line, a second in
        assert "messages copied" in first, first + proc.communicate()[1]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate(timeout=RUN_TIMEOUT_S)
    copied = len(dump(postgres_url)["messages"])
    assert 0 < copied < 3050
    again = copy(str(db), postgres_url)
    assert again.returncode == 0, again.stderr
    assert f"{3050 - copied} messages copied (0 already there)" in again.stdout
    assert dump(postgres_url) == dump(str(db))


def test_a_rerun_after_a_complete_copy_copies_nothing(tmp_path: Path) -> None:
    """Copied once (SQLite into SQLite), a second run copies no message and changes no row."""
    db, target = tmp_path / "chat.db", tmp_path / "copy.db"
    run_apart(populate(db))
    assert copy(str(db), str(target)).returncode == 0
    first = dump(str(target))
    assert first == dump(str(db))
    again = copy(str(db), str(target))
    assert again.returncode == 0, again.stderr
    assert "0 messages copied (0 already there)" in again.stdout
    assert dump(str(target)) == first


def test_a_target_holding_another_history_is_refused(tmp_path: Path, postgres_url: str) -> None:
    """A target with another message at an id the source has, or a counter ahead of the
    source's, is refused with exit 1 and one line, and gets no row of the source."""
    db = tmp_path / "chat.db"
    run_apart(populate(db))

    async def other_history() -> None:
        store = PostgresStore(postgres_url)
        await store.start()
        try:
            for n in range(5):
                await store.append("general", username="mallory", avatar="", text=f"x{n}",
                                   ts=now_ms())
        finally:
            await store.close()

    run_apart(other_history())
    before = dump(postgres_url)
    refused = copy(str(db), postgres_url)
    assert refused.returncode == 1
    line = assert_one_line_error(refused)
    assert "another history" in line and "'general'" in line and "***" in line
    assert "secret" not in refused.stderr
    assert dump(postgres_url)["messages"] == before["messages"]

    ahead = tmp_path / "ahead.db"
    conn = sqlite3.connect(ahead)
    conn.close()
    assert copy(str(db), str(ahead)).returncode == 0
    conn = sqlite3.connect(ahead)
    with conn:
        conn.execute("UPDATE conversations SET last_id = 500 WHERE key = 'general'")
    conn.close()
    refused = copy(str(db), str(ahead))
    assert refused.returncode == 1
    assert "counts to id 500" in assert_one_line_error(refused)


def test_bad_arguments_exit_2_in_one_line_with_passwords_redacted(tmp_path: Path) -> None:
    """A URL copy-history cannot use, a missing source, the same store twice or a bad chunk
    size exits 2 with one line that shows no password; an unreachable server exits 1."""
    db = tmp_path / "chat.db"
    run_apart(populate(db))
    url = f"postgresql://chat:secret@127.0.0.1:{free_port()}/chat"
    cases = [
        ((str(db), "redis://:secret@127.0.0.1:6379/0"), "neither a SQLite file"),
        ((str(db), "postgresql://chat:secret@127.0.0.1:notaport/chat"), "port is not a number"),
        ((str(db), ":memory:"), "neither a SQLite file"),
        ((str(tmp_path / "missing.db"), url), "is not a file"),
        ((url, url), "the same store"),
        ((str(db), url, "--chunk-messages=0"), "must be 1 or more"),
        ((url,), "required: TO"),
    ]
    for args, reason in cases:
        result = copy(*args)
        assert result.returncode == 2, (args, result.stderr)
        line = assert_one_line_error(result)
        assert reason in line, line
        assert "secret" not in result.stderr
    unreachable = copy(str(db), url)
    assert unreachable.returncode == 1
    line = assert_one_line_error(unreachable)
    assert "chat:***@127.0.0.1" in line and "secret" not in unreachable.stderr


@pytest.mark.gen_test(timeout=90)
async def test_a_copy_while_the_server_writes_then_a_rerun_after_it_stops_copies_all(
        tmp_path: Path, postgres_url: str, spawn: Spawn, ws: WsConnect) -> None:
    """The migration path: a copy taken while a server stores messages in the SQLite file,
    then, the server stopped, a rerun copies the rest: PostgreSQL then holds the same rows."""
    db = tmp_path / "chat.db"
    port = free_port()
    child = spawn(f"--port={port}", f"--db={db}", "--rate-limit=0", ready_port=port)
    alice = await ws(port)
    await alice.join("alice")
    acked: list[int] = []

    async def keep_writing() -> None:
        n = 0
        while True:
            await alice.send({"type": "message", "room": "general", "text": f"m{n}",
                              "cid": f"c{n}"})
            acked.append((await alice.recv_type("message", WRITES_TIMEOUT_S))["id"])
            n += 1

    writer = asyncio.create_task(keep_writing())
    try:
        # The writer's own failure (an ack later than TIMEOUT_S) fails the test at once,
        # naming itself, rather than leaving this loop to wait out the test's timeout.
        deadline = asyncio.get_running_loop().time() + WRITES_TIMEOUT_S
        while len(acked) < 200:
            assert not writer.done(), f"the writer stopped after {len(acked)} acks: {writer!r}"
            assert asyncio.get_running_loop().time() < deadline, f"{len(acked)} acks"
            await asyncio.sleep(0.05)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "chat_server.py", "copy-history", str(db), postgres_url,
            "--chunk-messages=20", cwd=ROOT, env=child_env(), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        during = len(acked)
    finally:
        await stop(writer)
    assert child.stop() == 0
    assert_clean(child.stderr)
    first = dump(postgres_url)
    assert 200 <= len(first["messages"]) <= during
    rest = copy(str(db), postgres_url)
    assert rest.returncode == 0, rest.stderr
    final = dump(postgres_url)
    assert final == dump(str(db))
    assert [row[1] for row in final["messages"]] == list(range(1, len(final["messages"]) + 1))
    assert len(final["messages"]) >= len(acked)


def test_help_lists_the_commands_and_each_has_its_own() -> None:
    """--help lists copy-history and backup before the serving options; each command's
    --help shows its usage and exits 0."""
    listed = run("--help")
    assert listed.returncode == 0
    assert "chat_server.py copy-history FROM TO" in listed.stderr
    assert "chat_server.py backup FILE TO_FILE" in listed.stderr
    assert "--db-pool-size" in listed.stderr
    for command, usage in (("copy-history", "FROM TO"), ("backup", "FILE TO_FILE")):
        own = run(command, "--help")
        assert own.returncode == 0, own.stderr
        assert f"usage: chat_server.py {command}" in own.stdout and usage in own.stdout

"""copy-history from the Redis history store of earlier versions, written by that version's own
server, into PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from chat.store.postgres import PostgresStore
from tests.helpers import ChatClient
from tests.serverproc import (
    ROOT,
    Child,
    OwnRedis,
    Spawn,
    WsConnect,
    assert_clean,
    assert_one_line_error,
    child_env,
    free_port,
)
from tests.test_copy_history import copy, dump

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.subprocess]

OLD_COMMIT = "78e857d"  # the last version that kept a cluster's history in Redis Streams
RETIRED_S = 1.0  # what the rooms of the first old node wait to be older than the retention below
ROOM_RETENTION_DAYS = "0.00001"  # 0.86 s: the second old node retires every room at its start
# What a message event shows of the stored message, in both versions.
SHOWN = ("id", "username", "avatar", "message", "ts", "from", "to", "room", "cid")

OldNode = Callable[..., tuple[Child, int]]


@pytest.fixture(scope="session")
def old_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The old version's tree, from git: its chat_server.py imports its own `chat` package."""
    archive = subprocess.run(["git", "archive", OLD_COMMIT], cwd=ROOT, capture_output=True,
                             check=False)
    if archive.returncode != 0:  # never skipped: the history of the repository is needed
        pytest.fail(f"git archive {OLD_COMMIT} failed (a shallow clone? fetch the history): "
                    f"{archive.stderr.decode(errors='replace')}")
    tree = tmp_path_factory.mktemp("old-redis-store")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    return tree


@pytest.fixture
def old_node(old_tree: Path, tmp_path: Path) -> Iterator[OldNode]:
    """Start servers of the old version with their history in Redis; each killed afterwards."""
    children: list[Child] = []

    def start(url: str, *args: str) -> tuple[Child, int]:
        port = free_port()
        child = Child([f"--port={port}", f"--db={url}", f"--broker={url}", "--rate-limit=0",
                       *args], child_env(), tmp_path / f"old-{len(children)}.log",
                      command=[sys.executable, "chat_server.py"], cwd=old_tree)
        children.append(child)
        child.wait_ready(port)
        return child, port

    yield start
    for child in children:
        child.kill()


async def acked(client: ChatClient, frame: dict[str, Any]) -> dict[str, Any]:
    """Send a message or dm with a cid; the sender's own copy of it (its acknowledgement)."""
    await client.send(frame)
    while True:
        got = await client.recv_type(frame["type"])
        if got.get("cid") == frame["cid"]:
            return got


def shown(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: event.get(key) for key in SHOWN} for event in events]


async def history(client: ChatClient, **which: str) -> list[dict[str, Any]]:
    """The messages of a joined room or a direct conversation, all in one page."""
    await client.send({"type": "history", "limit": 200, **which})
    reply = await client.recv_type("history")
    assert reply.get("more") is not True, reply
    return list(reply["messages"])


def stop(child: Child) -> None:
    assert child.stop() == 0
    assert_clean(child.stderr)


async def retire_a_room(old_node: OldNode, url: str) -> None:
    """An old node stores 5 messages in room `gone`; a second, on a room retention shorter
    than a second, deletes the room at its start: the retired floor is 5."""
    node, port = old_node(url)
    ann = await ChatClient.connect(f"ws://127.0.0.1:{port}/ws")
    try:
        await ann.join("Ann", "gone")
        for n in range(5):
            await acked(ann, {"type": "message", "room": "gone", "text": f"gone {n}",
                              "cid": f"g{n}"})
    finally:
        ann.close()
    stop(node)
    await asyncio.sleep(RETIRED_S)
    node, _ = old_node(url, f"--room-retention-days={ROOM_RETENTION_DAYS}")
    reader = redis.Redis.from_url(url, decode_responses=True)
    deadline = time.monotonic() + 10
    while reader.get("chat:retired") != "5":
        assert time.monotonic() < deadline, "the old node did not retire room gone"
        await asyncio.sleep(0.05)
    reader.close()
    stop(node)


def read_only_user(own: OwnRedis, db: int) -> str:
    """A Redis user allowed read commands alone; the URL of database `db` as that user."""
    admin = redis.Redis(port=own.port)
    admin.acl_setuser("reader", enabled=True, passwords=["+readerpw"], keys=["*"],
                      categories=["-@all", "+@read", "+@connection"])
    admin.close()
    url = f"redis://reader:readerpw@127.0.0.1:{own.port}/{db}"
    with redis.Redis.from_url(url) as reader, pytest.raises(redis.exceptions.NoPermissionError):
        reader.set("chat:n:lobby", 1)  # what would catch a copy that writes
    return url


@pytest.mark.gen_test(timeout=180)
async def test_the_old_redis_history_is_served_the_same_from_postgresql(
        own_redis: OwnRedis, old_node: OldNode, postgres_url: str, tmp_path: Path,
        spawn: Spawn, ws: WsConnect) -> None:
    """A history an old cluster kept in Redis (a room, a DM, cids, a retired room) copied while
    an old node runs, then again once it stopped, as a user that may only read, keeps every
    id, ts and counter, the floor and the cids: a node on PostgreSQL serves what the old node
    served, resumes `since` exactly, answers a repeated cid with the original and numbers on;
    the same copy into a SQLite file holds the same rows."""
    own_redis.start()
    url = f"redis://127.0.0.1:{own_redis.port}/3"  # not database 0: the number is followed
    await retire_a_room(old_node, url)
    node, port = old_node(url)
    ann, bob = await ws(port), await ws(port)
    await ann.join("Ann", "lobby")
    await bob.join("bob", "general")
    for n in range(30):
        await acked(ann, {"type": "message", "room": "lobby", "text": f"lobby {n} é 🙂",
                          "cid": f"l{n}"})
    for n in range(4):
        await acked(ann, {"type": "dm", "to": "bob", "text": f"to bob {n}", "cid": f"d{n}"})
        await acked(bob, {"type": "dm", "to": "Ann", "text": f"to ann {n}", "cid": f"e{n}"})
    for n in range(3):
        await acked(bob, {"type": "message", "room": "general", "text": f"g{n}", "cid": f"b{n}"})

    reader = read_only_user(own_redis, 3)
    during = copy(reader, postgres_url, "--chunk-messages=7")  # while the old node runs
    assert during.returncode == 0, during.stderr
    assert_clean(during.stderr)
    assert "readerpw" not in during.stdout + during.stderr and "reader:***@" in during.stdout
    assert "done: 3 conversations, 41 messages copied (0 already there), 46 cids, " \
           "retired floor 5" in during.stdout
    for n in range(30, 40):
        await acked(ann, {"type": "message", "room": "lobby", "text": f"lobby {n}",
                          "cid": f"l{n}"})
    last_dm = await acked(ann, {"type": "dm", "to": "bob", "text": "last", "cid": "d4"})
    old_lobby = await history(ann, room="lobby")
    old_dms = await history(ann, **{"with": "bob"})
    assert old_dms[-1]["message"] == "last"  # the old code served them by name
    old_general = await history(bob, room="general")
    stop(node)

    rest = copy(reader, postgres_url, "--chunk-messages=7")  # the rest, the old node stopped
    assert rest.returncode == 0, rest.stderr
    assert "11 messages copied (0 already there)" in rest.stdout
    copied = dump(postgres_url)
    assert copied["retired"] == [(5,)]
    assert copied["conversations"][:2] == [("@ann\x1fbob", 14, last_dm["ts"], 0),
                                           ("general", 8, old_general[-1]["ts"], 0)]
    assert [row[1] for row in copied["messages"] if row[0] == "lobby"] == list(range(6, 46))
    assert ("ann", "l29", "lobby", 35, old_lobby[29]["ts"]) in copied["cids"]
    assert len(copied["cids"]) == 57  # the retired room's too: they are in their window
    assert [row[:4] for row in copied["cids"] if row[2] == "gone"] == [
        ("ann", f"g{n}", "gone", n + 1) for n in range(5)]
    sqlite_copy = tmp_path / "copy.db"
    assert copy(reader, str(sqlite_copy)).returncode == 0
    assert dump(str(sqlite_copy)) == copied

    port = free_port()
    # --avatars=gravatar: the old code stored Gravatar URLs, and only then are they served as
    # stored (the default, initials, shows history with initials instead).
    new = spawn(f"--port={port}", f"--db={postgres_url}", "--broker=memory://",
                "--rate-limit=0", "--avatars=gravatar", ready_port=port)
    ann, bob = await ws(port), await ws(port)
    await ann.send({"type": "join", "username": "Ann", "room": "lobby", "since": 30})
    resumed = await ann.recv_type("history")
    assert resumed["recovered"] is True
    assert shown(resumed["messages"]) == shown([m for m in old_lobby if m["id"] > 30])
    assert shown(await history(ann, room="lobby")) == shown(old_lobby)
    await bob.join("bob", "general")
    assert shown(await history(bob, room="general")) == shown(old_general)
    # Direct messages stored under names (before accounts) are copied (the dumps above) but
    # served to nobody: no guest or account can prove it held that name then (docs/protocol.md).
    assert await history(bob, **{"with": "Ann"}) == []
    again = await acked(ann, {"type": "message", "room": "lobby", "text": "again", "cid": "l29"})
    assert shown([again]) == shown([old_lobby[29]])
    await ann.send({"type": "dm", "to": "bob", "text": "again", "cid": "d4"})
    refused = await ann.recv_type("error")  # d4 went to the old, name-keyed conversation
    assert (refused["code"], refused["cid"]) == ("cid_reused", "d4"), refused
    assert (await acked(ann, {"type": "message", "room": "lobby", "text": "new",
                              "cid": "n1"}))["id"] == 46
    await ann.send({"type": "join", "room": "fresh"})
    await ann.recv_type("history")
    assert (await acked(ann, {"type": "message", "room": "fresh", "text": "new room",
                              "cid": "n2"}))["id"] == 6  # above the retired floor
    stop(new)


@pytest.mark.gen_test(timeout=120)
async def test_an_interrupted_copy_from_redis_completes_on_rerun(
        own_redis: OwnRedis, old_node: OldNode, postgres_url: str, tmp_path: Path,
        ws: WsConnect) -> None:
    """A copy from the old Redis store that fails mid-way leaves whole chunks; the rerun copies
    exactly the rest, and a third run nothing: the target then holds the source's rows."""
    own_redis.start()
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    node, port = old_node(url)
    ann = await ws(port)
    await ann.join("ann", "lobby")
    for n in range(20):
        await acked(ann, {"type": "message", "room": "lobby", "text": f"m{n}", "cid": f"c{n}"})
    stop(node)
    whole = tmp_path / "whole.db"
    assert copy(url, str(whole)).returncode == 0

    store = PostgresStore(postgres_url)  # the server's tables, for the trigger
    await store.start()
    await store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                     " IF NEW.id = 12 THEN RAISE EXCEPTION 'injected failure at %', NEW.id;"
                     " END IF; RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON messages FOR EACH ROW"
                     " EXECUTE FUNCTION refuse()")
    failed = copy(url, postgres_url, "--chunk-messages=5")
    assert failed.returncode == 1
    assert "injected failure at 12" in assert_one_line_error(failed)
    assert [row[1] for row in dump(postgres_url)["messages"]] == list(range(1, 11))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER refuse ON messages")
    again = copy(url, postgres_url, "--chunk-messages=5")
    assert again.returncode == 0, again.stderr
    assert "10 messages copied (0 already there)" in again.stdout
    assert dump(postgres_url) == dump(str(whole))
    third = copy(url, postgres_url)
    assert "0 messages copied (0 already there)" in third.stdout
    assert dump(postgres_url) == dump(str(whole))


def test_a_redis_url_that_holds_no_old_history_is_refused_in_one_line(
        own_redis: OwnRedis, tmp_path: Path) -> None:
    """A redis:// TO, or one whose port or database is not a number, exits 2; a Redis that does
    not answer, or a database without the old store's keys, exits 1: each in one line with
    the password hidden, nothing copied."""
    own_redis.start()
    target = tmp_path / "copy.db"
    for args, reason in [
            ((str(target), f"redis://:secret@127.0.0.1:{own_redis.port}/0"),
             "only ever copied from"),
            (("redis://:secret@127.0.0.1:notaport/0", str(target)), "port is not a number"),
            ((f"redis://:secret@127.0.0.1:{own_redis.port}/db1", str(target)),
             "the database 'db1' is not a number")]:
        refused = copy(*args)
        assert refused.returncode == 2, refused.stderr
        line = assert_one_line_error(refused)
        assert reason in line and ":***@" in line and "secret" not in refused.stderr, line
    cases = [(f"redis://:secret@127.0.0.1:{free_port()}/0", "Connection refused"),
             (f"redis://:secret@127.0.0.1:{own_redis.port}/5", "/5 holds no chat history")]
    redis.Redis(port=own_redis.port).config_set("requirepass", "secret")
    for url, reason in cases:
        result = copy(url, str(target))
        assert result.returncode == 1, result.stderr
        line = assert_one_line_error(result)
        assert reason in line and ":***@" in line, line
        assert "secret" not in result.stdout + result.stderr
    assert not target.exists()

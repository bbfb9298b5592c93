"""Edits and deletes across real server processes: a resume after a restart (SQLite file)
learns them from the store; on two nodes (PostgreSQL + Redis) a reader on the other node is
told live and, back after being away, learns them from `changes`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ChatClient
from tests.serverproc import Spawn, free_port
from tests.test_accounts_cli import PASSWORD, login
from tests.test_auth_nodes import create, signed_in
from tests.test_cluster import Cluster, cluster, redis_db  # noqa: F401 (fixtures)

pytestmark = pytest.mark.subprocess


async def first_of(client: ChatClient, *kinds: str) -> dict[str, Any]:
    """The next frame of one of `kinds` (others skipped)."""
    while True:
        frame = await client.recv(10)
        if frame["type"] in kinds:
            return frame


async def post(client: ChatClient, text: str) -> int:
    await client.send({"type": "message", "text": text, "cid": text})
    while True:
        got = await first_of(client, "message")
        if got.get("cid") == text:
            return int(got["id"])


async def resume(port: int, token: str, since: int, changes: int) -> tuple[dict[str, Any],
                                                                            dict[str, Any]]:
    """bob's socket back on `port`, resuming general: the history reply and `changes`."""
    bob = await ChatClient.connect(f"ws://127.0.0.1:{port}/ws",
                                   Authorization=f"Bearer {token}")
    try:
        await bob.send({"type": "join", "room": "general", "since": since, "changes": changes})
        return await first_of(bob, "history"), await first_of(bob, "changes")
    finally:
        bob.close()


@pytest.mark.gen_test(timeout=90)
async def test_changes_made_before_a_restart_reach_a_client_resuming_after_it(
    spawn: Spawn, tmp_path: Path,
) -> None:
    """ann edits and deletes while bob is away; the server restarts (SQLite file); bob's
    resume gets no message again and a `changes` frame with both, numbered 1 and 2."""
    db = str(tmp_path / "chat.db")
    create(db, "root", "ann", "bob")
    port = free_port()
    first = spawn(f"--port={port}", f"--db={db}", ready_port=port)
    ann = await signed_in(port, await login(db, "ann", PASSWORD), "ann")
    ids = [await post(ann, text) for text in ("one", "two")]
    await ann.send({"type": "edit", "room": "general", "id": ids[0], "text": "ONE"})
    await first_of(ann, "edited")
    await ann.send({"type": "delete", "room": "general", "id": ids[1]})
    await first_of(ann, "deleted")
    ann.close()
    first.kill()
    spawn(f"--port={port}", f"--db={db}", ready_port=port)
    history, changes = await resume(port, await login(db, "bob", PASSWORD), ids[1], 0)
    assert (history["messages"], history["recovered"]) == ([], True)
    assert [(c["type"], c["id"], c["change"]) for c in changes["changes"]] == [
        ("edited", ids[0], 1), ("deleted", ids[1], 2)]
    assert changes["changes"][0]["message"] == "ONE"


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.gen_test(timeout=120)
async def test_an_edit_on_one_node_reaches_the_other_live_and_on_resume(
    cluster: Cluster, postgres_url: str,  # noqa: F811 (a fixture)
) -> None:
    """ann on node A edits and reacts: bob on node B is told both live; bob leaves, ann
    deletes on A, and bob's resume on B gets the delete from `changes`, after the number he
    held."""
    create(postgres_url, "root", "ann", "bob")
    a, b = cluster()
    ann = await signed_in(a.port, await login(postgres_url, "ann", PASSWORD), "ann")
    bob_token = await login(postgres_url, "bob", PASSWORD)
    bob = await signed_in(b.port, bob_token, "bob")
    ids = [await post(ann, text) for text in ("one", "two")]
    await ann.send({"type": "edit", "room": "general", "id": ids[0], "text": "ONE"})
    told = await first_of(bob, "edited")
    assert (told["id"], told["message"], told["change"]) == (ids[0], "ONE", 1)
    await ann.send({"type": "react", "room": "general", "id": ids[0], "emoji": ":tada:"})
    reacted = await first_of(bob, "reacted")
    assert (reacted["reactions"], reacted["change"]) == (
        [{"emoji": "🎉", "count": 1, "users": ["ann"]}], 2)
    bob.close()
    await ann.send({"type": "delete", "room": "general", "id": ids[1]})
    await first_of(ann, "deleted")
    history, changes = await resume(b.port, bob_token, ids[1], 2)
    assert history["recovered"] is True
    assert [(c["type"], c["id"]) for c in changes["changes"]] == [("deleted", ids[1])]
    assert changes["change"] == 3
    ann.close()


async def direct(client: ChatClient, to: str, text: str) -> int:
    """Send a direct message; its id (from the sender's own copy)."""
    await client.send({"type": "dm", "to": to, "text": text, "cid": text})
    while True:
        got = await first_of(client, "dm")
        if got.get("cid") == text:
            return int(got["id"])


async def direct_changes(port: int, token: str, peer: str, after: int) -> dict[str, Any]:
    """A new socket of the account on `port` asks what changed with `peer` after `after`."""
    client = await signed_in(port, token, "bob")
    try:
        await client.send({"type": "changes", "with": peer, "after": after})
        return await first_of(client, "changes")
    finally:
        client.close()


@pytest.mark.gen_test(timeout=90)
async def test_direct_changes_made_before_a_restart_reach_a_client_asking_after_it(
    spawn: Spawn, tmp_path: Path,
) -> None:
    """bob holds ann's two direct messages and their change number 0; while he is away ann
    edits, reacts to and deletes them; after a restart (SQLite file) bob's `changes` with
    `with` gets each message once, as it is now."""
    db = str(tmp_path / "chat.db")
    create(db, "root", "ann", "bob")
    port = free_port()
    first = spawn(f"--port={port}", f"--db={db}", ready_port=port)
    ann = await signed_in(port, await login(db, "ann", PASSWORD), "ann")
    ids = [await direct(ann, "bob", text) for text in ("one", "two")]
    bob_token = await login(db, "bob", PASSWORD)
    bob = await signed_in(port, bob_token, "bob")
    await bob.send({"type": "history", "with": "ann"})
    page = await first_of(bob, "history")
    assert ([m["id"] for m in page["messages"]], page["change"]) == (ids, 0)
    bob.close()
    await ann.send({"type": "edit", "with": "bob", "id": ids[0], "text": "ONE"})
    await first_of(ann, "edited")
    await ann.send({"type": "react", "with": "bob", "id": ids[0], "emoji": ":tada:"})
    await first_of(ann, "reacted")
    await ann.send({"type": "delete", "with": "bob", "id": ids[1]})
    await first_of(ann, "deleted")
    ann.close()
    first.kill()
    spawn(f"--port={port}", f"--db={db}", ready_port=port)
    changes = await direct_changes(port, bob_token, "ann", page["change"])
    assert changes["with"] == "ann"
    assert [(c["type"], c["id"], c["change"]) for c in changes["changes"]] == [
        ("edited", ids[0], 2), ("deleted", ids[1], 3)]
    assert changes["changes"][0]["message"] == "ONE"
    assert changes["changes"][0]["reactions"] == [{"emoji": "🎉", "count": 1, "users": ["ann"]}]
    assert (changes["change"], changes["more"]) == (3, False)


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.gen_test(timeout=120)
async def test_a_direct_edit_on_one_node_reaches_the_other_live_and_on_resume(
    cluster: Cluster, postgres_url: str,  # noqa: F811 (a fixture)
) -> None:
    """ann on node A edits a direct message: bob on node B is told live; bob leaves, ann
    deletes the other on A, and bob's `changes` on B after the number he held gets the
    delete only."""
    create(postgres_url, "root", "ann", "bob")
    a, b = cluster()
    ann = await signed_in(a.port, await login(postgres_url, "ann", PASSWORD), "ann")
    bob_token = await login(postgres_url, "bob", PASSWORD)
    bob = await signed_in(b.port, bob_token, "bob")
    ids = [await direct(ann, "bob", text) for text in ("one", "two")]
    await ann.send({"type": "edit", "with": "bob", "id": ids[0], "text": "ONE"})
    told = await first_of(bob, "edited")
    assert (told["from"], told["id"], told["message"], told["change"]) == ("ann", ids[0], "ONE",
                                                                          1)
    bob.close()
    await ann.send({"type": "delete", "with": "bob", "id": ids[1]})
    await first_of(ann, "deleted")
    changes = await direct_changes(b.port, bob_token, "ann", told["change"])
    assert [(c["type"], c["id"]) for c in changes["changes"]] == [("deleted", ids[1])]
    assert changes["change"] == 2
    ann.close()

"""Moderation across real server processes: two nodes on PostgreSQL + Redis apply a kick, a
ban and a mute decided on the other node at once; the admin command reads the audit log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ChatClient
from tests.serverproc import Spawn, child_env, free_port
from tests.test_accounts_cli import PASSWORD, login
from tests.test_auth_nodes import create, signed_in
from tests.test_cluster import Cluster, cluster, redis_db  # noqa: F401 (fixtures)

pytestmark = pytest.mark.subprocess

ROOT = Path(__file__).resolve().parent.parent


def rooms_command(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `chat_server.py rooms ARGS --db DB` to completion."""
    return subprocess.run([sys.executable, "chat_server.py", "rooms", *args, "--db", db],
                          cwd=ROOT, env=child_env(), capture_output=True, text=True,
                          timeout=60, check=False)


async def first_of(client: ChatClient, *kinds: str) -> dict[str, Any]:
    """The next frame of one of `kinds` (others skipped)."""
    while True:
        frame = await client.recv(10)
        if frame["type"] in kinds:
            return frame


@pytest.mark.gen_test(timeout=90)
async def test_an_account_s_rooms_and_roles_come_back_after_a_restart(
    spawn: Spawn, tmp_path: Path,
) -> None:
    """A private room, its topic and its members' roles survive the server's restart (SQLite
    file): the member's new welcome lists them, and it joins the private room again."""
    db = str(tmp_path / "chat.db")
    create(db, "root", "ann", "bob")
    port = free_port()
    first = spawn(f"--port={port}", f"--db={db}", ready_port=port)
    ann = await signed_in(port, await login(db, "ann", PASSWORD), "ann")
    await ann.send({"type": "room", "name": "core", "visibility": "private", "topic": "t"})
    assert (await first_of(ann, "room", "error"))["type"] == "room"
    await ann.send({"type": "role", "room": "core", "user": "bob", "role": "moderator"})
    assert (await first_of(ann, "moderation", "error"))["type"] == "moderation"
    ann.close()
    first.kill()
    spawn(f"--port={port}", f"--db={db}", ready_port=port)
    bob = await signed_in(port, await login(db, "bob", PASSWORD), "bob")
    try:
        await bob.send({"type": "join"})
        assert {"room": "core", "role": "moderator"} in (
            await first_of(bob, "welcome"))["member_of"]
        welcome = await bob.join("bob", "core")
        assert welcome["room"] == {"name": "core", "topic": "t", "visibility": "private",
                                   "role": "moderator"}
    finally:
        bob.close()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.gen_test(timeout=120)
async def test_a_ban_and_a_mute_on_one_node_hold_on_the_other_and_are_audited(
    cluster: Cluster, postgres_url: str,  # noqa: F811 (a fixture)
) -> None:
    """ann (owner, node A) bans cat (node B): cat's socket there leaves the room at once and
    cannot rejoin on either node; a mute decided on A refuses bob's posts on B; the admin
    command lists both actions from PostgreSQL."""
    create(postgres_url, "root", "ann", "bob", "cat")
    a, b = cluster()
    ann = await signed_in(a.port, await login(postgres_url, "ann", PASSWORD), "ann")
    bob = await signed_in(b.port, await login(postgres_url, "bob", PASSWORD), "bob")
    cat_token = await login(postgres_url, "cat", PASSWORD)
    cat = await signed_in(b.port, cat_token, "cat")
    try:
        await ann.send({"type": "room", "name": "ops", "topic": "deploys"})
        assert (await first_of(ann, "room", "error"))["type"] == "room"
        for client, name in ((ann, "ann"), (bob, "bob"), (cat, "cat")):
            await client.join(name, "ops")
        await ann.send({"type": "ban", "room": "ops", "user": "cat", "minutes": 30})
        banned = await first_of(cat, "moderated")
        assert (banned["action"], banned["by"]) == ("ban", "ann")
        await cat.send({"type": "message", "room": "ops", "text": "spam", "cid": "s1"})
        assert (await first_of(cat, "error", "message"))["code"] == "not_in_room"
        again = await ChatClient.connect(f"ws://127.0.0.1:{a.port}/ws",
                                         Authorization=f"Bearer {cat_token}")
        await again.send({"type": "join", "room": "ops"})
        assert (await first_of(again, "error", "welcome"))["code"] == "banned"
        again.close()
        await ann.send({"type": "mute", "room": "ops", "user": "bob", "minutes": 5})
        assert (await first_of(bob, "moderated"))["action"] == "mute"
        await bob.send({"type": "message", "room": "ops", "text": "hello?", "cid": "b1"})
        assert (await first_of(bob, "error", "message"))["code"] == "muted"
    finally:
        for client in (ann, bob, cat):
            client.close()
    listing = rooms_command(postgres_url, "audit", "--room", "ops")
    assert listing.returncode == 0, listing.stderr
    actions = [line.split()[4] for line in listing.stdout.splitlines()[1:]]
    assert actions == ["mute", "ban", "create"], listing.stdout
    assert "cat" in listing.stdout
    assert '"minutes": 30' in listing.stdout

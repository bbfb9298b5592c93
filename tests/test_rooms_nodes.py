"""Moderation across real server processes: two nodes on PostgreSQL + Redis apply a kick, a
ban and a mute decided on the other node at once; the admin command reads the audit log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ChatClient
from tests.serverproc import child_env
from tests.test_accounts_cli import PASSWORD, login
from tests.test_auth_nodes import create, signed_in
from tests.test_cluster import Cluster, cluster, redis_db  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.subprocess, pytest.mark.redis, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parent.parent


def rooms_command(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `chat_server.py rooms ARGS --db DB` to completion."""
    return subprocess.run([sys.executable, "chat_server.py", "rooms", *args, "--db", db],
                          cwd=ROOT, env=child_env(), capture_output=True, text=True,
                          timeout=60, check=False)


async def first(client: ChatClient, *kinds: str) -> dict[str, Any]:
    """The next frame of one of `kinds` (others skipped)."""
    while True:
        frame = await client.recv(10)
        if frame["type"] in kinds:
            return frame


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
        assert (await first(ann, "room", "error"))["type"] == "room"
        for client, name in ((ann, "ann"), (bob, "bob"), (cat, "cat")):
            await client.join(name, "ops")
        await ann.send({"type": "ban", "room": "ops", "user": "cat", "minutes": 30})
        banned = await first(cat, "moderated")
        assert (banned["action"], banned["by"]) == ("ban", "ann")
        await cat.send({"type": "message", "room": "ops", "text": "spam", "cid": "s1"})
        assert (await first(cat, "error", "message"))["code"] == "not_in_room"
        again = await ChatClient.connect(f"ws://127.0.0.1:{a.port}/ws",
                                         Authorization=f"Bearer {cat_token}")
        await again.send({"type": "join", "room": "ops"})
        assert (await first(again, "error", "welcome"))["code"] == "banned"
        again.close()
        await ann.send({"type": "mute", "room": "ops", "user": "bob", "minutes": 5})
        assert (await first(bob, "moderated"))["action"] == "mute"
        await bob.send({"type": "message", "room": "ops", "text": "hello?", "cid": "b1"})
        assert (await first(bob, "error", "message"))["code"] == "muted"
    finally:
        for client in (ann, bob, cat):
            client.close()
    listing = rooms_command(postgres_url, "audit", "--room", "ops")
    assert listing.returncode == 0, listing.stderr
    actions = [line.split()[4] for line in listing.stdout.splitlines()[1:]]
    assert actions == ["mute", "ban", "create"], listing.stdout
    assert "cat" in listing.stdout
    assert '"minutes": 30' in listing.stdout

"""Webhooks across real server processes: two nodes on PostgreSQL + Redis; hooks made and
revoked by the admin command; an incoming post reaches the other node's sockets, a revocation
holds on every node at once, and an outgoing hook is called once per message, whichever node
stored it."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application

from tests.helpers import ChatClient
from tests.serverproc import child_env
from tests.test_accounts_cli import PASSWORD, login
from tests.test_auth_nodes import create, signed_in
from tests.test_cluster import Cluster, cluster, redis_db  # noqa: F401 (fixtures)
from tests.test_hooks import hook_post
from tests.test_hooks_outgoing import Receiver, Script, calls
from tests.test_rooms_nodes import first_of

pytestmark = pytest.mark.subprocess

ROOT = Path(__file__).resolve().parent.parent


def webhooks(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `chat_server.py webhooks ARGS --db DB` to completion."""
    return subprocess.run([sys.executable, "chat_server.py", "webhooks", *args, "--db", db],
                          cwd=ROOT, env=child_env(), capture_output=True, text=True,
                          timeout=60, check=False)


async def in_ops(port: int, db: str, name: str, owner: bool = False) -> ChatClient:
    """`name`'s socket on the node at `port`, in room ops (made by it if `owner`)."""
    client = await signed_in(port, await login(db, name, PASSWORD), name)
    if owner:
        await client.send({"type": "room", "name": "ops"})
        assert (await first_of(client, "room", "error"))["type"] == "room"
    await client.join(name, "ops")
    return client


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.gen_test(timeout=120)
async def test_an_incoming_post_reaches_every_node_and_a_revocation_holds_on_all(
    cluster: Cluster, postgres_url: str,  # noqa: F811 (a fixture)
) -> None:
    """A hook made by the admin command posts through node A to bob's socket on node B, marked
    `bot`; revoked by the command, its URL is 404 on both nodes at once."""
    create(postgres_url, "root", "ann", "bob")
    a, b = cluster()
    ann = await in_ops(a.port, postgres_url, "ann", owner=True)
    bob = await in_ops(b.port, postgres_url, "bob")
    try:
        made = webhooks(postgres_url, "create", "--room", "ops", "--name", "Alerts")
        assert made.returncode == 0, made.stderr
        hook_id, path = re.search(r"webhook (\w+) of ops: POST to (/hooks/\S+)",
                                  made.stdout).groups()  # type: ignore[union-attr]
        assert (await hook_post(a.port, path, {"text": "disk *full*"})).status == 200
        got = await first_of(bob, "message")
        assert (got["username"], got["message"], got["bot"]) == ("Alerts", "disk **full**",
                                                                 True)
        listed = webhooks(postgres_url, "list", "--room", "ops")
        assert hook_id in listed.stdout and path.split("/")[-1] not in listed.stdout
        assert webhooks(postgres_url, "revoke", hook_id).returncode == 0
        for node in (a, b):
            assert (await hook_post(node.port, path, {"text": "after"})).status == 404
        assert webhooks(postgres_url, "revoke", hook_id).returncode == 1  # not live any more
    finally:
        ann.close()
        bob.close()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.gen_test(timeout=120)
async def test_an_outgoing_hook_is_called_once_per_message_by_the_node_that_stored_it(
    cluster: Cluster, postgres_url: str,  # noqa: F811 (a fixture)
) -> None:
    """With a member on each node, a trigger sent on B and one sent on A each make exactly one
    call (not one per node), and the reply reaches both nodes' sockets."""
    script = Script(answers=[(200, {"text": "pong"}, 0.0)])
    sock, port = bind_unused_port()
    server = HTTPServer(Application([(r"/hook", Receiver, {"script": script})],
                                    log_function=lambda handler: None))
    server.add_sockets([sock])
    create(postgres_url, "root", "ann", "bob")
    made = webhooks(postgres_url, "create", "--room", "ops", "--name", "Pinger",
                    "--url", f"http://127.0.0.1:{port}/hook", "--trigger", "!ping")
    assert made.returncode == 1  # no room ops yet: refused
    a, b = cluster(CHAT_WEBHOOK_ALLOW_PRIVATE="on")
    ann = await in_ops(a.port, postgres_url, "ann", owner=True)
    bob = await in_ops(b.port, postgres_url, "bob")
    try:
        made = webhooks(postgres_url, "create", "--room", "ops", "--name", "Pinger",
                        "--url", f"http://127.0.0.1:{port}/hook", "--trigger", "!ping")
        assert made.returncode == 0, made.stderr
        await bob.send({"type": "message", "room": "ops", "text": "!ping from b"})
        await calls(script, 1)
        for client in (ann, bob):
            assert (await first_of(client, "message"))["message"] == "!ping from b"
            assert (await first_of(client, "message"))["message"] == "pong"
        await ann.send({"type": "message", "room": "ops", "text": "!ping from a"})
        await calls(script, 2)
        await asyncio.sleep(1.0)  # a second node's call would have come by now
        assert [json.loads(body)["text"] for _, body in script.calls] == [
            "!ping from b", "!ping from a"]
    finally:
        ann.close()
        bob.close()
        server.stop()

"""API tokens across real server processes: the admin command makes a bot and its token, which
is stored only hashed (the SQLite file's bytes); a bot's post on one node reaches a socket on
another at once; a token revoked on one node is refused at once by the other; a bot's socket
on one node talks with another's and closes when its token is revoked there; with Redis a
token's rate limit is the cluster's."""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import pytest

from tests.apiclient import Api
from tests.helpers import ChatClient
from tests.serverproc import Spawn, assert_one_line_error, free_port
from tests.test_accounts_cli import PASSWORD, accounts, login, ok
from tests.test_auth_nodes import REVOKED, create, signed_in
from tests.test_cluster import (  # noqa: F401 (fixtures)
    Cluster,
    Node,
    cluster,
    node_args,
    redis_db,
)

pytestmark = pytest.mark.subprocess


def bot_with_token(db: str, name: str = "ci-bot") -> tuple[str, str]:
    """`accounts bot` then `accounts token`: (the secret, printed alone on stdout; its id)."""
    assert f"created bot {name!r}" in ok(accounts(db, "bot", name))
    made = accounts(db, "token", name, "--scopes", "read,write", "--label", "ci")
    secret = ok(made).strip()
    assert secret.startswith("chat_pat_")
    token_id = made.stderr.split("id ", 1)[1].split(",", 1)[0]
    return secret, token_id


@pytest.mark.gen_test(timeout=120)
async def test_the_admin_command_s_token_works_and_only_its_hash_is_stored(
    spawn: Spawn, tmp_path: Path,
) -> None:
    """A token made by `accounts token` posts through a running server; the database file
    (and its WAL) holds its sha256, never the token; the server's log never shows it;
    `accounts revoke-token` stops it at the server's next request."""
    db = str(tmp_path / "chat.db")
    create(db, "root")
    secret, token_id = bot_with_token(db)
    listing = ok(accounts(db, "tokens"))
    assert token_id in listing and "ci-bot" in listing and secret not in listing
    assert "ci-bot" in ok(accounts(db, "bots"))
    for args, refusal in ((("revoke-token", "nope"), "no_such_token"),
                          (("token", "ci-bot", "--scopes", "admin"), "forbidden"),
                          (("token", "ci-bot", "--scopes", "all"), "invalid_field")):
        failed = accounts(db, *args)
        assert failed.returncode == 1
        assert refusal in assert_one_line_error(failed)
    port = free_port()
    server = spawn(f"--port={port}", f"--db={db}", ready_port=port)
    api = Api(port)
    assert (await api.call("PUT", "/api/v1/rooms/general/membership", token=secret)).status \
        == 200
    posted = await api.call("POST", "/api/v1/rooms/general/messages", {"text": "built"},
                            token=secret)
    assert posted.status == 201, posted.body
    stored = b"".join(path.read_bytes() for path in tmp_path.iterdir()
                      if path.name.startswith("chat.db"))
    assert b"built" in stored  # the message is there: the bytes read are the database's
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored
    assert secret.encode() not in stored
    assert secret.split("_", 2)[2].encode() not in stored
    ok(accounts(db, "revoke-token", token_id))
    refused = await api.call("GET", "/api/v1/rooms", token=secret)
    assert (refused.status, refused.body["code"]) == (401, "invalid_token")
    assert secret not in server.stderr


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.gen_test(timeout=120)
async def test_a_bot_s_post_on_one_node_reaches_a_socket_on_another_and_revocation_holds(
    cluster: Cluster, postgres_url: str,  # noqa: F811 (a fixture)
) -> None:
    """Two nodes on PostgreSQL + Redis: the bot posts on A, root's socket on B receives it
    live; root revokes the token on B and A refuses it at its next request."""
    create(postgres_url, "root")
    secret, token_id = bot_with_token(postgres_url)
    a, b = cluster()
    session = await login(postgres_url, "root", PASSWORD)
    root = await signed_in(b.port, session, "root")
    try:
        on_a, on_b = Api(a.port), Api(b.port)
        assert (await on_a.call("PUT", "/api/v1/rooms/general/membership",
                                token=secret)).status == 200
        posted = await on_a.call("POST", "/api/v1/rooms/general/messages",
                                 {"text": "from A", "cid": "a1"}, token=secret)
        assert posted.status == 201, posted.body
        live = await root.recv_type("message")
        assert live == posted.body["message"]
        assert (live["username"], live["bot"]) == ("ci-bot", True)
        by_b = await on_b.call("GET", "/api/v1/rooms/general/messages", token=secret)
        assert by_b.body["messages"][-1] == live
        out = await on_b.call("DELETE", f"/api/v1/admin/tokens/{token_id}", token=session)
        assert out.status == 204
        refused = await on_a.call("POST", "/api/v1/rooms/general/messages",
                                  {"text": "after"}, token=secret)
        assert (refused.status, refused.body["code"]) == (401, "invalid_token")
    finally:
        root.close()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.gen_test(timeout=120)
async def test_a_bot_s_socket_on_one_node_talks_to_another_and_revocation_closes_it(
    cluster: Cluster, postgres_url: str,  # noqa: F811 (a fixture)
) -> None:
    """Two nodes on PostgreSQL + Redis: the bot's token opens a socket on A; root on B sees it
    join and listed marked `bot`, each receives the other's message live (the bot's marked);
    root revokes the token on B and the bot's socket on A closes with 4003 at once."""
    create(postgres_url, "root")
    secret, token_id = bot_with_token(postgres_url)
    a, b = cluster()
    session = await login(postgres_url, "root", PASSWORD)
    root = await signed_in(b.port, session, "root")
    bot = await ChatClient.connect(f"ws://127.0.0.1:{a.port}/ws",
                                   Authorization=f"Bearer {secret}")
    try:
        await bot.send({"type": "join", "room": "general"})
        assert (await bot.recv_type("welcome"))["account"]["username"] == "ci-bot"
        listed = (await bot.recv_type("presence"))["users"]
        assert {m["username"]: m.get("bot", False) for m in listed} == {
            "ci-bot": True, "root": False}
        notice = await root.recv_type("join")
        assert (notice["username"], notice["bot"]) == ("ci-bot", True)
        await root.send({"type": "message", "room": "general", "text": "ship it"})
        assert (await bot.recv_type("message"))["message"] == "ship it"
        await bot.send({"type": "message", "room": "general", "text": "shipped", "cid": "s1"})
        live = await root.recv_type("message", timeout=10)
        while live["message"] != "shipped":  # root's own echo first
            live = await root.recv_type("message", timeout=10)
        assert (live["username"], live["bot"]) == ("ci-bot", True)
        out = await Api(b.port).call("DELETE", f"/api/v1/admin/tokens/{token_id}",
                                     token=session)
        assert out.status == 204
        assert await bot.closed(10) == REVOKED
        assert bot.conn.close_reason == "signed out: this API token was revoked"
        assert (await root.recv_type("leave", timeout=10))["username"] == "ci-bot"
    finally:
        bot.close()
        root.close()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.gen_test(timeout=120)
async def test_a_token_s_rate_limit_is_the_cluster_s_with_redis(
    cluster: Cluster, postgres_url: str,  # noqa: F811 (a fixture)
) -> None:
    """With --broker redis:// a token's bucket is shared: its burst of 3 spent over nodes A
    and B, its next request is refused on either (429, Retry-After); another token's bucket
    is its own. (Per node, B would still take 3.)"""
    create(postgres_url, "root")
    secret, _ = bot_with_token(postgres_url)
    other, _ = bot_with_token(postgres_url, "other-bot")
    nodes = []
    for _ in range(2):
        port = free_port()
        child = cluster.spawn(*node_args(port, cluster.redis_url, postgres_url),
                              "--api-rate-limit=0.01", "--api-rate-burst=3")
        child.wait_ready(port)
        nodes.append(Node(port, child))
    cluster.started.extend(nodes)
    on_a, on_b = Api(nodes[0].port), Api(nodes[1].port)
    started = time.monotonic()
    for api in (on_a, on_b, on_a):
        assert (await api.call("GET", "/api/v1/rooms", token=secret)).status == 200
    for api in (on_b, on_a):
        refused = await api.call("GET", "/api/v1/rooms", token=secret)
        assert (refused.status, refused.body["code"]) == (429, "rate_limited")
        # A request's worth at 0.01/s takes 100 s, less what the bucket refilled since the
        # burst began.
        refilled = math.ceil(time.monotonic() - started)
        assert 100 - refilled <= int(refused.headers["Retry-After"]) <= 100
    assert (await on_b.call("GET", "/api/v1/rooms", token=other)).status == 200

"""People across two real nodes on PostgreSQL and Redis: a direct message waits for an account
that is away; read marks reach every device; a user who moves to another node within join-grace
makes no notices."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import ChatClient
from tests.test_accounts_cli import PASSWORD, login
from tests.test_auth_nodes import create, signed_in
from tests.test_cluster import Cluster, cluster, expect, redis_db  # noqa: F401 (fixtures)
from tests.test_people import none_of, status_of

pytestmark = [pytest.mark.subprocess, pytest.mark.redis, pytest.mark.postgres]


@pytest.mark.gen_test(timeout=90)
async def test_a_dm_waits_for_an_account_and_its_read_mark_reaches_every_node(
    cluster: Cluster, postgres_url: str,  # noqa: F811 (a fixture)
) -> None:
    """ann (on A) writes to bob, online nowhere; bob connects on B: `unread` lists it, history
    holds it once; his mark set on B reaches his tab on A, and a third device learns it."""
    create(postgres_url, "ann", "bob")
    a, b = cluster()
    ann = await signed_in(a.port, await login(postgres_url, "ann", PASSWORD), "ann")
    await ann.send({"type": "dm", "to": "bob", "text": "while you were out", "cid": "d1"})
    sent = await expect(ann, "dm", cid="d1")
    token = await login(postgres_url, "bob", PASSWORD)
    on_b = await ChatClient.connect(f"ws://127.0.0.1:{b.port}/ws",
                                    Authorization=f"Bearer {token}")
    await on_b.send({"type": "join"})
    unread = await on_b.recv_type("unread")
    assert unread["conversations"] == [{"with": "ann", "read": 0, "last": sent["id"],
                                        "count": 1, "mentions": 0, "more": False}]
    await on_b.send({"type": "history", "with": "ann"})
    page = await expect(on_b, "history")
    assert page["with"] == "ann"
    assert [m["id"] for m in page["messages"]] == [sent["id"]]
    await none_of(on_b, "dm")
    on_a = await signed_in(a.port, token, "bob")
    await on_b.send({"type": "read", "with": "ann", "id": sent["id"]})
    for tab in (on_b, on_a):
        read = await tab.recv_type("read")
        assert (read["with"], read["id"]) == ("ann", sent["id"]), read
    third = await ChatClient.connect(f"ws://127.0.0.1:{a.port}/ws",
                                     Authorization=f"Bearer {token}")
    await third.send({"type": "join"})
    await third.recv_type("history")
    await none_of(third, "unread")  # read everywhere: nothing unread, nothing to tell
    await none_of(ann, "read")
    for client in (ann, on_a, on_b, third):
        client.close()


@pytest.mark.gen_test(timeout=90)
async def test_moving_to_another_node_within_the_grace_makes_no_notices(
    cluster: Cluster, postgres_url: str,  # noqa: F811 (a fixture)
) -> None:
    """ann's tab on A closes and she is back on B within join-grace: cid sees no leave, no
    join; once she closes for good, the leave comes after the grace."""
    create(postgres_url, "ann", "cid")
    a, b = cluster(CHAT_JOIN_GRACE="2")
    cid = await signed_in(b.port, await login(postgres_url, "cid", PASSWORD), "cid")
    token = await login(postgres_url, "ann", PASSWORD)
    on_a = await signed_in(a.port, token, "ann")
    await expect(cid, "join", username="ann")
    on_a.close()
    on_b = await signed_in(b.port, token, "ann")
    await asyncio.sleep(3)  # past A's grace
    await none_of(cid, "join", "leave")
    on_b.close()
    await none_of(cid, "leave", timeout=1)
    await expect(cid, "leave", username="ann", timeout=5)
    cid.close()


@pytest.mark.gen_test(timeout=90)
async def test_presence_spans_the_nodes(
    cluster: Cluster, postgres_url: str,  # noqa: F811 (a fixture)
) -> None:
    """ann on A sees bob (on B) online, then away with a notice from B, online again after his
    `active`, and offline since his socket closed, the time read from PostgreSQL."""
    create(postgres_url, "ann", "bob")
    a, b = cluster(CHAT_AWAY_AFTER="2")
    ann = await signed_in(a.port, await login(postgres_url, "ann", PASSWORD), "ann")
    bob = await signed_in(b.port, await login(postgres_url, "bob", PASSWORD), "bob")
    assert (await status_of(ann, "bob"))["bob"]["state"] == "online"
    while (notice := await ann.recv_type("status", timeout=10))["username"] != "bob":
        pass
    assert (notice["room"], notice["state"]) == ("general", "away")
    assert (await status_of(ann, "bob"))["bob"]["state"] == "away"
    await bob.send({"type": "active"})
    assert (await expect(ann, "status", username="bob"))["state"] == "online"
    assert (await status_of(ann, "bob"))["bob"]["state"] == "online"
    bob.close()
    await expect(ann, "leave", username="bob")
    for _ in range(50):  # B notes the time as the socket closes, a moment after the leave
        entry = (await status_of(ann, "bob"))["bob"]
        if "last_seen" in entry:
            break
        await asyncio.sleep(0.1)
    assert entry["state"] == "offline" and entry["last_seen"] > 0, entry
    ann.close()

"""Signed-in sockets on real server processes: the admin command's disable closes them, on
every node; an account's tabs on two nodes are one user."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ChatClient
from tests.serverproc import Spawn, free_port
from tests.test_accounts_cli import PASSWORD, accounts, login, ok
from tests.test_cluster import Cluster, cluster, expect, redis_db  # noqa: F401 (fixtures)

pytestmark = pytest.mark.subprocess

REVOKED = 4003


def create(db: str, *names: str) -> None:
    """Create the accounts with the admin command (the first is the admin)."""
    for name in names:
        ok(accounts(db, "create", name, "--password-stdin", stdin=PASSWORD + "\n"))


async def signed_in(port: int, token: str, name: str) -> ChatClient:
    """A socket to the node on `port`, signed in with `token`, joined to general."""
    client = await ChatClient.connect(f"ws://127.0.0.1:{port}/ws",
                                      Authorization=f"Bearer {token}")
    welcome = await client.join(name)
    assert welcome["account"]["username"] == name, welcome
    return client


@pytest.mark.gen_test(timeout=60)
async def test_disable_by_the_admin_command_closes_the_account_s_socket(
    spawn: Spawn, tmp_path: Path,
) -> None:
    """`accounts disable`, another process, closes the account's open socket with 4003."""
    db = str(tmp_path / "chat.db")
    create(db, "root", "ann")
    port = free_port()
    spawn(f"--port={port}", f"--db={db}", "--revocation-poll=0.2", ready_port=port)
    ann = await signed_in(port, await login(db, "ann", PASSWORD), "ann")
    root = await signed_in(port, await login(db, "root", PASSWORD), "root")
    try:
        ok(accounts(db, "disable", "ann"))
        assert await ann.closed(10) == REVOKED
        assert ann.conn.close_reason is not None and "disabled" in ann.conn.close_reason
        # Another account's socket stays open, and sees ann leave.
        assert (await root.recv_type("leave"))["username"] == "ann"
    finally:
        ann.close()
        root.close()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.gen_test(timeout=90)
async def test_an_account_is_one_user_on_two_nodes_and_disable_closes_it_on_both(
    cluster: Cluster, postgres_url: str,  # noqa: F811 (a fixture)
) -> None:
    """Tabs of one account on two nodes both receive its DMs; a guest cannot take its name on
    either; disabling it (the admin command, against PostgreSQL) closes both sockets."""
    create(postgres_url, "root", "ann")
    a, b = cluster()
    root = await signed_in(a.port, await login(postgres_url, "root", PASSWORD), "root")
    token = await login(postgres_url, "ann", PASSWORD)
    on_a, on_b = await signed_in(a.port, token, "ann"), await signed_in(b.port, token, "ann")
    guest = await ChatClient.connect(f"ws://127.0.0.1:{b.port}/ws")
    try:
        await guest.send({"type": "join", "username": "ANN"})
        assert (await expect(guest, "error"))["code"] == "name_registered"
        await root.send({"type": "dm", "to": "ann", "text": "both tabs?", "cid": "d1"})
        for tab in (on_a, on_b):
            assert (await expect(tab, "dm", message="both tabs?"))["from"] == "root"
        ok(accounts(postgres_url, "disable", "ann"))
        assert await on_b.closed(10) == REVOKED
        assert await on_a.closed(10) == REVOKED
    finally:
        for client in (root, on_a, on_b, guest):
            client.close()

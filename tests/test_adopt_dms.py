"""Direct conversations stored under names before accounts: a database from then opens by
itself, and `accounts adopt-dms` gives an old name's conversations to an account, on SQLite
and PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tornado.ioloop import IOLoop

from chat.accounts import AccountService, open_accounts
from chat.config import Settings
from chat.record import dm_key
from chat.store import postgres_schema
from chat.store.postgres import PostgresStore
from chat.store.sqlite import SQLiteStore
from chat.store.sqlite_schema import MIGRATIONS
from chat_server import ChatApplication, make_app
from tests.conftest import close_app
from tests.helpers import ChatClient, Connect
from tests.test_accounts_cli import PASSWORD, accounts, ok
from tests.test_auth_socket import bearer, dm_history, signed_up

# Conversations as the server kept them before accounts: keys of case-folded names.
OLD = [("general", "alice", "hello room", None),
       ("@alice\x1fbob", "alice", "alice to bob", "bob"),
       ("@alice\x1fbob", "Bob", "bob to alice", "alice"),
       ("@alice\x1fcarol", "carol", "carol to alice", "alice"),
       ("@bob\x1fcarol", "bob", "bob to carol", "carol")]


def old_database(path: Path) -> str:
    """A SQLite file at schema version 2 (before accounts) holding OLD."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (2)")
    for step in MIGRATIONS[:2]:
        step(conn)
    counters: dict[str, int] = {}
    for ts, (key, username, text, to) in enumerate(OLD, int(time.time() * 1000) - 60_000):
        counters[key] = counters.get(key, 0) + 1
        conn.execute("INSERT INTO messages VALUES (?, ?, ?, '', ?, ?, NULL, ?)",
                     (key, counters[key], username, text, ts, to))
        conn.execute("INSERT OR REPLACE INTO conversations VALUES (?, ?, ?)",
                     (key, counters[key], ts))
    conn.close()
    return str(path)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return old_database(tmp_path / "old.db")


@pytest.fixture
def app(settings: Settings, io_loop: IOLoop, db: str) -> Iterator[ChatApplication]:
    """The app on the old file: history and accounts both in it, migrated as it opens."""
    store = SQLiteStore(db, settings.history_per_room)
    accounts = open_accounts(db, revocation_poll_s=settings.revocation_poll)
    io_loop.run_sync(store.start)
    io_loop.run_sync(accounts.start)
    made = make_app(settings, store, accounts=AccountService(accounts, settings.account_policy))
    yield made
    close_app(made, io_loop, accounts.close, store.close)


def adopt(db: str, account: str, old_name: str) -> str:
    """Run `accounts adopt-dms`; what it printed."""
    return ok(accounts(db, "adopt-dms", account, old_name))


async def signed_in(app: ChatApplication, connect: Connect, name: str) -> ChatClient:
    client = await connect(**bearer(await signed_up(app, name)))
    await client.join(name)
    return client


@pytest.mark.gen_test(timeout=60)
async def test_an_old_database_opens_by_itself_and_serves_its_rooms(
    app: ChatApplication, connect: Connect, db: str,
) -> None:
    """A file from before accounts is migrated at start (no manual step): its rooms' history
    is served; its direct conversations are nobody's until adopted."""
    guest = await connect()
    first = await guest.recv()  # the recent messages a connection is sent before it joins
    assert first["message"] == "hello room", first
    await guest.join("alice")
    assert await dm_history(guest, "bob") == []
    row = sqlite3.connect(db).execute("SELECT version FROM schema_version").fetchone()
    assert row[0] == len(MIGRATIONS)


@pytest.mark.gen_test(timeout=60)
async def test_adopted_conversations_are_read_by_both_accounts_and_no_guest(
    app: ChatApplication, connect: Connect, db: str,
) -> None:
    """adopt-dms gives alice her old conversations: with a name no one holds (carol) at once,
    with bob's account once bob's old name is adopted too; a guest taking a name reads none;
    running it again moves nothing."""
    alice = await signed_in(app, connect, "alice")
    bob = await signed_in(app, connect, "bob")
    assert "2 conversation(s), 3 message(s)" in adopt(db, "alice", "alice")
    assert await dm_history(alice, "carol") == ["carol to alice"]
    assert await dm_history(alice, "bob") == []  # bob's account has not been given his yet
    assert "2 conversation(s), 3 message(s)" in adopt(db, "bob", "Bob")
    assert await dm_history(alice, "bob") == ["alice to bob", "bob to alice"]
    assert await dm_history(bob, "alice") == ["alice to bob", "bob to alice"]
    assert await dm_history(bob, "carol") == ["bob to carol"]
    assert "0 conversation(s), 0 message(s)" in adopt(db, "alice", "alice")
    carol = await connect()
    await carol.join("carol")  # a guest now: none of old carol's conversations
    assert await dm_history(carol, "alice") == []
    assert await dm_history(carol, "bob") == []
    refused = accounts(db, "adopt-dms", "bob", "alice")
    assert refused.returncode == 1 and "name_adopted" in refused.stderr, refused.stderr


@pytest.mark.gen_test(timeout=60)
async def test_adoption_merges_an_old_conversation_into_the_accounts_one(
    app: ChatApplication, connect: Connect, db: str,
) -> None:
    """Accounts that already wrote to each other get their old conversation merged before the
    new messages, in time order, every id new and increasing."""
    alice = await signed_in(app, connect, "alice")
    bob = await signed_in(app, connect, "bob")
    await alice.send({"type": "dm", "to": "bob", "text": "new era", "cid": "n1"})
    await bob.recv_type("dm")
    adopt(db, "alice", "alice")
    assert "2 conversation(s), 3 message(s)" in adopt(db, "bob", "bob")
    await bob.send({"type": "history", "with": "alice"})
    page = (await bob.recv_type("history"))["messages"]
    assert [m["message"] for m in page] == ["alice to bob", "bob to alice", "new era"]
    ids = [m["id"] for m in page]
    assert ids == sorted(ids) and ids[0] > 1, ids  # above both counters: none reused


@pytest.mark.postgres
@pytest.mark.subprocess
@pytest.mark.gen_test(timeout=60)
async def test_adopt_dms_on_postgresql(postgres_url: str) -> None:
    """A PostgreSQL schema from before accounts is migrated as a server opens it, its room
    served; the same command then rekeys to the parties, reports, is idempotent."""
    conn = await postgres_schema.connect(postgres_url)
    try:  # the schema as it was at version 1, with its rows
        await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        await conn.execute("INSERT INTO schema_version VALUES (1)")
        await postgres_schema.MIGRATIONS[0](conn)
        counters: dict[str, int] = {}
        for key, username, text, to in OLD:
            counters[key] = counters.get(key, 0) + 1
            await conn.execute("INSERT INTO messages VALUES (%s, %s, %s, '', %s, 1, NULL, %s)",
                               (key, counters[key], username, text, to))
            await conn.execute("INSERT INTO conversations VALUES (%s, %s, 1)"
                               " ON CONFLICT (key) DO UPDATE SET last_id = excluded.last_id",
                               (key, counters[key]))
    finally:
        await conn.close()
    store = PostgresStore(postgres_url)
    await store.start()
    try:
        assert [m.text for m in await store.latest("general", 10)] == ["hello room"]
        for name in ("root", "alice", "bob"):
            ok(accounts(postgres_url, "create", name, "--password-stdin", stdin=PASSWORD + "\n"))
        assert "2 conversation(s), 3 message(s)" in adopt(postgres_url, "alice", "ALICE")
        assert "2 conversation(s), 3 message(s)" in adopt(postgres_url, "bob", "bob")
        assert "0 conversation(s)" in adopt(postgres_url, "bob", "bob")
        both = await store.latest(dm_key("a:2", "a:3"), 10)
        assert [m.text for m in both] == ["alice to bob", "bob to alice"]
        assert [m.text for m in await store.latest(dm_key("a:2", "n:carol"), 10)] == [
            "carol to alice"]
        assert await store.latest("@alice\x1fbob", 10) == []
    finally:
        await store.close()

"""People, in one process (SQLite): direct messages to accounts that are away, read marks on
every device, typing in direct conversations, each permission tried by the one it refuses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from tornado.ioloop import IOLoop

from chat.accounts import AccountService, open_accounts
from chat.config import Settings
from chat.store.postgres import PostgresStore
from chat_server import ChatApplication, make_app
from tests.conftest import close_app
from tests.helpers import ChatClient, Connect
from tests.test_auth_socket import bearer, dm_history, error_of, signed_up


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app(request: pytest.FixtureRequest, app: ChatApplication, settings: Settings,
        io_loop: IOLoop) -> Iterator[ChatApplication]:
    """conftest's app (SQLite in memory), or one on PostgreSQL: history, marks and accounts."""
    if request.param == "sqlite":
        yield app
        return
    url: str = request.getfixturevalue("postgres_url")
    store = PostgresStore(url, settings.history_per_room)
    io_loop.run_sync(store.start)
    accounts = open_accounts(url, pool=store.pool, revocation_poll_s=settings.revocation_poll)
    io_loop.run_sync(accounts.start)
    made = make_app(settings, store, accounts=AccountService(accounts, settings.account_policy))
    yield made
    close_app(made, io_loop, accounts.close, store.close)


async def account(app: ChatApplication, connect: Connect, name: str, token: str | None = None,
                  room: str = "general") -> tuple[ChatClient, str]:
    """A signed-in connection of `name` (registered unless `token` is given), joined to `room`;
    the connection and its session token."""
    token = token or await signed_up(app, name)
    client = await connect(**bearer(token))
    await client.send({"type": "join", "room": room})
    await client.recv_type("history")
    return client, token


async def unread_after_join(client: ChatClient, room: str = "general") -> dict[str, Any]:
    """Join `room`; the `unread` event that follows its history."""
    await client.send({"type": "join", "room": room})
    await client.recv_type("history")
    return await client.recv_type("unread")


async def none_of(client: ChatClient, *kinds: str, timeout: float = 0.3) -> None:
    """Assert that no frame of these types arrives within `timeout` (others may)."""
    while True:
        try:
            frame = await client.recv_or_none(timeout)
        except TimeoutError:
            return
        assert frame is not None and frame.get("type") not in kinds, frame


async def send_dm(client: ChatClient, to: str, text: str, cid: str) -> dict[str, Any]:
    await client.send({"type": "dm", "to": to, "text": text, "cid": cid})
    return await client.recv_type("dm")


@pytest.mark.gen_test(timeout=30)
async def test_a_dm_to_an_account_that_is_away_waits_for_it_once(
    app: ChatApplication, connect: Connect,
) -> None:
    """Stored while bob is offline; his next join lists the conversation as unread, `history`
    holds the messages, and none of them arrives again as a live `dm`."""
    alice, _ = await account(app, connect, "alice")
    bob_token = await signed_up(app, "bob")
    first = await send_dm(alice, "bob", "are you there?", "d1")
    assert (first["from"], first["to"]) == ("alice", "bob")
    await send_dm(alice, "BOB", "ping @bob", "d2")  # any spelling of the account's name
    bob = await connect(**bearer(bob_token))
    unread = await unread_after_join(bob)
    assert unread["conversations"] == [{"with": "alice", "read": 0, "last": first["id"] + 1,
                                        "count": 2, "mentions": 1, "more": False}]
    assert await dm_history(bob, "alice") == ["are you there?", "ping @bob"]
    await bob.nothing()  # no live copy of what was waiting


@pytest.mark.gen_test(timeout=30)
async def test_not_online_is_only_for_names_that_are_no_account(
    app: ChatApplication, connect: Connect,
) -> None:
    """A dm to a name nobody holds, or to a guest who has left, is refused; to an account, not."""
    alice, _ = await account(app, connect, "alice")
    guest = await connect()
    await guest.join("visitor")
    guest.close()
    await alice.recv_type("leave")
    for name in ("nobody", "visitor"):
        error = await error_of(alice, {"type": "dm", "to": name, "text": "hi", "cid": name})
        assert (error["code"], error["to"]) == ("not_online", name), error
    await signed_up(app, "carol")
    assert (await send_dm(alice, "carol", "hi", "c1"))["to"] == "carol"


@pytest.mark.gen_test(timeout=30)
async def test_a_read_mark_reaches_every_device_and_comes_back_on_a_new_one(
    app: ChatApplication, connect: Connect,
) -> None:
    """`read` on one tab: every tab gets the `read` event; a later device's `unread` has the
    mark and counts only what follows it; a mark never moves back nor past the last id."""
    alice, _ = await account(app, connect, "alice")
    bob, token = await account(app, connect, "bob")
    bob_phone = await connect(**bearer(token))
    await bob_phone.join("bob")
    ids = []
    for i in range(3):
        await alice.send({"type": "message", "text": f"news {i} @BOB"})
        ids.append((await bob.recv_type("message"))["id"])
    await bob.send({"type": "read", "room": "general", "id": ids[1]})
    for tab in (bob, bob_phone):
        assert await tab.recv_type("read") == {"type": "read", "room": "general", "id": ids[1]}
    await bob.send({"type": "read", "room": "general", "id": ids[0]})  # backwards: kept
    assert (await bob.recv_type("read"))["id"] == ids[1]
    laptop = await connect(**bearer(token))
    unread = await unread_after_join(laptop)
    assert unread["conversations"] == [{"room": "general", "read": ids[1], "last": ids[2],
                                        "count": 1, "mentions": 1, "more": False}]
    await bob.send({"type": "read", "room": "general", "id": 10**9})  # clamped to the last
    assert (await bob.recv_type("read"))["id"] == ids[2]
    await none_of(alice, "read")  # no one else hears of bob's marks


@pytest.mark.gen_test(timeout=30)
async def test_a_direct_conversation_s_mark_is_each_party_s_own(
    app: ChatApplication, connect: Connect,
) -> None:
    """bob marks his conversation with alice read: alice's own mark and counts are untouched,
    and carol, marking "with bob", marks only her own (empty) conversation with him."""
    alice, alice_token = await account(app, connect, "alice")
    bob, _ = await account(app, connect, "bob")
    carol, _ = await account(app, connect, "carol")
    sent = await send_dm(alice, "bob", "hello bob", "d1")
    await bob.recv_type("dm")
    reply = await send_dm(bob, "alice", "hello alice", "d2")
    await bob.send({"type": "read", "with": "alice", "id": reply["id"]})
    assert await bob.recv_type("read") == {"type": "read", "with": "alice", "id": reply["id"]}
    await carol.send({"type": "read", "with": "bob", "id": sent["id"]})
    assert (await carol.recv_type("read"))["id"] == 0  # her conversation with bob is empty
    other = await connect(**bearer(alice_token))
    unread = await unread_after_join(other)
    assert unread["conversations"] == [{"with": "bob", "read": 0, "last": reply["id"],
                                        "count": 1, "mentions": 0, "more": False}]
    await none_of(bob, "read")
    await none_of(alice, "read")  # no `read` event of bob's or carol's


@pytest.mark.gen_test(timeout=30)
async def test_read_is_refused_where_the_user_may_not_read(
    app: ChatApplication, connect: Connect,
) -> None:
    """A room not joined answers as a room that does not exist; a name that is nobody as for a
    `dm`; a guest keeps no read marks."""
    owner, _ = await account(app, connect, "owner", room="secret")
    await owner.send({"type": "message", "room": "secret", "text": "private"})
    await owner.recv_type("message")
    mallory, _ = await account(app, connect, "mallory")
    refused = await error_of(mallory, {"type": "read", "room": "secret", "id": 1})
    missing = await error_of(mallory, {"type": "read", "room": "no-such-room", "id": 1})
    assert refused["code"] == missing["code"] == "not_in_room"
    assert refused["reason"].replace("secret", "X") == missing["reason"].replace(
        "no-such-room", "X")
    nobody = await error_of(mallory, {"type": "read", "with": "nobody", "id": 1})
    assert (nobody["code"], nobody["to"]) == ("not_online", "nobody")
    guest = await connect()
    await guest.join("visitor")
    error = await error_of(guest, {"type": "read", "room": "general", "id": 1})
    assert error["code"] == "sign_in_required"
    missing_id = await error_of(mallory, {"type": "read", "room": "general"})
    assert (missing_id["code"], missing_id["field"]) == ("missing_field", "id")
    await none_of(owner, "read", "error")


@pytest.mark.gen_test(timeout=30)
async def test_typing_in_a_direct_conversation_reaches_the_other_party_only(
    app: ChatApplication, connect: Connect,
) -> None:
    """`typing` with `with`: every connection of the addressee, not the typist's other tab nor
    a third user; to a name that is nobody: not_online; in a room not joined: not_in_room."""
    alice, alice_token = await account(app, connect, "alice")
    alice_tab = await connect(**bearer(alice_token))
    await alice_tab.join("alice")
    bob, bob_token = await account(app, connect, "bob")
    bob_tab = await connect(**bearer(bob_token))
    await bob_tab.join("bob")
    carol, _ = await account(app, connect, "carol")
    await alice.send({"type": "typing", "with": "BOB"})
    for tab in (bob, bob_tab):
        assert await tab.recv_type("typing") == {"type": "typing", "with": "alice",
                                                 "username": "alice"}
    error = await error_of(alice, {"type": "typing", "with": "nobody"})
    assert (error["code"], error["request"]) == ("not_online", "typing")
    error = await error_of(carol, {"type": "typing", "room": "elsewhere"})
    assert error["code"] == "not_in_room"
    for client in (alice_tab, carol):
        await none_of(client, "typing")


async def status_of(client: ChatClient, *names: str) -> dict[str, dict[str, Any]]:
    """The `status` answer for `names`, by username (past any status notice of a room that came
    first: two users' away notices need not come in one sweep)."""
    await client.send({"type": "status", "users": list(names)})
    answer = await client.recv_type("status")
    while "users" not in answer:
        assert "room" in answer, answer  # a notice, not another kind of answer
        answer = await client.recv_type("status")
    return {entry["username"]: entry for entry in answer["users"]}


@pytest.mark.parametrize("app", [pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_status_right_after_a_close_has_its_last_seen_before_the_store_does(
    app: ChatApplication, connect: Connect, postgres_url: str,
) -> None:
    """While the close's last-seen write waits (the table locked), `status` answers with it."""
    alice, _ = await account(app, connect, "alice")
    bob, _ = await account(app, connect, "bob")
    async with await psycopg.AsyncConnection.connect(postgres_url) as lock:
        await lock.execute("LOCK TABLE last_seen IN EXCLUSIVE MODE")  # reads go on; writes wait
        before = int(time.time() * 1000)
        bob.close()
        await alice.recv_type("leave")
        offline = (await status_of(alice, "bob"))["bob"]
        assert offline["state"] == "offline"
        assert before <= offline["last_seen"] <= before + 5000
        await lock.rollback()
    marks, party = app.hub.presence.marks, await app.hub.users.party_of("bob")
    assert marks is not None and party is not None
    for _ in range(100):  # the write, now let through, lands with the same time
        if await marks.last_seen(party[1]) is not None:
            break
        await asyncio.sleep(0.05)
    assert await marks.last_seen(party[1]) == offline["last_seen"]
    assert (await status_of(alice, "bob"))["bob"]["last_seen"] == offline["last_seen"]


@pytest.mark.settings(away_after=1.0)
@pytest.mark.gen_test(timeout=30)
async def test_presence_is_online_then_away_then_offline_with_last_seen(
    app: ChatApplication, connect: Connect,
) -> None:
    """bob idle for away-after is away (his rooms are told), `active` makes him online again
    (told too), and once his socket closes he is offline since then; nobody's name is left out."""
    alice, _ = await account(app, connect, "alice")
    bob, _ = await account(app, connect, "bob")
    guest = await connect()
    await guest.join("visitor")
    assert {name: e["state"] for name, e in (await status_of(alice, "BOB", "visitor")).items()
            } == {"bob": "online", "visitor": "online"}
    notice = await alice.recv_type("status", timeout=5)
    assert notice in ({"type": "status", "room": "general", "username": "bob", "state": "away"},
                      {"type": "status", "room": "general", "username": "visitor",
                       "state": "away"})
    assert (await status_of(alice, "bob"))["bob"]["state"] == "away"
    await bob.send({"type": "active"})
    back = await alice.recv_type("status")
    while back["username"] != "bob" or back["state"] != "online":
        back = await alice.recv_type("status")
    assert (await status_of(alice, "bob"))["bob"]["state"] == "online"
    before = int(time.time() * 1000)
    bob.close()
    await alice.recv_type("leave")
    guest.close()
    offline = await status_of(alice, "bob", "visitor", "nobody")
    assert list(offline) == ["bob"]  # a guest who left, like a name no one has: nobody
    assert offline["bob"]["state"] == "offline"
    assert before <= offline["bob"]["last_seen"] <= before + 5000
    error = await error_of(alice, {"type": "status", "users": []})
    assert (error["code"], error["field"]) == ("invalid_field", "users")


@pytest.mark.settings(unread_max=3)
@pytest.mark.gen_test(timeout=30)
async def test_unread_counts_stop_at_unread_max_and_say_more(
    app: ChatApplication, connect: Connect,
) -> None:
    """Past unread-max unread messages the count is unread-max and `more` is true; mentions
    are names as words (`@annie` does not name ann)."""
    bob, _ = await account(app, connect, "bob")
    for text in ("@ann hi", "@annie hi", "x@ann", "hi @ANN.", "five"):
        await bob.send({"type": "message", "text": text})
        await bob.recv_type("message")
    ann, _ = await account(app, connect, "ann")  # its first join: the room's counts follow
    unread = await ann.recv_type("unread")
    assert unread["conversations"] == [{"room": "general", "read": 0, "last": 5, "count": 3,
                                        "mentions": 1, "more": True}]


@pytest.mark.gen_test(timeout=30)
async def test_a_closing_node_lets_its_open_connections_go_before_it_stops(
    app: ChatApplication, connect: Connect,
) -> None:
    """A node closed with a connection still open notes its user's last-seen and leaves no
    task running; a close that arrives after starts nothing."""
    before = int(time.time() * 1000)
    ann, _ = await account(app, connect, "ann")
    hub = app.hub
    user = hub.users.get("ann")
    assert user is not None and hub.presence.marks is not None
    await hub.close()
    assert not hub.clients and hub.users.get("ann") is None
    seen = await hub.presence.marks.last_seen(user.party)
    assert seen is not None and before <= seen <= before + 5000
    assert len(hub.presence.background) == 0
    assert hub.presence.background.closed and hub.fanout.fills.closed
    hub.presence.gone(user)  # as the socket's own close, arriving late, would
    assert len(hub.presence.background) == 0
    ann.close()

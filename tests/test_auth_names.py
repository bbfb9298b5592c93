"""A name registered while a guest holds it: the account wins, on one node and on every node
of a cluster."""

from __future__ import annotations

import asyncio

import pytest

from chat.accounts.model import Account, Revocation
from chat.people.names import name_key
from chat_server import ChatApplication
from tests.helpers import ChatClient, Connect
from tests.test_accounts_cli import PASSWORD, accounts, login, ok
from tests.test_auth_socket import bearer, error_of, signed_up
from tests.test_cluster import Cluster, cluster, expect, redis_db  # noqa: F401 (fixtures)

NAME_REGISTERED = 4004  # docs/protocol.md, "Closing"


async def kicked(client: ChatClient) -> None:
    """The connection is told `name_registered`, then closed with 4004."""
    error = await client.recv_type("error", timeout=10)
    assert error["code"] == "name_registered", error
    assert await client.closed(10) == NAME_REGISTERED


@pytest.mark.settings(revocation_poll=0.05)
@pytest.mark.gen_test(timeout=30)
async def test_registering_a_guest_s_name_closes_the_guest_and_it_cannot_come_back(
    app: ChatApplication, connect: Connect,
) -> None:
    """Every connection of a guest whose name is registered gets name_registered and 4004; its
    token cannot take the name back; the account then joins under it."""
    tab1, tab2, other = await connect(), await connect(), await connect()
    welcome = await tab1.join("Carol")
    await tab2.join("carol", token=welcome["token"])
    await other.join("dan")
    token = await signed_up(app, "carol")
    await kicked(tab1)
    await kicked(tab2)
    again = await connect()
    refused = await error_of(again, {"type": "join", "username": "Carol",
                                     "token": welcome["token"]})
    assert refused["code"] == "name_registered", refused
    carol = await connect(**bearer(token))
    assert (await carol.join("carol"))["account"]["username"] == "carol"
    await other.send({"type": "dm", "to": "carol", "text": "is it you?"})
    assert (await carol.recv_type("dm"))["message"] == "is it you?"


@pytest.mark.settings(revocation_poll=0.05)
@pytest.mark.gen_test(timeout=30)
async def test_a_registration_leaves_other_guests_and_accounts_connected(
    app: ChatApplication, connect: Connect,
) -> None:
    """Only the guest holding the registered name is closed; other guests and accounts stay."""
    ann = await connect(**bearer(await signed_up(app, "ann")))
    await ann.join("ann")
    guest = await connect()
    await guest.join("erin")
    await signed_up(app, "frank")
    await asyncio.sleep(0.3)  # a few polls of the revocations table
    await guest.send({"type": "message", "text": "still here"})
    for client in (guest, ann):
        assert (await client.recv_type("message"))["message"] == "still here"


@pytest.mark.subprocess
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.gen_test(timeout=90)
async def test_registering_on_one_node_closes_the_guest_on_every_node(
    cluster: Cluster, postgres_url: str,  # noqa: F811 (a fixture)
) -> None:
    """A guest with tabs on nodes A and B; the admin command registers its name (PostgreSQL):
    both tabs get name_registered and 4004, and neither node lets the guest back in."""
    a, b = cluster()
    on_a = await ChatClient.connect(f"ws://127.0.0.1:{a.port}/ws")
    welcome = await on_a.join("gina")
    on_b = await ChatClient.connect(f"ws://127.0.0.1:{b.port}/ws")
    try:
        await on_b.join("gina", token=welcome["token"])
        ok(accounts(postgres_url, "create", "Gina", "--password-stdin", stdin=PASSWORD + "\n"))
        await kicked(on_a)
        await kicked(on_b)
        for node in (a, b):
            again = await ChatClient.connect(f"ws://127.0.0.1:{node.port}/ws")
            await again.send({"type": "join", "username": "gina", "token": welcome["token"]})
            assert (await expect(again, "error"))["code"] == "name_registered"
            again.close()
        gina = await ChatClient.connect(f"ws://127.0.0.1:{b.port}/ws", **bearer(
            await login(postgres_url, "Gina", PASSWORD)))
        assert (await gina.join("gina"))["account"]["username"] == "Gina"
        gina.close()
    finally:
        on_a.close()
        on_b.close()


async def marks(client: ChatClient, frame: dict[str, object]) -> list[tuple[str, bool]]:
    """(text, guest mark) of each message of the `history` reply to `frame`."""
    await client.send(frame)
    page = await client.recv_type("history")
    return [(m["message"], m.get("guest", False)) for m in page["messages"]]


@pytest.mark.gen_test(timeout=30)
async def test_history_pages_and_resume_mark_guests_as_live_messages_do(
    app: ChatApplication, connect: Connect,
) -> None:
    """A guest's room message and DM carry `guest: true` live, in `history` pages and in a
    resume (`join` with `since`); an account's carry no mark."""
    ann = await connect(**bearer(await signed_up(app, "ann")))
    await ann.join("ann", room="side")
    gus = await connect()
    await gus.join("gus", room="side")
    await gus.send({"type": "message", "room": "side", "text": "from a guest"})
    assert (await ann.recv_type("message"))["guest"] is True
    await ann.send({"type": "message", "room": "side", "text": "from an account"})
    await gus.send({"type": "dm", "to": "ann", "text": "guest dm"})
    assert (await ann.recv_type("dm"))["guest"] is True
    expected = [("from a guest", True), ("from an account", False)]
    assert await marks(ann, {"type": "history", "room": "side"}) == expected
    assert await marks(ann, {"type": "history", "with": "gus"}) == [("guest dm", True)]
    assert app.accounts is not None
    token, _, _ = await app.accounts.login("ann", PASSWORD, "127.0.0.1")
    later = await connect(**bearer(token))  # another tab of ann's, reading from the store
    await later.join("ann")
    assert await marks(later, {"type": "join", "room": "side", "since": 0}) == expected


@pytest.mark.subprocess
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.gen_test(timeout=90)
async def test_history_pages_mark_guests_on_postgresql(
    cluster: Cluster, postgres_url: str,  # noqa: F811 (a fixture)
) -> None:
    """On a PostgreSQL node, a guest's message read back from the store carries its mark."""
    (node,) = cluster(1)
    url = f"ws://127.0.0.1:{node.port}/ws"
    gus, reader = await ChatClient.connect(url), await ChatClient.connect(url)
    try:
        await gus.join("gus")
        await gus.send({"type": "message", "text": "stored as a guest's"})
        await gus.recv_type("message")
        await reader.join("rita")
        assert await marks(reader, {"type": "history", "room": "general"}) == [
            ("stored as a guest's", True)]
    finally:
        gus.close()
        reader.close()


@pytest.mark.gen_test(timeout=30)
async def test_general_is_readable_before_joining_while_guests_are_allowed(
    app: ChatApplication, connect: Connect,
) -> None:
    """With guests on, a connection that has not joined reads general's latest and live
    messages (the tutorial's behaviour)."""
    ann = await connect(**bearer(await signed_up(app, "ann")))
    await ann.join("ann")
    await ann.send({"type": "message", "text": "before you came"})
    await ann.recv_type("message")
    anonymous = await connect()
    assert (await anonymous.recv())["message"] == "before you came"
    await ann.send({"type": "message", "text": "while you watch"})
    assert (await anonymous.recv())["message"] == "while you watch"


@pytest.mark.settings(guests=False)
@pytest.mark.gen_test(timeout=30)
async def test_with_guests_off_nothing_is_readable_before_signing_in(
    app: ChatApplication, connect: Connect,
) -> None:
    """With guests off, a connection without a session gets no message, history, presence or
    member list of general; a signed-in one, before its join, still reads general."""
    ann = await connect(**bearer(await signed_up(app, "ann")))
    await ann.join("ann")
    await ann.send({"type": "message", "text": "stored before"})
    await ann.recv_type("message")
    anonymous = await connect()
    tab = await connect(**bearer(await signed_up(app, "bob")))
    assert (await tab.recv())["message"] == "stored before"
    await ann.send({"type": "message", "text": "said live"})
    assert (await tab.recv())["message"] == "said live"
    await anonymous.nothing(0.5)
    for frame, code in (({"type": "history", "room": "general"}, "not_joined"),
                        ({"type": "members", "room": "general"}, "not_joined"),
                        ({"type": "join", "username": "eve"}, "sign_in_required")):
        assert (await error_of(anonymous, frame))["code"] == code
    await anonymous.send({"username": "eve", "message": "tutorial"})
    refused = await anonymous.recv()
    assert "sign in" in refused["message"], refused
    await anonymous.nothing(0.3)


@pytest.mark.gen_test(timeout=30)
async def test_a_guest_claim_under_way_when_the_name_is_registered_is_refused(
    app: ChatApplication, connect: Connect,
) -> None:
    """A registration heard after the guest's claim asked the store, before its user existed
    to be closed: the claim is refused name_registered, and the name stays free."""
    looked_up = app.hub.users.registered

    async def registered_meanwhile(key: str) -> Account | None:
        found = await looked_up(key)  # nobody yet: then the account is created and heard
        app.hub.signins.revoked(Revocation(1, 99, None, 0, name_key=key))
        return found

    app.hub.users.registered = registered_meanwhile
    guest = await connect()
    assert (await error_of(guest, {"type": "join", "username": "hal"}))["code"] == \
        "name_registered"
    app.hub.users.registered = looked_up
    assert name_key("hal") not in app.hub.users

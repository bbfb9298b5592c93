"""Signed-in sockets and guests, from the attacker's side: the direct-message takeover fails."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from chat.coalesce import Coalesced
from chat.protocol.frame import Frame, Frames
from chat.record import dm_key
from chat_server import ChatApplication
from tests.helpers import ChatClient, Connect
from tests.test_accounts_service import fast_passwords

PASSWORD = "Zebra-Quartz-Lantern-9"
REVOKED = 4003


async def signed_up(app: ChatApplication, name: str) -> str:
    """Register `name` and log in through the app's own AccountService; the session token."""
    assert app.accounts is not None
    app.accounts.passwords = fast_passwords()
    await app.accounts.register(name, PASSWORD)
    token, _, _ = await app.accounts.login(name, PASSWORD, "127.0.0.1")
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def error_of(client: ChatClient, frame: dict[str, Any]) -> dict[str, Any]:
    """Send `frame`; the error it is answered with."""
    await client.send(frame)
    return await client.recv_type("error")


async def dm_history(client: ChatClient, peer: str) -> list[str]:
    """The texts `history` with `peer` gives this connection."""
    await client.send({"type": "history", "with": peer})
    page = await client.recv_type("history")
    return [m["message"] for m in page["messages"]]


@pytest.mark.gen_test(timeout=30)
async def test_a_guest_cannot_take_a_registered_name_in_any_spelling(
    app: ChatApplication, connect: Connect,
) -> None:
    """A guest joining as a registered name, its case or a look-alike, is refused."""
    await signed_up(app, "alice")
    for spelling in ("alice", "ALICE", "\u0430lice", "a\u0399ice", "ａｌｉｃｅ"):
        guest = await connect()
        error = await error_of(guest, {"type": "join", "username": spelling})
        assert error["code"] == "name_registered", (spelling, error)
    legacy = await connect()  # the tutorial's frames too
    await legacy.send({"username": "Alice", "message": "it's me"})
    assert (await legacy.recv())["message"].startswith("'Alice' (or a name that looks like it)")


@pytest.mark.gen_test(timeout=30)
async def test_a_signed_in_connection_is_its_account_and_no_one_else(
    app: ChatApplication, connect: Connect,
) -> None:
    """Bearer or cookie: the welcome names the account; joining as another name is refused."""
    token = await signed_up(app, "Alice")
    by_bearer = await connect(**bearer(token))
    welcome = await by_bearer.join("alice")  # any spelling of its own name
    assert welcome["username"] == "Alice"
    assert welcome["account"]["username"] == "Alice"
    assert welcome["account"]["role"] == "admin"  # the first account
    assert "token" not in welcome and "guest" not in welcome
    by_cookie = await connect(Cookie=f"chat_session={token}")
    await by_cookie.send({"type": "join"})  # no username: the account's
    assert (await by_cookie.recv_type("welcome"))["account"]["id"] == welcome["account"]["id"]
    other = await connect(**bearer(token))
    assert (await error_of(other, {"type": "join", "username": "bob"}))["code"] == "not_your_name"


@pytest.mark.gen_test(timeout=30)
async def test_two_connections_of_one_account_are_one_user(
    app: ChatApplication, connect: Connect,
) -> None:
    """Two tabs of an account count once and both receive its direct messages."""
    token = await signed_up(app, "alice")
    first, second = await connect(**bearer(token)), await connect(**bearer(token))
    await first.join("alice")
    await second.send({"type": "join"})
    await second.recv_type("welcome")
    presence = await second.recv_type("presence")
    assert presence["count"] == 1 and "guest" not in presence["users"][0]
    mallory = await connect()  # the roster's token of an account is never taken from a client
    assert (await error_of(mallory, {"type": "join", "username": "alice",
                                     "token": "account:1"}))["code"] == "username_taken"
    bob = await connect()
    bob_welcome = await bob.join("bob")
    assert bob_welcome["guest"] is True
    assert (await first.recv_type("join"))["guest"] is True  # bob is a guest
    await bob.send({"type": "dm", "to": "ALICE", "text": "hi both"})
    for tab in (first, second):
        dm = await tab.recv_type("dm")
        assert (dm["message"], dm.get("guest")) == ("hi both", True), dm
    await first.send({"type": "message", "text": "from the account"})
    said = await bob.recv_type("message")
    assert said["message"] == "from the account" and "guest" not in said
    assert "guest" not in await first.recv_type("message")  # its own copy
    await bob.send({"type": "message", "text": "from the guest"})
    said = await first.recv_type("message")
    assert (said["message"], said["guest"]) == ("from the guest", True)


@pytest.mark.gen_test(timeout=30)
async def test_a_forged_or_ended_session_is_refused_at_the_upgrade(
    app: ChatApplication, connect: Connect, ws_url: str,
) -> None:
    """An unknown token (bearer or cookie) gets 401; so does a token after its logout."""
    token = await signed_up(app, "alice")
    for headers in (bearer("forged"), {"Cookie": "chat_session=forged"}):
        with pytest.raises(HTTPClientError) as caught:
            await ChatClient.connect(ws_url, **headers)
        assert caught.value.code == 401
    assert app.accounts is not None
    await app.accounts.logout(token)
    with pytest.raises(HTTPClientError) as caught:
        await ChatClient.connect(ws_url, **bearer(token))
    assert caught.value.code == 401


async def waited(condition: Callable[[], bool]) -> None:
    """Return once `condition()` holds (checked every 10 ms, for at most 5 s)."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def in_two_calls(app: ChatApplication, lookups: Coalesced[Any, Any],
                       upgrades: list[Coroutine[Any, Any, ChatClient]]) -> list[Any]:
    """Open `upgrades` so that their look-ups take exactly two store calls: the first's alone,
    held on the account store's thread, then every other's together. Each result: a client,
    or the exception its upgrade raised."""
    assert app.accounts is not None
    gate = threading.Event()
    busy = asyncio.get_running_loop().run_in_executor(
        app.accounts.store._thread, gate.wait)  # type: ignore[attr-defined]
    before = lookups.calls
    first = asyncio.ensure_future(upgrades[0])
    await waited(lambda: lookups.calls == before + 1)  # its call is under way, held
    rest = [asyncio.ensure_future(upgrade) for upgrade in upgrades[1:]]
    await waited(lambda: lookups.pending == len(upgrades))
    gate.set()
    await busy
    opened = await asyncio.gather(first, *rest, return_exceptions=True)
    assert lookups.calls - before == 2
    return opened


@pytest.mark.gen_test(timeout=30)
async def test_upgrades_checked_in_one_store_call_each_get_their_own_account(
    app: ChatApplication, ws_url: str,
) -> None:
    """Sessions looked up together (a reconnect storm): each socket is its own account, and a
    forged token among them is refused."""
    assert app.accounts is not None
    names = [f"user{i}" for i in range(8)]
    tokens = [await signed_up(app, name) for name in names]
    forged = ["forged-1", "forged-2", tokens[0][::-1]]
    opened = await in_two_calls(app, app.accounts.session_lookups, [
        ChatClient.connect(ws_url, **bearer(token)) for token in [*tokens, *forged]])
    for name, client in zip(names, opened, strict=False):
        assert isinstance(client, ChatClient), client
        await client.send({"type": "join"})
        assert (await client.recv_type("welcome"))["account"]["username"] == name
        client.close()
    for refused in opened[len(tokens):]:
        assert isinstance(refused, HTTPClientError) and refused.code == 401, refused


@pytest.mark.gen_test(timeout=30)
async def test_a_cross_site_upgrade_with_a_valid_cookie_is_forbidden(
    app: ChatApplication, connect: Connect, ws_url: str,
) -> None:
    """A page on another site cannot use the visitor's cookie to open a socket: 403."""
    token = await signed_up(app, "alice")
    with pytest.raises(HTTPClientError) as caught:
        await ChatClient.connect(ws_url, Cookie=f"chat_session={token}",
                                 Origin="https://evil.example")
    assert caught.value.code == 403


@pytest.mark.gen_test(timeout=30)
async def test_the_direct_message_takeover_fails(
    app: ChatApplication, connect: Connect,
) -> None:
    """Once alice (an account) and a guest have left, nobody reads their conversations."""
    alice_token, bob_token = await signed_up(app, "alice"), await signed_up(app, "bob")
    alice, bob, carol = (await connect(**bearer(alice_token)), await connect(**bearer(bob_token)),
                         await connect())
    await alice.join("alice")
    await bob.join("bob")
    await carol.join("carol")
    for sender, peer, text in ((alice, "bob", "alice to bob"), (carol, "bob", "carol to bob")):
        await sender.send({"type": "dm", "to": peer, "text": text})
        await sender.recv_type("dm")
    assert await dm_history(bob, "alice") == ["alice to bob"]
    alice.close()
    carol.close()
    await asyncio.sleep(0.2)

    eve = await connect()
    assert (await error_of(eve, {"type": "join", "username": "alice"}))["code"] == \
        "name_registered"
    await eve.join("carol")  # a guest name, free again: eve gets it, not carol's conversations
    assert await dm_history(eve, "bob") == []
    assert await dm_history(eve, "alice") == []  # another pair's: nothing
    assert await dm_history(bob, "carol") == []  # the carol online now is someone else
    assert await dm_history(bob, "alice") == ["alice to bob"]  # alice's stays alice's
    alice_again = await connect(**bearer(alice_token))
    await alice_again.join("alice")
    assert await dm_history(alice_again, "bob") == ["alice to bob"]


@pytest.mark.gen_test(timeout=30)
async def test_conversations_kept_by_name_from_before_are_nobody_s(
    app: ChatApplication, connect: Connect,
) -> None:
    """A conversation stored under names (before accounts) is read by neither account nor guest."""
    await app.store.append("@alice\x1fbob", username="alice", avatar="", text="old secret",
                           ts=1, to="bob")
    alice, bob = await signed_up(app, "alice"), await signed_up(app, "bob")
    for token, peer in ((alice, "bob"), (bob, "alice")):
        client = await connect(**bearer(token))
        await client.join("alice" if peer == "bob" else "bob")
        assert await dm_history(client, peer) == []
    guest = await connect()
    await guest.join("Bob2")
    assert await dm_history(guest, "alice") == []
    assert dm_key("a:1", "a:2") != "@alice\x1fbob"


@pytest.mark.settings(guests=False)
@pytest.mark.gen_test(timeout=30)
async def test_with_guests_off_only_accounts_join(app: ChatApplication, connect: Connect) -> None:
    """--guests off: a join without a session is refused with sign_in_required."""
    guest = await connect()
    assert (await error_of(guest, {"type": "join", "username": "anon"}))["code"] == \
        "sign_in_required"
    member = await connect(**bearer(await signed_up(app, "alice")))
    assert (await member.join("alice"))["account"]["username"] == "alice"


@pytest.mark.settings(revocation_poll=0.1)
@pytest.mark.gen_test(timeout=30)
async def test_revocation_closes_the_session_s_sockets_and_disabling_all(
    app: ChatApplication, connect: Connect,
) -> None:
    """Logging a session out closes its sockets (4003), not another session's; disabling the
    account closes them all."""
    assert app.accounts is not None
    await signed_up(app, "root")  # the first account is the admin, who cannot be disabled
    first = await signed_up(app, "alice")
    second, _, account = await app.accounts.login("alice", PASSWORD, "127.0.0.1")
    tab1, tab2 = await connect(**bearer(first)), await connect(**bearer(second))
    await tab1.join("alice")
    await tab2.join("alice")
    await app.accounts.logout(first)
    assert await tab1.closed() == REVOKED
    assert tab1.conn.close_reason == "signed out: this session ended"
    await tab2.nothing(0.5)
    await app.accounts.set_disabled(account, True)
    assert await tab2.closed() == REVOKED


class ClosedPeer:
    """A peer that records how it was closed."""

    def __init__(self) -> None:
        self.closes: list[tuple[int, str]] = []

    def send(self, frame: Frame) -> None:
        pass

    def send_frames(self, batch: Frames) -> None:
        pass

    def reply(self, frame: Frame) -> None:
        pass

    def replies(self, batch: Frames) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        self.closes.append((code, reason))


@pytest.mark.settings(revocation_poll=0.05)
@pytest.mark.gen_test(timeout=30)
async def test_a_revocation_heard_while_the_upgrade_was_checked_still_closes_it(
    app: ChatApplication,
) -> None:
    """A session ended after the upgrade's check passed, before the socket opened: closed too."""
    assert app.accounts is not None
    token = await signed_up(app, "alice")
    await app.hub.start()
    auth = await app.hub.authenticate(token)
    assert auth is not None
    await app.accounts.logout(token)
    for _ in range(100):  # until the hub has heard it
        if app.hub.signins.revocations:
            break
        await asyncio.sleep(0.02)
    peer = ClosedPeer()
    client, ready = app.hub.connect(peer, "127.0.0.1", auth)
    await ready
    await asyncio.sleep(0.05)
    app.hub.disconnect(client)
    assert peer.closes == [(REVOKED, "signed out: this session ended")]

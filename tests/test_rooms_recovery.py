"""Moderation whose broker control was lost (the broker was down) holds once the broker is back:
the node reads the store again, and its gap fills skip removed messages."""

from __future__ import annotations

import asyncio
import time

import pytest

from chat.node import recovery
from chat.people.names import name_key
from chat.rooms.store import FOREVER, SERVER_WIDE, AuditEntry, RoomStore
from chat_server import ChatApplication
from tests.helpers import Connect
from tests.test_auth_socket import error_of
from tests.test_rooms import app, make_room, team  # noqa: F401 (the fixture: SQLite, PostgreSQL)

MINUTE_MS = 60_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rooms_of(app: ChatApplication) -> RoomStore:  # noqa: F811 (the fixture's name)
    access = app.hub.owned.access
    assert access is not None
    return access.store


async def party(app: ChatApplication, name: str) -> str:  # noqa: F811
    assert app.accounts is not None
    account = await app.accounts.store.account_by_name_key(name_key(name))
    assert account is not None
    return f"a:{account.id}"


def audit(action: str, room: str) -> AuditEntry:
    """An entry as another node writes it (its control then lost with the broker)."""
    return AuditEntry(now_ms(), None, "elsewhere", action, room)


@pytest.mark.gen_test(timeout=30)
async def test_a_ban_kick_mute_and_private_room_decided_while_cut_off_apply_when_back(
    app: ChatApplication, connect: Connect,  # noqa: F811
) -> None:
    """Written to the store with no control reaching this node: when the broker is back, the
    banned and the kicked member leave the room, the muted one's posts are refused, a guest
    leaves a room made private, and a server-wide ban closes its sockets with 4005."""
    _, ann, bob, cat, dan, eve = await team(app, connect, "ann", "bob", "cat", "dan", "eve")
    await make_room(ann, "ops")
    guest = await connect()
    await guest.join("visitor", "ops")
    for client, name in ((ann, "ann"), (bob, "bob"), (cat, "cat"), (dan, "dan"), (eve, "eve")):
        await client.join(name, "ops")
    store = rooms_of(app)
    cat_party, dan_party = await party(app, "cat"), await party(app, "dan")
    await store.sanction("ops", "ban", [cat_party], "cat", now_ms() + 10 * MINUTE_MS,
                         remove_account=int(cat_party[2:]), audit=audit("ban", "ops"))
    assert await store.remove_member("ops", int((await party(app, "bob"))[2:]))
    await store.sanction("ops", "mute", [dan_party], "dan", now_ms() + 5 * MINUTE_MS)
    await store.update("ops", None, "private")
    await store.sanction(SERVER_WIDE, "ban", [await party(app, "eve")], "eve", FOREVER)
    post = {"type": "message", "room": "ops", "text": "still here?", "cid": "p1"}

    app.hub.recovery.broker_back()

    banned = await cat.recv_type("moderated")
    assert (banned["room"], banned["action"], banned["by"]) == ("ops", "ban", "")
    assert banned["until"] > now_ms()
    assert (await bob.recv_type("moderated"))["action"] == "kick"
    assert (await guest.recv_type("moderated"))["action"] == "private"
    assert await eve.closed() == 4005
    for client, cid in ((cat, "c"), (bob, "b"), (guest, "g")):
        assert (await error_of(client, {**post, "cid": cid}))["code"] == "not_in_room"
    muted = await error_of(dan, post)
    assert (muted["code"], muted["room"]) == ("muted", "ops")
    await ann.send(post)
    assert (await ann.recv_type("message"))["message"] == "still here?"


@pytest.mark.gen_test(timeout=30)
async def test_a_lifted_mute_is_lifted_when_back_and_members_in_good_standing_stay(
    app: ChatApplication, connect: Connect,  # noqa: F811
) -> None:
    """A mute lifted while cut off no longer holds once the broker is back; the room's other
    members are not touched (no event, still posting)."""
    _, ann, bob = await team(app, connect, "ann", "bob")
    await make_room(ann, "ops")
    await ann.join("ann", "ops")
    await bob.join("bob", "ops")
    await ann.send({"type": "mute", "room": "ops", "user": "bob", "minutes": 5})
    assert (await bob.recv_type("moderated"))["action"] == "mute"
    await rooms_of(app).lift("ops", "mute", await party(app, "bob"), "bob",
                             audit("unmute", "ops"))
    app.hub.recovery.broker_back()
    await asyncio.gather(*recovery._running)  # the recheck is done
    await bob.send({"type": "message", "room": "ops", "text": "free", "cid": "f"})
    kinds = []
    while (frame := await bob.recv())["type"] not in ("message", "error"):
        kinds.append(frame["type"])
    assert frame["message"] == "free", frame
    assert "moderated" not in kinds  # a lifted mute is told by the moderator's own `unmute`


async def stored(app: ChatApplication, room: str, text: str) -> int:  # noqa: F811
    """A message stored by another node whose publish the broker lost; its id."""
    message, _ = await app.hub.store.append(room, username="cat", avatar="", text=text,
                                         ts=now_ms())
    return message.id


@pytest.mark.gen_test(timeout=30)
async def test_a_gap_fill_after_the_broker_is_back_skips_a_message_removed_meanwhile(
    app: ChatApplication, connect: Connect,  # noqa: F811
) -> None:
    """Two messages the broker lost, one removed by a moderator meanwhile (its control lost
    too): the fill sends the other one only, and the live feed goes on past both."""
    _, ann, bob = await team(app, connect, "ann", "bob")
    await make_room(ann, "ops")
    await ann.join("ann", "ops")
    await bob.join("bob", "ops")
    secret = await stored(app, "ops", "my password is hunter2")
    kept = await stored(app, "ops", "oops, ignore that")
    assert await rooms_of(app).remove_message("ops", secret, audit("remove", "ops"))
    assert not app.hub.rooms["ops"].removals  # this node never heard of the removal

    app.hub.recovery.broker_back()

    await ann.send({"type": "message", "room": "ops", "text": "after", "cid": "a"})
    got: list[tuple[int, str]] = []
    while not got or got[-1][1] != "after":
        frame = await bob.recv_type("message")
        got.append((frame["id"], frame["message"]))
    assert got == [(kept, "oops, ignore that"), (kept + 1, "after")]


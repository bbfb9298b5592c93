"""Presence in big rooms: a capped list with a count, and pages of members."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.helpers import ChatClient

Connect = Callable[..., Awaitable[ChatClient]]

ROOM = "hall"
CAP = 20  # presence-max-members in these tests
WIDE = "\U0001d400" * 26  # 26 mathematical-bold letters: 4 UTF-8 bytes each, as wide as names get


def wide(i: int) -> str:
    """A 32-character name of ~110 bytes: the widest a username gets."""
    return f"{WIDE}{i:06d}"


async def crowd(connect: Connect, count: int) -> list[str]:
    """`count` members in ROOM, one connection each; their names."""
    names = [wide(i) for i in range(count)]
    clients = [await connect() for _ in names]
    for client, name in zip(clients, names, strict=True):
        await client.send({"type": "join", "username": name, "room": ROOM})
    for client in clients:
        await client.recv_type("history")
    return names


# 80 members of wide names make a presence list of ~19 KB: over a 16 KiB queue, as ~4,500 are
# over the default 1 MiB. Many connections from one address stand in for many addresses.
BIG_ROOM = pytest.mark.settings(max_connections_per_ip=0, rate_limit=0, presence_max_members=CAP,
                                max_queue_bytes=16 * 1024)


@BIG_ROOM
@pytest.mark.gen_test(timeout=60)
async def test_a_join_to_a_big_room_gets_a_count_and_a_capped_list(connect: Connect) -> None:
    """A typed join to a room past the cap is answered, with the count and the first members."""
    names = await crowd(connect, 80)
    late = await connect()
    await late.send({"type": "join", "username": "zed", "room": ROOM})
    assert (await late.recv_type("welcome"))["username"] == "zed"
    presence = await late.recv_type("presence")
    assert presence["count"] == 81 and presence["more"] is True
    assert [u["username"] for u in presence["users"]] == sorted([*names, "zed"])[:CAP]
    assert (await late.recv_type("history"))["room"] == ROOM


@BIG_ROOM
@pytest.mark.gen_test(timeout=60)
async def test_pages_of_members_list_everyone_exactly_once(connect: Connect) -> None:
    """`members` pages, each after the last name of the one before, list every member once."""
    names = await crowd(connect, 45)
    reader = await connect()
    await reader.join("Reader", room=ROOM)
    listed: list[str] = []
    after: str | None = None
    while True:
        await reader.send({"type": "members", "room": ROOM,
                           **({} if after is None else {"after": after})})
        page = await reader.recv_type("members")
        assert page["room"] == ROOM and page["count"] == 46 and len(page["users"]) <= CAP
        listed += [u["username"] for u in page["users"]]
        if not page["more"]:
            break
        after = page["users"][-1]["username"]
    assert listed == sorted([*names, "Reader"], key=str.casefold)


@pytest.mark.gen_test
async def test_members_asks_within_the_cap_and_only_in_joined_rooms(connect: Connect) -> None:
    """`members` is refused before joining or outside the room; a larger limit gets the cap."""
    alice, bob = await connect(), await connect()
    await alice.send({"type": "members", "room": "general"})
    assert (await alice.recv_type("error"))["code"] == "not_joined"
    await alice.join("alice")
    await bob.join("bob")
    await alice.send({"type": "members", "room": "elsewhere"})
    assert (await alice.recv_type("error"))["code"] == "not_in_room"
    await alice.send({"type": "members", "room": "general", "limit": 1})
    page = await alice.recv_type("members")
    assert (page["count"], page["users"][0]["username"], page["more"]) == (2, "alice", True)
    await alice.send({"type": "members", "room": "general", "after": "ALICE", "limit": 10**6})
    page = await alice.recv_type("members")
    assert ([u["username"] for u in page["users"]], page["more"]) == (["bob"], False)
    assert page["after"] == "ALICE"

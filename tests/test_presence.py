"""Presence in big and busy rooms: a capped list with a count and pages; join/leave churn folded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from chat.people.names import name_key
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
    assert [u["username"] for u in presence["users"]] == sorted([*names, "zed"], key=name_key)[:CAP]
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
    assert listed == sorted([*names, "Reader"], key=name_key)


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


# Join and leave churn


class Watcher:
    """A member that applies the notices it receives to its presence list, and counts them."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.users: set[str] = set()
        self.count = 0
        self.notices = 0

    async def join(self, name: str) -> None:
        await self.client.send({"type": "join", "username": name, "room": ROOM})
        presence = await self.client.recv_type("presence")
        self.users = {u["username"] for u in presence["users"]}
        self.count = presence.get("count", len(self.users))

    async def read(self, quiet: float) -> None:
        """Apply frames until none comes for `quiet` seconds."""
        while True:
            try:
                frame = await self.client.recv(quiet)
            except TimeoutError:
                return
            assert frame is not None
            self.apply(frame)

    def apply(self, frame: dict[str, Any]) -> None:
        if frame.get("room") != ROOM or frame["type"] not in ("join", "leave"):
            return
        self.notices += 1
        if frame["type"] == "join":
            self.users.add(frame["username"])
        else:
            self.users.discard(frame["username"])
        self.count = frame.get("count", len(self.users))


CHURNERS = 6
ROUNDS = 15  # join and leave rounds per churner: 180 notices before folding
INTERVAL_S = 0.5


async def churn(client: ChatClient, name: str, stay: bool) -> None:
    """Join ROOM and leave it ROUNDS times, answered each time; stay in it at the end if told."""
    for _ in range(ROUNDS):
        await client.send({"type": "join", "username": name, "room": ROOM})
        await client.recv_type("history")
        await client.send({"type": "leave", "room": ROOM})
        await client.recv_type("leave")
    if stay:
        await client.send({"type": "join", "username": name, "room": ROOM})
        await client.recv_type("history")


@pytest.mark.settings(rate_limit=0, notice_interval=INTERVAL_S)
@pytest.mark.gen_test(timeout=60)
async def test_churn_reaches_members_folded_and_their_lists_stay_true(connect: Connect) -> None:
    """Members get a few folded notices for a burst of churn, and end with the true list."""
    watcher = Watcher(await connect())
    await watcher.join("watcher")
    churners = [await connect() for _ in range(CHURNERS)]
    names = [f"churner{i}" for i in range(CHURNERS)]
    for client, name in zip(churners, names, strict=True):
        await client.join(name)  # in `general`: the rounds below only enter and leave ROOM
    late = Watcher(await connect())
    loop = asyncio.get_running_loop()
    started = loop.time()
    reading = asyncio.ensure_future(watcher.read(4 * INTERVAL_S))
    churning = [asyncio.ensure_future(churn(client, name, stay=i % 2 == 0))
                for i, (client, name) in enumerate(zip(churners, names, strict=True))]
    await asyncio.sleep(0.05)
    await late.join("late")  # its presence is read mid-churn, while notices are held
    late_reading = asyncio.ensure_future(late.read(4 * INTERVAL_S))
    await asyncio.gather(*churning)
    elapsed = loop.time() - started
    await asyncio.gather(reading, late_reading)
    truth = {"watcher", "late", *names[::2]}
    assert watcher.users == truth and watcher.count == len(truth)
    assert late.users == truth and late.count == len(truth)
    # One notice per changed user per interval, plus the one sent at once: far below the
    # 2 * CHURNERS * ROUNDS notices the churn made. The bound follows the time the churn took.
    bound = (CHURNERS + 1) * (elapsed / INTERVAL_S + 3)
    print(f"{2 * CHURNERS * ROUNDS} notices made in {elapsed:.2f} s; the watcher got "
          f"{watcher.notices}, the late one {late.notices}")
    assert watcher.notices <= bound, (watcher.notices, bound)

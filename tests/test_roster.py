"""The roster contract on one process and on Redis; then nodes that share, die and come back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from chat.broker.redis import RedisBroker
from chat.delivery import channels
from chat.roster.base import Claim, MemberPage, Rebuilding, Roster, token_digest
from chat.roster.local import LocalRoster
from chat.roster.redis import RedisRoster
from tests.test_broker import Inbox, eventually

BACKENDS = ["local", pytest.param("redis", marks=pytest.mark.redis)]
ROOM = "lobby"
FAST = {"heartbeat": 0.1, "timeout": 0.3}  # seconds: a dead node is reaped within ~0.4 s


def notices(inbox: Inbox) -> list[dict[str, Any]]:
    """The notice events delivered so far, in order."""
    return [json.loads(payload[1:]) for _, payload in inbox.got if payload[:1] == b"n"]


def ann(**extra: str) -> dict[str, str]:
    return {"username": "Ann", "avatar": "a.png", **extra}


class Cluster:
    """Rosters of one chat (one prefix on one Redis), and what they publish on a room."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.prefix = f"t{secrets.token_hex(4)}:"  # keys and channels of this test alone
        self.inbox = Inbox()
        self.rosters: list[Roster] = []
        self._broker: RedisBroker | None = None

    async def node(self, **kwargs: Any) -> Roster:
        """A started roster: one more node (one process, for the local backend)."""
        roster: Roster
        on_lost = kwargs.pop("on_lost", None)
        if self.url is None:
            roster = LocalRoster(self.inbox)
        else:
            roster = RedisRoster(self.url, prefix=self.prefix, **{**FAST, **kwargs})
        await roster.start(on_lost)
        self.rosters.append(roster)
        return roster

    async def listen(self, room: str = ROOM) -> None:
        if self.url is not None:
            self._broker = RedisBroker(self.url)
            await self._broker.start(self.inbox)
            await self._broker.subscribe(channels.room(room, self.prefix))

    async def close(self) -> None:
        for roster in self.rosters:
            with contextlib.suppress(Exception):
                await roster.close()
        if self._broker is not None:
            await self._broker.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str | None:
    """None for one process, or the URL of the session's redis-server."""
    return None if request.param == "local" else str(request.getfixturevalue("redis_server"))


@contextlib.asynccontextmanager
async def cluster(url: str | None) -> AsyncIterator[Cluster]:
    chat = Cluster(url)
    await chat.listen()
    try:
        yield chat
    finally:
        await chat.close()


async def claim(roster: Roster, name: str, token: str | None = None) -> Claim | None:
    return await roster.claim(name.casefold(), name, f"{name}.png", token, secrets.token_hex(8))


# The contract: every backend


@pytest.mark.gen_test(timeout=20)
async def test_a_free_name_is_granted_with_the_fresh_token(backend: str | None) -> None:
    """A name nobody holds is granted as spelled, with its avatar and the fresh token."""
    async with cluster(backend) as chat:
        roster = await chat.node()
        granted = await roster.claim("ann", "Ann", "a.png", None, "fresh-token")
        assert granted == Claim("Ann", "a.png", "fresh-token")
        roster.release("ann")
        again = await roster.claim("ann", "ANN", "b.png", None, "other")
        assert again == Claim("ANN", "b.png", "other")


@pytest.mark.gen_test(timeout=20)
async def test_entering_and_exiting_publish_one_join_and_one_leave(backend: str | None) -> None:
    """enter publishes a join and lists the members; exit publishes a leave; members follow."""
    async with cluster(backend) as chat:
        roster = await chat.node()
        assert await roster.enter(ROOM, "ann", "Ann", "a.png", 10) == MemberPage(
            1, [ann()], False)
        page = await roster.enter(ROOM, "bob", "Bob", "b.png", 10)
        assert page == MemberPage(2, [ann(), {"username": "Bob", "avatar": "b.png"}], False)
        roster.exit(ROOM, "ann")
        assert await roster.members(ROOM, None, 10) == MemberPage(
            1, [{"username": "Bob", "avatar": "b.png"}], False)
        await chat.inbox.wait_for(3)
        assert notices(chat.inbox) == [
            {"type": "join", "room": ROOM, "username": "Ann", "avatar": "a.png", "count": 1},
            {"type": "join", "room": ROOM, "username": "Bob", "avatar": "b.png", "count": 2},
            {"type": "leave", "room": ROOM, "username": "Ann", "count": 1},
        ]


@pytest.mark.gen_test(timeout=20)
async def test_members_come_in_bounded_pages_in_key_order(backend: str | None) -> None:
    """enter lists at most the limit with the whole count; pages after a key list each once."""
    async with cluster(backend) as chat:
        roster = await chat.node()
        names = [f"User{i:02d}" for i in range(23)] + ["ärne", "Zoë", "bo"]
        for name in names:
            first = await roster.enter(ROOM, name.casefold(), name, "", 5)
        assert first.total == len(names) and len(first.members) == 5 and first.more
        seen: list[str] = []
        after: str | None = None
        while True:
            page = await roster.members(ROOM, after, 7)
            assert page.total == len(names) and len(page.members) <= 7
            seen += [member["username"] for member in page.members]
            if not page.more:
                break
            after = page.members[-1]["username"].casefold()
        assert seen == sorted(names, key=str.casefold)
        roster.exit(ROOM, "bo")
        assert (await roster.members(ROOM, "bo", 0)) == MemberPage(len(names) - 1, [], True)
        last = seen[-1].casefold()  # "ärne": code point order puts it after "zoë"
        assert (await roster.members(ROOM, last, 5)) == MemberPage(len(names) - 1, [], False)


@pytest.mark.gen_test(timeout=20)
async def test_a_name_held_only_here_is_not_elsewhere(backend: str | None) -> None:
    """elsewhere() names only users online on another node."""
    async with cluster(backend) as chat:
        roster = await chat.node()
        await claim(roster, "Ann")
        assert await roster.elsewhere("ann") is None
        assert await roster.elsewhere("nobody") is None


# Several nodes on Redis


@pytest.mark.redis
@pytest.mark.gen_test(timeout=20)
async def test_a_name_held_on_one_node_needs_its_token_on_another(redis_server: str) -> None:
    """Another node gets a held name only with its token, as first spelled; then both hold it."""
    async with cluster(redis_server) as chat:
        a, b, c = await chat.node(), await chat.node(), await chat.node()
        first = await claim(a, "Ann")
        assert first is not None
        assert await claim(b, "ann") is None
        assert await claim(b, "ann", "wrong") is None
        second = await claim(b, "ann", first.token)
        assert second == Claim("Ann", "Ann.png", first.token)
        assert await b.elsewhere("ann") == ("Ann", token_digest(first.token))
        a.release("ann")  # b still holds it: the name stays taken
        assert await claim(c, "Ann") is None
        b.release("ann")
        await b.elsewhere("ann")  # b's connection runs in order: its release is done
        assert await claim(c, "Ann") is not None


@pytest.mark.redis
@pytest.mark.gen_test(timeout=20)
async def test_a_user_on_two_nodes_joins_once_and_leaves_once(redis_server: str) -> None:
    """A member on two nodes: one join when the first enters, one leave when the last exits."""
    async with cluster(redis_server) as chat:
        a, b = await chat.node(), await chat.node()
        await a.enter(ROOM, "ann", "Ann", "a.png", 10)
        assert await b.enter(ROOM, "ann", "Ann", "a.png", 10) == MemberPage(1, [ann()], False)
        a.exit(ROOM, "ann")
        assert await b.members(ROOM, None, 10) == MemberPage(1, [ann()], False)
        b.exit(ROOM, "ann")
        # b's exit travels on b's connection: a sees it once the leave is published.
        await chat.inbox.wait_for(2)
        assert await a.members(ROOM, None, 10) == MemberPage(0, [], False)
        assert [n["type"] for n in await settled(chat.inbox)] == ["join", "leave"]


async def settled(inbox: Inbox) -> list[dict[str, Any]]:
    await inbox.settle()
    return notices(inbox)


@pytest.mark.redis
@pytest.mark.gen_test(timeout=20)
async def test_a_node_that_stops_beating_is_reaped_with_its_leaves(redis_server: str) -> None:
    """A node silent past the timeout: another node removes its members (with leaves) and names."""
    async with cluster(redis_server) as chat:
        alive = await chat.node()
        dead = await chat.node()
        assert isinstance(dead, RedisRoster)
        await claim(dead, "Ann")
        await dead.enter(ROOM, "ann", "Ann", "a.png", 10)
        await alive.enter(ROOM, "bob", "Bob", "b.png", 10)
        await dead.enter("other", "ann", "Ann", "a.png", 10)
        stop_beating(dead)  # as kill -9 would: nothing more from it, nothing cleaned up
        await eventually(lambda: any(n["type"] == "leave" for n in notices(chat.inbox)),
                         timeout=3 * FAST["timeout"] + 2)
        assert [n for n in notices(chat.inbox) if n["type"] == "leave"] == [
            {"type": "leave", "room": ROOM, "username": "Ann", "count": 1}]
        assert await alive.members(ROOM, None, 10) == MemberPage(
            1, [{"username": "Bob", "avatar": "b.png"}], False)
        assert await alive.members("other", None, 10) == MemberPage(0, [], False)
        assert await claim(alive, "ann") is not None  # the name is free again


def stop_beating(roster: RedisRoster) -> None:
    assert roster._beating is not None
    roster._beating.cancel()


@pytest.mark.redis
@pytest.mark.gen_test(timeout=20)
async def test_closing_a_node_removes_its_members_at_once(redis_server: str) -> None:
    """A node that closes (SIGTERM) takes its members out now, with their leaves."""
    async with cluster(redis_server) as chat:
        staying = await chat.node(timeout=60.0, heartbeat=30.0)
        going = await chat.node(timeout=60.0, heartbeat=30.0)
        await going.enter(ROOM, "ann", "Ann", "a.png", 10)
        await going.close()
        chat.rosters.remove(going)
        assert await staying.members(ROOM, None, 10) == MemberPage(0, [], False)
        await chat.inbox.wait_for(2)
        assert [n["type"] for n in notices(chat.inbox)] == ["join", "leave"]


@pytest.mark.redis
@pytest.mark.gen_test(timeout=20)
async def test_a_node_whose_state_was_lost_registers_again(redis_server: str) -> None:
    """When Redis loses a node's keys (restart without data), its next beat calls on_lost."""
    lost: list[bool] = []
    async with cluster(redis_server) as chat:
        roster = await chat.node(on_lost=lambda: lost.append(True))
        assert isinstance(roster, RedisRoster)
        await claim(roster, "Ann")
        await roster._queue.put(("DEL", f"{chat.prefix}node:{roster.node}"))
        await eventually(lambda: bool(lost), timeout=2)
        await roster.beat()
        assert lost == [True]  # registered again: the next beat finds its key
        assert await claim(roster, "Ann") is not None  # this node holds it still



@pytest.mark.redis
@pytest.mark.gen_test(timeout=20)
async def test_a_name_held_only_by_tutorial_connections_is_not_elsewhere(redis_server: str) -> None:
    """elsewhere() answers None for a user whose connections are all tutorial (legacy) ones."""
    async with cluster(redis_server) as chat:
        a, b = await chat.node(), await chat.node()
        await a.claim("tut", "Tut", "t.png", None, "fresh", legacy=True)
        await a.claim("ann", "Ann", "a.png", None, "fresh2")
        assert await b.elsewhere("tut") is None
        assert await b.elsewhere("ann") == ("Ann", token_digest("fresh2"))


async def lose_everything(chat: Cluster) -> None:
    """Delete every key of this chat, as a Redis restarted without its data would have none."""
    roster = chat.rosters[0]
    assert isinstance(roster, RedisRoster)
    keys = await roster._queue.put(("KEYS", f"{chat.prefix}*"))
    if keys:
        await roster._queue.put(("DEL", *keys))


async def outcome(pending: Awaitable[Claim | None]) -> str:
    """What a claim came to: granted, taken or rebuilding."""
    try:
        return "taken" if await pending is None else "granted"
    except Rebuilding:
        return "rebuilding"


@pytest.mark.redis
@pytest.mark.gen_test(timeout=20)
async def test_after_the_roster_is_lost_names_held_are_claimed_again_first(
    redis_server: str,
) -> None:
    """Roster lost: no new name for the node timeout; the holders' claims `again` come first."""
    async with cluster(redis_server) as chat:
        again: list[asyncio.Future[Claim | None]] = []
        holder: Roster  # both are read by on_lost, which runs after they are set
        ann_claim: Claim
        holder = await chat.node(on_lost=lambda: again.append(asyncio.ensure_future(
            holder.claim("ann", "Ann", "Ann.png", ann_claim.token, ann_claim.token, again=True))))
        other = await chat.node()
        claimed = await claim(holder, "Ann")
        assert claimed is not None
        ann_claim = claimed

        await lose_everything(chat)
        # However the beats fall, the other node never gets the name held by the first one.
        assert await outcome(claim(other, "Ann")) in ("rebuilding", "taken")
        await eventually(lambda: bool(again) and again[0].done(), timeout=2)
        assert again[0].result() == Claim("Ann", "Ann.png", ann_claim.token)
        assert await outcome(claim(other, "Ann")) == "taken"
        assert await outcome(claim(other, "Ann", ann_claim.token)) == "granted"  # a second tab
        assert await outcome(claim(other, "Bob")) == "rebuilding"  # a new name waits
        await asyncio.sleep(FAST["timeout"] + 0.1)
        assert await outcome(claim(other, "Bob")) == "granted"


@pytest.mark.redis
@pytest.mark.gen_test(timeout=20)
async def test_a_new_chat_grants_names_at_once(redis_server: str) -> None:
    """The first node of a chat finds no roster yet: that is not a loss, names are granted."""
    async with cluster(redis_server) as chat:
        roster = await chat.node()
        assert await outcome(claim(roster, "Ann")) == "granted"


@pytest.mark.redis
@pytest.mark.gen_test(timeout=20)
async def test_a_name_claimed_again_after_someone_took_it_stays_theirs(redis_server: str) -> None:
    """A stalled node reaped meanwhile: its claim `again` of a name now held elsewhere is None."""
    async with cluster(redis_server) as chat:
        stalled = await chat.node()
        other = await chat.node()
        assert isinstance(stalled, RedisRoster)
        first = await claim(stalled, "Ann")
        assert first is not None
        stop_beating(stalled)
        taken: Claim | None = None
        deadline = asyncio.get_running_loop().time() + 3
        while taken is None:  # free once the other node reaps the stalled one
            assert asyncio.get_running_loop().time() < deadline, "never reaped"
            taken = await claim(other, "Ann")
            await asyncio.sleep(0.05)
        again = await stalled.claim("ann", "Ann", "a.png", first.token, first.token, again=True)
        assert again is None
        assert await other.elsewhere("ann") is None  # held on `other` alone

"""History over the socket, against every store: join replay, paging, resume, idempotent send."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.ioloop import IOLoop

from chat.config import Settings
from chat.limits import TokenBucket
from chat.people.connections import Client
from chat.protocol.frame import Frame, Frames
from chat.store import HistoryStore, SQLiteStore
from chat.store.postgres import PostgresStore
from chat_server import ChatApplication, make_app
from tests.helpers import ChatClient, Connect, RawConnect

pytestmark = pytest.mark.usefixtures("app")  # so that each test runs on every backend


@pytest.fixture(params=["sqlite-memory", "sqlite-file",
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def app(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path, io_loop: IOLoop,
) -> Iterator[ChatApplication]:
    """The app on each history store (on PostgreSQL, in this test's own schema)."""
    store: HistoryStore
    if request.param == "sqlite-memory":
        store = SQLiteStore(":memory:", settings.history_per_room)
    elif request.param == "postgres":
        store = PostgresStore(request.getfixturevalue("postgres_url"), settings.history_per_room)
    else:
        store = SQLiteStore(str(tmp_path / "history.db"), settings.history_per_room)
    io_loop.run_sync(store.start)
    yield make_app(settings, store)
    io_loop.run_sync(store.close)


async def post(client: ChatClient, texts: Iterable[str], room: str = "general") -> list[int]:
    """Post texts and wait for each acknowledgement; their ids."""
    ids = []
    for text in texts:
        await client.send({"type": "message", "room": room, "text": text})
        ids.append((await client.recv_type("message"))["id"])
    return ids


async def join_reply(client: ChatClient, **join: Any) -> dict[str, Any]:
    """Send a join; its history frame."""
    await client.send({"type": "join", **join})
    await client.recv_type("welcome")
    return await client.recv_type("history")


@pytest.mark.settings(history_on_join=3, rate_limit=0)
@pytest.mark.gen_test
async def test_joining_sends_the_last_messages_before_live_ones(connect: Connect) -> None:
    """A join is followed by the room's last history-on-join messages, oldest first."""
    alice = await connect()
    await alice.join("alice", room="dev")
    await post(alice, [f"m{n}" for n in range(5)], room="dev")
    bob = await connect()
    history = await join_reply(bob, username="bob", room="dev")
    assert [m["message"] for m in history["messages"]] == ["m2", "m3", "m4"]
    assert history["recovered"] is True
    await alice.send({"type": "message", "room": "dev", "text": "live"})
    assert (await bob.recv_type("message"))["message"] == "live"


class Replies:
    """A Peer that keeps the frames it is sent (a connection without a socket)."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []  # replies: what a read showed it
        self.live: list[Frame] = []

    def send(self, frame: Frame) -> None:
        self.live.append(frame)

    def send_frames(self, batch: Frames) -> None:
        self.live.extend(batch.frames)

    def reply(self, frame: Frame) -> None:
        self.frames.append(frame)

    def replies(self, batch: Frames) -> None:
        self.frames.extend(batch.frames)

    def close(self, code: int, reason: str) -> None:
        raise AssertionError("watching never closes a connection")


@pytest.mark.settings(rate_limit=0)
@pytest.mark.gen_test
async def test_watchers_that_share_a_read_share_its_frames(
        connect: Connect, app: ChatApplication) -> None:
    """Connections that begin watching general during one read of it get its frames, made
    once; a watcher after a new message gets a read and frames of its own."""
    alice = await connect()
    await alice.join("alice")
    await post(alice, ["m0", "m1", "m2"])
    replay, room = app.hub.replay, app.hub.rooms["general"]
    peers = [Replies() for _ in range(3)]
    watchers = [Client(peer, "127.0.0.1", TokenBucket(0, 1, 0)) for peer in peers]
    renders = replay.watch_renders
    await asyncio.gather(*(replay.watch(watcher, room) for watcher in watchers))
    assert replay.watch_renders == renders + 1
    assert [json.loads(f.payload)["message"] for f in peers[0].frames] == ["m0", "m1", "m2"]
    assert all(f is g for peer in peers[1:] for f, g in zip(peer.frames, peers[0].frames,
                                                             strict=True))
    await post(alice, ["m3"])
    assert [json.loads(f.payload)["message"] for f in peers[0].live] == ["m3"]
    late = Replies()
    await replay.watch(Client(late, "127.0.0.1", TokenBucket(0, 1, 0)), room)
    assert replay.watch_renders == renders + 2
    assert [json.loads(f.payload)["message"] for f in late.frames] == ["m0", "m1", "m2", "m3"]
    for watcher in watchers:
        room.drop(watcher)


@pytest.mark.settings(rate_limit=0)
@pytest.mark.gen_test
async def test_joiners_that_share_a_read_share_its_encoding(
        connect: Connect, app: ChatApplication) -> None:
    """Members rejoining a room with the same `since` during one read of it get its messages
    encoded once; a joiner after a new message gets a read and an encoding of its own."""
    alice = await connect()
    await alice.join("alice")
    ids = await post(alice, ["m0", "m1", "m2"])
    replay, room = app.hub.replay, app.hub.rooms["general"]
    peers = [Replies() for _ in range(4)]
    joiners = [Client(peer, "127.0.0.1", TokenBucket(0, 1, 0)) for peer in peers]
    for joiner in joiners:
        joiner.join_room("general")
    renders = replay.join_renders
    # changes=0: each reads its history first (a resume's join), so the three ask at once.
    await asyncio.gather(*(replay.catch_up(joiner, room, ids[0], 0) for joiner in joiners[:3]))
    assert replay.join_renders == renders + 1
    history = json.loads(peers[0].frames[0].payload)
    assert [m["message"] for m in history["messages"]] == ["m1", "m2"]
    assert all(peer.frames[0].payload == peers[0].frames[0].payload for peer in peers[1:3])
    await post(alice, ["m3"])
    await replay.catch_up(joiners[3], room, ids[0], 0)
    assert replay.join_renders == renders + 2
    history = json.loads(peers[3].frames[0].payload)
    assert [m["message"] for m in history["messages"]] == ["m1", "m2", "m3"]
    for joiner in joiners:
        room.drop(joiner)


@pytest.mark.settings(rate_limit=0)
@pytest.mark.gen_test
async def test_history_pages_backwards(connect: Connect) -> None:
    """`history` with `before` returns the page just older, and says whether more exist."""
    alice = await connect()
    await alice.join("alice", room="dev")
    ids = await post(alice, [f"m{n}" for n in range(7)], room="dev")
    await alice.send({"type": "history", "room": "dev", "before": ids[5], "limit": 3})
    page = await alice.recv_type("history")
    assert [m["id"] for m in page["messages"]] == ids[2:5]
    assert page["more"] is True
    await alice.send({"type": "history", "room": "dev", "before": ids[2], "limit": 3})
    page = await alice.recv_type("history")
    assert [m["id"] for m in page["messages"]] == ids[:2]
    assert page["more"] is False


@pytest.mark.gen_test
async def test_history_of_a_room_not_joined_is_refused(connect: Connect) -> None:
    """Only members read a room's history."""
    alice, bob = await connect(), await connect()
    await alice.join("alice", room="secret")
    await bob.join("bob")
    await bob.send({"type": "history", "room": "secret"})
    assert (await bob.recv_type("error"))["code"] == "not_in_room"


@pytest.mark.gen_test
async def test_dm_history_is_visible_only_to_its_two_parties(connect: Connect) -> None:
    """A DM conversation's history is readable by its two parties and no one else."""
    alice, bob, carol = await connect(), await connect(), await connect()
    await alice.join("alice")
    await bob.join("bob")
    await carol.join("carol")
    await alice.send({"type": "dm", "to": "bob", "text": "for bob only"})
    await bob.recv_type("dm")
    for client, peer in ((alice, "bob"), (bob, "alice")):
        await client.send({"type": "history", "with": peer})
        page = await client.recv_type("history")
        assert [m["message"] for m in page["messages"]] == ["for bob only"]
        assert page["with"] == peer
    for peer in ("alice", "bob"):
        await carol.send({"type": "history", "with": peer})
        assert (await carol.recv_type("history"))["messages"] == []


@pytest.mark.settings(history_on_join=50, rate_limit=0)
@pytest.mark.gen_test
async def test_resume_replays_exactly_what_was_missed(connect: Connect) -> None:
    """A join with `since` replays exactly the later messages, then live ones."""
    alice, bob = await connect(), await connect()
    await alice.join("alice", room="dev")
    await bob.join("bob", room="dev")
    seen = await post(alice, ["a", "b"], room="dev")
    bob.close()
    missed = await post(alice, ["c", "d", "e"], room="dev")
    bob = await connect()
    history = await join_reply(bob, username="bob", room="dev", since=seen[-1])
    assert [m["id"] for m in history["messages"]] == missed
    assert history["recovered"] is True


@pytest.mark.settings(history_on_join=3, rate_limit=0)
@pytest.mark.gen_test
async def test_resume_past_the_replay_limit_says_not_recovered(connect: Connect) -> None:
    """Missing more than the replay limit sends the latest ones with recovered false."""
    alice = await connect()
    await alice.join("alice", room="dev")
    ids = await post(alice, [f"m{n}" for n in range(8)], room="dev")
    bob = await connect()
    history = await join_reply(bob, username="bob", room="dev", since=ids[0])
    assert history["recovered"] is False
    assert [m["id"] for m in history["messages"]] == ids[-3:]


@pytest.mark.settings(history_on_join=200, rate_limit=0)
@pytest.mark.gen_test(timeout=30)
async def test_resume_while_others_post_has_no_gap_and_no_repeat(connect: Connect) -> None:
    """Rejoining while messages keep arriving yields every id once, in order."""
    poster, reader = await connect(), await connect()
    await poster.join("poster", room="busy")
    await reader.join("reader", room="busy")
    posting = True

    async def keep_posting() -> None:
        n = 0
        while posting:
            await poster.send({"type": "message", "room": "busy", "text": f"p{n}"})
            n += 1
            await asyncio.sleep(0.002)

    task = asyncio.ensure_future(keep_posting())
    ids: list[int] = []
    for _round in range(4):
        while len(ids) < 5 * (_round + 1):
            ids.append((await reader.recv_type("message"))["id"])
        reader.close()
        await asyncio.sleep(0.02)
        reader = await connect()
        history = await join_reply(reader, username="reader", room="busy", since=ids[-1])
        assert history["recovered"] is True
        ids.extend(m["id"] for m in history["messages"])
    posting = False
    await task
    await poster.send({"type": "message", "room": "busy", "text": "last"})
    while True:
        event = await reader.recv_type("message")
        ids.append(event["id"])
        if event["message"] == "last":
            break
    assert ids == list(range(ids[0], ids[0] + len(ids)))


@pytest.mark.gen_test
async def test_a_repeated_cid_is_stored_and_broadcast_once(connect: Connect) -> None:
    """The same cid from the same user yields one message; the repeat gets the original."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")
    await bob.join("bob")
    await alice.recv_type("join")
    frame = {"type": "message", "text": "once", "cid": "resend-1"}
    await alice.send(frame)
    original = await alice.recv_type("message")
    assert (await bob.recv_type("message"))["id"] == original["id"]
    await alice.send(frame)
    assert await alice.recv_type("message") == original
    await bob.nothing()
    await alice.send({"type": "history", "room": "general"})
    page = await alice.recv_type("history")
    assert [m["cid"] for m in page["messages"]] == ["resend-1"]


@pytest.mark.gen_test
async def test_a_repeated_dm_cid_is_delivered_once(connect: Connect) -> None:
    """A resent DM with the same cid reaches the recipient once."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")
    await bob.join("bob")
    frame = {"type": "dm", "to": "bob", "text": "once", "cid": "d-1"}
    await alice.send(frame)
    await alice.send(frame)
    first, second = await alice.recv_type("dm"), await alice.recv_type("dm")
    assert first == second
    assert (await bob.recv_type("dm"))["id"] == first["id"]
    await bob.nothing()


@pytest.mark.settings(rate_limit=0)
@pytest.mark.gen_test
async def test_a_cid_reused_for_another_room_or_a_dm_is_refused(connect: Connect) -> None:
    """A cid sent again to another room or as a DM is refused with cid_reused: nothing is
    stored or delivered there, and a repeat in its own room still gets the original."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")
    await bob.join("bob", room="b")
    await alice.join("alice", room="b")
    await alice.send({"type": "message", "room": "general", "text": "for general", "cid": "X"})
    original = await alice.recv_type("message")
    await bob.recv_type("join")
    for frame in ({"type": "message", "room": "b", "text": "for b", "cid": "X"},
                  {"type": "dm", "to": "bob", "text": "for bob", "cid": "X"}):
        await alice.send(frame)
        error = await alice.recv_type("error")
        assert (error["code"], error["cid"], error["request"]) == ("cid_reused", "X",
                                                                    frame["type"])
        assert "'X'" in error["reason"] and "another conversation" in error["reason"]
    await bob.nothing()
    await alice.send({"type": "history", "room": "b"})
    assert (await alice.recv_type("history"))["messages"] == []
    await alice.send({"type": "history", "with": "bob"})
    assert (await alice.recv_type("history"))["messages"] == []
    await alice.send({"type": "message", "room": "general", "text": "for general", "cid": "X"})
    assert await alice.recv_type("message") == original
    await alice.send({"type": "history", "room": "general"})
    assert [m["cid"] for m in (await alice.recv_type("history"))["messages"]] == ["X"]


@pytest.mark.settings(history_on_join=2, rate_limit=0)
@pytest.mark.gen_test
async def test_tutorial_client_gets_recent_history_as_messages(connect: Connect) -> None:
    """A tutorial client connecting receives general's recent messages as message events."""
    alice = await connect()
    await alice.join("alice")
    await post(alice, ["one", "two", "three"])
    legacy = await connect()
    got = [await legacy.recv(), await legacy.recv()]
    assert [(f["type"], f["message"]) for f in got] == [("message", "two"), ("message", "three")]


@pytest.mark.settings(history_on_join=2, rate_limit=0)
@pytest.mark.gen_test
async def test_watcher_joining_general_with_since_gets_only_what_it_lacks(connect: Connect) -> None:
    """A connection that read general before joining is not sent those messages again."""
    alice = await connect()
    await alice.join("alice")
    ids = await post(alice, ["m0", "m1", "m2", "m3"])
    late = await connect()
    fed = [(await late.recv())["id"] for _ in range(2)]
    assert fed == ids[2:]
    history = await join_reply(late, username="late", since=ids[0])
    assert [m["id"] for m in history["messages"]] == [ids[1]]


@pytest.mark.settings(history_per_room=3, rate_limit=0)
@pytest.mark.gen_test
async def test_resume_across_pruned_messages_says_not_recovered(
    connect: Connect, app: ChatApplication,
) -> None:
    """When retention dropped some missed messages, the reply says recovered false."""
    alice = await connect()
    await alice.join("alice", room="dev")
    ids = await post(alice, [f"m{n}" for n in range(6)], room="dev")
    await app.store.prune()  # SQLite prunes in the background; do it now
    bob = await connect()
    history = await join_reply(bob, username="bob", room="dev", since=ids[0])
    assert history["recovered"] is False
    assert [m["id"] for m in history["messages"]] == ids[-3:]


@pytest.mark.settings(history_on_join=3, rate_limit=0)
@pytest.mark.gen_test
@pytest.mark.parametrize("ahead", [1, 1000, 2**53 - 1])
async def test_resume_beyond_the_last_id_says_not_recovered_with_the_latest(
        connect: Connect, ahead: int) -> None:
    """A `since` past the room's last id gets recovered false and the latest messages."""
    alice = await connect()
    await alice.join("alice", room="dev")
    ids = await post(alice, [f"m{n}" for n in range(5)], room="dev")
    bob = await connect()
    since = min(ids[-1] + ahead, 2**53 - 1)
    history = await join_reply(bob, username="bob", room="dev", since=since)
    assert history["recovered"] is False
    assert [m["id"] for m in history["messages"]] == ids[-3:]
    assert history["more"] is True
    await alice.send({"type": "message", "room": "dev", "text": "live"})
    assert (await bob.recv_type("message"))["message"] == "live"


@pytest.mark.settings(history_on_join=3, rate_limit=0)
@pytest.mark.gen_test
async def test_watcher_resuming_beyond_the_last_id_says_not_recovered(connect: Connect) -> None:
    """A connection that read general first and joins it with a `since` too far is told so."""
    alice = await connect()
    await alice.join("alice")
    ids = await post(alice, [f"m{n}" for n in range(5)])
    answer: tuple[bool, list[Any], bool]
    for since, answer in ((2**53 - 1, (False, [], True)), (ids[-1], (True, [], False))):
        late = await connect()
        assert [(await late.recv())["id"] for _ in range(3)] == ids[-3:]  # read before joining
        history = await join_reply(late, username=f"late{since}", since=since)
        assert (history["recovered"], history["messages"], history["more"]) == answer


@pytest.mark.gen_test
@pytest.mark.parametrize("frame", [
    {"type": "join", "username": "bob", "room": "dev", "since": 2**63},
    {"type": "join", "username": "bob", "room": "dev", "since": 2**64 - 1},
    {"type": "history", "room": "general", "before": 2**63},
])
async def test_an_integer_past_2_63_is_refused_and_the_connection_stays_open(
        raw_connect: RawConnect, frame: dict[str, Any]) -> None:
    """`since` or `before` of 2^63 and more gets invalid_field; the same connection goes on."""
    raw = await raw_connect()
    if frame["type"] == "history":
        raw.send_text({"type": "join", "username": "bob"})
    raw.send_text(frame)
    while True:
        opcode, payload = await raw.read_frame()
        assert opcode == 0x1, (opcode, payload)
        event = json.loads(payload)
        if event["type"] == "error":
            break
    assert (event["code"], event["field"], event["limit"]) == (
        "invalid_field", "since" if "since" in frame else "before", 2**53 - 1)
    raw.send_text({"type": "join", "username": "bob", "room": "dev2"})
    while (event := json.loads((await raw.read_frame())[1]))["type"] != "welcome":
        pass
    assert "dev2" in event["rooms"]

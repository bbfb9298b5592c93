"""Broker deliveries to connections, fed by hand: order, gaps, repeats and readers catching up."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.ioloop import IOLoop

from chat.delivery import channels
from chat.delivery.catchup import CATCHUP_GRACE_S, Catchup
from chat.delivery.fanout import REFILL_MAX, REORDER_WAIT_S, Fanout
from chat.limits import TokenBucket
from chat.node.status import Stats
from chat.people.connections import Client, User
from chat.people.directory import Directory
from chat.protocol import events
from chat.protocol.frame import Frame, Frames
from chat.record import StoredMessage, dm_key
from chat.rooms.room import Room
from chat.roster.local import LocalRoster
from chat.store import SQLiteStore

ROOM = "lobby"


class Recorder:
    """A Peer that keeps what it is sent."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.batches: list[bytes] = []  # the joined bytes of each send_frames

    def send(self, frame: Frame) -> None:
        self.frames.append(json.loads(frame.payload))

    def send_frames(self, batch: Frames) -> None:
        assert batch.wire == b"".join(frame.wire for frame in batch.frames)
        self.batches.append(batch.wire)
        for frame in batch.frames:
            self.send(frame)

    def reply(self, frame: Frame) -> None:
        raise AssertionError("fan-out never replies to a command")

    def replies(self, batch: Frames) -> None:
        raise AssertionError("fan-out never replies to a command")

    def close(self, code: int, reason: str) -> None:
        raise AssertionError("fan-out never closes a connection")

    def ids(self) -> list[int]:
        return [f["id"] for f in self.frames if f["type"] == "message"]


def _subscribed(user: User) -> asyncio.Future[None]:
    done = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


class Node:
    """One node's fan-out over an in-memory SQLite store, with one room and readers to add."""

    def __init__(self) -> None:
        self.store = SQLiteStore(":memory:")
        self.rooms: dict[str, Room] = {}
        self.users = Directory(LocalRoster(lambda channel, payload: None), _subscribed,
                               lambda user: None)
        self.fanout = Fanout(self.rooms, self.users, Stats(), self.store)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        self.room = self.rooms[ROOM] = Room(ROOM, done)

    def reader(self, name: str = "ann") -> Recorder:
        peer = Recorder()
        client = Client(peer, "127.0.0.1", TokenBucket(0, 1, 0))
        user = self.users.setdefault(name, User(name, "", "token", f"g:{name}"))
        self.users.by_party[user.party] = user
        user.clients.add(client)
        client.user = user
        self.room.readers.add(client)
        self.room.listeners.add(client)
        return peer

    async def post(self, text: str) -> StoredMessage:
        """Store a message the way another node would; not delivered yet."""
        stored, _ = await self.store.append(ROOM, username="bob", avatar="", text=text, ts=1)
        return stored

    def deliver(self, stored: StoredMessage) -> None:
        self.fanout.deliver(channels.room(ROOM), channels.message_payload(stored))


@pytest.fixture
def node(io_loop: IOLoop) -> Iterator[Node]:
    """A Node on a started store of its own, closed after the test."""
    async def start() -> Node:
        node = Node()  # on the test's loop (its room's future belongs to it)
        await node.store.start()
        return node

    node = io_loop.run_sync(start)
    yield node
    io_loop.run_sync(node.store.close)


async def quiet(node: Node) -> None:
    """Let background fills run to their end (each reads the store on the store's thread)."""
    await node.fanout.fills.idle()
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.gen_test
async def test_messages_reach_readers_in_id_order(node: Node) -> None:
    """Each delivered message reaches every reader once, as a message event."""
    ann, bob = node.reader("ann"), node.reader("bob")
    for text in ("one", "two"):
        node.deliver(await node.post(text))
    assert ann.ids() == bob.ids() == [1, 2]
    assert ann.frames[0]["message"] == "one"


@pytest.mark.gen_test
async def test_a_repeated_delivery_is_dropped(node: Node) -> None:
    """An id at or below the last one broadcast is not sent again."""
    ann = node.reader()
    first, second = await node.post("one"), await node.post("two")
    node.deliver(first)
    node.deliver(second)
    node.deliver(first)
    node.deliver(second)
    assert ann.ids() == [1, 2]


@pytest.mark.gen_test
async def test_a_gap_is_filled_from_the_store_in_order(node: Node) -> None:
    """Messages the broker lost are read from the store and sent before the ones after them."""
    ann = node.reader()
    node.deliver(await node.post("1"))
    await node.post("2 (lost)")
    await node.post("3 (lost)")
    fourth, fifth = await node.post("4"), await node.post("5")
    node.deliver(fourth)
    node.deliver(fifth)  # arrives while the gap is being filled: held, then sent in order
    assert ann.ids() == [1]
    await asyncio.sleep(2 * REORDER_WAIT_S)  # 2 and 3 may yet come from the broker
    await quiet(node)
    assert ann.ids() == [1, 2, 3, 4, 5]
    assert node.fanout.stats.gap_fills == 1


@pytest.mark.gen_test
async def test_a_hole_the_store_never_fills_is_read_a_bounded_number_of_times(
        node: Node) -> None:
    """A message past ids the store does not have (another store's) keeps a gap open: once
    REFILL_MAX reads in a row bring nothing, what is held goes out, holes and all; nothing
    spins."""
    ann = node.reader()
    node.deliver(await node.post("1"))
    node.deliver(dataclasses.replace(await node.post("2"), id=4))  # 2 and 3: nowhere
    await asyncio.sleep(2 * REORDER_WAIT_S)
    await quiet(node)
    assert ann.ids() == [1, 2, 4]  # 2 read from the store, 3 never came
    assert node.fanout.stats.gap_fills == 1 + REFILL_MAX  # the read that brought 2, then none
    assert not node.room.is_filling


class BurstDuringReads:
    """During each read of the room, two more messages are committed and the broker brings
    the second before the first (a burst from several nodes): every read leaves a new hole
    past it. The first one's copy comes during the next read."""

    def __init__(self, node: Node, rounds: int) -> None:
        self.node = node
        self.rounds = rounds
        self.late: StoredMessage | None = None
        self.read_after = node.store.after
        node.fanout.store.after = self.after  # type: ignore[method-assign]

    async def after(self, conversation: str, after_id: int, limit: int) -> list[StoredMessage]:
        read = await self.read_after(conversation, after_id, limit)
        if self.late is not None:
            self.node.deliver(self.late)  # the previous hole's own copy, late
            self.late = None
        if self.rounds:
            self.rounds -= 1
            self.late, ahead = await self.node.post("in flight"), await self.node.post("ahead")
            self.node.deliver(ahead)
        return read


@pytest.mark.gen_test
async def test_a_burst_that_opens_a_new_hole_at_every_read_loses_nothing(node: Node) -> None:
    """Reads that each close a hole while the burst opens the next are not a hole the store
    lacks: however many there are in a row, every message goes out once, in order."""
    ann = node.reader()
    node.deliver(await node.post("1"))
    BurstDuringReads(node, rounds=2 * REFILL_MAX)
    await node.post("2")
    node.deliver(await node.post("3"))  # 2 is late: a gap, then reads
    await asyncio.sleep(2 * REORDER_WAIT_S)
    await quiet(node)
    assert ann.ids() == list(range(1, 4 + 2 * 2 * REFILL_MAX))
    assert not node.room.is_filling


@pytest.mark.gen_test
async def test_a_fill_the_store_refuses_lets_the_held_messages_go(node: Node) -> None:
    """While the store cannot be read, a gap does not stop the room: what is held goes out."""
    ann = node.reader()
    node.deliver(await node.post("1"))
    await node.post("2 (lost)")
    third = await node.post("3")
    await node.store.close()
    node.deliver(third)
    await asyncio.sleep(2 * REORDER_WAIT_S)
    await quiet(node)
    assert ann.ids() == [1, 3]
    assert node.fanout.stats.gap_fills == 1


@pytest.mark.gen_test
async def test_fill_all_sends_what_was_published_while_cut_off(node: Node) -> None:
    """After a reconnect, every room catches up from the store with no live message to cue it."""
    ann = node.reader()
    node.deliver(await node.post("1"))
    await node.post("2 (published while this node was cut off)")
    node.fanout.fill_all()
    await quiet(node)
    assert ann.ids() == [1, 2]


@pytest.mark.gen_test
async def test_a_room_with_nothing_broadcast_yet_fills_from_its_readers_history(node: Node) -> None:
    """A fill before any broadcast starts after what the readers' history gave them, not at 1."""
    for text in ("old 1", "old 2", "old 3"):
        await node.post(text)
    early, late = Recorder(), Recorder()
    for peer, floor in ((early, 2), (late, 3)):  # their history reads ended at ids 2 and 3
        node.room.settling[Client(peer, "127.0.0.1", TokenBucket(0, 1, 0))] = floor
    await node.post("4 (published while this node was cut off)")
    node.fanout.fill_all()
    await quiet(node)
    assert (early.ids(), late.ids()) == ([3, 4], [4])


@pytest.mark.gen_test
async def test_a_fill_with_no_reader_reads_nothing(node: Node) -> None:
    """A room nobody reads yet has no place to start from: nothing is sent."""
    await node.post("old")
    node.fanout.fill_all()
    await quiet(node)
    assert node.room.last_id == 0


@pytest.mark.gen_test
async def test_a_client_catching_up_gets_only_ids_past_what_its_history_held(node: Node) -> None:
    """A client whose history read ended at id 2 gets 3 on, not 2 again, when 2 arrives live."""
    node.deliver(await node.post("1"))
    late = Recorder()
    client = Client(late, "127.0.0.1", TokenBucket(0, 1, 0))
    node.room.settling[client] = 2  # its history held 1 and 2; 2 is still in the broker
    node.deliver(await node.post("2"))
    node.deliver(await node.post("3"))
    node.deliver(await node.post("4"))
    assert late.ids() == [3, 4]
    assert client in node.room.readers


@pytest.mark.gen_test
async def test_a_history_that_went_back_restarts_the_count(node: Node) -> None:
    """If the store's last id is below the last broadcast (it lost data), ids go on."""
    ann = node.reader()
    node.room.last_id = 50  # before the store was emptied
    node.fanout.fill_all()
    await quiet(node)
    assert node.room.last_id == 0
    node.deliver(await node.post("after the reset"))  # id 1 again
    await quiet(node)
    assert ann.ids() == [1]


@pytest.mark.gen_test
async def test_messages_stored_after_a_reset_and_before_the_fill_are_sent(node: Node) -> None:
    """Ids that began again while this node was cut off are read from 1 and sent in order."""
    ann = node.reader()
    node.room.last_id = 50
    await node.post("new 1")
    await node.post("new 2")
    node.fanout.fill_all()
    await quiet(node)
    assert ann.ids() == [1, 2]


@pytest.mark.gen_test
async def test_notices_reach_members_but_not_the_user_they_are_about(node: Node) -> None:
    """A join, leave or typing notice goes to every listener except that user's connections."""
    ann, bob = node.reader("ann"), node.reader("bob")
    notice = channels.notice_payload(events.typing(ROOM, "Bob"))
    node.fanout.deliver(channels.room(ROOM), notice)
    assert [f["type"] for f in ann.frames] == ["typing"]
    assert bob.frames == []


FOLD_S = 0.05  # notice-interval of the folding tests


def notice(node: Node, kind: str, name: str, count: int) -> None:
    """Deliver a join or leave notice about `name` as the roster publishes it."""
    event = (events.joined(ROOM, name, "", count) if kind == "join"
             else events.left(ROOM, name, count))
    node.fanout.deliver(channels.room(ROOM), channels.notice_payload(event))


def seen(peer: Recorder) -> list[tuple[str, str, int]]:
    return [(f["type"], f["username"], f["count"]) for f in peer.frames]


@pytest.mark.gen_test
async def test_churn_within_the_interval_reaches_members_as_its_net_change(node: Node) -> None:
    """The first notice goes at once; then join+leave and leave+join fold to nothing."""
    node.fanout.notices.interval = FOLD_S
    ann = node.reader("ann")
    notice(node, "join", "Bob", 2)
    notice(node, "leave", "Bob", 1)
    notice(node, "join", "Bob", 2)  # back, same spelling: nothing to tell
    notice(node, "join", "Cy", 3)
    notice(node, "leave", "Cy", 2)  # came and went: nothing to tell
    notice(node, "join", "Di", 3)
    assert seen(ann) == [("join", "Bob", 2)]
    await asyncio.sleep(3 * FOLD_S)
    assert seen(ann) == [("join", "Bob", 2), ("join", "Di", 3)]


@pytest.mark.gen_test
async def test_a_listener_that_read_presence_while_notices_were_held_gets_final_states(
        node: Node) -> None:
    """A listener whose presence may include held changes gets each changed user's last notice."""
    node.fanout.notices.interval = FOLD_S
    ann = node.reader("ann")
    notice(node, "join", "Bob", 2)  # sent at once; the next ones are held
    notice(node, "join", "Cy", 3)
    late = node.reader("late")  # as Rooms.enter and the hub's welcome do:
    client = next(c for c in node.room.listeners if c.peer is late)
    node.room.listen(client)
    node.room.presented(client)  # its presence was read while Cy's join was held
    notice(node, "leave", "Cy", 2)
    await asyncio.sleep(3 * FOLD_S)
    assert seen(ann) == [("join", "Bob", 2)]
    assert seen(late) == [("leave", "Cy", 2)]  # its presence may have listed Cy


@pytest.mark.gen_test
async def test_an_interval_of_joins_reaches_each_listener_in_one_queueing_but_its_own(
        node: Node) -> None:
    """A reconnect storm's held joins go to each listener at once, in order, never its own."""
    node.fanout.notices.interval = FOLD_S
    ann = node.reader("ann")
    notice(node, "join", "Bob", 2)  # sent at once; the next ones are held
    names = [f"user{i}" for i in range(40)]
    tabs = {}
    for count, name in enumerate(names, start=3):
        notice(node, "join", name, count)
        if name in ("user0", "user17", "user39"):  # back in the room with two tabs each
            tabs[name] = (node.reader(name), node.reader(name))
    await asyncio.sleep(3 * FOLD_S)
    assert seen(ann) == [("join", "Bob", 2)] + [("join", name, 42) for name in names]
    assert len(ann.batches) == 1
    for name, pair in tabs.items():
        for tab in pair:
            assert seen(tab) == [("join", other, 42) for other in names if other != name]
            assert len(tab.batches) == 1
    assert tabs["user0"][0].batches[0] is tabs["user0"][1].batches[0]  # cut once per user


@pytest.mark.gen_test
async def test_a_direct_message_reaches_its_user_s_connections(node: Node) -> None:
    """A dm on a user's channel reaches that user's typed connections only."""
    ann, bob = node.reader("ann"), node.reader("bob")
    stored, _ = await node.store.append("@ann\x1fbob", username="bob", avatar="", text="psst",
                                        ts=1, to="ann")
    node.fanout.deliver(channels.user("g:ann"), channels.message_payload(stored))
    assert [(f["type"], f["message"]) for f in ann.frames] == [("dm", "psst")]
    assert bob.frames == []


@pytest.mark.gen_test
async def test_a_message_overtaken_by_the_next_is_waited_for_not_read_from_the_store(
    node: Node,
) -> None:
    """Ids that cross on the broker (two nodes' publishes) go out in order, with no store read."""
    ann = node.reader()
    first, second, third = [await node.post(t) for t in ("1", "2", "3")]
    node.deliver(first)
    node.deliver(third)
    assert ann.ids() == [1]
    node.deliver(second)  # within REORDER_WAIT_S
    await asyncio.sleep(2 * REORDER_WAIT_S)
    assert ann.ids() == [1, 2, 3]
    assert node.fanout.stats.gap_fills == 0


@pytest.mark.gen_test(timeout=10)
async def test_a_committed_message_never_published_reaches_the_room_s_readers(node: Node) -> None:
    """A commit the store announced, with no broker copy after the grace: read and sent once."""
    ann = node.reader()
    catchup = Catchup(node.fanout, node.users, node.store)
    node.deliver(await node.post("1"))
    orphan = await node.post("2 (its node died before publishing)")
    catchup.committed(ROOM, orphan.id, orphan.id)
    await asyncio.sleep(CATCHUP_GRACE_S / 2)
    assert ann.ids() == [1]  # the broker's copy is given the grace to come
    await asyncio.sleep(CATCHUP_GRACE_S)
    await quiet(node)
    assert ann.ids() == [1, 2]
    node.deliver(orphan)  # the broker's copy, late after all: not sent again
    assert ann.ids() == [1, 2]


@pytest.mark.gen_test(timeout=10)
async def test_a_committed_dm_never_published_reaches_its_participant_once(node: Node) -> None:
    """A dm the store announced and the broker never brought reaches its local recipient once;
    one the broker brought is not read again."""
    ann = node.reader("ann")
    catchup = Catchup(node.fanout, node.users, node.store)
    conversation = dm_key("g:ann", "g:bob")
    brought, _ = await node.store.append(conversation, username="bob", avatar="", text="seen",
                                         ts=1, to="ann")
    node.fanout.deliver(channels.user("g:ann"), channels.message_payload(brought))
    orphan, _ = await node.store.append(conversation, username="bob", avatar="", text="lost",
                                        ts=2, to="ann")
    catchup.committed(conversation, brought.id, orphan.id)
    await asyncio.sleep(1.5 * CATCHUP_GRACE_S)
    await quiet(node)
    assert [(f["type"], f["message"]) for f in ann.frames] == [("dm", "seen"), ("dm", "lost")]
    node.fanout.deliver(channels.user("g:ann"), channels.message_payload(orphan))
    assert len(ann.frames) == 2
    assert node.fanout.stats.gap_fills == 1

"""A room's reader state machine, fed by hand: no socket, no broker, no store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from chat.limits import TokenBucket
from chat.people.connections import Client
from chat.protocol.frame import Frame, Frames
from chat.record import StoredMessage
from chat.rooms.room import Arrival, Room


class Recorder:
    """A Peer that keeps the ids of the messages it is sent."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def send(self, frame: Frame) -> None:
        self.ids.append(json.loads(frame.payload)["id"])

    def send_frames(self, batch: Frames) -> None:
        for frame in batch.frames:
            self.send(frame)

    def reply(self, frame: Frame) -> None:
        raise AssertionError("a room only sends")

    def replies(self, batch: Frames) -> None:
        raise AssertionError("a room only sends")

    def close(self, code: int, reason: str) -> None:
        raise AssertionError("a room never closes a connection")


def message(message_id: int) -> StoredMessage:
    return StoredMessage("lobby", message_id, "ann", "", f"m{message_id}", message_id)


def client() -> tuple[Client, Recorder]:
    peer = Recorder()
    return Client(peer, "127.0.0.1", TokenBucket(0, 1, 0)), peer


@pytest.fixture
def room() -> Iterator[Room]:
    loop = asyncio.new_event_loop()  # only to make the room's `subscribed` future
    yield Room("lobby", loop.create_future())
    loop.close()


def feed(room: Room, *ids: int) -> list[Arrival]:
    """Deliver messages as the broker would, broadcasting those the room takes live."""
    arrivals = []
    for message_id in ids:
        arrival = room.accept(message(message_id))
        if arrival is Arrival.LIVE:
            room.broadcast(message(message_id))
        arrivals.append(arrival)
    return arrivals


def test_messages_in_order_go_live_and_repeats_do_not(room: Room) -> None:
    """The next id is broadcast to every reader once; an id already sent is a repeat."""
    (ann, ann_peer), (bob, bob_peer) = client(), client()
    room.settle(ann, 0)
    room.settle(bob, 0)
    assert feed(room, 1, 2, 2, 1) == [Arrival.LIVE, Arrival.LIVE, Arrival.REPEAT, Arrival.REPEAT]
    assert ann_peer.ids == bob_peer.ids == [1, 2]
    assert room.readers == {ann, bob} and room.last_id == 2


def test_broadcast_counts_its_deliveries(room: Room) -> None:
    """broadcast() says how many connections it sent the message to, settling ones included."""
    (ann, _), (bob, _), (cy, _) = client(), client(), client()
    room.settle(ann, 0)
    room.settle(bob, 0)
    room.settle(cy, 5)  # its history already held 1..5
    assert room.broadcast(message(1)) == 2
    assert room.broadcast(message(2)) == 2
    assert room.broadcast(message(6)) == 3


def test_a_gap_holds_what_follows_until_the_fill_ends(room: Room) -> None:
    """After a gap the room holds live messages; end_fill gives read and held ones in id order."""
    reader, peer = client()
    room.settle(reader, 0)
    assert feed(room, 1, 3, 4) == [Arrival.LIVE, Arrival.GAP, Arrival.HELD]
    assert room.is_filling and room.filling_from() == 1
    pending = room.end_fill([message(2), message(3)])
    assert [m.id for m in pending] == [2, 3, 4]
    assert not room.is_filling
    for stored in pending:
        room.broadcast(stored)
    assert peer.ids == [1, 2, 3, 4]


def test_end_fill_drops_what_was_broadcast_already(room: Room) -> None:
    """A fill never hands back an id at or below the last broadcast."""
    feed(room, 1, 2, 3)
    room.begin_fill()
    assert [m.id for m in room.end_fill([message(2), message(3), message(4)])] == [4]


def test_a_hole_past_what_the_fill_read_keeps_the_rest_held(room: Room) -> None:
    """A message committed after the fill's read and still on its way is not skipped: what
    follows it stays held, and the room goes on filling until it comes."""
    reader, peer = client()
    room.settle(reader, 0)
    assert feed(room, 1, 3, 5) == [Arrival.LIVE, Arrival.GAP, Arrival.HELD]
    pending = room.end_fill([message(2), message(3)])  # read before 4 was committed
    assert [m.id for m in pending] == [2, 3]
    assert room.is_filling and [m.id for m in room.filling or ()] == [5]
    for stored in pending:
        room.broadcast(stored)
    for stored in room.end_fill([message(4), message(5)]):
        room.broadcast(stored)
    assert not room.is_filling
    assert peer.ids == [1, 2, 3, 4, 5]


def test_ids_the_read_skips_are_not_waited_for(room: Room) -> None:
    """Ids missing below the last one read are gone from the store (retention): not a hole."""
    feed(room, 1)
    room.begin_fill()
    assert [m.id for m in room.end_fill([message(5), message(7)])] == [5, 7]
    assert not room.is_filling


def test_before_any_broadcast_a_gap_counts_from_the_readers_history(room: Room) -> None:
    """With nothing broadcast yet, the first id past the readers' history is the next one: a
    later one arriving first is a gap, not live (it would make the earlier ones repeats)."""
    reader, _ = client()
    room.settle(reader, 0)
    assert feed(room, 3) == [Arrival.GAP]
    assert room.filling_from() == 0
    other = Room("empty", room.subscribed)
    assert feed(other, 3) == [Arrival.LIVE]  # no reader: nothing to count from


def test_a_held_client_gets_the_live_messages_kept_for_it(room: Room) -> None:
    """Messages broadcast while a client's history is read are kept for it, in order."""
    reader, peer = client()
    room.hold(reader)
    feed(room, 1, 2)
    held = room.unhold(reader)
    assert held is not None and [message_id for message_id, _ in held] == [1, 2]
    assert peer.ids == [] and room.unhold(reader) is None


def test_a_settling_client_reads_live_past_what_it_was_sent(room: Room) -> None:
    """A client sent history up to id 3 gets 4 on, live, and becomes a reader then."""
    feed(room, 1)
    reader, peer = client()
    room.settle(reader, 3)
    assert room.reads(reader) and reader not in room.readers
    feed(room, 2, 3, 4)
    assert peer.ids == [4] and reader in room.readers


def test_a_dropped_client_receives_nothing_wherever_it_was(room: Room) -> None:
    """drop() takes a client out of every step: held, settling, reading, watching."""
    held, held_peer = client()
    settling, settling_peer = client()
    room.hold(held)
    room.settle(settling, 0)
    room.watch(settling, 1)
    for gone in (held, settling):
        room.drop(gone)
    feed(room, 1)
    assert held_peer.ids == settling_peer.ids == []
    assert room.unhold(held) is None and room.watched_from(settling) is None


def test_resetting_history_counts_from_zero_and_frees_the_settling(room: Room) -> None:
    """After the store's ids went back, id 1 is live again and settling clients read it."""
    feed(room, 1, 2)
    reader, peer = client()
    room.settle(reader, 9)
    room.reset_history()
    assert room.last_id == 0 and reader in room.readers
    assert feed(room, 1) == [Arrival.LIVE] and peer.ids == [1]


def test_a_watcher_is_known_until_it_joins(room: Room) -> None:
    """watched_from() gives the first id a watching reader read live, until end_watch()."""
    watcher, _ = client()
    assert room.watched_from(watcher) is None
    room.watch(watcher, 7)
    assert room.watched_from(watcher) is None  # not reading yet
    room.settle(watcher, 6)
    assert room.watched_from(watcher) == 7
    room.end_watch(watcher)
    assert room.watched_from(watcher) is None and room.reads(watcher)


def test_a_user_leaves_with_its_last_connection(room: Room) -> None:
    """remove_member() is True only for the user's last connection; counting is once each way."""
    (one, _), (two, _) = client(), client()
    room.add_member("ann", one)
    room.add_member("ann", two)
    assert room.count_in("ann") and not room.count_in("ann")
    room.listen(one)
    assert room.remove_member("ann", one) is False and one not in room.listeners
    assert room.remove_member("ann", two) is True and room.users == {}
    assert room.count_out("ann") and not room.count_out("ann")


def test_listeners_presented_while_notices_are_held_stay_fresh_until_sent(room: Room) -> None:
    """A listener whose presence was sent while notices were held is fresh until they go out."""
    (early, _), (late, _) = client(), client()
    room.listen(early)
    room.presented(early)
    assert early not in room.fresh  # nothing held: its list is the true one
    held = room.hold_notices()
    held.add("cy", {"type": "join", "username": "Cy", "count": 2})
    room.listen(late)
    room.presented(late)
    assert room.fresh == {late: True}
    released = room.release_notices()
    assert released is held and room.held is None
    assert held.count == 2 and list(held.changes) == ["cy"]
    room.notices_sent()
    assert room.fresh == {}


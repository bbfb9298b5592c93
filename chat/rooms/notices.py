"""Join and leave notices folded per room: a burst of churn reaches members as its net change.

The first notice after a quiet `notice-interval` goes out at once; those that follow within
the interval are held, and at its end each changed user's net change is sent: a join then a
leave of the same user sends nothing, as does a leave then a join under the same spelling.
Every frame sent at the end of an interval carries the room's latest `count`. A listener whose
`presence` list was read while notices were held (it may already reflect some of them) gets
each changed user's final state instead, so that applying what it receives gives the true list.
"""

from __future__ import annotations

import asyncio
from typing import Any

from chat.people.names import name_key
from chat.protocol.frame import Frame, Frames
from chat.rooms.room import Room


def fold(first: dict[str, Any], last: dict[str, Any]) -> tuple[list[dict[str, Any]],
                                                                list[dict[str, Any]]]:
    """A user's notices of one interval as (the net change, the final state) to send."""
    if first is last or first["type"] == last["type"]:
        return [last], [last]
    if first["type"] == "join":  # absent before, absent after
        return [], [last]
    if first.get("username") == last.get("username"):  # present before and after, same name
        return [], [last]
    return [first, last], [first, last]


class Notices:
    """Sends a room's join and leave notices to its listeners, at most one burst per interval."""

    def __init__(self, rooms: dict[str, Room], interval: float) -> None:
        self.rooms = rooms
        self.interval = interval

    def deliver(self, room: Room, event: dict[str, Any], body: bytes) -> None:
        """A join or leave notice from the broker: sent now if the room is quiet, else held."""
        about = name_key(str(event.get("username", "")))
        held = room.held
        if held is None:
            send(room, Frame(body), about)
            if self.interval > 0:
                self._hold(room)
            return
        held.add(about, event)

    def _hold(self, room: Room) -> None:
        room.hold_notices()
        asyncio.get_running_loop().call_later(self.interval, self._release, room)

    def _release(self, room: Room) -> None:
        held = room.release_notices()
        if held is None or self.rooms.get(room.name) is not room:
            return  # the room was closed here meanwhile; a new one starts from its presence
        net: list[tuple[str, list[Frame]]] = []
        final: list[tuple[str, list[Frame]]] = []
        for about, (first, last) in held.changes.items():
            changed, state = fold(first, last)
            frames = {id(event): Frame.of(counted(event, held.count)) for event in state + changed}
            net.append((about, [frames[id(event)] for event in changed]))
            final.append((about, [frames[id(event)] for event in state]))
        send_interval(room, net, final)
        room.notices_sent()
        if held.changes:
            self._hold(room)  # still churning: keep folding


def counted(event: dict[str, Any], count: int | None) -> dict[str, Any]:
    """The event with the room's latest member count (an older one may have been folded)."""
    return event if count is None else {**event, "count": count}


def send(room: Room, frame: Frame, about: str) -> None:
    """Send a notice frame to the room's listeners but the user it is about."""
    for client in room.listeners:
        user = client.user
        if user is None or user.key != about:
            client.peer.send(frame)


class Batch:
    """One interval's notices, each user's in order, as one queueing per listener: the frames
    of all but the listener's own user (cut once per user: two tabs share it)."""

    __slots__ = ("_all", "_spans", "_without")

    def __init__(self, parts: list[tuple[str, list[Frame]]]) -> None:
        frames = [frame for _, part in parts for frame in part]
        self._all = Frames(frames)
        # A user's frames: where they start and end in the list, and in the joined bytes.
        self._spans: dict[str, tuple[int, int, int, int]] = {}
        first = start = 0
        for about, part in parts:
            size = sum(len(frame.wire) for frame in part)
            self._spans[about] = (first, first + len(part), start, start + size)
            first, start = first + len(part), start + size
        self._without: dict[str, Frames] = {}

    def for_user(self, key: str | None) -> Frames:
        """The frames a listener whose user is `key` gets."""
        span = None if key is None else self._spans.get(key)
        if span is None or span[0] == span[1]:
            return self._all
        assert key is not None
        frames = self._without.get(key)
        if frames is None:
            first, end, start, stop = span
            everyone = self._all
            frames = self._without[key] = Frames.cut(
                everyone.frames[:first] + everyone.frames[end:],
                everyone.wire[:start] + everyone.wire[stop:])
        return frames


def send_interval(room: Room, net: list[tuple[str, list[Frame]]],
                  final: list[tuple[str, list[Frame]]]) -> None:
    """Send an interval's notices: each user's net change (`net`), or to a listener whose
    `presence` was read meanwhile each user's final state (`final`); never a user's own.

    A reconnect storm joins thousands of users in each interval: one queueing per listener,
    not one per listener and user (bench/rejoin.py; docs/performance.md, "Rejoining rooms").
    """
    batches = {False: Batch(net), True: Batch(final)}
    fresh = room.fresh
    for client in room.listeners:
        user = client.user
        frames = batches[client in fresh].for_user(None if user is None else user.key)
        if frames.frames:
            client.peer.send_frames(frames)

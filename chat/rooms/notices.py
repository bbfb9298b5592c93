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
from chat.protocol.frame import Frame
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
        for about, (first, last) in held.changes.items():
            net, final = fold(first, last)
            frames = {id(event): Frame.of(counted(event, held.count)) for event in final + net}
            send(room, [frames[id(event)] for event in net], about,
                 [frames[id(event)] for event in final])
        room.notices_sent()
        if held.changes:
            self._hold(room)  # still churning: keep folding


def counted(event: dict[str, Any], count: int | None) -> dict[str, Any]:
    """The event with the room's latest member count (an older one may have been folded)."""
    return event if count is None else {**event, "count": count}


def send(room: Room, frames: Frame | list[Frame], about: str,
         fresh_frames: list[Frame] | None = None) -> None:
    """Send notice frames to the room's listeners but the user they are about."""
    net = [frames] if isinstance(frames, Frame) else frames
    final = net if fresh_frames is None else fresh_frames
    if not net and not (final and room.fresh):
        return
    for client in room.listeners:
        user = client.user
        if user is not None and user.key == about:
            continue
        for frame in final if client in room.fresh else net:
            client.peer.send(frame)

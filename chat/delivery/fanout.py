"""Broker deliveries to this node's connections; room messages in id order, no gap, no repeat."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from chat.broker.base import Broker
from chat.delivery import channels
from chat.node.status import Stats
from chat.people.connections import User
from chat.people.directory import Directory
from chat.people.names import name_key
from chat.protocol import events, jsoncodec
from chat.protocol.frame import Frame
from chat.record import StoredMessage
from chat.rooms.notices import Notices, send
from chat.rooms.room import Arrival, Room
from chat.store.base import HistoryStore, StoreError
from chat.tasks import CLOSE_WAIT_S, Background

log = logging.getLogger("chat.fanout")

# Messages a node reads back from the store to fill a gap in a room's live feed (messages the
# broker lost while this node was cut off). A client that missed more resumes with `since`.
FILL_MAX = 1000
# How long a room holds a message that came before the one preceding it (s). With several
# nodes, two messages committed a moment apart can reach the broker in the other order (node A
# commits 5, node B commits 6, B's publish arrives first): the missing one is usually a
# millisecond behind, so it is waited for, and the store read only if it does not come.
REORDER_WAIT_S = 0.01
# Reads of the store in a row that bring nothing new while a message past a hole is held (a
# read made after that message arrived holds every id below it: a second read closes any hole).
# Past this, the store is not the one the message's node wrote to (or lost it): what is held
# goes out. A read that brings something resets the count: in a burst from several nodes each
# read can close one hole while the next opens.
REFILL_MAX = 3
# Direct messages delivered here, remembered per (user, conversation) so that one delivered
# from the store (its node died before publishing it, chat/delivery/catchup.py) is not
# delivered again when the broker's copy comes late: the last ids of each, for so many pairs.
DM_SEEN_IDS = 64
DM_SEEN_PAIRS = 10_000


class Subscriptions:
    """The broker channels this node listens on, changed in the order the hub asks.

    The broker's own calls are coroutines, which start only when awaited: a subscribe awaited
    now would overtake an unsubscribe of the same channel scheduled a moment ago. Here every
    change is queued at once and run by one task, in order.
    """

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._changes: deque[tuple[str, bool, asyncio.Future[None] | None]] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    def add(self, channel: str) -> asyncio.Future[None]:
        """Listen on `channel`; the future is done once the broker delivers it."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue(channel, True, done)
        return done

    def remove(self, channel: str) -> None:
        self._queue(channel, False, None)

    async def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """The node stops: the changes queued so far are made (within `wait_s` s), later ones
        dropped (the broker closes next)."""
        self._closed = True
        worker = self._worker
        if worker is not None and not worker.done():
            await asyncio.wait({worker}, timeout=wait_s)
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        while self._changes:
            self._settle(self._changes.popleft()[2])

    @staticmethod
    def _settle(done: asyncio.Future[None] | None) -> None:
        if done is not None and not done.done():
            done.set_result(None)

    def _queue(self, channel: str, wanted: bool, done: asyncio.Future[None] | None) -> None:
        if self._closed:  # nobody is left to deliver to; whoever waits need not wait
            self._settle(done)
            return
        self._changes.append((channel, wanted, done))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._apply())

    async def _apply(self) -> None:
        while self._changes:
            channel, wanted, done = self._changes.popleft()
            try:
                if wanted:
                    await self.broker.subscribe(channel)
                else:
                    await self.broker.unsubscribe(channel)
            except Exception:
                log.exception("could not change the subscription to %r", channel)
            finally:  # also when close() cancels it
                self._settle(done)


class Fanout:
    """Turns each broker delivery into frames for this node's connections.

    A room's messages arrive nearly in id order (each node publishes after its commit; one
    subscriber connection per node). What this node missed while cut off from the broker, or
    what a node that died after its commit never published, shows as a gap: the next id is more
    than one past the last broadcast. The room then holds its live messages for REORDER_WAIT_S
    (the missing one may just be late), then reads what is still missing from the store, and
    broadcasts them all in order.
    """

    def __init__(self, rooms: dict[str, Room], users: Directory, stats: Stats,
                 store: HistoryStore, *, notice_interval: float = 0.0,
                 notices_max_members: int = 0) -> None:
        self.rooms = rooms
        self.notices = Notices(rooms, notice_interval)
        self.notices_max_members = notices_max_members  # 0: every room has notices
        self.users = users
        self.stats = stats
        self.store = store
        self._room_prefix = channels.room("")
        self._user_prefix = channels.user("")
        self.fills = Background()  # rooms reading what they missed from the store
        self._waiting: dict[str, asyncio.TimerHandle] = {}  # rooms in their REORDER_WAIT_S
        self._dm_seen: OrderedDict[tuple[str, str], deque[int]] = OrderedDict()
        # Controls from any node (chat/rooms/control.py): (room or None, user or None, control).
        self.on_control: Callable[[Room | None, User | None, dict[str, Any]], None] | None = None
        # The ids moderators removed from a room between two ids (chat/rooms/), for gap fills:
        # a removal made while this node was cut off must not reach its readers live.
        self.removed: Callable[[str, int, int], Awaitable[set[int]]] | None = None

    def deliver(self, channel: str, payload: bytes) -> None:
        """The broker's callback: one payload (chat/delivery/channels.py) on one channel."""
        kind, body = payload[0], payload[1:]
        if kind == channels.MESSAGE:
            stored = channels.from_fields(jsoncodec.loads(body))
            room = self.rooms.get(stored.conversation)
            if room is not None:
                self._message(room, stored)
        elif kind == channels.DIRECT:
            user = self.users.by_party.get(channel.removeprefix(self._user_prefix))
            if user is not None:
                self._direct(user, channels.from_fields(jsoncodec.loads(body)))
        elif kind == channels.NOTICE:
            room = self.rooms.get(channel.removeprefix(self._room_prefix))
            if room is not None:
                self._notice(room, body)
        elif kind == channels.USER_EVENT:
            user = self.users.by_party.get(channel.removeprefix(self._user_prefix))
            if user is not None:
                frame = Frame(body)
                for client in user.typed_clients():
                    client.peer.send(frame)
        elif kind == channels.CONTROL:
            if self.on_control is not None:
                self.on_control(self.rooms.get(channel.removeprefix(self._room_prefix)),
                                self.users.by_party.get(channel.removeprefix(self._user_prefix)),
                                jsoncodec.loads(body))
        else:
            log.warning("ignored a payload of unknown kind %r on %r", payload[:1], channel)

    def _message(self, room: Room, stored: StoredMessage) -> None:
        arrival = room.accept(stored)
        if arrival is Arrival.LIVE:
            self.stats.deliveries += room.broadcast(stored)
        elif arrival is Arrival.GAP:
            self._waiting[room.name] = asyncio.get_running_loop().call_later(
                REORDER_WAIT_S, self._waited, room)

    def _waited(self, room: Room) -> None:
        """The wait for a late message is over: go on if the held ones follow on, else fill."""
        self._waiting.pop(room.name, None)
        floor = room.filling_from()
        held = sorted({m.id for m in room.filling or () if m.id > floor})
        if held == list(range(floor + 1, floor + 1 + len(held))):
            for stored in room.end_fill([]):
                self.stats.deliveries += room.broadcast(stored)
        else:
            self.fill(room)

    def _direct(self, user: User, stored: StoredMessage) -> None:
        if not self.dm_unseen(user, stored):
            return  # read from the store already (chat/delivery/catchup.py)
        frame = Frame.of(events.direct(stored))
        recipients = user.typed_clients()
        for client in recipients:
            client.peer.send(frame)
        self.stats.deliveries += len(recipients)

    def _notice(self, room: Room, body: bytes) -> None:
        """Join, leave and typing notices go to the room's members but the user they are about.

        Joins and leaves are folded per room (chat/rooms/notices.py); typing is already throttled.
        """
        event: dict[str, Any] = jsoncodec.loads(body)
        if event.get("type") in ("join", "leave"):
            busy = self.notices_max_members
            if busy and isinstance(event.get("count"), int) and event["count"] > busy:
                return  # a busy room: its members learn who is there from `members`
            self.notices.deliver(room, event, body)
        else:
            send(room, Frame(body), name_key(str(event.get("username", ""))))

    def dm_seen(self, user: User, conversation: str, message_id: int) -> bool:
        """Whether that direct message was delivered to the user here (as far as remembered)."""
        seen = self._dm_seen.get((user.party, conversation))
        return seen is not None and message_id in seen

    def dm_unseen(self, user: User, stored: StoredMessage) -> bool:
        """Whether the direct message is new to the user here; it is remembered as seen."""
        pair = (user.party, stored.conversation)
        seen = self._dm_seen.get(pair)
        if seen is None:
            seen = self._dm_seen[pair] = deque(maxlen=DM_SEEN_IDS)
            if len(self._dm_seen) > DM_SEEN_PAIRS:
                self._dm_seen.popitem(last=False)
        else:
            self._dm_seen.move_to_end(pair)
            if stored.id in seen:
                return False
        seen.append(stored.id)
        return True

    def deliver_direct(self, user: User, stored: StoredMessage) -> None:
        """A direct message read from the store: to the user's connections, unless seen."""
        self._direct(user, stored)

    # Gaps

    def fill(self, room: Room, reads: int = 0) -> None:
        """Read what the room's live feed may have missed, then go on live (no gap, no repeat);
        `reads`: reads of the store already made for this gap."""
        waiting = self._waiting.pop(room.name, None)
        if waiting is not None:
            waiting.cancel()
        room.begin_fill()
        self.stats.gap_fills += 1
        self.fills.spawn(self._fill(room, reads + 1))

    def fill_all(self) -> None:
        """After the broker was lost and is back: every room catches up from the store."""
        for room in list(self.rooms.values()):
            if not room.is_filling or room.name in self._waiting:
                self.fill(room)

    async def _fill(self, room: Room, reads: int) -> None:
        after = room.filling_from()
        failed = False
        try:
            missed = [] if after < 0 else await self.store.after(room.name, after, FILL_MAX)
            if not missed and after > 0:
                latest = await self.store.latest(room.name, 1)
                latest_id = latest[-1].id if latest else 0
                if latest_id < after:
                    log.warning("the history of %s went back to id %d (was %d): the store lost "
                                "data?", room.name, latest_id, room.last_id)
                    room.reset_history()
                    missed = await self.store.after(room.name, 0, FILL_MAX)  # all new
        except StoreError as exc:
            log.warning("could not fill a gap in %s from the store: %s", room.name, exc)
            missed, failed = [], True
        removed = await self._removed(room.name, missed)
        for stored in room.end_fill(missed, final=failed or reads >= REFILL_MAX):
            if stored.id in removed or stored.deleted is not None:  # a tombstone: skipped too
                room.skip(stored.id)
            else:
                self.stats.deliveries += room.broadcast(stored)
        if room.is_filling:  # held past a message committed after the read: read again
            # A read that moved the room on closed its hole: the one left is the next one a
            # burst opened, not one the store lacks, so the reads in a row count from 0 again.
            self.fill(room, reads if room.filling_from() == after else 0)

    async def _removed(self, name: str, missed: list[StoredMessage]) -> set[int]:
        """The ids of `missed` removed by moderators (asked whatever Room.removals says: a
        removal during an outage did not reach this node's room)."""
        if self.removed is None or not missed:
            return set()
        try:
            return await self.removed(name, missed[0].id, missed[-1].id)
        except StoreError as exc:  # not knowing which, send none rather than a removed one
            log.warning("removed messages of %s unavailable: %s", name, exc)
            return {stored.id for stored in missed}

"""What a client missed: history on join, resume and paging, then live with no gap or repeat."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from chat.history import quotes
from chat.people import identity
from chat.people.connections import Client
from chat.protocol import events, jsoncodec
from chat.protocol.frame import Frame, Frames
from chat.record import Quote, StoredMessage
from chat.rooms.room import Room
from chat.store.base import HistoryStore, StoreError

log = logging.getLogger("chat.replay")

# Most changed messages one `changes` reply holds (also bounded by history-max-bytes): a
# client away long asks again (`more`) rather than get one huge frame.
CHANGES_PER_REPLY = 200

# Room in a history frame's budget for all but its messages: type, room or with (up to
# 32 characters of up to 4 bytes each), recovered, more, brackets.
ENVELOPE_BYTES = 256


class SharedRead:
    """One history read, shared by the joiners that waited for it, and its events encoded once
    for them all: a reconnect storm rejoins each room with the same `since` thousands of times."""

    __slots__ = ("encoded", "messages", "more", "recovered")

    def __init__(self, messages: list[StoredMessage], recovered: bool, more: bool) -> None:
        self.messages = messages
        self.recovered = recovered  # all that was missed
        self.more = more  # older ones exist
        self.encoded: tuple[list[bytes], bool] | None = None  # fit() of a join's reply


class Replay:
    """Reads a conversation's history for join replay, resume and paging, and delivers it.

    What one reply sends is bounded twice: `on_join` messages (a page: its `limit`), and
    `max_bytes` of JSON, keeping the newest messages that fit, and always at least one. Each
    message's avatar is shown as `avatars` (`--avatars`) shows them now (identity.shown).
    """

    def __init__(self, store: HistoryStore, on_join: int, max_bytes: int,
                 avatars: str = "initials") -> None:
        self.store = store
        self.avatars = avatars
        self.on_join = on_join  # messages a join replays at most
        self.max_bytes = max_bytes  # bytes of history one reply holds at most
        # Reads under way, by room, `since` and the room's version when each started.
        self._reads: dict[tuple[str, int | None, int], asyncio.Future[SharedRead]] = {}
        # Messages moderators removed (chat/rooms/): the rooms of this node, whose `removals`
        # says whether to ask, and the ids removed between two ids. None: none are hidden.
        self.rooms: Mapping[str, Room] | None = None
        self.hidden: Callable[[str, int, int], Awaitable[set[int]]] | None = None
        # The last read a watcher was shown, as (read, hidden ids, frames, their messages).
        self._watched: tuple[list[StoredMessage], set[int], Frames,
                             list[StoredMessage]] | None = None
        self.watch_renders = 0  # reads rendered for watchers, for tests
        self.join_renders = 0  # and for joiners

    async def _hidden(self, name: str, messages: list[StoredMessage]) -> set[int]:
        """The ids of `messages` deleted (tombstones) or removed by moderators before removing
        was deleting (read only for a room that has any)."""
        deleted = {message.id for message in messages if message.deleted is not None}
        room = self.rooms.get(name) if self.rooms is not None else None
        if room is None or not room.removals or self.hidden is None or not messages:
            return deleted
        try:
            return deleted | await self.hidden(name, messages[0].id, messages[-1].id)
        except StoreError as exc:  # not knowing which, show none rather than a removed one
            log.warning("removed messages of %s unavailable: %s", name, exc)
            return {message.id for message in messages}

    async def with_quotes(self, conversation: str,
                          messages: list[StoredMessage]) -> list[StoredMessage]:
        """`messages` with their replies' quotes as the originals are now (history/quotes.py)."""
        return await quotes.attach(self.store, self._hidden, conversation, messages)

    async def quote(self, conversation: str, message_id: int) -> Quote:
        """The quote of one message of `conversation` (deleted: none it shows); StoreError."""
        found = await quotes.originals(self.store, self._hidden, conversation, {message_id})
        return found[message_id]

    def _shared(self, room: Room, since: int | None) -> Awaitable[SharedRead]:
        """missed() for a client held in `room`, sharing a read already under way.

        A reconnect storm (a deploy, a network blip) sends thousands of joins of one room at
        once; each reading the store alone queues them on its few connections for seconds. A
        read started before this client was held has all it needs as long as nothing was
        broadcast in the room since the read started (the room's version is the same): what
        was committed meanwhile is in the read or reaches the client's hold.
        """
        key = (room.name, since, room.version)
        pending = self._reads.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._read_shared(room.name, since))
            self._reads[key] = pending
            pending.add_done_callback(lambda done: self._forget(key, done))
        return asyncio.shield(pending)  # a client that leaves cancels its wait, not the read

    def _forget(self, key: tuple[str, int | None, int],
                done: asyncio.Future[SharedRead]) -> None:
        if self._reads.get(key) is done:
            del self._reads[key]

    async def _read_shared(self, name: str, since: int | None) -> SharedRead:
        """missed() in a SharedRead: the messages, whether that is all, whether older exist."""
        return SharedRead(*await self._read(name, self.missed(name, since)))

    async def missed(self, conversation: str, since: int | None) -> tuple[
            list[StoredMessage], bool, bool]:
        """What follows `since` (or the latest); whether that is all; whether older ones exist."""
        limit = self.on_join
        if since is not None:
            after = await self.store.after(conversation, since, limit + 1)
            # Nothing after a `since` beyond the last id (a store that lost messages, a made-up
            # number) is not "all caught up": that client's view is not ours; it gets the latest.
            if len(after) <= limit and _continues(after, since) and (
                    after or await self._last_id(conversation) >= since):
                return after, True, False
        latest = await self.store.latest(conversation, limit + 1)
        return _newest(latest, limit), since is None, len(latest) > limit

    async def missed_before(self, conversation: str, since: int | None, upto: int) -> tuple[
            list[StoredMessage], bool, bool]:
        """missed() for a client that has read everything from id `upto` on."""
        limit = self.on_join
        if since is None:
            return [], True, bool(await self.store.before(conversation, upto, 1))
        if since + 1 >= upto:
            if await self._last_id(conversation) >= since:
                return [], True, False
            return [], False, bool(await self.store.before(conversation, upto, 1))
        after = [m for m in await self.store.after(conversation, since, limit + 1) if m.id < upto]
        if len(after) <= limit and _continues(after, since, upto):
            return after, True, False
        before = await self.store.before(conversation, upto, limit + 1)
        return _newest(before, limit), False, len(before) > limit

    async def _last_id(self, conversation: str) -> int:
        last = await self.store.latest(conversation, 1)
        return last[-1].id if last else 0

    async def catch_up(self, client: Client, room: Room, since: int | None,
                       changes: int | None = None) -> None:
        """Send a member a room's missed history, then make it a live reader: no gap, no repeat.
        Then what changed after `changes` (a resume's), or after the number the history reply
        carries (read before its messages: what changed meanwhile follows in `changes`)."""
        room.hold(client)
        mark = await self.last_change(room.name) if changes is None else None
        read = await self._shared(room, since)
        missed, recovered, more = read.messages, read.recovered, read.more
        hidden = await self._hidden(room.name, missed)  # while held: no live message is lost
        held = room.unhold(client)
        if held is None or client.closed or room.name not in client.rooms:
            return  # left or closed while the store was read
        if read.encoded is None:
            read.encoded = fit(missed, self._message, self.max_bytes - ENVELOPE_BYTES)
            self.join_renders += 1
        payloads, cut = read.encoded
        missed = missed[len(missed) - len(payloads):]
        client.reply(history_frame(_shown(payloads, missed, hidden), room=room.name,
                                    recovered=recovered and not (cut and since is not None),
                                    more=more or cut, change=mark))
        room.settle(client, _send_held(client, held, missed[-1].id if missed else (since or 0)))
        await self._follow_changes(client, room.name, changes, mark)

    async def _follow_changes(self, client: Client, name: str, changes: int | None,
                              mark: int | None) -> None:
        """After a join's history, now that the client reads live: the changes it lacks."""
        after = changes if changes is not None else mark
        if after is None or client.closed:
            return  # the store failed: the client asks `changes` itself
        try:
            await self.send_changes(client, name, after, room=name, always=changes is not None)
        except StoreError as exc:
            log.warning("changes of %s unavailable: %s", name, exc)

    async def last_change(self, conversation: str) -> int | None:
        """The conversation's change number, or None (logged) if the store failed."""
        try:
            return await self.store.last_change(conversation)
        except StoreError as exc:
            log.warning("the change number of %s is unavailable: %s", conversation, exc)
            return None

    async def send_changes(self, client: Client, conversation: str, after: int, *,
                           room: str | None = None, peer: str | None = None,
                           always: bool = True) -> None:
        """A `changes` reply: the messages changed after change number `after` as they are
        now, in change order, the newest that fit in history-max-bytes (`more`: ask again)."""
        changed = await self.store.changes(conversation, after, CHANGES_PER_REPLY + 1)
        if not changed and not always:
            return
        budget = self.max_bytes - ENVELOPE_BYTES
        sent: list[dict[str, Any]] = []
        mark = after
        for stored in changed[:CHANGES_PER_REPLY]:
            event = events.change_of(identity.shown(stored, self.avatars))
            budget -= len(jsoncodec.dumps(event)) + 1
            if sent and budget < 0:
                break
            sent.append(event)
            mark = stored.change
        more = len(sent) < len(changed)
        client.reply(Frame.of(events.changes(sent, mark, more, room=room, peer=peer)))

    async def watch(self, client: Client, room: Room) -> None:
        """Show a connection that is no member the room's latest messages, then live ones."""
        room.hold(client)
        missed = (await self._shared(room, None)).messages
        hidden = await self._hidden(room.name, missed)
        held = room.unhold(client)
        if held is None or client.closed:
            return  # joined elsewhere or closed while the store was read
        shown, missed = self._watch_frames(missed, hidden)
        client.peer.replies(shown)  # a frame each, as the tutorial's page shows them
        last = missed[-1].id if missed else 0
        first_live = min([missed[0].id if missed else last + 1, *(i for i, _ in held)])
        room.watch(client, first_live)
        room.settle(client, _send_held(client, held, last))

    def _watch_frames(self, missed: list[StoredMessage], hidden: set[int]
                      ) -> tuple[Frames, list[StoredMessage]]:
        """The frames a watcher is shown of one read, and the messages they are: made once for
        every connection that shares the read (a reconnect storm: thousands of them)."""
        made = self._watched
        if made is not None and made[0] is missed and made[1] == hidden:
            return made[2], made[3]
        payloads, _ = fit(missed, self._message, self.max_bytes)
        shown = missed[len(missed) - len(payloads):]
        frames = Frames([Frame(payload) for payload in _shown(payloads, shown, hidden)])
        self.watch_renders += 1
        # Holding the read's list keeps its identity from being reused by another.
        self._watched = (missed, hidden, frames, shown)
        return frames, shown

    async def catch_up_watcher(self, client: Client, room: Room, since: int | None,
                               first_live: int, changes: int | None = None) -> None:
        """Answer the join to a room of a connection that has read it live from `first_live`."""
        mark = await self.last_change(room.name) if changes is None else None
        missed, recovered, more = await self._read(
            room.name, self.missed_before(room.name, since, first_live))
        hidden = await self._hidden(room.name, missed)
        payloads, cut = fit(missed, self._message, self.max_bytes - ENVELOPE_BYTES)
        missed = missed[len(missed) - len(payloads):]
        client.reply(history_frame(_shown(payloads, missed, hidden), room=room.name,
                                    recovered=recovered and not cut, more=more or cut,
                                    change=mark))
        await self._follow_changes(client, room.name, changes, mark)

    def _message(self, stored: StoredMessage) -> dict[str, Any]:
        return events.message(identity.shown(stored, self.avatars))

    def _direct(self, stored: StoredMessage) -> dict[str, Any]:
        return events.direct(identity.shown(stored, self.avatars))

    async def _read(self, conversation: str,
                    reading: Awaitable[tuple[list[StoredMessage], bool, bool]]
                    ) -> tuple[list[StoredMessage], bool, bool]:
        """What missed() reads, replies quoted; with a store that fails, nothing (and older
        ones may exist)."""
        try:
            messages, recovered, more = await reading
        except StoreError as exc:
            log.warning("history of %s unavailable: %s", conversation, exc)
            return [], False, True
        return await self.with_quotes(conversation, messages), recovered, more

    async def page(self, conversation: str, before: int | None, limit: int) -> tuple[
            list[StoredMessage], bool]:
        """Up to `limit` messages just older than `before` (or the latest); True if more exist."""
        if before is None:
            page = await self.store.latest(conversation, limit + 1)
        else:
            page = await self.store.before(conversation, before, limit + 1)
        more = len(page) > limit
        page = page[1:] if more else page
        hidden = await self._hidden(conversation, page)
        shown = [message for message in page if message.id not in hidden] if hidden else page
        return await self.with_quotes(conversation, shown), more

    def page_frame(self, page: list[StoredMessage], more: bool, *, room: str | None,
                   peer: str | None, change: int | None = None) -> Frame:
        """The `history` frame answering a page request: the newest of `page` that fit."""
        render = self._direct if peer is not None else self._message
        payloads, cut = fit(page, render, self.max_bytes - ENVELOPE_BYTES)
        return history_frame(payloads, room=room, peer=peer, more=more or cut, change=change)


def _shown(payloads: list[bytes], messages: list[StoredMessage],
           hidden: set[int]) -> list[bytes]:
    """The payloads of `messages` (one each, in order) but those of the hidden ids."""
    if not hidden:
        return payloads
    return [payload for payload, message in zip(payloads, messages, strict=True)
            if message.id not in hidden]


def fit(messages: list[StoredMessage], render: Callable[[StoredMessage], dict[str, Any]],
        budget: int) -> tuple[list[bytes], bool]:
    """The newest messages' events, encoded, that fit in `budget` bytes; True if some did not."""
    payloads = [jsoncodec.dumps(render(stored)) for stored in messages]
    total = kept = 0
    for payload in reversed(payloads):
        total += len(payload) + 1  # and its comma
        if kept and total > budget:  # the newest is sent whatever its size: paging moves on
            break
        kept += 1
    start = len(payloads) - kept
    return payloads[start:], start > 0


def history_frame(payloads: list[bytes], **fields: Any) -> Frame:
    """A `history` frame around messages already encoded (each is encoded once, to measure)."""
    head = jsoncodec.dumps(events.history([], **fields))
    # events.history writes "messages" right after "type": the only place this can match.
    at = head.index(b'"messages":[]') + len(b'"messages":[')
    return Frame(head[:at] + b",".join(payloads) + head[at:])


def _send_held(client: Client, held: list[tuple[int, Frame]], last: int) -> int:
    """Send the live messages held past `last`; the last id the client was sent."""
    for message_id, frame in held:
        if message_id > last:
            client.peer.send(frame)
            last = message_id
    return last


def _newest(messages: list[StoredMessage], limit: int) -> list[StoredMessage]:
    return messages[len(messages) - limit:] if limit else []


def _continues(after: list[StoredMessage], since: int, upto: int | None = None) -> bool:
    """Whether `after` starts right after `since`: ids have no gaps, so a jump means pruned."""
    if after:
        return after[0].id == since + 1
    return upto is None or upto == since + 1

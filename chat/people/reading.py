"""Read state: each account's last id read per conversation, kept by the store, on every device.

A `read` frame stores the mark (chat/store/base.py's ReadMarks: it never moves back, and never
past the conversation's last id) and announces it on the user's channel, so every connection
of the user, on every node, gets the `read` event (the sender's is its acknowledgement). On a
connection's first `join` the user learns which direct conversations have unread messages,
and on every join the room's own counts: the `unread` event. Guests keep no read state.
"""

from __future__ import annotations

import logging
from typing import Any

from chat.broker.base import Broker, BrokerError
from chat.delivery import channels
from chat.people.connections import Client, User, user_of
from chat.people.directory import Directory
from chat.people.names import name_key
from chat.protocol import events
from chat.protocol.frame import Frame
from chat.protocol.mentions import mentions, pattern
from chat.protocol.parse import MarkRead, ProtocolError
from chat.record import StoredMessage, dm_key
from chat.rooms.registry import Rooms
from chat.store.base import HistoryStore, ReadMarks, StoreError

log = logging.getLogger("chat.reading")


class Reading:
    """Stores read marks and tells the user's devices; counts what is unread on join."""

    def __init__(self, store: HistoryStore, broker: Broker, users: Directory, rooms: Rooms,
                 unread_max: int) -> None:
        self.store = store
        self.marks = store if isinstance(store, ReadMarks) else None
        self.broker = broker
        self.users = users
        self.rooms = rooms
        self.unread_max = unread_max  # messages counted per conversation at most (unread-max)

    async def mark(self, client: Client, cmd: MarkRead) -> None:
        """Store the last id read of a conversation the user may read; tell all its devices."""
        refs: dict[str, Any] = {"room": cmd.room} if cmd.peer is None else {"to": cmd.peer}
        user = user_of(client, "read", **refs)
        if user.guest or self.marks is None:
            raise ProtocolError("sign_in_required", "read marks are kept for accounts only",
                                request="read", **refs)
        peer = None
        if cmd.peer is None:
            assert cmd.room is not None
            # Only a room this connection is in: any other answers as one that does not exist.
            conversation = self.rooms.of(client, cmd.room, "read").name
        else:
            party = await self.users.party_of(cmd.peer)
            if party is None:
                raise ProtocolError("not_online", f"{cmd.peer!r} is no account and is not "
                                    "online", request="read", to=cmd.peer)
            peer = party[0]
            conversation = dm_key(user.party, party[1])  # the user's own, always
        try:
            latest = await self.store.latest(conversation, 1)
            # Never past the last message: a mark ahead would hide the next ones as read.
            wanted = min(cmd.id, latest[-1].id if latest else 0)
            if wanted > 0:
                mark = await self.marks.mark_read(user.party, conversation, wanted)
            else:
                mark = (await self.marks.read_marks(user.party)).get(conversation, 0)
        except StoreError as exc:
            log.warning("could not store a read mark of %s: %s", conversation, exc)
            raise ProtocolError("store_failed", "the read mark could not be stored",
                                request="read", **refs) from None
        event = events.read(mark, room=None if peer else conversation, peer=peer)
        try:
            await self.broker.publish(channels.user(user.party),
                                      channels.user_event_payload(event))
        except BrokerError as exc:  # stored: the other devices read it on their next join
            log.warning("could not announce a read mark: %s", exc)
            client.reply(Frame.of(event))

    async def unread(self, client: Client, user: User, room: str | None,
                     directs: bool) -> None:
        """Send the `unread` event: the room's counts, and with `directs` every direct
        conversation with messages after the user's mark."""
        if user.guest or self.marks is None or not client.typed:
            return
        try:
            marks = await self.marks.read_marks(user.party)
            found: list[dict[str, Any]] = []
            if room is not None:
                entry = await self._counts(room, marks.get(room, 0), user, direct=False)
                if entry["read"] or entry["count"]:
                    found.append(entry)
            if directs:
                for key, last in sorted(await self.marks.direct_conversations(user.party)):
                    if last > marks.get(key, 0):
                        entry = await self._counts(key, marks.get(key, 0), user, direct=True)
                        if entry["count"]:
                            found.append(entry)
        except StoreError as exc:
            log.warning("could not read the unread counts of %s: %s", user.name, exc)
            return
        if found:  # nothing read and nothing unread: nothing to tell
            client.reply(Frame.of(events.unread(found)))

    async def _counts(self, conversation: str, mark: int, user: User,
                      direct: bool) -> dict[str, Any]:
        """One conversation's entry: its mark, last id, and the others' messages after the
        mark (the first unread-max of them; `more` if there are others)."""
        newest = await self.store.latest(conversation, 1)
        last = newest[-1].id if newest else 0
        # All read (the usual case on a reload): one indexed read, not unread-max messages.
        # A deleted message (a tombstone) is neither unread nor a mention: the store leaves
        # them out.
        assert self.marks is not None  # unread() returns before counting without marks
        after = await self.marks.unread(conversation, mark, self.unread_max) if last > mark else []
        theirs = [m for m in after if name_key(m.username) != user.key]
        named = pattern(user.name)
        entry: dict[str, Any] = (
            {"with": _peer(after or newest, user)} if direct else {"room": conversation})
        entry.update(read=mark, last=last, count=len(theirs),
                     mentions=sum(1 for m in theirs if mentions(m.text, named)),
                     more=len(after) == self.unread_max and after[-1].id < last)
        return entry


def _peer(messages: list[StoredMessage], user: User) -> str | None:
    """The other party's name in a direct conversation, as its latest message spells it."""
    for message in reversed(messages):
        if name_key(message.username) != user.key:
            return message.username
        if message.to is not None:
            return message.to
    return None

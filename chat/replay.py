"""What a client missed: history on join, resume and paging, then live with no gap or repeat."""

from __future__ import annotations

import logging

from chat import events
from chat.state import Client, Room
from chat.store.base import HistoryStore, StoredMessage, StoreError
from chat.wire import Frame

log = logging.getLogger("chat.replay")


class Replay:
    """Reads a conversation's history for join replay, resume and paging, and delivers it."""

    def __init__(self, store: HistoryStore, on_join: int) -> None:
        self.store = store
        self.on_join = on_join  # messages a join replays at most

    async def missed(self, conversation: str, since: int | None) -> tuple[
            list[StoredMessage], bool]:
        """What follows `since` (or the latest, for a first join); False if more were missed."""
        limit = self.on_join
        if since is None:
            return await self.store.latest(conversation, limit), True
        after = await self.store.after(conversation, since, limit + 1)
        if len(after) <= limit and _continues(after, since):
            return after, True
        return await self.store.latest(conversation, limit), False

    async def missed_before(self, conversation: str, since: int | None, upto: int) -> tuple[
            list[StoredMessage], bool]:
        """For a client that has read everything from id `upto` on: what it lacks after `since`."""
        limit = self.on_join
        if since is None or since + 1 >= upto:
            return [], True
        after = [m for m in await self.store.after(conversation, since, limit + 1) if m.id < upto]
        if len(after) <= limit and _continues(after, since, upto):
            return after, True
        return await self.store.before(conversation, upto, limit), False

    async def catch_up(
        self, client: Client, room: Room, since: int | None, *, watching: bool = False
    ) -> None:
        """Send a room's missed history, then make the client a live reader: no gap, no repeat."""
        room.joining[client] = []
        try:
            missed, recovered = await self.missed(room.name, since)
        except StoreError as exc:
            log.warning("history of %s unavailable: %s", room.name, exc)
            missed, recovered = [], False
        held = room.joining.pop(client, None)
        if held is None or client.closed or not (watching or room.name in client.rooms):
            return  # left or closed while the store was read
        if watching or client.legacy:
            for stored in missed:
                client.peer.reply(Frame.of(events.message(stored)))
        else:
            client.reply(Frame.of(events.history(
                [events.message(stored) for stored in missed], room=room.name,
                recovered=recovered)))
        last = missed[-1].id if missed else (since or 0)
        if watching:
            client.watch_from = missed[0].id if missed else last + 1
            for message_id, _ in held:
                client.watch_from = min(client.watch_from, message_id)
        for message_id, frame in held:
            if message_id > last:
                client.peer.send(frame)
                last = message_id
        room.settling[client] = last  # the history read may have seen one not yet sent live

    async def catch_up_watcher(self, client: Client, room: Room, since: int | None) -> None:
        """Answer the join to `general` of a connection that has been reading it live."""
        try:
            missed, recovered = await self.missed_before(room.name, since,
                                                                client.watch_from)
        except StoreError as exc:
            log.warning("history of %s unavailable: %s", room.name, exc)
            missed, recovered = [], False
        client.reply(Frame.of(events.history(
            [events.message(stored) for stored in missed], room=room.name, recovered=recovered)))

    async def page(self, conversation: str, before: int | None, limit: int) -> tuple[
            list[StoredMessage], bool]:
        """Up to `limit` messages just older than `before` (or the latest); True if more exist."""
        if before is None:
            page = await self.store.latest(conversation, limit + 1)
        else:
            page = await self.store.before(conversation, before, limit + 1)
        more = len(page) > limit
        return (page[1:] if more else page), more


def _continues(after: list[StoredMessage], since: int, upto: int | None = None) -> bool:
    """Whether `after` starts right after `since`: ids have no gaps, so a jump means pruned."""
    if after:
        return after[0].id == since + 1
    return upto is None or upto == since + 1

"""Messages another node committed but never published: heard of from the store, read from it.

Each node publishes a message on the broker after the store committed it; a node that dies in
between leaves a message that is stored but announced to no one. A store that can announce its
commits itself (PostgreSQL's NOTIFY, chat/store/postgres_notify.py) tells every node the first
and last id of each conversation in each commit. Here the node gives the broker's copy
CATCHUP_GRACE_S to arrive, then reads from the store what it still has not delivered: for a
room with readers here, the room's gap fill (chat/delivery/fanout.py); for a direct
conversation with a participant here, the ids not yet delivered to that user, once each.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from chat.delivery.fanout import FILL_MAX, Fanout
from chat.people.connections import User
from chat.people.directory import Directory
from chat.record import dm_parties
from chat.store.base import HistoryStore, StoreError
from chat.tasks import Background

log = logging.getLogger("chat.fanout")

# How long the broker's copy of a committed message may take before this node reads it from
# the store instead (s): the broker publish follows the commit by a millisecond or two, even on
# a busy node; a message whose node died after committing it reaches the others this late.
CATCHUP_GRACE_S = 0.5
# A room still filling when its check is due is checked again this much later (s).
RECHECK_S = 0.1


@runtime_checkable
class CommitFeed(Protocol):
    """A store that announces every commit, from any node (PostgreSQL)."""

    async def watch(self, on_commit: Callable[[str, int, int], None],
                    on_resumed: Callable[[], None]) -> None: ...


class Catchup:
    """The commits the store announced, checked CATCHUP_GRACE_S later against what was
    delivered here."""

    def __init__(self, fanout: Fanout, users: Directory, store: HistoryStore) -> None:
        self.fanout = fanout
        self.users = users
        self.store = store
        # (due, conversation, first id, last id, parties then online here), in the order heard
        # (so in order of due).
        self._due: deque[tuple[float, str, int, int, frozenset[str]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self.reads = Background()  # direct messages read from the store

    def committed(self, conversation: str, first: int, last: int) -> None:
        """The store's callback: ids `first` to `last` of `conversation` were committed."""
        loop = asyncio.get_running_loop()
        # A party that connects later reads these in its `unread` and history: not live again.
        direct = conversation.startswith("@")
        here = frozenset(self._online(conversation) if direct else ())
        self._due.append((loop.time() + CATCHUP_GRACE_S, conversation, first, last, here))
        if self._timer is None:
            self._timer = loop.call_at(self._due[0][0], self._check)

    def resumed(self) -> None:
        """The store's callback when its feed is back after a loss: every room catches up."""
        self.fanout.fill_all()

    def _check(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = None
        now = loop.time()
        while self._due and self._due[0][0] <= now:
            _, conversation, first, last, then = self._due.popleft()
            if conversation.startswith("@"):
                self._direct(conversation, first, last, then)
            else:
                self._room(conversation, first, last)
        if self._due:
            self._timer = loop.call_at(self._due[0][0], self._check)

    def _room(self, name: str, first: int, last: int) -> None:
        room = self.fanout.rooms.get(name)
        if room is None or not 0 <= room.filling_from() < last:
            return  # no reader here, or delivered
        if room.is_filling:  # a fill (or a wait) under way may have read before this commit
            loop = asyncio.get_running_loop()
            self._due.appendleft((loop.time() + RECHECK_S, name, first, last, frozenset()))
            return
        log.info("%s: ids up to %d were committed but not published; read from the store",
                 name, last)
        self.fanout.fill(room)

    def _online(self, conversation: str) -> list[str]:
        """The conversation's parties with a connection here now."""
        return [party for party in dm_parties(conversation)  # [] for one of old, by names
                if (user := self.users.by_party.get(party)) is not None
                and user.typed_clients()]

    def _direct(self, conversation: str, first: int, last: int, then: frozenset[str]) -> None:
        here = [self.users.by_party[party] for party in self._online(conversation)
                if party in then]
        if any(not self.fanout.dm_seen(user, conversation, id_)
               for user in here for id_ in range(first, last + 1)):
            self.fanout.stats.gap_fills += 1
            self.reads.spawn(self._read_direct(conversation, first, last, here))

    async def _read_direct(self, conversation: str, first: int, last: int,
                           users: list[User]) -> None:
        try:
            messages = await self.store.after(conversation, first - 1,
                                              min(last - first + 1, FILL_MAX))
        except StoreError as exc:
            log.warning("could not read %d direct message(s) from the store: %s",
                        last - first + 1, exc)
            return
        for user in users:
            for stored in messages:
                if stored.id <= last:
                    self.fanout.deliver_direct(user, stored)

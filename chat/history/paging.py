"""History pages on request (`history`): read from the store within each connection's budget."""

from __future__ import annotations

import logging
from time import monotonic

from chat.config import Settings
from chat.history.replay import Replay
from chat.limits import TokenBucket
from chat.node.status import Stats
from chat.people.connections import Client
from chat.people.directory import Directory
from chat.people.identity import legacy_party
from chat.protocol.frame import Frame
from chat.protocol.parse import History, ProtocolError
from chat.record import dm_key
from chat.store.base import StoreError

log = logging.getLogger("chat.hub")


class Pages:
    """Answers `history` requests; each connection may read so many bytes of them per second."""

    def __init__(self, settings: Settings, replay: Replay, stats: Stats,
                 directory: Directory) -> None:
        self.directory = directory
        self.rate = settings.history_bytes_per_s
        self.burst = settings.history_bytes
        self.replay = replay
        self.stats = stats
        # Bytes of history pages each connection may still read (made on its first page).
        self._budgets: dict[Client, TokenBucket] = {}

    async def page(self, client: Client, asker: str, conversation: str | None,
                   cmd: History) -> Frame:
        """The page `cmd` asks for, of a room (`conversation`) or of the DMs with cmd.peer.

        `asker`: the user's party id (people/identity.py); the peer's is resolved by the
        server (people/directory.py's party_of); a name nobody holds, its legacy party.
        """
        if cmd.peer is not None:
            party = await self.directory.party_of(cmd.peer)
            # A name nobody holds may be the legacy party of conversations from before
            # accounts that an admin gave the asker (accounts/adopt.py); a guest has none.
            other = legacy_party(cmd.peer) if party is None else party[1]
            conversation = dm_key(asker, other)  # includes the asker: always private
        assert conversation is not None
        budget = self._budgets.get(client)
        if budget is None:
            budget = self._budgets[client] = TokenBucket(self.rate, self.burst, monotonic())
        self._spend(budget, 0)  # in debt: not even worth reading the store
        # The latest page carries the change number read before it (docs/protocol.md).
        mark = await self.replay.last_change(conversation) if cmd.before is None else None
        try:
            page, more = await self.replay.page(conversation, cmd.before, cmd.limit)
        except StoreError as exc:
            log.warning("history of %s could not be read: %s", conversation, exc)
            raise ProtocolError("store_failed", f"history could not be read: {exc}",
                                request="history") from None
        frame = self.replay.page_frame(page, more, room=cmd.room, peer=cmd.peer, change=mark)
        self._spend(budget, len(frame.payload))
        return frame

    def forget(self, client: Client) -> None:
        """The connection closed."""
        self._budgets.pop(client, None)

    def _spend(self, budget: TokenBucket, size: int) -> None:
        """Spend `size` bytes of a connection's history budget, or refuse the page."""
        if not budget.spend(size, monotonic()):
            self.stats.rate_limited += 1
            raise ProtocolError(
                "rate_limited", f"more than {self.rate:,} bytes of history per second; "
                "ask again shortly", request="history", limit=self.rate)

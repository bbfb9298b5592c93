"""What a client missed: the history reads behind join, resume and paging."""

from __future__ import annotations

from chat.store.base import HistoryStore, StoredMessage


class Replay:
    """Reads a conversation's history for join replay, resume and paging."""

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

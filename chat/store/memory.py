"""A history store that lives in the process: for tests and throwaway runs."""

from __future__ import annotations

import bisect
from collections import defaultdict, deque

from chat.store.base import IDEMPOTENCY_WINDOW_MS, StoredMessage


class MemoryStore:
    """Keeps the last `per_conversation` messages of each conversation in memory."""

    def __init__(self, per_conversation: int = 10_000) -> None:
        self._limit = per_conversation
        self._logs: dict[str, deque[StoredMessage]] = defaultdict(deque)
        self._last_id: dict[str, int] = defaultdict(int)
        self._by_cid: dict[tuple[str, str], StoredMessage] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def append(
        self,
        conversation: str,
        *,
        username: str,
        avatar: str,
        text: str,
        ts: int,
        cid: str | None = None,
        to: str | None = None,
    ) -> tuple[StoredMessage, bool]:
        if cid is not None:
            seen = self._by_cid.get((username.casefold(), cid))
            if seen is not None and ts - seen.ts < IDEMPOTENCY_WINDOW_MS:
                return seen, False
        self._last_id[conversation] += 1
        message = StoredMessage(
            conversation, self._last_id[conversation], username, avatar, text, ts, cid, to
        )
        log = self._logs[conversation]
        log.append(message)
        if len(log) > self._limit:
            log.popleft()
        if cid is not None:
            self._by_cid[(username.casefold(), cid)] = message
        return message, True

    async def latest(self, conversation: str, limit: int) -> list[StoredMessage]:
        log = self._logs.get(conversation, deque())
        return list(log)[-limit:] if limit > 0 else []

    async def before(self, conversation: str, before_id: int, limit: int) -> list[StoredMessage]:
        log = list(self._logs.get(conversation, deque()))
        end = bisect.bisect_left(log, before_id, key=lambda m: m.id)
        return log[max(0, end - limit) : end]

    async def after(self, conversation: str, after_id: int, limit: int) -> list[StoredMessage]:
        log = list(self._logs.get(conversation, deque()))
        start = bisect.bisect_right(log, after_id, key=lambda m: m.id)
        return log[start : start + limit]

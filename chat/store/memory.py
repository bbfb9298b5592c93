"""A history store that lives in the process: for tests and throwaway runs."""

from __future__ import annotations

import bisect
import time
from collections import defaultdict, deque
from itertools import islice

from chat.store.base import DAY_MS, IDEMPOTENCY_WINDOW_MS, StoredMessage


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class MemoryStore:
    """Keeps the last `per_conversation` messages of each conversation, none older than `days`."""

    publishes = False

    def __init__(self, per_conversation: int = 10_000, days: float = 0) -> None:
        if per_conversation < 1 or days < 0:
            raise ValueError(f"per_conversation={per_conversation} must be 1 or more and "
                             f"days={days} 0 or more")
        self._limit = per_conversation
        self._max_age_ms = int(days * DAY_MS)  # 0: keep messages whatever their age
        self._logs: dict[str, deque[StoredMessage]] = defaultdict(deque)
        self._last_id: dict[str, int] = defaultdict(int)
        # Insertion order is ts order (the server's clock), so expired cids sit at the front.
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
        self._forget_cids(ts)
        key = (username.casefold(), cid) if cid is not None else None
        if key is not None:
            seen = self._by_cid.get(key)
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
        self._expire(log, ts)
        if key is not None:
            self._by_cid.pop(key, None)  # re-inserted at the end, keeping ts order
            self._by_cid[key] = message
        return message, True

    async def latest(self, conversation: str, limit: int) -> list[StoredMessage]:
        log = self._read(conversation)
        return list(islice(log, max(0, len(log) - limit), None)) if limit > 0 else []

    async def before(self, conversation: str, before_id: int, limit: int) -> list[StoredMessage]:
        log = self._read(conversation)
        end = bisect.bisect_left(log, before_id, key=lambda m: m.id)
        return list(islice(log, max(0, end - limit), end)) if limit > 0 else []

    async def after(self, conversation: str, after_id: int, limit: int) -> list[StoredMessage]:
        log = self._read(conversation)
        start = bisect.bisect_right(log, after_id, key=lambda m: m.id)
        return list(islice(log, start, start + limit)) if limit > 0 else []

    async def prune(self) -> int:
        now = _now_ms()
        self._forget_cids(now)
        return sum(self._expire(log, now) for log in self._logs.values())

    def _read(self, conversation: str) -> deque[StoredMessage]:
        """The conversation's log, without the messages `days` has expired."""
        log = self._logs.get(conversation, deque())
        self._expire(log, _now_ms())
        return log

    def _expire(self, log: deque[StoredMessage], now_ms: int) -> int:
        """Drop the messages older than `days` from the front of `log`; how many it dropped."""
        dropped = 0
        while self._max_age_ms and log and log[0].ts < now_ms - self._max_age_ms:
            log.popleft()
            dropped += 1
        return dropped

    def _forget_cids(self, now_ms: int) -> None:
        """Drop the cids that are out of the idempotency window, oldest first."""
        while self._by_cid:
            key, oldest = next(iter(self._by_cid.items()))
            if now_ms - oldest.ts < IDEMPOTENCY_WINDOW_MS:
                break
            del self._by_cid[key]

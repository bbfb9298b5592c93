"""A history store that lives in the process: for tests and throwaway runs."""

from __future__ import annotations

import bisect
import dataclasses
import time
from collections import defaultdict, deque
from itertools import islice

from chat.record import StoredMessage
from chat.store.base import DAY_MS, IDEMPOTENCY_WINDOW_MS, PERMANENT_CONVERSATION, CidReused

# Without a writer thread to run it, room retention runs from append, at most this often.
RETIRE_INTERVAL_MS = 60_000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class MemoryStore:
    """Keeps the last `per_conversation` messages of each conversation, none older than `days`,
    and no conversation whose newest message is older than `room_days`."""

    def __init__(self, per_conversation: int = 10_000, days: float = 0, *,
                 room_days: float = 0) -> None:
        if per_conversation < 1 or days < 0 or room_days < 0:
            raise ValueError(f"per_conversation={per_conversation} must be 1 or more, "
                             f"days={days} and room_days={room_days} 0 or more")
        self._limit = per_conversation
        self._max_age_ms = int(days * DAY_MS)  # 0: keep messages whatever their age
        ages = [int(d * DAY_MS) for d in (days, room_days) if d > 0]
        self._room_age_ms = min(ages) if ages else 0  # as SQLite's Retention
        self._logs: dict[str, deque[StoredMessage]] = defaultdict(deque)
        self._last_id: dict[str, int] = {}
        self._last_ts: dict[str, int] = {}  # ts of each conversation's newest message
        self._retired_id = 0  # the highest last id of a deleted conversation
        self._retired_at = 0  # ms, when room retention last ran
        # Where each cid's message is. Insertion order is ts order (the server's clock), so
        # expired cids sit at the front.
        self._by_cid: dict[tuple[str, str], tuple[str, int, int]] = {}

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
        if ts - self._retired_at >= RETIRE_INTERVAL_MS:
            self._retire(ts)
        key = (username.casefold(), cid) if cid is not None else None
        message = StoredMessage(conversation, 0, username, avatar, text, ts, cid, to)
        if key is not None:
            seen = self._by_cid.get(key)
            if seen is not None and ts - seen[2] < IDEMPOTENCY_WINDOW_MS:
                return self._repeated(message, seen), False
        self._last_id[conversation] = self._last_id.get(conversation, self._retired_id) + 1
        self._last_ts[conversation] = max(ts, self._last_ts.get(conversation, ts))
        message = dataclasses.replace(message, id=self._last_id[conversation])
        log = self._logs[conversation]
        log.append(message)
        if len(log) > self._limit:
            log.popleft()
        self._expire(log, ts)
        if key is not None:
            self._by_cid.pop(key, None)  # re-inserted at the end, keeping ts order
            self._by_cid[key] = (conversation, message.id, ts)
        return message, True

    def _repeated(self, message: StoredMessage, seen: tuple[str, int, int]) -> StoredMessage:
        """The original of a repeated cid (as in SQLite's writer); CidReused across
        conversations."""
        conversation, message_id, ts = seen
        if conversation != message.conversation:
            assert message.cid is not None
            raise CidReused(message.cid)
        log = self._logs.get(conversation, deque())
        at = bisect.bisect_left(log, message_id, key=lambda m: m.id)
        if at < len(log) and log[at].id == message_id:
            return log[at]
        return dataclasses.replace(message, id=message_id, ts=ts)

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
        expired = sum(self._expire(log, now) for log in self._logs.values())
        return expired + self._retire(now)

    def _retire(self, now_ms: int) -> int:
        """Delete the conversations room retention no longer keeps; their messages' count."""
        self._retired_at = now_ms
        if not self._room_age_ms:
            return 0
        cutoff = now_ms - self._room_age_ms
        deleted = 0
        for key, last_ts in list(self._last_ts.items()):
            if last_ts < cutoff and key != PERMANENT_CONVERSATION:
                deleted += len(self._logs.pop(key, ()))
                self._retired_id = max(self._retired_id, self._last_id.pop(key))
                del self._last_ts[key]
        return deleted

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
            if now_ms - oldest[2] < IDEMPOTENCY_WINDOW_MS:
                break
            del self._by_cid[key]

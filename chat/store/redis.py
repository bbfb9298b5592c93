"""History in Redis Streams, shared by several server processes (`--db=redis://host:port/db`).

Why Redis Streams and not PostgreSQL, for a history that many nodes share:

- No new service: a cluster of chat nodes already needs Redis for its broker (fan-out,
  presence), so the history lives in the same server, reached through the same client.
- Ids and order from one atomic script: an append is ONE Lua script (EVALSHA) that checks the
  sender's `cid`, INCRs the conversation's counter and XADDs the message under the stream id
  `<id>-0`. Redis runs scripts one at a time, so two nodes appending at once get distinct ids,
  each one more than the last, and the stream's order IS the id order: `latest`, `before` and
  `after` are XREVRANGE/XRANGE over `<id>-0` ranges, with no index to keep.
- Capped per conversation natively: XADD ... MAXLEN ~ keeps each stream near its cap for the
  price of the append; `prune()` trims exactly (XTRIM MAXLEN) and applies `days` (XTRIM MINID
  below the first message young enough to keep). Idempotency keys expire by themselves (PX).

Keys, under a prefix (default `chat:`): `h:<conversation>` the stream, `n:<conversation>` its
last id (separate from the stream, so ids are never reused once retention has emptied it),
`rooms` the set of conversations prune() visits, `retired` the highest last id of any
conversation room retention deleted (a new counter starts there), and
`cid:<casefolded user>\\x1f<cid>` where the message of a `cid` is (its conversation, id and
ts, as JSON), for IDEMPOTENCY_WINDOW_MS (usernames cannot hold control characters, so `\\x1f`
cannot be part of one).

Durability is Redis's: an append returns once Redis has run the script, so an acknowledged
message survives what Redis's persistence survives. For SQLite's guarantee (survives a power
cut) run Redis with `appendonly yes` and `appendfsync always`; `everysec` may lose the last
second if Redis's host fails. Run it with `maxmemory-policy noeviction`: an evicted counter or
cid key would break the id and idempotency promises (a missing counter is re-seeded from its
stream's last id, which helps only while the stream is there).

Order within a process: appends AND reads go through one queue, sent in pipelined batches on
one connection by one task (like SQLite's group commit), and are resolved in that order. So a
process's appends complete in id order, and a read sees exactly the appends queued before it,
all of them resolved before the read returns.

In a cluster (`publish=True`) the append script also PUBLISHes the new message on its room's
channel (a DM on both parties' channels), so storing and announcing are one step: every node
receives a room's messages in id order, and no message is stored without being announced. A
read can still return a message before the broker delivers it live on this node: the hub's
replay drops ids a client was already sent.

Connections: redis-py's pool reconnects by itself on the next command. Appends and reads are
not retried (a retried append whose reply was lost would be stored twice): a failure raises
StoreError at once, the sender gets an error and resends with its `cid`, which is idempotent.
Retention and the start-up check use a second pool that retries once on a broken connection.
Timeouts: 2 s to connect and 5 s per command; a timeout is never retried (`retry_on_timeout`
off). Not for Redis Cluster: a script's keys would span hash slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry

from chat.delivery import channels
from chat.record import StoredMessage
from chat.redisqueue import CommandQueue, one_line
from chat.store.base import (
    DAY_MS,
    IDEMPOTENCY_WINDOW_MS,
    PERMANENT_CONVERSATION,
    CidReused,
    StoreError,
)
from chat.store.redis_scripts import APPEND as _APPEND
from chat.store.redis_scripts import RETIRE as _RETIRE
from chat.store.redis_scripts import appended, channels_of, from_entry, stream_id
from chat.store.redis_scripts import entries as read_entries

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 5.0
PRUNE_INTERVAL_S = 60.0  # as SQLite's writer: retention runs this often in the background
_SCAN_BATCH = 200  # entries read at a time while looking for the first message to keep

def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class RedisStore:
    """A HistoryStore in Redis Streams; many processes on one Redis share one history."""

    def __init__(self, url: str, per_conversation: int = 10_000, days: float = 0, *,
                 room_days: float = 0, prefix: str = channels.PREFIX,
                 publish: bool = False) -> None:
        if per_conversation < 1 or days < 0 or room_days < 0:
            raise ValueError(f"per_conversation={per_conversation} must be 1 or more, "
                             f"days={days} and room_days={room_days} 0 or more")
        self._cap = per_conversation
        self._max_age_ms = int(days * DAY_MS)  # 0: keep messages whatever their age
        ages = [int(d * DAY_MS) for d in (days, room_days) if d > 0]
        self._room_age_ms = min(ages) if ages else 0  # as SQLite's Retention
        self._prefix = prefix
        self.publishes = publish  # announce each new message on its broker channels
        self._scope = channels.scope(url)
        common: dict[str, Any] = {
            "decode_responses": True,
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            "socket_timeout": COMMAND_TIMEOUT_S,
            "retry_on_timeout": False,
            # Off, or redis-py stops checking a pooled connection for a close by the server
            # before reusing it, and the first command after a Redis restart fails.
            "maint_notifications_config": MaintNotificationsConfig(enabled=False),
        }
        # Appends and reads go in order through one queue and pipeline, never retried; retention
        # and start-up checks use a second pool that retries once on a broken connection.
        self._writes: Redis = Redis.from_url(url, retry=Retry(NoBackoff(), 0), **common)
        self._admin: Redis = Redis.from_url(
            url, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1,
                             supported_errors=(RedisConnectionError,)), **common)
        self._script = self._writes.register_script(_APPEND)
        self._retire = self._admin.register_script(_RETIRE)
        # One queue for appends and reads: a read sees exactly the appends this process asked
        # for before it, all resolved before the read returns.
        self._queue = CommandQueue(self._writes, [_APPEND], StoreError)
        self._pruner: asyncio.Task[None] | None = None
        self._open = False

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    async def start(self) -> None:
        """Connect and load the append script; StoreError if Redis cannot be reached."""
        try:
            await self._admin.ping()
            await self._writes.script_load(_APPEND)
        except (RedisError, OSError) as exc:
            await self._disconnect()
            raise StoreError(f"Redis: {one_line(exc)}") from None
        self._open = True
        self._queue.start()
        self._pruner = asyncio.create_task(self._prune_loop())

    async def close(self) -> None:
        """Store what is queued, stop the background tasks, close the connections."""
        if not self._open:
            return
        self._open = False
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        await self._queue.close()
        await self._disconnect()

    async def _disconnect(self) -> None:
        for client in (self._writes, self._admin):
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

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
        if not self._open:
            raise StoreError("the history store is not open")
        message = StoredMessage(conversation, 0, username, avatar, text, ts, cid, to)
        keys = [self._key("h", conversation), self._key("n", conversation),
                f"{self._prefix}rooms", f"{self._prefix}retired"]
        if cid is not None:
            keys.append(self._key("cid", f"{username.casefold()}\x1f{cid}"))
        args: list[str | int] = [self._cap, IDEMPOTENCY_WINDOW_MS, conversation, username, avatar,
                                 text, ts, cid or "", 1 if to is not None else 0, to or ""]
        if self.publishes:
            args.extend(self._scope + c for c in channels_of(message, self._prefix))
        sent = self._queue.put(("EVALSHA", self._script.sha, len(keys), *keys, *args),
                               lambda reply: appended(message, reply))
        # Cancelling this await does not withdraw the message: it is stored all the same.
        result: tuple[StoredMessage, bool] | CidReused = await sent
        if isinstance(result, CidReused):
            raise result
        return result

    async def latest(self, conversation: str, limit: int) -> list[StoredMessage]:
        if limit <= 0:
            return await self._check_open([])
        return await self._range(conversation, "+", "-", limit, newest_first=True)

    async def before(self, conversation: str, before_id: int, limit: int) -> list[StoredMessage]:
        if limit <= 0 or before_id <= 1:
            return await self._check_open([])
        return await self._range(conversation, stream_id(before_id - 1), "-", limit,
                                 newest_first=True)

    async def after(self, conversation: str, after_id: int, limit: int) -> list[StoredMessage]:
        if limit <= 0:
            return await self._check_open([])
        return await self._range(conversation, stream_id(max(after_id, 0) + 1), "+", limit,
                                 newest_first=False)

    async def _check_open(self, result: list[StoredMessage]) -> list[StoredMessage]:
        if not self._open:
            raise StoreError("the history store is not open")
        return result

    async def _range(self, conversation: str, start: str, end: str, limit: int, *,
                     newest_first: bool) -> list[StoredMessage]:
        """The entries from `start` to `end` (XREVRANGE if newest_first); oldest first."""
        await self._check_open([])

        def finish(reply: object) -> list[StoredMessage]:
            entries = read_entries(reply)
            if newest_first:
                entries.reverse()
            return [from_entry(conversation, entry_id, fields) for entry_id, fields in entries]

        command = "XREVRANGE" if newest_first else "XRANGE"
        key = self._key("h", conversation)
        result: list[StoredMessage] = await self._queue.put(
            (command, key, start, end, "COUNT", limit), finish)
        return result

    async def prune(self) -> int:
        """Trim every conversation to its cap exactly, and below the first young enough message."""
        await self._check_open([])
        deleted = 0
        now = _now_ms()
        try:
            async for conversation in self._admin.sscan_iter(f"{self._prefix}rooms"):
                deleted += await self._prune_one(str(conversation))
                if self._room_age_ms and conversation != PERMANENT_CONVERSATION:
                    deleted += max(0, await self._retire_one(str(conversation), now))
        except (RedisError, OSError) as exc:
            raise StoreError(f"Redis: {one_line(exc)}") from None
        return deleted

    async def _retire_one(self, conversation: str, now_ms: int) -> int:
        """Delete the conversation if room retention no longer keeps it; -1 if it is kept."""
        keys = [self._key("h", conversation), self._key("n", conversation),
                f"{self._prefix}rooms", f"{self._prefix}retired"]
        deleted: int = await self._retire(keys=keys,
                                          args=[conversation, now_ms - self._room_age_ms])
        return int(deleted)

    async def _prune_one(self, conversation: str) -> int:
        key = self._key("h", conversation)
        deleted: int = await self._admin.xtrim(key, maxlen=self._cap, approximate=False)
        if not self._max_age_ms:
            return deleted
        cutoff = _now_ms() - self._max_age_ms
        start = "-"
        while True:  # like MemoryStore: from the oldest, up to the first message to keep
            entries = read_entries(await self._admin.xrange(key, start, "+", count=_SCAN_BATCH))
            for entry_id, fields in entries:
                if int(fields["ts"]) >= cutoff:
                    kept = await self._admin.xtrim(key, minid=entry_id, approximate=False)
                    return deleted + int(kept)
            if len(entries) < _SCAN_BATCH:
                if not entries:
                    return deleted
                last = int(entries[-1][0].partition("-")[0])
                emptied = await self._admin.xtrim(key, minid=stream_id(last + 1),
                                                  approximate=False)
                return deleted + int(emptied)
            start = "(" + entries[-1][0]

    async def _prune_loop(self) -> None:
        while True:
            try:
                await self.prune()
            except StoreError as exc:
                log.warning("retention failed (retried in %.0f s): %s", PRUNE_INTERVAL_S, exc)
            await asyncio.sleep(PRUNE_INTERVAL_S)



"""The Redis history store of earlier versions, as copy-history reads it: never written to.

Until PostgreSQL became a cluster's history, `--db redis://host:port/db` kept it in Redis
Streams, in that URL's database, under the fixed prefix `chat:` (the old RedisStore took a
prefix argument, but the server never passed one):

- `h:<conversation>` a stream per room or direct conversation (a DM's key is record.dm_key's
  `@a\\x1fb`): message `id` is stream entry `<id>-0`, fields `u` username, `a` avatar, `t`
  text, `ts` (ms), and `c` (cid) and `to` (recipient) when set. Stream order is id order.
- `n:<conversation>` its counter, the last id given (kept when retention empties the stream;
  if it was lost, the old store went on from the stream's last generated id).
- `rooms` the set of conversations; `retired` the highest last id of any conversation room
  retention deleted (a conversation without a counter starts above it).
- `cid:<casefolded username>\\x1f<cid>` JSON `{"conversation", "id", "ts"}` (ids and ts as
  strings; keys written before references held the whole message, these fields among them),
  each expiring after the idempotency window.

Only read commands are sent (SCAN, SMEMBERS, GET, MGET, XINFO, XRANGE), so the copy may run
while old nodes still write, and under a Redis user allowed `+@read` alone.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import urlsplit

import redis
from redis.exceptions import RedisError, ResponseError

from chat.redisqueue import one_line
from chat.store.copy_sides import CopyError, Row, UsageError
from chat.urls import redacted

PREFIX = "chat:"  # the old store's, fixed: see the module's docstring
# Keys asked for per SCAN step and values per MGET: a few round trips per thousand keys, each
# reply small enough that Redis is never busy long with one.
SCAN_COUNT = 500
# Timeouts (s), as the old store's: a Redis that does not answer is reported, not waited on.
CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 5.0


def _entry_id(message_id: int) -> str:
    return f"{message_id}-0"


def _integer(value: Any) -> int:
    """An id or ts as the old store wrote it in JSON: a string of digits, or a number."""
    return int(value) if isinstance(value, int) or str(value).isdigit() else int(float(value))


def check_url(url: str) -> None:
    """UsageError unless `url` names a Redis database redis-py connects to as written."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise UsageError(f"{redacted(url)}: the port is not a number 0-65535") from None
    database = parts.path.strip("/")
    if parts.scheme != "unix" and database and not database.isdigit():
        # redis-py would read database 0 instead
        raise UsageError(f"{redacted(url)}: the database {database!r} is not a number")


class RedisSource:
    """The old Redis history store behind a redis:// URL, read with redis-py's sync client."""

    def __init__(self, url: str) -> None:
        self.name = redacted(url)
        self._redis = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=COMMAND_TIMEOUT_S)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Redis's errors as CopyError, in one line."""
        try:
            yield
        except (RedisError, OSError) as exc:
            raise CopyError(f"{self.name}: {one_line(exc)}") from None

    def _scan(self, kind: str) -> list[str]:
        """What follows `chat:<kind>:` in each key named so."""
        start = f"{PREFIX}{kind}:"
        return [key[len(start):] for key in self._redis.scan_iter(
            match=start + "*", count=SCAN_COUNT)]

    def check(self) -> None:
        """CopyError unless Redis answers and the database holds an old history."""
        with self._reading():
            self._redis.ping()
            found = (self._redis.exists(f"{PREFIX}rooms", f"{PREFIX}retired")
                     or self._scan("n") or self._scan("h"))
        if not found:
            raise CopyError(f"{self.name} holds no chat history (no {PREFIX}h:*, {PREFIX}n:*, "
                            f"{PREFIX}rooms or {PREFIX}retired key): is it the database the "
                            "old nodes' --db named?")

    def conversations(self) -> list[Row]:
        """(key, last id, ts of the newest message kept or 0) of each conversation, by key."""
        with self._reading():
            keys = set(cast("set[str]", self._redis.smembers(f"{PREFIX}rooms")))
            keys.update(self._scan("n"), self._scan("h"))
            found = [self._conversation(key) for key in sorted(keys)]
        return [row for row in found if row[1] > 0]  # no id ever given: nothing to carry

    def _conversation(self, key: str) -> Row:
        counter = cast("str | None", self._redis.get(f"{PREFIX}n:{key}"))
        last_id, last_ts = int(counter or 0), 0
        try:
            info = self._redis.xinfo_stream(f"{PREFIX}h:{key}")
        except ResponseError as exc:
            if "no such key" not in str(exc).lower():
                raise
            return key, last_id, last_ts
        last_id = max(last_id, int(str(info["last-generated-id"]).partition("-")[0]))
        newest = info.get("last-entry")
        if newest:
            last_ts = int(newest[1]["ts"])
        return key, last_id, last_ts

    def floor(self) -> int:
        """The retired floor: new conversations number on from above it."""
        with self._reading():
            return int(cast("str | None", self._redis.get(f"{PREFIX}retired")) or 0)

    def after(self, key: str, after_id: int, limit: int) -> list[Row]:
        """Up to `limit` messages of `key` after id `after_id`, oldest first."""
        return self._range(key, _entry_id(max(after_id, 0) + 1), "+", limit)

    def between(self, key: str, low: int, high: int) -> list[Row]:
        """The messages of `key` with ids `low` to `high`, oldest first."""
        return self._range(key, _entry_id(low), _entry_id(high), None)

    def _range(self, key: str, start: str, end: str, limit: int | None) -> list[Row]:
        with self._reading():
            entries = cast("list[tuple[str, dict[str, str]]]", self._redis.xrange(
                f"{PREFIX}h:{key}", start, end, count=limit))
        return [(key, int(entry_id.partition("-")[0]), fields["u"], fields["a"], fields["t"],
                 int(fields["ts"]), fields.get("c"), fields.get("to"), 0, None, 0)
                for entry_id, fields in entries]  # 0, None, 0: no guest mark, no reply, no bot then

    def live_cids(self, cutoff_ms: int) -> list[Row]:
        """(user key, cid, conversation, id, ts) of each cid whose message is after the cutoff."""
        rows: list[Row] = []
        with self._reading():
            names = self._scan("cid")
            for start in range(0, len(names), SCAN_COUNT):
                batch = names[start:start + SCAN_COUNT]
                values = cast("list[str | None]", self._redis.mget(
                    [f"{PREFIX}cid:{name}" for name in batch]))
                for name, value in zip(batch, values, strict=True):
                    if value is None:  # expired since the scan
                        continue
                    user_key, _, cid = name.partition("\x1f")  # a username holds no \x1f
                    try:
                        ref = json.loads(value)
                        row = (user_key, cid, str(ref["conversation"]), _integer(ref["id"]),
                               _integer(ref["ts"]))
                    except (ValueError, KeyError, TypeError):
                        raise CopyError(f"{self.name}: key {PREFIX}cid:{name!r} holds "
                                        f"{value[:80]!r}, not a cid's message") from None
                    if row[4] > cutoff_ms:
                        rows.append(row)
        return rows

    def close(self) -> None:
        self._redis.close()


def open_redis_source(url: str) -> RedisSource:
    """The old Redis history at `url`, checked to answer and to hold one."""
    try:
        source = RedisSource(url)
    except ValueError as exc:  # what redis-py finds wrong in the URL (unix://...?db=x)
        raise UsageError(f"{redacted(url)}: {exc}") from None
    try:
        source.check()
    except CopyError:
        source.close()
        raise
    return source

"""The roster of a cluster in Redis: names and room members counted per node, dead nodes reaped.

Keys, under the chat's prefix (default `chat:`):
- `node:<id>` a node's liveness, renewed every heartbeat, expiring after the node timeout;
  `nodes` the set of node ids that registered;
- `u:<key>` a name online: `name`, `avatar`, `th` (the token's SHA-256), `legacy` (1: only
  tutorial connections, which get no direct messages) and `n`, the number of nodes holding it;
  `nu:<node>` the names a node holds;
- `epoch` set by the first node ever and never removed: its absence means Redis lost the roster;
  `rebuilding` present (for `timeout`) while the nodes claim their names again after that;
- `p:<room>` the room's members (name key -> `{"username", "avatar"}`), `pc:<room>` how
  many nodes hold each; `np:<node>` the `<room>\\x1f<key>` pairs a node holds; `po:<room>` the
  members' keys in a sorted set (all scores 0, so in key order): a page of a big room is a
  bounded ZRANGEBYLEX and HMGET, its count an HLEN, never the whole hash.

Every change is one Lua script, so counts and notices agree: the script that takes a member's
count to 1 publishes its `join` on the room's channel, the one that takes it to 0 its `leave`
(each with `count`, the room's members after it).
Each node renews its key every `heartbeat` seconds and runs REAP for every other registered node:
for one whose key expired, that removes what it held and publishes the leaves, once (the script
checks the key itself). So a killed node's users leave within `timeout + heartbeat`.

A node that finds its own key gone (Redis restarted empty, or the node stalled past the
timeout and was reaped) registers again and calls `on_lost`: the hub claims and enters again
everything it holds (each script does nothing for what is already counted). It finds out at its
next beat, or at once when a claim it sends finds its key gone. Whoever first finds `epoch` gone
(a claim or a registration) sets `rebuilding` for `timeout`: by then every live node has beaten,
found its key gone and claimed its names again, and meanwhile no node grants a new name (a claim
fails with Rebuilding; a claim `again` is granted). A name claimed again that someone else holds
after all (a node that stalled, or one started in the instant before the loss was seen) stays
theirs: the claim answers None and the hub closes its user's connections here.

Commands go through one CommandQueue: they run in call order, as the Roster interface promises.
Like the store's scripts these touch keys they compute, so Redis Cluster is not supported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry

from chat.delivery import channels
from chat.redisqueue import CommandQueue
from chat.roster.base import Claim, Member, MemberPage, Rebuilding, RosterError, token_digest
from chat.roster.redis_scripts import (
    ACTIVE as _ACTIVE,
)
from chat.roster.redis_scripts import (
    ACTIVITY as _ACTIVITY,
)
from chat.roster.redis_scripts import (
    CLAIM as _CLAIM,
)
from chat.roster.redis_scripts import (
    ELSEWHERE as _ELSEWHERE,
)
from chat.roster.redis_scripts import (
    ENTER as _ENTER,
)
from chat.roster.redis_scripts import (
    EXIT as _EXIT,
)
from chat.roster.redis_scripts import (
    MEMBERS as _MEMBERS,
)
from chat.roster.redis_scripts import (
    REAP as _REAP,
)
from chat.roster.redis_scripts import (
    REGISTER as _REGISTER,
)
from chat.roster.redis_scripts import (
    RELEASE as _RELEASE,
)
from chat.roster.redis_scripts import (
    SCRIPTS as _SCRIPTS,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 5.0


def _page(reply: list[Any]) -> MemberPage:
    """A page of members from the reply of the page() function."""
    members: list[Member] = [json.loads(value) for value in reply[3::2]]
    return MemberPage(int(reply[0]), members, bool(int(reply[1])))


class RedisRoster:
    """The Roster of a cluster of nodes sharing one Redis (see the module's docstring)."""

    def __init__(self, url: str, *, heartbeat: float, timeout: float,
                 prefix: str = channels.PREFIX) -> None:
        self.node = secrets.token_hex(8)
        self.heartbeat = heartbeat
        self.timeout = timeout
        self.on_lost: Callable[[], None] | None = None  # given to start()
        self._prefix = prefix
        self._channels = channels.scope(url) + prefix  # what channel names start with
        self._client: Redis = Redis.from_url(
            url, decode_responses=True, retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=COMMAND_TIMEOUT_S,
            maint_notifications_config=MaintNotificationsConfig(enabled=False))
        self._queue = CommandQueue(self._client, _SCRIPTS, RosterError)
        self._sha = {script: self._client.register_script(script).sha for script in _SCRIPTS}
        self._beating: asyncio.Task[None] | None = None
        self._recovering: asyncio.Task[None] | None = None

    def _key(self, kind: str, name: str = "") -> str:
        return f"{self._prefix}{kind}{':' + name if name else ''}"

    def _run(self, script: str, keys: list[str], *args: str | int) -> asyncio.Future[Any]:
        return self._queue.put(("EVALSHA", self._sha[script], len(keys), *keys, *args))

    async def start(self, on_lost: Callable[[], None] | None = None) -> None:
        """Register this node; RosterError if Redis cannot be reached."""
        self.on_lost = on_lost
        self._queue.start()
        try:
            await self._queue.load_scripts()
            await self._register(starting=True)
        except (RedisError, OSError, RosterError) as exc:
            await self._queue.close()
            await self._client.aclose()
            raise RosterError(f"cannot reach Redis: {exc}") from exc
        self._beating = asyncio.create_task(self._beat(), name="roster-heartbeat")

    async def close(self) -> None:
        """Leave the cluster: this node's users leave every room now, not after the timeout."""
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating
            self._beating = None
        if self._recovering is not None:
            self._recovering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovering
        with contextlib.suppress(RosterError):
            await self._queue.put(("DEL", self._key("node", self.node)))
            await self._reap(self.node)
        await self._queue.close()
        await self._client.aclose()

    def claim(self, key: str, name: str, avatar: str, token: str | None, fresh: str, *,
              legacy: bool = False, again: bool = False) -> Awaitable[Claim | None]:
        given = token_digest(token) if token else ""
        reply = self._queue.put(
            ("EVALSHA", self._sha[_CLAIM], 5, self._key("u", key), self._key("nu", self.node),
             self._key("node", self.node), self._key("epoch"), self._key("rebuilding"),
             key, name, avatar, given, token_digest(fresh), int(legacy), int(again),
             int(self.timeout * 1000)))
        return self._claimed(reply, token, fresh)  # queued now: in order with what follows

    async def _claimed(self, pending: asyncio.Future[list[Any]], token: str | None,
                       fresh: str) -> Claim | None:
        reply = await pending
        if int(reply[0]) == -1:
            if int(reply[2]):
                self._log_loss()
            if int(reply[1]):  # this node's key is gone: it learns of the loss now, not at a beat
                self._recover()
            raise Rebuilding("the chat is counting who is online again (its Redis lost that); "
                             "try again in a few seconds")
        if int(reply[0]) == 0:
            return None
        return Claim(reply[1], reply[2], fresh if int(reply[3]) else (token or fresh))

    def release(self, key: str) -> None:
        self._background(self._run(_RELEASE, [self._key("u", key), self._key("nu", self.node)],
                                   key))

    def enter(self, room: str, key: str, name: str, avatar: str,
              limit: int, guest: bool = False, bot: bool = False) -> Awaitable[MemberPage]:
        member = json.dumps(channels.member_record(name, avatar, guest, bot))
        return self._queue.put(
            ("EVALSHA", self._sha[_ENTER], 4, self._key("p", room), self._key("pc", room),
             self._key("np", self.node), self._key("po", room), room, key, member,
             channels.room(room, self._channels), name, avatar, limit, int(guest), int(bot)),
            _page)

    def exit(self, room: str, key: str) -> None:
        self._background(self._run(_EXIT, [self._key("np", self.node)], self._prefix,
                                   self._channels, room, key))

    def members(self, room: str, after: str | None, limit: int) -> Awaitable[MemberPage]:
        bound = "-" if after is None else "(" + after
        return self._queue.put(
            ("EVALSHA", self._sha[_MEMBERS], 2, self._key("p", room), self._key("po", room),
             bound, limit), _page)

    def elsewhere(self, key: str) -> Awaitable[tuple[str, str] | None]:
        return self._queue.put(
            ("EVALSHA", self._sha[_ELSEWHERE], 2, self._key("u", key),
             self._key("nu", self.node), key),
            lambda reply: (reply[0], reply[1]) if reply else None)

    def active(self, key: str, ts: int) -> None:
        self._background(self._run(_ACTIVE, [self._key("u", key)], ts))

    def activity(self, keys: list[str]) -> Awaitable[list[int | None]]:
        return self._queue.put(
            ("EVALSHA", self._sha[_ACTIVITY], len(keys), *(self._key("u", k) for k in keys)),
            lambda reply: [int(act) if act != "" else None for act in reply])

    @staticmethod
    def _background(done: asyncio.Future[Any]) -> None:
        done.add_done_callback(_log_failure)

    # Liveness

    async def _register(self, *, starting: bool = False) -> bool:
        """Set this node's key; whether that found the roster lost (Redis restarted empty)."""
        keys = [self._key("node", self.node), self._key("nodes"), self._key("epoch"),
                self._key("rebuilding")]
        lost = await self._run(_REGISTER, keys, self.node, int(self.timeout * 1000),
                               int(starting))
        return bool(lost)

    def _recover(self) -> asyncio.Task[None]:
        """Register again and have the hub claim its names again (once, however often asked)."""
        if self._recovering is None or self._recovering.done():
            self._recovering = asyncio.create_task(self._register_again(), name="roster-lost")
        return self._recovering

    def _log_loss(self) -> None:
        log.warning("Redis lost the roster (restarted empty?): no new name is granted for %g s "
                    "while every node claims its users again", self.timeout)

    async def _register_again(self) -> None:
        log.warning("this node's presence was lost from Redis; registering it again")
        try:
            lost = await self._register()
        except RosterError as exc:
            log.warning("could not register again (retried at the next beat): %s", exc)
            return
        if lost:
            self._log_loss()
        if self.on_lost is not None:
            self.on_lost()

    def _reap(self, node: str) -> asyncio.Future[Any]:
        keys = [self._key("node", node), self._key("nodes"), self._key("nu", node),
                self._key("np", node)]
        return self._run(_REAP, keys, self._prefix, self._channels, node)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self.beat()
            except RosterError as exc:
                log.warning("roster heartbeat failed (retried in %g s): %s", self.heartbeat, exc)

    async def beat(self) -> None:
        """Renew this node's key (re-registering if it was lost) and reap the dead nodes."""
        renewed = await self._queue.put(("SET", self._key("node", self.node), "1",
                                         "PX", int(self.timeout * 1000), "XX"))
        if renewed is None:
            await self._recover()
        nodes: set[str] = await self._queue.put(("SMEMBERS", self._key("nodes")))
        for node in sorted(nodes - {self.node}):
            left = await self._reap(node)
            if left >= 0:
                log.warning("node %s stopped renewing its presence: removed, %d room members "
                            "left", node, left)


def _log_failure(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("a roster update failed: %s", done.exception())

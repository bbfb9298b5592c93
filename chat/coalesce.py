"""Store reads coalesced by key: what is asked while one call is at the store goes in the next.

A reconnect storm (every client signing in again after a deploy) would otherwise be one store
round trip per socket: on SQLite a hop to the store's thread and back for each (~70-110 us of
the loop's CPU per upgrade on the 2-core machine), on PostgreSQL a pooled connection each.
Batched, a storm costs one call per batch and each key is asked once, however many ask it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from itertools import islice
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

# Keys in one store call at most: each is a statement parameter (SQLite allows 32,766, 999
# before 3.32), and a batch's rows come back in one reply.
BATCH_MAX = 256


class Coalesced(Generic[K, V]):
    """`ask(key)` is answered by one call of `fetch(keys)` shared with every key asked before
    that call began; one call runs at a time, so under load each takes all that waited."""

    def __init__(self, fetch: Callable[[list[K]], Awaitable[Mapping[K, V]]],
                 most: int = BATCH_MAX) -> None:
        self._fetch = fetch
        self._most = most
        self._asked: dict[K, list[asyncio.Future[V | None]]] = {}
        self._runner: asyncio.Task[None] | None = None
        self._in_call = 0  # keys in the call under way
        self.calls = 0  # fetch calls made (a test sees the batching through it)

    @property
    def pending(self) -> int:
        """Keys asked and not yet answered: in the call under way or waiting for the next."""
        return self._in_call + len(self._asked)

    async def ask(self, key: K) -> V | None:
        """What `fetch` gave for `key` (None: nothing), or the exception its call raised."""
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._asked.setdefault(key, []).append(future)
        if self._runner is None:
            # Started now, first run on the next iteration: the upgrades read in this one join.
            self._runner = asyncio.ensure_future(self._run())
        return await future

    async def _run(self) -> None:
        try:
            while self._asked:
                batch = [(key, self._asked.pop(key))
                         for key in list(islice(self._asked, self._most))]
                self.calls += 1
                self._in_call = len(batch)
                try:
                    found = await self._fetch([key for key, _ in batch])
                    self._in_call = 0
                except Exception as exc:  # every waiter of this call gets it; the next is new
                    self._in_call = 0
                    for _, waiters in batch:
                        for waiter in _waiting(waiters):
                            waiter.set_exception(exc)
                    continue
                except BaseException:
                    for _, waiters in batch:
                        for waiter in _waiting(waiters):
                            waiter.cancel()
                    raise
                for key, waiters in batch:
                    value = found.get(key)
                    for waiter in _waiting(waiters):
                        waiter.set_result(value)
        finally:
            self._runner = None
            self._in_call = 0
            for waiters in self._asked.values():  # cancelled: no call will answer these
                for waiter in _waiting(waiters):
                    waiter.cancel()
            self._asked.clear()


def _waiting(waiters: list[asyncio.Future[V | None]]) -> list[asyncio.Future[V | None]]:
    """The futures not yet done (an asker cancelled meanwhile has its own done)."""
    return [waiter for waiter in waiters if not waiter.done()]

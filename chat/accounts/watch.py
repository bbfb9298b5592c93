"""Following the revocations table: every node reads what was committed after the last `seq`
it saw, every poll interval or at once when woken (PostgreSQL's NOTIFY wakes it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from chat.accounts.base import OnRevocation
from chat.accounts.model import Revocation
from chat.store.base import StoreError

log = logging.getLogger("chat.accounts")

Fetch = Callable[[int], Awaitable[list[Revocation]]]  # the revocations after a seq, in order


class RevocationWatch:
    """Calls each callback once per revocation, in seq order, for those committed after
    start(); a read that fails is retried at the next round (nothing is skipped)."""

    def __init__(self, fetch: Fetch, poll_s: float) -> None:
        self._fetch = fetch
        self._poll_s = poll_s
        self._callbacks: list[OnRevocation] = []
        self._last_seq = 0
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def add(self, callback: OnRevocation) -> None:
        self._callbacks.append(callback)

    def start(self, last_seq: int) -> None:
        """Follow the table from after `last_seq` (the highest committed now)."""
        self._last_seq = last_seq
        self._task = asyncio.create_task(self._run())

    def wake(self) -> None:
        """Read now: something was committed (a NOTIFY), or may have been (a reconnect)."""
        self._woken.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self._poll_s)
            self._woken.clear()
            try:
                await self._catch_up()
            except StoreError as exc:
                log.warning("reading revocations failed (retried in %.1f s): %s",
                            self._poll_s, exc)

    async def _catch_up(self) -> None:
        while True:
            found = await self._fetch(self._last_seq)
            for revocation in found:
                self._last_seq = revocation.seq
                for callback in self._callbacks:
                    try:
                        callback(revocation)
                    except Exception:  # one bad callback must not stop the others hearing
                        log.exception("a revocation callback failed")
            if not found:
                return

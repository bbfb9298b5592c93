"""Work a node starts and does not wait for (a last-seen write, a gap fill, a subscription
change): held while it runs, so that the node's close lets it finish, briefly, and stops
the rest. A task still pending when the event loop closes is destroyed mid-await: its write
is lost without a word and asyncio logs "Task was destroyed but it is pending!"."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

# How long a node's close waits for background work under way (s): a last-seen write or a
# gap fill takes milliseconds; a store or broker that hangs must not hold the shutdown.
CLOSE_WAIT_S = 2.0


class Background:
    """Tasks started by `spawn` that their callers do not await; `close` ends them all."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in a task of its own; once closed, drop it (the node is stopping)."""
        if self.closed:
            work.close()
            return
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Return once no task is running (those the ones running start included)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Take no more work; let what runs finish within `wait_s` s, then cancel the rest."""
        self.closed = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=wait_s)
        left = set(self._tasks)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

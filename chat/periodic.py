"""Housekeeping that runs every so many seconds on each node until it stops: the accounts'
sweep (chat/accounts/sweep.py) and the files' (chat/files/sweep.py) are this, each with its
own round. One shape for both, so a fix to how rounds are started, stopped or retried is made
once."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import ClassVar

from chat.store.base import StoreError


class Periodic(ABC):
    """Runs `sweep()` every `interval_s` seconds from start() until close(). A round that
    raises one of `retried` (the database or the disk away) is logged as a warning naming
    `what` and tried again at the next; anything else ends the task, as a bug should."""

    what: ClassVar[str]  # what a round is called in the warning: "account sweep"
    log: ClassVar[logging.Logger]
    retried: ClassVar[tuple[type[Exception], ...]] = (StoreError,)

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    @abstractmethod
    async def sweep(self) -> object:
        """One round now: what it did."""

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.sweep()
            except self.retried as exc:
                self.log.warning("%s failed (tried again in %.0f s): %s", self.what,
                                 self._interval_s, exc)

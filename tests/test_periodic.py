"""chat/periodic.py, the loop both sweeps (accounts', files') run in: rounds every interval,
a failed round logged and tried again, nothing after close."""

from __future__ import annotations

import asyncio
import logging

import pytest

from chat.accounts.sweep import Sweeper
from chat.files.sweep import FileSweeper
from chat.periodic import Periodic
from chat.store.base import StoreError

INTERVAL_S = 0.01  # short, so a test waits for rounds briefly; nothing asserts the pace


class Counting(Periodic):
    """Fails its first round as a database away would, then counts rounds."""

    what = "test sweep"
    log = logging.getLogger("chat.test")

    def __init__(self, failure: Exception) -> None:
        super().__init__(INTERVAL_S)
        self.failure: Exception | None = failure
        self.rounds = 0
        self.third = asyncio.Event()

    async def sweep(self) -> int:
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure
        self.rounds += 1
        if self.rounds == 3:
            self.third.set()
        return self.rounds


@pytest.mark.gen_test(timeout=10)
async def test_a_failed_round_is_logged_and_the_next_round_runs(
        caplog: pytest.LogCaptureFixture) -> None:
    """A round that raises StoreError is a warning naming the sweep; rounds go on; close
    stops them (and a second start or close changes nothing)."""
    caplog.set_level(logging.WARNING, "chat.test")
    sweeper = Counting(StoreError("the database is away"))
    sweeper.start()
    sweeper.start()
    await asyncio.wait_for(sweeper.third.wait(), 5)
    await sweeper.close()
    await sweeper.close()
    stopped = sweeper.rounds
    await asyncio.sleep(INTERVAL_S * 5)
    assert sweeper.rounds == stopped
    assert [r.getMessage() for r in caplog.records] == [
        "test sweep failed (tried again in 0 s): the database is away"]
    assert caplog.records[0].levelno == logging.WARNING


@pytest.mark.gen_test(timeout=10)
async def test_an_unexpected_error_ends_the_loop_and_close_still_returns() -> None:
    """A round failing with what is not retried (a bug) ends the task; close is still clean."""
    sweeper = Counting(ValueError("a bug"))
    sweeper.start()
    task = sweeper._task
    assert task is not None
    await asyncio.wait([task], timeout=5)
    assert isinstance(task.exception(), ValueError)
    assert sweeper.rounds == 0
    await sweeper.close()


def test_the_two_sweeps_retry_what_their_rounds_may_meet() -> None:
    """The accounts' sweep retries a store error; the files' also a disk's (OSError)."""
    assert (Sweeper.what, Sweeper.retried) == ("account sweep", (StoreError,))
    assert (FileSweeper.what, FileSweeper.retried) == ("file sweep", (StoreError, OSError))
    assert Sweeper.log.name == "chat.accounts" and FileSweeper.log.name == "chat.files"

"""tests.helpers.stop ends a task whose cancellation asyncio.wait_for swallowed."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.helpers import stop


def looping_over_wait_for() -> tuple[asyncio.Task[None], list[asyncio.Future[int]], list[int]]:
    """A task that waits on one future after another, as a test's reader loops over recv()."""
    futures: list[asyncio.Future[int]] = []
    results: list[int] = []

    async def loop() -> None:
        while True:
            futures.append(asyncio.get_running_loop().create_future())
            results.append(await asyncio.wait_for(futures[-1], 5))

    return asyncio.ensure_future(loop()), futures, results


@pytest.mark.gen_test(timeout=10)
async def test_a_cancel_landing_as_wait_for_completes_is_swallowed_on_3_11() -> None:
    """One cancel() in the iteration the awaited future completes leaves the task running."""
    task, futures, results = looping_over_wait_for()
    await asyncio.sleep(0)
    futures[-1].set_result(1)
    task.cancel()
    await asyncio.wait({task}, timeout=0.5)
    assert results[:1] == [1]
    assert task.done() is (sys.version_info >= (3, 12))  # CPython gh-86296, fixed in 3.12
    await stop(task)


@pytest.mark.gen_test(timeout=10)
async def test_stop_ends_the_task_even_when_its_first_cancel_is_swallowed() -> None:
    """stop() cancels again until the task has ended, so the test never waits for ever."""
    task, futures, _ = looping_over_wait_for()
    await asyncio.sleep(0)
    futures[-1].set_result(1)
    await stop(task)  # its first cancel lands in the same iteration as the result
    assert task.cancelled()

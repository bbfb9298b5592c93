"""chat/tasks.py, the work a node does not wait for: finished or stopped when the node closes,
never left pending for the loop to destroy."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from chat.tasks import Background


@pytest.mark.gen_test
async def test_close_lets_work_under_way_finish() -> None:
    """A task that ends within the wait ends normally; close returns once it has."""
    background, done = Background(), []

    async def write() -> None:
        await asyncio.sleep(0.01)
        done.append("written")

    background.spawn(write())
    await background.close(wait_s=5.0)
    assert done == ["written"] and len(background) == 0


@pytest.mark.gen_test
async def test_close_cancels_work_that_outlasts_the_wait() -> None:
    """A task still running when the wait is over is cancelled, and over, when close returns."""
    background, cancelled = Background(), asyncio.Event()

    async def hang() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    background.spawn(hang())
    await asyncio.sleep(0)
    await background.close(wait_s=0.01)
    assert cancelled.is_set() and len(background) == 0


@pytest.mark.gen_test
async def test_work_spawned_after_close_is_dropped_without_a_warning() -> None:
    """Once closed, spawn runs nothing and the coroutine is closed, not left unawaited."""
    background, ran = Background(), []

    async def late() -> None:
        ran.append("ran")

    await background.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        background.spawn(late())
        await asyncio.sleep(0.01)
    assert ran == [] and len(background) == 0


@pytest.mark.gen_test
async def test_idle_waits_for_work_the_work_starts() -> None:
    """idle returns only when no task is left, those spawned by a running task included."""
    background, order = Background(), []

    async def second() -> None:
        await asyncio.sleep(0.01)
        order.append("second")

    async def first() -> None:
        order.append("first")
        background.spawn(second())

    background.spawn(first())
    await background.idle()
    assert order == ["first", "second"]

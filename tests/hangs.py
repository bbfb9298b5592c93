"""What a test was waiting on when pytest-timeout stopped it.

A test that hangs on the event loop shows only the loop's `select()` in its traceback:
run_sync waits for a cancelled coroutine that never finishes, or a fixture's close awaits
something that never comes. The report of such a test gets a section with the stack of every
task still pending on the test's IOLoop, which names the await that never returned.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Generator
from typing import Any

import pytest
from tornado.ioloop import IOLoop

TIMEOUT_MARK = "from pytest-timeout"  # pytest-timeout's failure message ends so


def timed_out(call: pytest.CallInfo[None]) -> bool:
    """Whether pytest-timeout ended this phase of the test."""
    return call.excinfo is not None and TIMEOUT_MARK in str(call.excinfo.value)


def pending_tasks(item: pytest.Item) -> str:
    """The stacks of the tasks left pending on the item's IOLoop (its `io_loop` fixture)."""
    loop = (getattr(item, "funcargs", None) or {}).get("io_loop")
    if not isinstance(loop, IOLoop):
        return "the test has no io_loop fixture"
    tasks = asyncio.all_tasks(loop.asyncio_loop)  # type: ignore[attr-defined]
    if not tasks:
        return "no task is pending on the test's IOLoop"
    out = io.StringIO()
    for task in sorted(tasks, key=lambda t: t.get_name()):
        out.write(f"{task!r}\n")
        task.print_stack(file=out)
        out.write("\n")
    return out.getvalue()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[
        None, Any, None]:
    """A test stopped by pytest-timeout (setup.cfg) reports what its IOLoop still awaited."""
    outcome = yield
    if timed_out(call):
        outcome.get_result().sections.append(("tasks pending at the timeout",
                                              pending_tasks(item)))

"""Redis commands run in the order they were queued: pipelined batches, one connection, one task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

log = logging.getLogger(__name__)

BATCH_MAX = 256  # commands one pipeline carries at most

Command = tuple[str | int | bytes, ...]
_PENDING = object()  # no outcome yet (None is a reply)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class _Op:
    """One queued command, how to turn its reply into the result, and the future that gets it."""

    __slots__ = ("command", "finish", "future")

    def __init__(self, command: Command, finish: Callable[[Any], Any],
                 future: asyncio.Future[Any]) -> None:
        self.command = command
        self.finish = finish
        self.future = future


class CommandQueue:
    """Runs commands on `client` in queue order and resolves each one's future in that order.

    Scripts are called by EVALSHA; a batch that finds Redis without them (restarted, flushed)
    loads `scripts` and runs the refused commands once more. A failure resolves the futures of
    its batch with `error` (an exception class taking a message) and never retries a command:
    an append whose reply was lost must not run twice.
    """

    def __init__(self, client: Redis, scripts: Sequence[str],
                 error: Callable[[str], Exception]) -> None:
        self._client = client
        self._scripts = list(scripts)
        self._error = error
        self._queue: asyncio.Queue[_Op | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="redis-command-queue")

    async def close(self) -> None:
        """Run what is queued, then stop."""
        if self._task is not None:
            self._queue.put_nowait(None)  # after everything queued before it
            await self._task
            self._task = None

    def put(self, command: Command, finish: Callable[[Any], Any] = lambda reply: reply
            ) -> asyncio.Future[Any]:
        """Queue `command`; its future gets `finish(reply)` or an `error`."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        for value in command:  # refused here, not in the middle of a batch
            if isinstance(value, str):
                try:
                    value.encode()
                except UnicodeEncodeError as exc:  # a lone surrogate the client sent
                    future.set_exception(self._error(f"cannot send to Redis: {one_line(exc)}"))
                    return future
        self._queue.put_nowait(_Op(command, finish, future))
        return future

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < BATCH_MAX and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                outcomes = await self._send(batch)
            except Exception as exc:  # a bug must fail this batch, not hang every later one
                log.exception("the Redis command queue failed a batch")
                outcomes = [self._error(f"Redis: {one_line(exc)}")] * len(batch)
            for item, outcome in zip(batch, outcomes, strict=True):
                if item.future.done():  # cancelled by its caller
                    continue
                if isinstance(outcome, BaseException):
                    item.future.set_exception(outcome)
                else:
                    item.future.set_result(outcome)
            if stop:
                return

    async def _send(self, batch: list[_Op]) -> list[Any]:
        """Run `batch` in one pipeline (two if Redis lost a script); a result or an error each."""
        outcomes: list[Any] = [_PENDING] * len(batch)
        pending = list(range(len(batch)))
        for attempt in range(2):
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for i in pending:
                        pipe.execute_command(*batch[i].command)
                    replies = await pipe.execute(raise_on_error=False)
            except (RedisError, OSError) as exc:
                error = self._error(f"Redis: {one_line(exc)}")
                return [error if o is _PENDING else o for o in outcomes]
            missing = []
            for i, reply in zip(pending, replies, strict=True):
                if isinstance(reply, NoScriptError) and attempt == 0:
                    missing.append(i)  # not run at all: Redis restarted or flushed its scripts
                elif isinstance(reply, BaseException):
                    outcomes[i] = self._error(f"Redis: {one_line(reply)}")
                else:
                    try:
                        outcomes[i] = batch[i].finish(reply)
                    except (ValueError, KeyError, IndexError, TypeError) as exc:
                        outcomes[i] = self._error(f"Redis: unexpected reply: {one_line(exc)}")
            if not missing:
                break
            pending = missing
            try:
                await self.load_scripts()
            except (RedisError, OSError) as exc:
                error = self._error(f"Redis: {one_line(exc)}")
                return [error if o is _PENDING else o for o in outcomes]
        missing_script = self._error("Redis: a script is missing")
        return [missing_script if o is _PENDING else o for o in outcomes]

    async def load_scripts(self) -> None:
        for script in self._scripts:
            await self._client.script_load(script)

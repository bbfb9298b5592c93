"""Writer threads: one flush's socket sends split over several threads (--send-threads).

CPython releases the GIL around `socket.send`, and the kernel's send is most of what a busy
server does (docs/performance.md, "Writer threads"). With N threads, a flush of many outboxes
is cut into N shards: the IOLoop's own thread sends one, N - 1 helper threads the others, and
the loop's thread waits until all are done. So nothing else runs while a helper touches a
stream: the loop is inside the flush, and each outbox is in one shard only. What must run on
the loop's thread (Tornado's stream writes, closes, the slow-reader bound) is handed back and
done there after the join (handlers/outbox.py, Outbox.finish).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger("chat.server")

Item = TypeVar("Item")
Result = TypeVar("Result")


class WriterThreads(Generic[Item, Result]):
    """`count` - 1 helper threads; `run` applies `work` to each shard, the caller taking the
    first."""

    def __init__(self, count: int, work: Callable[[Sequence[Item]], Result]) -> None:
        if count < 2:
            raise ValueError(f"count={count}: writer threads are 2 or more")
        self.count = count
        self._work = work
        self._start = threading.Barrier(count)
        self._end = threading.Barrier(count)
        self._shards: list[Sequence[Item]] = []
        self._results: list[Result | None] = [None] * count
        self._errors: list[BaseException] = []
        self._closed = False
        self._helpers = [threading.Thread(target=self._help, args=(index,), daemon=True,
                                          name=f"chat-writer-{index}")
                         for index in range(1, count)]
        for helper in self._helpers:
            helper.start()

    def run(self, items: Sequence[Item]) -> list[Result]:
        """`work` on each of `count` shards of `items`, at once; the results of the shards that
        ended. A shard that raised is logged and left out: the others' results still count
        (for a flush: their partial writes are finished, so their streams stay whole)."""
        if self._closed:
            return [self._work(items)]
        self._shards = [items[index::self.count] for index in range(self.count)]
        self._start.wait()
        try:
            self._results[0] = self._work(self._shards[0])
        except Exception as exc:
            self._errors.append(exc)
        finally:
            self._end.wait()  # the helpers are done with every stream: the loop may go on
        results, self._results = self._results, [None] * self.count
        errors, self._errors = self._errors, []
        self._shards = []
        for error in errors:
            log.error("a writer thread's shard failed", exc_info=error)
        return [result for result in results if result is not None]

    def close(self) -> None:
        """Stop the helpers (a later `run` works on the caller's thread alone)."""
        if self._closed:
            return
        self._closed = True
        self._start.wait()  # they wake, see closed, and end
        for helper in self._helpers:
            helper.join()

    def _help(self, index: int) -> None:
        while True:
            self._start.wait()
            if self._closed:
                return
            try:
                self._results[index] = self._work(self._shards[index])
            except Exception as exc:  # logged on the loop's thread by run()
                self._errors.append(exc)
            finally:
                self._end.wait()

"""The check every test gets: no ERROR log record from the server's loggers unless expected.

asyncio's default exception handler logs to the `asyncio` logger, so watching it covers every
event loop, pytest-tornado's or a test's own. A record a test expects is declared with
tornado.testing.ExpectLog (its filter drops the record before a handler sees it) or with
`@pytest.mark.expect_errors(pattern, ...)` (tests/conftest.py), whose patterns are searched in
"logger: message".
"""

from __future__ import annotations

import contextlib
import gc
import logging
import re
from collections.abc import Iterable, Iterator

# The server's loggers (chat.*, tornado.*) and asyncio's, where lost task exceptions land.
WATCHED_LOGGERS = ("chat", "tornado", "asyncio")


class ErrorLog(logging.Handler):
    """The ERROR (or worse) records the watched loggers emitted while it was attached."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        return [f"{record.name}: {record.getMessage()}" for record in self.records]

    def check(self, expected: Iterable[str] = ()) -> None:
        """Fails on a record no `expected` pattern matches, or a pattern that matched nothing."""
        patterns = [re.compile(p) for p in expected]
        lines = self.lines()
        unexpected = [line for line in lines if not any(p.search(line) for p in patterns)]
        missing = [p.pattern for p in patterns if not any(p.search(line) for line in lines)]
        assert not unexpected, "unexpected error log lines:\n" + "\n".join(unexpected)
        assert not missing, f"no error log line matches {missing}; got {lines}"


@contextlib.contextmanager
def watching() -> Iterator[ErrorLog]:
    """An ErrorLog attached to the watched loggers for the block.

    "Task exception was never retrieved" is logged when the task is collected, so garbage is
    collected before the ErrorLog is detached.
    """
    log = ErrorLog()
    loggers = [logging.getLogger(name) for name in WATCHED_LOGGERS]
    for logger in loggers:
        logger.addHandler(log)
    try:
        yield log
        gc.collect()
    finally:
        for logger in loggers:
            logger.removeHandler(log)

"""The error-log check every test gets (tests/errorlog.py), run on records made on purpose."""

from __future__ import annotations

import asyncio
import logging

import pytest
from tornado.testing import ExpectLog

from tests.errorlog import watching


@pytest.mark.expect_errors(r"chat\.hub: bang")
def test_an_error_from_a_server_logger_fails_the_check() -> None:
    """An ERROR record of chat.* that no pattern expects fails, naming the logger and message."""
    with watching() as log:
        with ExpectLog("chat.hub", "boom"):  # kept from this test's own check
            logging.getLogger("chat.hub").error("boom")
        logging.getLogger("chat.hub").error("bang")
    with pytest.raises(AssertionError, match=r"chat\.hub: bang"):
        log.check()
    # ExpectLog's filter kept "boom" from every handler: the one above saw only "bang".
    assert log.lines() == ["chat.hub: bang"]


@pytest.mark.expect_errors(r"chat\.hub: bang")
def test_an_expected_error_passes_and_an_expectation_unmet_fails() -> None:
    """A record matching a pattern passes; a pattern matching no record fails."""
    with watching() as log:
        logging.getLogger("chat.hub").error("bang")
    log.check([r"chat\.hub: ba"])
    with pytest.raises(AssertionError, match="no error log line matches"):
        log.check([r"chat\.hub: ba", r"tornado\.application"])


def test_warnings_and_other_loggers_pass() -> None:
    """WARNING records, and ERROR records of loggers other than the server's, are not checked."""
    with watching() as log:
        logging.getLogger("chat.hub").warning("meh")
        logging.getLogger("urllib3").error("not the server's")
    log.check()


@pytest.mark.expect_errors("asyncio: Task exception was never retrieved")
def test_a_task_exception_never_retrieved_fails_the_check() -> None:
    """An exception lost in a task reaches asyncio's handler and fails the check."""

    async def lose_one() -> None:
        async def fail() -> None:
            raise RuntimeError("lost")

        asyncio.get_running_loop().create_task(fail())
        await asyncio.sleep(0.01)

    with watching() as log:
        asyncio.run(lose_one())
    with pytest.raises(AssertionError, match="Task exception was never retrieved"):
        log.check()

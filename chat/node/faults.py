"""Faults a test injects into a node through the environment: never set in production.

`SIMPLE_CHAT_FAULT=exit-after-commit` makes the node kill itself (SIGKILL: no cleanup, as a
power cut or the OOM killer) right after the store committed its first new message and before
that message is published on the broker; `exit-after-commit:N` after its Nth. The cluster tests
use it to show that such a message still reaches every node (docs/deployment.md).
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger("chat.hub")

ENV = "SIMPLE_CHAT_FAULT"
EXIT_AFTER_COMMIT = "exit-after-commit"


class Faults:
    """The fault the environment asked for when the node started (none in production)."""

    def __init__(self, spec: str | None) -> None:
        self._commits_left = 0  # 0: no fault
        if not spec:
            return
        name, _, count = spec.partition(":")
        if name != EXIT_AFTER_COMMIT or not (count or "1").isdigit() or int(count or "1") < 1:
            log.warning("ignored %s=%r: expected %s or %s:N (N >= 1)", ENV, spec,
                        EXIT_AFTER_COMMIT, EXIT_AFTER_COMMIT)
            return
        self._commits_left = int(count or "1")
        log.warning("%s=%s: this node kills itself after a commit (a test's fault)", ENV, spec)

    @classmethod
    def from_environ(cls) -> Faults:
        return cls(os.environ.get(ENV))

    def committed(self) -> None:
        """A new message is stored and not yet published: die here if it is the one."""
        if self._commits_left:
            self._commits_left -= 1
            if not self._commits_left:
                os.kill(os.getpid(), signal.SIGKILL)

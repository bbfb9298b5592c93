"""Keepalive for every connection from one timer: Tornado's own runs a task per connection.

That task (with its coroutine and sleep timers) held ~2 KiB per idle connection; here a ping is
one queued frame per connection, coalesced with whatever else is going out.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

PING_FRAME = b"\x89\x00"  # FIN + opcode 0x9 (ping), empty payload, unmasked (RFC 6455 5.5.2)


class Pingable(Protocol):
    """A connection as the keepalive sees it."""

    awaiting_pong: bool

    def send_ping(self) -> None: ...

    def ping_timed_out(self) -> None: ...


class Keepalive:
    """Pings every registered connection each `interval_s`; closes those silent `timeout_s`."""

    def __init__(self, interval_s: float, timeout_s: float) -> None:
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.connections: set[Pingable] = set()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, connection: Pingable) -> None:
        connection.awaiting_pong = False
        if self.interval_s <= 0:
            return
        self.connections.add(connection)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval_s, self._ping)

    def discard(self, connection: Pingable) -> None:
        self.connections.discard(connection)

    def _ping(self) -> None:
        if not self.connections:
            self._timer = None  # idle: add() starts the timer again
            return
        for connection in self.connections:
            connection.awaiting_pong = True
            connection.send_ping()
        loop = asyncio.get_running_loop()
        loop.call_later(self.timeout_s, self._check)
        self._timer = loop.call_later(self.interval_s, self._ping)

    def _check(self) -> None:
        for connection in [c for c in self.connections if c.awaiting_pong]:
            self.connections.discard(connection)
            connection.ping_timed_out()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

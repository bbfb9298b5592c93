"""Keepalive for every connection from one timer: Tornado's own runs a task per connection.

That task (with its coroutine and sleep timers) held ~2 KiB per idle connection; here a ping is
one queued frame per connection, coalesced with whatever else is going out.

The pings of one interval are spread over it, a slice of the connections per tick: pinged all
at once, every client's pong came back in the same moment, and reading 1,000 of them held the
loop ~100 ms on the 2-core machine, the p99 of that window (docs/performance.md, "p99 in every
window").
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

PING_FRAME = b"\x89\x00"  # FIN + opcode 0x9 (ping), empty payload, unmasked (RFC 6455 5.5.2)
# How often the keepalive pings its next slice of connections (s): a tenth of a second makes
# 200 slices of a 20 s interval, 50 pongs a tick at 10,000 connections.
PING_TICK_S = 0.1


class Pingable(Protocol):
    """A connection as the keepalive sees it."""

    awaiting_pong: bool

    def send_ping(self) -> None: ...

    def ping_timed_out(self) -> None: ...


class Keepalive:
    """Pings every registered connection each `interval_s`, one slice per tick, and closes
    those that have not answered `timeout_s` (at most `interval_s`) after their ping."""

    def __init__(self, interval_s: float, timeout_s: float, tick_s: float = PING_TICK_S) -> None:
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.slices = max(1, round(interval_s / tick_s)) if interval_s > 0 else 1
        self.tick_s = interval_s / self.slices
        # Ticks from a slice's ping to its check: the timeout, rounded up to whole ticks.
        self._lag = min(self.slices, max(1, math.ceil(timeout_s / self.tick_s - 1e-9))
                        if self.tick_s > 0 else 1)
        self.connections: dict[Pingable, int] = {}  # each connection -> its slice
        self._slices: list[set[Pingable]] = [set() for _ in range(self.slices)]
        self._next = 0  # the slice the next connection joins: round robin, so slices stay even
        self._turn = 0  # the slice the next tick pings
        self._timer: asyncio.TimerHandle | None = None

    def add(self, connection: Pingable) -> None:
        connection.awaiting_pong = False
        if self.interval_s <= 0:
            return
        index, self._next = self._next, (self._next + 1) % self.slices
        self.connections[connection] = index
        self._slices[index].add(connection)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.tick_s, self._tick)

    def discard(self, connection: Pingable) -> None:
        index = self.connections.pop(connection, None)
        if index is not None:
            self._slices[index].discard(connection)

    def _tick(self) -> None:
        if not self.connections:
            self._timer = None  # idle: add() starts the timer again
            return
        self.tick()
        self._timer = asyncio.get_running_loop().call_later(self.tick_s, self._tick)

    def tick(self) -> None:
        """Close the slice whose timeout is over that has not answered; ping the next."""
        turn = self._turn
        # The slice pinged `_lag` ticks ago first: with the timeout equal to the interval,
        # that is this tick's own slice, whose last pongs are due before it is pinged again.
        for connection in [c for c in self._slices[(turn - self._lag) % self.slices]
                           if c.awaiting_pong]:
            self.discard(connection)
            connection.ping_timed_out()
        for connection in self._slices[turn]:
            connection.awaiting_pong = True
            connection.send_ping()
        self._turn = (turn + 1) % self.slices

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

"""The one-process broker: publish hands the payload straight to this process's subscribers."""

from __future__ import annotations

import logging
from collections.abc import Callable

from chat.broker.base import BrokerError, Deliver

log = logging.getLogger("chat.broker")


class MemoryBroker:
    """`memory://`: no other process sees anything; delivery is synchronous and never fails."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None
        self._channels: set[str] = set()

    @property
    def healthy(self) -> bool:
        return True

    async def start(self, deliver: Deliver,
                    on_reconnect: Callable[[], None] | None = None) -> None:
        self._deliver = deliver

    async def close(self) -> None:
        self._deliver = None
        self._channels.clear()

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, payload: bytes) -> None:
        # The hot path: no task, no copy; the hub gets the very bytes object it published.
        deliver = self._deliver
        if deliver is None:
            raise BrokerError("the memory broker is not started (or already closed)")
        if channel in self._channels:
            try:
                deliver(channel, payload)
            except Exception:
                log.exception("delivering a message on channel %r failed", channel)

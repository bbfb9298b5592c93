"""The broker interface: what the hub needs to run several processes as one chat."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

# The hub's receiver for every message on a subscribed channel: (channel, payload).
Deliver = Callable[[str, bytes], None]


class BrokerError(Exception):
    """The backend cannot take a publish now (Redis down or unreachable): nothing was sent."""


class Broker(Protocol):
    """Channels of opaque byte payloads shared by every process that uses the same backend.

    Backends are dumb: they publish and deliver; the hub fans each delivered payload out to its
    own connections. `start(deliver)` opens the backend; from then on `deliver(channel, payload)`
    is called once per message published (by this process or any other) on a channel this broker
    is subscribed to, on the event loop, never concurrently with itself. It must not block and
    should not raise (an exception is logged and the message skipped). After `unsubscribe(ch)`
    returns, nothing more is delivered for `ch`.

    Messages from one publisher on one channel are delivered in the order their `publish` calls
    were made. `publish` raises BrokerError when the backend is unreachable, so a sender learns
    of the loss; it never drops a message silently. `healthy` is False while the backend is down
    (for /healthz); a backend that reconnects by itself resubscribes every channel first.
    """

    @property
    def healthy(self) -> bool: ...

    async def start(self, deliver: Deliver,
                    on_reconnect: Callable[[], None] | None = None) -> None:
        """Deliver what the broker's channels carry to `deliver`; `on_reconnect` runs each time
        a networked backend is back after a loss (what was published meanwhile is lost)."""
        ...

    async def close(self) -> None: ...

    async def subscribe(self, channel: str) -> None: ...

    async def unsubscribe(self, channel: str) -> None: ...

    async def publish(self, channel: str, payload: bytes) -> None: ...

"""Brokers: the interface, and the factory that picks a backend from --broker's URL."""

from __future__ import annotations

from collections.abc import Callable

from chat.broker.base import Broker, BrokerError, Deliver
from chat.broker.memory import MemoryBroker
from chat.urls import check_broker_url


def open_broker(url: str, *, on_reconnect: Callable[[], None] | None = None) -> Broker:
    """The broker for `url`; `on_reconnect` runs each time a networked backend is back.

    redis:// is imported only when asked for, so memory:// needs no redis package.
    """
    if check_broker_url(url) == "memory":
        return MemoryBroker()
    from chat.broker.redis import RedisBroker

    return RedisBroker(url, on_reconnect=on_reconnect)


__all__ = ["Broker", "BrokerError", "Deliver", "MemoryBroker", "open_broker"]

"""Brokers: the interface, and the factory that picks a backend from --broker's URL."""

from __future__ import annotations

from chat.broker.base import Broker, BrokerError, Deliver
from chat.broker.memory import MemoryBroker
from chat.urls import check_broker_url


def open_broker(url: str) -> Broker:
    """The broker for `url` (redis:// is imported only when asked for, so memory:// needs no
    redis package)."""
    if check_broker_url(url) == "memory":
        return MemoryBroker()
    from chat.broker.redis import RedisBroker

    return RedisBroker(url)


__all__ = ["Broker", "BrokerError", "Deliver", "MemoryBroker", "open_broker"]

"""Brokers: the interface, and the factory that picks a backend from --broker's URL."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from chat.broker.base import Broker, BrokerError, Deliver
from chat.broker.memory import MemoryBroker
from chat.config import redacted

URL_FORMS = "memory:// or redis://host:port/db"


def open_broker(url: str, *, on_reconnect: Callable[[], None] | None = None) -> Broker:
    """The broker for `url`; `on_reconnect` runs each time a networked backend is back.

    redis:// is imported only when asked for, so memory:// needs no redis package.
    """
    parts = urlsplit(url)
    if parts.scheme == "memory" and not (parts.netloc or parts.path or parts.query):
        return MemoryBroker()
    if parts.scheme in ("redis", "rediss"):
        try:
            parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
        except ValueError:
            raise ValueError(f"broker URL {redacted(url)!r}: the port is not a number "
                             "0-65535") from None
        if not parts.hostname:
            raise ValueError(f"broker URL {redacted(url)!r} names no host; expected {URL_FORMS}")
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ValueError(f"broker URL {redacted(url)!r}: the database {db!r} is not a number")
        from chat.broker.redis import RedisBroker

        return RedisBroker(url, on_reconnect=on_reconnect)
    raise ValueError(f"broker URL {redacted(url)!r} is not supported; expected {URL_FORMS}")


__all__ = ["Broker", "BrokerError", "Deliver", "MemoryBroker", "open_broker"]

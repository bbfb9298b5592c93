"""What the engine counts, and the snapshot of it that /healthz and /metrics read."""

from __future__ import annotations

from dataclasses import dataclass


class Stats:
    """Counters the engine bumps on its paths (plain integers: the hot path only adds)."""

    __slots__ = ("deliveries", "errors", "evicted", "gap_fills", "messages", "rate_limited",
                 "scope_refused", "store_failing", "store_failures", "token_sockets")

    def __init__(self) -> None:
        self.messages = 0  # room and direct messages stored and sent
        self.deliveries = 0  # frames of those messages handed to connections
        self.errors = 0  # error events sent
        self.rate_limited = 0  # frames refused by the rate limit
        self.evicted = 0  # slow readers dropped (counted by the transport)
        self.store_failures = 0  # appends the store refused
        self.store_failing = 0  # appends refused in a row since the last it took (/healthz)
        self.gap_fills = 0  # rooms caught up from the store (messages the broker lost)
        self.token_sockets = 0  # connections opened with an API token (chat/node/signins.py)
        self.scope_refused = 0  # frames an API token's connection may not send (scopes.py)


@dataclass(frozen=True, slots=True)
class Status:
    """The node as /healthz and /metrics report it, at one moment (Hub.status())."""

    connections: int  # open WebSocket connections
    users: int  # joined users online on this node
    rooms: int  # rooms held on this node
    broker_up: bool  # the broker reaches the other nodes (always, memory://)
    store_ok: bool  # the store took the last append it was given
    uptime_s: float
    messages: int
    deliveries: int
    errors: int
    rate_limited: int
    evicted: int
    store_failures: int
    gap_fills: int
    token_sockets: int = 0
    scope_refused: int = 0

    @property
    def healthy(self) -> bool:
        """Serving: the broker is up and the store takes appends."""
        return self.broker_up and self.store_ok

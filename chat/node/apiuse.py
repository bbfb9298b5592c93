"""What the HTTP API counts per token: its rate limit and the /metrics counters.

The limit is this node's buckets with the memory broker, and the cluster's (in Redis,
chat/node/apilimit.py) with `--broker redis://`."""

from __future__ import annotations

import math
from collections import OrderedDict
from time import monotonic
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter

from chat.limits import TokenBucket

if TYPE_CHECKING:  # redis is imported only for a redis:// broker
    from chat.node.apilimit import SharedBuckets

# Buckets kept at most (one per token seen lately): the least recently used goes first. A
# bucket forgotten is full again, which only a token idle for a long while can gain from.
BUCKETS_KEPT = 10_000


class ApiUse:
    """Per-token request buckets (`rate` requests/s, `burst` at once; rate 0: no limit) and
    the counters of API requests and of refused tokens."""

    def __init__(self, rate: float, burst: int, registry: CollectorRegistry | None,
                 shared: SharedBuckets | None = None) -> None:
        self.rate = rate
        self.burst = burst
        self.shared = shared  # the cluster's buckets (Redis); None: this node's only
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self.requests = Counter(
            "chat_api_requests", "HTTP API requests by route and by how they signed in "
            "(token or session)", ["route", "auth"], registry=registry)
        self.token_failures = Counter(
            "chat_api_token_failures", "API tokens refused, by reason (unknown: unknown or "
            "revoked; scope: a scope the token lacks; rate: over --api-rate-limit; "
            "not_accepted: a route that takes a session)", ["reason"], registry=registry)

    async def take(self, token_id: str) -> int:
        """0 if the token may make a request now; else the whole seconds to wait."""
        if self.rate > 0 and self.shared is not None:
            wait = await self.shared.take(token_id)
            if wait is not None:
                return 0 if wait <= 0 else max(1, math.ceil(wait))
        return self.take_here(token_id)

    def take_here(self, token_id: str) -> int:
        """take() with this node's bucket of the token."""
        now = monotonic()
        bucket = self._buckets.get(token_id)
        if bucket is None:
            bucket = self._buckets[token_id] = TokenBucket(self.rate, self.burst, now)
            if len(self._buckets) > BUCKETS_KEPT:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(token_id)
        if bucket.take(now):
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))

    def used(self, route: str, auth: str) -> None:
        self.requests.labels(route=route, auth=auth).inc()

    def refused(self, reason: str) -> None:
        self.token_failures.labels(reason=reason).inc()

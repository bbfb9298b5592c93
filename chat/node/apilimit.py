"""The API tokens' rate limit shared by a cluster's nodes: one token bucket per token in Redis.

With `--broker redis://` every node takes from the same bucket, so a token gets
`--api-rate-limit` requests per second across the cluster, not per node (a client spreading
its requests over a load balancer's nodes would otherwise get N times the rate). One Lua script
reads, refills and takes in one step, timed by Redis's own clock (the nodes' clocks may
differ), so concurrent requests on any nodes meet the bucket one by one. The memory broker's
single process keeps its in-process buckets (chat/node/apiuse.py).

If Redis cannot be reached, the node falls back to its own buckets for that request (logged,
once per outage): the API stays up, at worst a token gets the rate on each node meanwhile.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from chat.delivery.channels import PREFIX
from chat.urls import redacted

log = logging.getLogger("chat.api")

COMMAND_TIMEOUT_S = 1.0  # a request waits at most this on Redis, then uses its node's bucket

# KEYS[1]: the token's bucket (a hash: t = tokens left, ts = when, in µs of Redis's clock).
# ARGV: rate (tokens/s), burst. Returns 0 if a request may go now, else the seconds to wait
# (a string: Redis would truncate a Lua number to an integer). The key expires once the bucket
# would be full again: an idle token costs Redis nothing.
TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local held = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens, since = tonumber(held[1]), tonumber(held[2])
if tokens == nil or since == nil then tokens, since = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - since) / 1000000 * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return tostring(wait)
"""


class SharedBuckets:
    """Per-token buckets in the cluster's Redis (`url`: --broker)."""

    def __init__(self, url: str, rate: float, burst: int, prefix: str = PREFIX) -> None:
        self.url = redacted(url)
        self.rate = rate
        self.burst = burst
        self._prefix = prefix + "api:rate:"
        self._client: Redis = Redis.from_url(url, socket_timeout=COMMAND_TIMEOUT_S,
                                             socket_connect_timeout=COMMAND_TIMEOUT_S)
        self._script = self._client.register_script(TAKE)
        self._failing = False

    async def take(self, token_id: str) -> float | None:
        """0 if the token may make a request now, else the seconds to wait; None if Redis
        could not be asked (the caller uses its own bucket)."""
        try:
            answer = await self._script(keys=[self._prefix + token_id],
                                        args=[repr(self.rate), self.burst])
        except (RedisError, OSError) as exc:
            if not self._failing:
                log.warning("the API rate limit cannot reach Redis at %s (%s): each node "
                            "counts for itself until it can", self.url, exc)
            self._failing = True
            return None
        if self._failing:
            log.info("the API rate limit reaches Redis at %s again", self.url)
            self._failing = False
        return float(answer)

    async def close(self) -> None:
        await self._client.aclose()

"""Limits that protect the server from one client: a token bucket and connection counts."""

from __future__ import annotations

from collections import Counter

from chat.addresses import address_group


class TokenBucket:
    """Allows `rate` events per second on average and `burst` at once; rate 0 allows all."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        if self.rate <= 0:
            return True
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def spend(self, amount: float, now: float) -> bool:
        """Spend `amount`, into debt if need be, unless already in debt (then False).

        For costs known only once the work is done (bytes of a reply): check with 0 before,
        spend the real amount after. The debt waits out later requests, so the average holds
        and a burst passes `burst` by one reply at most.
        """
        if self.rate <= 0:
            return True
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens <= 0.0:
            return False
        self.tokens -= amount
        return True


class ConnectionCounter:
    """Open connections, in all and per client address, against their limits (0 = none).

    Addresses are counted by `address_group`: an IPv6 address with the rest of its /64.
    """

    def __init__(self, max_total: int, max_per_address: int) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.total = 0
        self._per_address: Counter[str] = Counter()

    def refusal(self, address: str) -> tuple[int, str] | None:
        """(HTTP status, reason) if one more connection from `address` is over a limit."""
        if self.max_total and self.total >= self.max_total:
            return 503, f"the server holds its limit of {self.max_total:,} connections"
        group = address_group(address)
        if self.max_per_address and self._per_address[group] >= self.max_per_address:
            return 429, (
                f"{group} already has {self.max_per_address:,} connections, the limit per address"
            )
        return None

    def add(self, address: str) -> None:
        self.total += 1
        self._per_address[address_group(address)] += 1

    def remove(self, address: str) -> None:
        self.total -= 1
        group = address_group(address)
        self._per_address[group] -= 1
        if self._per_address[group] <= 0:
            del self._per_address[group]


class HourlyQuota:
    """A TokenBucket of `per_hour` events per key (a user, an address); 0 allows all.

    A burst of `per_hour` at once, then one more every hour / `per_hour`. Buckets that have
    refilled are forgotten, so the map holds only the keys that spent some recently.
    """

    def __init__(self, per_hour: int) -> None:
        self.per_hour = per_hour
        self._rate = per_hour / 3600.0  # events per second
        self._buckets: dict[str, TokenBucket] = {}
        self._sweep_at = 64  # buckets held when the next sweep for refilled ones runs

    def allows(self, key: str, now: float) -> bool:
        """Whether `take` would succeed now (spends nothing)."""
        bucket = self._buckets.get(key)
        if not self.per_hour or bucket is None:
            return True
        return bucket.tokens + (now - bucket.stamp) * self._rate >= 1.0

    def take(self, key: str, now: float) -> bool:
        """Spend one event of `key`'s quota if there is one."""
        if not self.per_hour:
            return True
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._rate, self.per_hour, now)
            if len(self._buckets) >= self._sweep_at:
                self._sweep(now)
        return bucket.take(now)

    def _sweep(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.stamp) * self._rate >= bucket.burst:
                del self._buckets[key]
        self._sweep_at = max(64, 2 * len(self._buckets))

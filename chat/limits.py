"""Limits that protect the server from one client: a token bucket and connection counts."""

from __future__ import annotations

from collections import Counter


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
    """Open connections, in all and per client address, against their limits (0 = none)."""

    def __init__(self, max_total: int, max_per_address: int) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.total = 0
        self._per_address: Counter[str] = Counter()

    def refusal(self, address: str) -> tuple[int, str] | None:
        """(HTTP status, reason) if one more connection from `address` is over a limit."""
        if self.max_total and self.total >= self.max_total:
            return 503, f"the server holds its limit of {self.max_total:,} connections"
        if self.max_per_address and self._per_address[address] >= self.max_per_address:
            return 429, (
                f"{address} already has {self.max_per_address:,} connections, the limit per address"
            )
        return None

    def add(self, address: str) -> None:
        self.total += 1
        self._per_address[address] += 1

    def remove(self, address: str) -> None:
        self.total -= 1
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]

"""The account rules a server runs with (from Settings), and the login throttle's delays."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Registration = Literal["open", "invite", "closed"]
REGISTRATION_MODES: tuple[Registration, ...] = ("open", "invite", "closed")

DAY_MS = 24 * 60 * 60 * 1000
# A failure counter quiet this long starts again from zero: last week's typos never slow the
# owner down, while a guesser still meets the full delay for a whole day (ms).
FAILURES_FORGOTTEN_AFTER_MS = DAY_MS
# A session's last-seen time is written at most this often (ms): each socket that opens would
# otherwise be a write, and idle expiry counts in days.
TOUCH_INTERVAL_MS = 60 * 1000
# How long a new invite stays usable by default, and the longest one may (days): a code pasted
# into a chat or an email should not open the server for good.
INVITE_TTL_DAYS = 7.0
INVITE_TTL_MAX_DAYS = 365.0


def check_invite_ttl(days: float) -> None:
    """ValueError naming the value and the limits unless 0 < days <= INVITE_TTL_MAX_DAYS."""
    if not 0 < days <= INVITE_TTL_MAX_DAYS:
        raise ValueError(f"an invite's lifetime is {days:g} days; it must be more than 0 and "
                         f"at most {INVITE_TTL_MAX_DAYS:g}")


@dataclass(frozen=True, slots=True)
class AccountPolicy:
    """--registration, the session lifetimes and the login throttle (validated by Settings)."""

    registration: Registration = "open"
    session_idle_days: float = 30.0  # a session unused this long ends
    session_max_days: float = 365.0  # and any session this old
    throttle_after: int = 5  # failures (per name and per address) before any delay
    throttle_first_s: float = 1.0  # the first delay; each further failure doubles it
    throttle_max_s: float = 900.0  # up to this: the owner is never locked out for longer
    invite_ttl_days: float = INVITE_TTL_DAYS  # a new invite is usable this long

    @property
    def session_idle_ms(self) -> int:
        return round(self.session_idle_days * DAY_MS)

    @property
    def session_max_ms(self) -> int:
        return round(self.session_max_days * DAY_MS)

    def delay_ms(self, failures: int) -> int:
        """How long after the last of `failures` failures the next attempt must wait."""
        if failures < self.throttle_after:
            return 0
        doublings = min(failures - self.throttle_after, 64)  # 2**64 s is past any cap
        return round(min(self.throttle_first_s * 2.0 ** doublings, self.throttle_max_s) * 1000)

    def wait_ms(self, counter: tuple[int, int] | None, now_ms: int) -> int:
        """How long until a login may be tried again (0: now), for a failure counter
        (failures, ts of the last); a forgotten counter holds nothing back."""
        if counter is None:
            return 0
        failures, last_ts = counter
        if last_ts < now_ms - FAILURES_FORGOTTEN_AFTER_MS:
            return 0
        return max(0, last_ts + self.delay_ms(failures) - now_ms)

    @staticmethod
    def retry_after_s(wait_ms: int) -> int:
        """A wait as the whole seconds a client is told (rounded up: never too early)."""
        return math.ceil(wait_ms / 1000)

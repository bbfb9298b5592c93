"""The accounts' housekeeping: every node deletes expired sessions (their live sockets close
as for any revocation, 4003, on every node), login-failure counters past the throttle's
forget window, revocations every node has long since read, and the challenges of passkey
ceremonies never finished, once expired, every sweep interval.

Several nodes may sweep the same database: a session is deleted, and revoked, by one of them
(SQLite's write lock; on PostgreSQL one node sweeps at a time and the others skip the round).
"""

from __future__ import annotations

import logging

from chat.accounts.model import Swept
from chat.accounts.service import AccountService
from chat.periodic import Periodic

log = logging.getLogger("chat.accounts")

# Rows per transaction: a SQLite sweep holds the file's write lock (the history writer waits
# for it) for milliseconds, never seconds, even on the first sweep of a large backlog.
SWEEP_BATCH_ROWS = 500
# Revocations are kept this many poll intervals (an hour at the default --revocation-poll 1):
# a node whose reads of the table failed that long still finds, once back, every revocation
# it missed; a node starts reading from the newest, so none needs older ones.
REVOCATIONS_KEPT_POLLS = 3600


def revocations_kept_ms(revocation_poll_s: float) -> int:
    """How long a revocation is kept (ms) for a --revocation-poll of this many seconds."""
    return round(revocation_poll_s * REVOCATIONS_KEPT_POLLS * 1000)


class Sweeper(Periodic):
    """Runs AccountService.sweep every `interval_s` seconds until closed; a round that fails
    (the database away) is logged and tried again at the next."""

    what = "account sweep"
    log = log

    def __init__(self, accounts: AccountService, interval_s: float,
                 revocation_poll_s: float) -> None:
        super().__init__(interval_s)
        self._accounts = accounts
        self._kept_ms = revocations_kept_ms(revocation_poll_s)

    async def sweep(self) -> Swept:
        """One round now: what it deleted."""
        swept = await self._accounts.sweep(self._kept_ms, SWEEP_BATCH_ROWS)
        if swept.sessions or swept.failures or swept.revocations or swept.challenges:
            log.info("account sweep: %d expired sessions ended, %d login-failure counters, "
                     "%d revocations and %d passkey challenges deleted", swept.sessions,
                     swept.failures, swept.revocations, swept.challenges)
        return swept

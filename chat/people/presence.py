"""Online, away, offline: each user's last activity, on every node, and when it was last seen.

A user is **online** while it has a connection on some node and one of them showed activity (a
message, a direct message, typing, `active`, joining) within `away-after`; **away** after that;
**offline** once it has no connection, with the time its last connection closed (`last_seen`,
kept by the store for every user that is not a guest). The roster keeps each online user's
last activity (the latest any node reported: each node reports at most every
ACTIVITY_REPORT_S). A node checks its own users `away-after` after their last activity here:
if no node saw activity since, it tells the rooms it has them in (`status` notice, state
`away`); the next activity here tells them `online` again. `status` answers for any names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from time import monotonic
from typing import Any

from chat.broker.base import Broker, BrokerError
from chat.delivery import channels
from chat.people.connections import Client, User, user_of
from chat.people.directory import Directory
from chat.people.identity import is_account_party
from chat.people.names import name_key
from chat.protocol import events
from chat.protocol.frame import Frame
from chat.protocol.parse import StatusQuery
from chat.roster.base import RosterError
from chat.store.base import HistoryStore, ReadMarks, StoreError
from chat.tasks import Background

log = logging.getLogger("chat.presence")

# How often a node reports one user's activity to the roster at most (s): a user typing sends
# a frame a second; the roster needs to know only to within a small part of away-after.
ACTIVITY_REPORT_S = 10.0


def now_ms() -> int:
    return int(time.time() * 1000)


class Presence:
    """This node's users' activity, their away notices, `status` answers and last-seen times."""

    def __init__(self, away_after: float, store: HistoryStore, broker: Broker,
                 users: Directory) -> None:
        self.away_after = away_after
        self.report_every = min(ACTIVITY_REPORT_S, away_after / 4)
        self.marks = store if isinstance(store, ReadMarks) else None
        self.broker = broker
        self.users = users
        self._checks: dict[str, asyncio.TimerHandle] = {}  # user key -> its away check
        self._reported: dict[str, float] = {}  # user key -> monotonic time of its last report
        self._last: dict[str, float] = {}  # user key -> monotonic time of its last activity here
        self._away: set[str] = set()  # users this node announced as away
        # party -> when its last connection here closed, while that is being written: a
        # `status` asked meanwhile is answered with it, not with the store's older time.
        self._seen: dict[str, int] = {}
        self.background = Background()  # announcements, away checks, last-seen writes

    def touch(self, user: User) -> None:
        """The user did something here: it is online (told, if it was away)."""
        if self.users.get(user.key) is not user:
            return  # gone meanwhile
        now = monotonic()
        reported = self._reported.get(user.key)
        if reported is None or now - reported >= self.report_every:
            self._reported[user.key] = now
            self.users.roster.active(user.key, now_ms())
        self._last[user.key] = now
        if user.key not in self._checks:  # a check due finds this activity and looks again
            self._schedule(user, self.away_after)
        if user.key in self._away:
            self._away.discard(user.key)
            self.background.spawn(self._announce(user, "online"))

    def gone(self, user: User) -> None:
        """The user's last connection here closed: note when it was last seen."""
        check = self._checks.pop(user.key, None)
        if check is not None:
            check.cancel()
        self._reported.pop(user.key, None)
        self._last.pop(user.key, None)
        self._away.discard(user.key)
        if not user.guest and self.marks is not None:
            self._seen[user.party] = seen = now_ms()
            self.background.spawn(self._saw(user.party, seen))

    async def close(self) -> None:
        """The node stops: no more away checks; the last-seen writes under way finish."""
        for check in self._checks.values():
            check.cancel()
        self._checks.clear()
        await self.background.close()

    async def status(self, client: Client, cmd: StatusQuery) -> None:
        """Answer who of the names asked is online, away, or offline (and since when)."""
        user_of(client, "status")
        found: list[dict[str, Any]] = []
        for name in dict.fromkeys(cmd.users):
            party = await self.users.party_of(name)
            if party is None:
                continue  # nobody's name: nothing to say
            spelling, who, online = party
            entry: dict[str, Any] = {"username": spelling, "state": "offline"}
            if online:
                act = (await self.users.roster.activity([name_key(spelling)]))[0]
                if act is not None:
                    entry["state"] = "away" if self._idle(act) else "online"
            if entry["state"] == "offline" and is_account_party(who) and self.marks:
                seen = self._seen.get(who)
                if seen is None:
                    try:
                        seen = await self.marks.last_seen(who)
                    except StoreError as exc:
                        log.warning("could not read when %s was last seen: %s", spelling, exc)
                if seen is not None:
                    entry["last_seen"] = seen
            found.append(entry)
        client.reply(Frame.of(events.status(found)))

    def _idle(self, act: int) -> bool:
        """Whether a last activity (ms; 0: none reported yet, so just arrived) is too old."""
        return act > 0 and now_ms() - act >= self.away_after * 1000

    def _schedule(self, user: User, delay: float) -> None:
        self._checks[user.key] = asyncio.get_running_loop().call_later(
            delay, lambda: self.background.spawn(self._check(user)))

    async def _check(self, user: User) -> None:
        """away-after has passed since the user's last activity here: and on every node?"""
        self._checks.pop(user.key, None)
        idle_here = monotonic() - self._last.get(user.key, 0.0)
        if idle_here < self.away_after:  # active here since the check was set
            self._schedule(user, self.away_after - idle_here)
            return
        try:
            act = (await self.users.roster.activity([user.key]))[0]
        except RosterError as exc:
            log.warning("could not read %s's activity: %s", user.name, exc)
            act = None
        if self.users.get(user.key) is not user or user.key in self._checks:
            return  # gone, or active again meanwhile
        if act is not None and act > 0 and not self._idle(act):
            self._schedule(user, self.away_after - (now_ms() - act) / 1000)
            return
        self._away.add(user.key)
        await self._announce(user, "away")

    async def _announce(self, user: User, state: str) -> None:
        """Tell the rooms this node has the user in (every node's members of them)."""
        for name in sorted({name for client in user.clients for name in client.rooms}):
            payload = channels.notice_payload(events.status_change(name, user.name, state))
            with contextlib.suppress(BrokerError):  # a notice: not worth an error
                await self.broker.publish(channels.room(name), payload)

    async def _saw(self, party: str, seen: int) -> None:
        assert self.marks is not None
        try:
            await self.marks.saw(party, seen)
        except StoreError as exc:
            log.warning("could not note when %s was last seen: %s", party, exc)
        finally:
            if self._seen.get(party) == seen:  # not a later close's, written after this one
                del self._seen[party]

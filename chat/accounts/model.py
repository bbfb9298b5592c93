"""What an account and a session are, and the error every account operation reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "member"]
ROLES: tuple[Role, ...] = ("admin", "member")


@dataclass(frozen=True, slots=True)
class Account:
    """A registered name and who may use it (its password hash stays in the store)."""

    id: int  # never reused: what belongs to a person is keyed by this, not by the name
    name: str  # as registered (shown)
    name_key: str  # chat.people.names.name_key(name): unique across accounts
    email: str | None
    role: Role
    disabled: bool
    created_ts: int  # ms since the epoch


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in client of an account; the store keeps only its token's hash."""

    id: str  # public and random: names the session in lists and revocations, opens nothing
    account_id: int
    created_ts: int  # ms
    last_seen_ts: int  # ms: when its token last authenticated something
    address: str  # the client's address at login
    user_agent: str


@dataclass(frozen=True, slots=True)
class Revocation:
    """An account disabled (or its password reset), or one session ended: live sockets of it
    must close. `seq` counts up in commit order."""

    seq: int
    account_id: int
    session_id: str | None  # None: every session of the account
    ts: int  # ms


@dataclass(frozen=True, slots=True)
class Sweep:
    """What to delete in one housekeeping round (ms cutoffs: rows older are deleted)."""

    ts: int  # now: the ts of the revocations written for the expired sessions
    idle_before: int  # sessions last used before this
    created_before: int  # sessions created before this
    failures_before: int  # login-failure counters last counted before this
    revocations_before: int  # revocations made before this
    batch: int  # rows per transaction


@dataclass(slots=True)
class Swept:
    """What one housekeeping round deleted (rows)."""

    sessions: int = 0
    failures: int = 0
    revocations: int = 0


# An invite is named in lists by the start of its code's hash (hex characters): enough to tell
# a server's invites apart, and it tells nothing about the code.
INVITE_ID_CHARS = 12


@dataclass(frozen=True, slots=True)
class Invite:
    """A single-use invite as the admin command lists it (its code is never stored)."""

    id: str  # the first INVITE_ID_CHARS of the code's sha256
    created_ts: int  # ms
    expires_ts: int | None  # ms; None: never
    used_ts: int | None  # ms; None: unused
    used_by: str | None  # the name of the account it created

    def state(self, now_ms: int) -> str:
        """used, expired or open."""
        if self.used_ts is not None:
            return "used"
        return "expired" if self.expires_ts is not None and self.expires_ts <= now_ms else "open"


class AccountError(Exception):
    """An account operation refused, as the API will answer it: `{code, reason}` (and, for a
    throttled login, `retry_after` in whole seconds)."""

    def __init__(self, code: str, reason: str, *, retry_after: int | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.retry_after = retry_after

    def as_dict(self) -> dict[str, str | int]:
        """The error as the JSON body the HTTP API will send."""
        body: dict[str, str | int] = {"code": self.code, "reason": self.reason}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        return body

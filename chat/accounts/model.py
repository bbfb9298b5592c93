"""What an account and a session are, and the error every account operation reports."""

from __future__ import annotations

from collections.abc import Sequence
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


def server_admin(account: Account | None, scopes: Sequence[str] | None) -> bool:
    """Whether a caller may use its account's server-admin rights: an enabled admin account,
    by a session (`scopes` None) or by an API token with the `admin` scope. A token's powers
    are its account's rights narrowed by its scopes; the account should be read fresh (a
    demotion counts at once)."""
    return (account is not None and account.role == "admin" and not account.disabled
            and (scopes is None or "admin" in scopes))


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
    must close. `seq` counts up in commit order. With `name_key` set it is no revocation but
    the news that account `account_id` was registered under that name key: a guest holding the
    name online must leave it (the account wins)."""

    seq: int
    account_id: int
    session_id: str | None  # None: every session of the account
    ts: int  # ms
    name_key: str | None = None  # set: a registration, nothing of the account is revoked


@dataclass(frozen=True, slots=True)
class Sweep:
    """What to delete in one housekeeping round (ms cutoffs: rows older are deleted)."""

    ts: int  # now: the revocations' ts for the expired sessions; passkey challenges expired
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
    challenges: int = 0  # passkey ceremonies' challenges, expired


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


@dataclass(frozen=True, slots=True)
class Passkey:
    """A WebAuthn credential that signs in as an account (its public key only: the private
    key never leaves the person's authenticator)."""

    id: str  # the credential id, base64url: public, names the passkey in lists and paths
    account_id: int
    public_key: bytes  # COSE, as the authenticator gave it at registration
    sign_count: int  # the authenticator's counter at the last use (0: it keeps none)
    transports: tuple[str, ...]  # hints for the browser: usb, nfc, ble, internal, hybrid
    user_handle: str  # base64url: the WebAuthn user.id given at registration
    label: str  # chosen by its owner, to tell passkeys apart
    created_ts: int  # ms
    last_used_ts: int | None  # ms; None: never used to sign in


@dataclass(frozen=True, slots=True)
class Challenge:
    """A passkey ceremony begun and not yet finished: single use, until `expires_ts`."""

    challenge_hash: str  # sha256 of the random challenge, hex: how the finish finds it
    purpose: str  # "add" (to a signed-in account), "signup" (a new account), "signin"
    account_id: int | None  # add: the account; signin: the named account (0: an unknown name)
    data: str  # JSON: what the finish needs (the user handle; a signup's name, email, invite)
    expires_ts: int  # ms
    address: str  # who began it (as the per-address limits count): bounds what one can leave

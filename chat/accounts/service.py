"""The account operations the HTTP API, the socket layer and the admin command call."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

from chat.accounts.base import AccountStore, InviteInvalid, LastAdmin, NameTaken
from chat.accounts.model import Account, AccountError, Passkey, Role, Session, Sweep, Swept
from chat.accounts.passwords import MAX_PASSWORD_CHARS, Passwords, check_new_password
from chat.accounts.policy import (
    DAY_MS,
    FAILURES_FORGOTTEN_AFTER_MS,
    TOUCH_INTERVAL_MS,
    AccountPolicy,
    check_invite_ttl,
)
from chat.coalesce import Coalesced
from chat.people.names import name_key
from chat.protocol.commands import ProtocolError
from chat.protocol.parse import EMAIL_MAX_CHARS, USERNAME_MAX_CHARS, check_username

TOKEN_BYTES = 32  # 256 random bits: a session token, never guessable
SESSION_ID_BYTES = 12  # 96 bits: public, but no one can name another's session by chance
INVITE_BYTES = 12  # 96 bits, typed or pasted once
USER_AGENT_MAX_CHARS = 256  # kept to tell sessions apart in a list, no more
# A login name longer than this is no account's (names are trimmed, then at most
# USERNAME_MAX_CHARS; the slack is for the spaces trimmed) (characters).
USERNAME_INPUT_MAX_CHARS = 4 * USERNAME_MAX_CHARS

_INVALID_LOGIN = AccountError("invalid_login", "the username or the password is wrong")


def secret_hash(secret: str) -> str:
    """How a token or an invite code is stored: its sha256, hex (the secret is random and
    long, so no salt or slow hash is needed, and a lookup stays an index probe)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class AccountService:
    """Registration, login with throttling, sessions, and the admin operations, over a store.

    `clock` gives the time in seconds (time.time by default; tests pass their own).
    """

    def __init__(self, store: AccountStore, policy: AccountPolicy | None = None,
                 passwords: Passwords | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.policy = policy or AccountPolicy()
        self.passwords = passwords or Passwords()
        self._clock = clock
        # A reconnect storm's upgrades share their store calls (chat/coalesce.py).
        self.session_lookups: Coalesced[str, tuple[Session, Account]] = Coalesced(
            store.sessions_by_token_hashes)
        self.session_touches: Coalesced[str, None] = Coalesced(self._touch)
        self.external_lookups: Coalesced[str, Account] = Coalesced(store.accounts_by_external)

    def _now(self) -> int:
        return int(self._clock() * 1000)

    async def register(self, username: str, password: str, email: str | None = None,
                       invite: str | None = None, address: str = "") -> Account:
        """A new account, as --registration allows; AccountError otherwise."""
        self.check_registration(invite)
        return await self.create(username, password, email,
                                 invite=invite if self.policy.registration == "invite" else None)

    def check_registration(self, invite: str | None) -> None:
        """AccountError unless --registration lets someone with `invite` (or none) register."""
        mode = self.policy.registration
        if mode == "closed":
            raise AccountError("registration_closed", "registration is closed on this server;"
                               " an admin creates accounts")
        if mode == "invite" and not invite:
            raise AccountError("invite_required", "registration here takes an invite code")

    async def create(self, username: str, password: str, email: str | None = None, *,
                     invite: str | None = None, role: Role | None = None) -> Account:
        """An account whatever --registration says (the admin command's); `role` None: the
        store's (admin for the first account)."""
        name = check_name(username)
        email = check_email(email)
        check_new_password(password)
        encoded = await self.passwords.hash(password)
        account = await self.insert(name, email, encoded,
                                    None if invite is None else secret_hash(invite))
        if role is not None and role != account.role:
            await self.store.set_role(account.id, role)
            account = await self._account(account.id)
        return account

    async def insert(self, name: str, email: str | None, encoded: str,
                     invite_hash: str | None, passkey: Passkey | None = None) -> Account:
        """Store a checked new account (`encoded` '': no password; `passkey`: with it)."""
        try:
            return await self.store.create_account(name, name_key(name), email, encoded,
                                                   self._now(), invite_hash=invite_hash,
                                                   passkey=passkey)
        except NameTaken:
            raise AccountError("name_taken", f"the name {name!r} (or one that looks the same) "
                               "is taken") from None
        except InviteInvalid:
            raise AccountError("invalid_invite", "this invite code is unknown, used or "
                               "expired") from None

    async def count_attempt(self, counters: tuple[str, ...]) -> None:
        """Count a sign-in attempt as a failure on each counter until it succeeds
        (`succeeded`); login_throttled instead when one of them must wait."""
        now = self._now()
        wait_ms = await self.store.try_attempt(
            counters, now, forget_before=now - FAILURES_FORGOTTEN_AFTER_MS,
            wait_ms=lambda counter: self.policy.wait_ms(counter, now))
        if wait_ms:
            wait_s = self.policy.retry_after_s(wait_ms)
            raise AccountError("login_throttled", f"too many failed logins; try again in "
                               f"{wait_s} s", retry_after=wait_s)

    async def succeeded(self, counters: tuple[str, ...]) -> None:
        """An attempt counted by count_attempt succeeded: the name's counter (the last) is
        cleared, the address's (the first) takes its own count back."""
        if len(counters) > 1:
            await self.store.clear_failures(counters[-1])
        await self.store.forgive_failure(counters[0])

    async def open_session(self, account: Account, address: str,
                           user_agent: str) -> tuple[str, Session, Account]:
        """A new session of `account` (signed in): its token, shown once."""
        now = self._now()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        session = Session(secrets.token_urlsafe(SESSION_ID_BYTES), account.id, now, now,
                          address, user_agent[:USER_AGENT_MAX_CHARS])
        await self.store.create_session(session, secret_hash(token))
        return token, session, account

    async def login(self, username: str, password: str, address: str,
                    user_agent: str = "") -> tuple[str, Session, Account]:
        """A new session: (its token, shown once; the session; the account). The same error
        for an unknown name as for a wrong password; login_throttled with retry_after."""
        # Nothing longer than the limits was ever registered or set: no need to read it all.
        too_long = len(username) > USERNAME_INPUT_MAX_CHARS or len(password) > MAX_PASSWORD_CHARS
        key = "" if too_long else name_key(username.strip())
        counters = (f"address:{address}", f"name:{key}")
        await self.count_attempt(counters)
        # From here the attempt counts as a failure (try_attempt) until it succeeds.
        account = await self.store.account_by_name_key(key) if key else None
        encoded = None if account is None else await self.store.password_hash(account.id)
        if account is None or not encoded:  # '': an account with passkeys only
            await self.passwords.verify_nobody(password[:MAX_PASSWORD_CHARS])
            raise _INVALID_LOGIN
        if not await self.passwords.verify(encoded, password):
            raise _INVALID_LOGIN
        await self.succeeded(counters)
        if account.disabled:  # said only to who knows the password
            raise AccountError("account_disabled", "this account is disabled")
        if self.passwords.needs_rehash(encoded):
            await self.store.set_password_hash(account.id, await self.passwords.hash(password),
                                               self._now())
        return await self.open_session(account, address, user_agent)

    async def bound_account(self, sub: str) -> Account | None:
        """The account an embedding application's user (`sub`) is bound to, if any: what each
        of its upgrades asks, coalesced as session lookups are."""
        return await self.external_lookups.ask(sub)

    async def external(self, sub: str, name: str) -> Account:
        """The account of an embedding application's user (a checked `--jwt-key` token's `sub`
        and `name`): bound on first use to a new account under `name` (a member, with no
        password), which must be no other account's name (name_taken); the same account
        afterwards, whatever `name` says then."""
        account = await self.store.account_by_external(sub)
        if account is None:
            checked = check_name(name)
            try:
                account = await self.store.create_external(sub, checked, name_key(checked),
                                                           self._now())
            except NameTaken:
                account = await self.store.account_by_external(sub)  # the same user, at once
                if account is None:
                    raise AccountError("name_taken", f"the name {checked!r} (or one that looks "
                                       "the same) is another account's on this chat; the "
                                       "application must give its user another") from None
        return account

    async def external_login(self, sub: str, name: str, address: str,
                             user_agent: str = "") -> tuple[str, Session, Account]:
        """A new session for an embedding application's user, as login() gives one."""
        account = await self.external(sub, name)
        if account.disabled:
            raise AccountError("account_disabled", "this account is disabled")
        return await self.open_session(account, address, user_agent)

    async def session_for(self, token: str) -> tuple[Session, Account] | None:
        """The live session of a token, with its account; None for an unknown, expired or
        ended session, or a disabled account. Expired sessions are deleted here."""
        found = await self.session_lookups.ask(secret_hash(token))
        if found is None:
            return None
        session, account = found
        now = self._now()
        if (now - session.last_seen_ts > self.policy.session_idle_ms
                or now - session.created_ts > self.policy.session_max_ms):
            await self.store.delete_session(session.id, now)
            return None
        if account.disabled:
            return None
        if now - session.last_seen_ts >= TOUCH_INTERVAL_MS:
            await self.session_touches.ask(session.id)
        return session, account

    async def _touch(self, session_ids: list[str]) -> dict[str, None]:
        await self.store.touch_sessions(session_ids, self._now())
        return {}

    async def authenticate(self, token: str) -> Account | None:
        """The account a token signs in as, or None (see session_for)."""
        found = await self.session_for(token)
        return None if found is None else found[1]

    async def logout(self, token: str) -> bool:
        """End the token's session; whether there was one."""
        found = await self.store.session_by_token_hash(secret_hash(token))
        return found is not None and await self.store.delete_session(found[0].id, self._now())

    async def sessions_of(self, account: Account) -> list[Session]:
        return await self.store.sessions_of(account.id)

    async def revoke(self, session_id: str, account: Account) -> bool:
        """End one of `account`'s own sessions (an admin may end anyone's); whether it did."""
        if account.role != "admin":
            mine = {session.id for session in await self.store.sessions_of(account.id)}
            if session_id not in mine:
                return False
        return await self.store.delete_session(session_id, self._now())

    async def create_invite(self, by: Account | None = None) -> str:
        """A new single-use invite code, shown once (`by` None: the admin command), valid for
        the policy's invite_ttl_days."""
        return (await self.invite(by))[0]

    async def invite(self, by: Account | None = None, ttl_days: float | None = None,
                     ) -> tuple[str, int]:
        """A new single-use invite: (its code, shown once; its expiry, ms). `ttl_days` None:
        the policy's invite_ttl_days."""
        if by is not None and by.role != "admin":
            raise AccountError("forbidden", "only an admin creates invites")
        days = self.policy.invite_ttl_days if ttl_days is None else ttl_days
        check_invite_ttl(days)
        code = secrets.token_urlsafe(INVITE_BYTES)
        now = self._now()
        expires = now + round(days * DAY_MS)
        await self.store.create_invite(secret_hash(code), None if by is None else by.id, now,
                                       expires)
        return code, expires

    async def sweep(self, revocations_kept_ms: int, batch: int) -> Swept:
        """Delete what has expired by now (chat/accounts/sweep.py): sessions past the idle
        time or the maximum age (as session_for would refuse them), failure counters past
        the throttle's forget window, revocations older than `revocations_kept_ms`, passkey
        challenges expired by now."""
        now = self._now()
        return await self.store.sweep(Sweep(
            now, idle_before=now - self.policy.session_idle_ms,
            created_before=now - self.policy.session_max_ms,
            failures_before=now - FAILURES_FORGOTTEN_AFTER_MS,
            revocations_before=now - revocations_kept_ms, batch=batch))

    async def find(self, username: str) -> Account:
        """The account of a name (or a look-alike of it); AccountError no_such_account."""
        account = await self.store.account_by_name_key(name_key(username.strip()))
        if account is None:
            raise AccountError("no_such_account", f"no account is named {username.strip()!r}")
        return account

    async def set_disabled(self, account: Account, disabled: bool) -> Account:
        """Disable (ending its sessions, on every node) or enable an account; never the last
        enabled admin (the store decides that atomically)."""
        try:
            await self.store.set_disabled(account.id, disabled, self._now(), keep_an_admin=True)
        except LastAdmin:
            raise _last_admin(account) from None
        return await self._account(account.id)

    async def set_role(self, account: Account, role: Role) -> Account:
        """Promote or demote; never the last enabled admin (decided atomically)."""
        try:
            await self.store.set_role(account.id, role, keep_an_admin=True)
        except LastAdmin:
            raise _last_admin(account) from None
        return await self._account(account.id)

    async def reset_password(self, account: Account, password: str) -> None:
        """Set a new password and end every session of the account."""
        check_new_password(password)
        await self.store.set_password_hash(account.id, await self.passwords.hash(password),
                                           self._now(), end_sessions=True)

    async def _account(self, account_id: int) -> Account:
        account = await self.store.account_by_id(account_id)
        if account is None:
            raise AccountError("no_such_account", f"no account has id {account_id}")
        return account


def _last_admin(account: Account) -> AccountError:
    return AccountError("last_admin", f"{account.name!r} is the last enabled admin; "
                        "promote another account first")


def check_name(username: str) -> str:
    try:
        return check_username(username)
    except ProtocolError as exc:
        raise AccountError(exc.code, exc.reason) from None


def check_email(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    email = email.strip()
    if len(email) > EMAIL_MAX_CHARS or "@" not in email:
        raise AccountError("invalid_email", f"an email is an address with @ of at most "
                           f"{EMAIL_MAX_CHARS} characters; {email[:40]!r} is not")
    return email

"""Who this node's connections signed in as, and closing them when that ends (4003).

A session token (an account's, chat/accounts/), an API token (`chat_pat_...`, a bot's or a
person's, with its scopes: chat/accounts/tokens.py) or a connection token another application
signed (`--jwt-key`, chat/people/embedding.py) is checked once, at the WebSocket upgrade.
Afterwards an account's connections are closed when the store reports a revocation (a session
ended, an API token revoked, or the account disabled: each node follows the revocations
itself, so every node closes its own), and an embedded user's at its token's `exp`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from time import monotonic

from chat.accounts.model import Account, Revocation
from chat.accounts.service import AccountService
from chat.accounts.sql import TOKEN_SESSION_PREFIX
from chat.accounts.tokens import TOKEN_PREFIX, Tokens
from chat.people.connections import Auth, Client
from chat.people.embedding import Verifier, looks_like_jwt, remaining
from chat.protocol.parse import ProtocolError, check_username
from chat.store.base import StoreError

log = logging.getLogger("chat.hub")

CLOSE_REVOKED = 4003  # the session ended or the account was disabled (docs/protocol.md)
CLOSE_NAME_REGISTERED = 4004  # a guest's name became an account's (docs/protocol.md)
# How long revocations are remembered for upgrades whose check was under way (s): a session
# check is one indexed read, far shorter; a revocation older than this was in the database
# before any check still running began.
RECENT_REVOCATIONS_S = 60.0


class SignIns:
    """The upgrade's check, and the connections signed in, by account id."""

    def __init__(self, accounts: AccountService | None, jwt_key: str,
                 on_registered: Callable[[str], None] = lambda key: None) -> None:
        self.accounts = accounts
        # Called with the name key of each account registered (here or anywhere else).
        self.on_registered = on_registered
        self.jwt = Verifier.from_setting(jwt_key) if jwt_key else None
        self.tokens = None if accounts is None else Tokens(accounts)
        self.signed_in: dict[int, set[Client]] = {}
        # Revocations heard lately, with when: one heard while an upgrade's check was under
        # way closes that socket too once it is registered.
        self.revocations: deque[tuple[float, Revocation]] = deque()

    async def start(self) -> None:
        """Follow the store's revocations (NOTIFY or the poll), from now on."""
        if self.accounts is not None:
            await self.accounts.store.watch_revocations(self.revoked)

    async def registered(self, key: str) -> Account | None:
        """The account that holds a name key, or None (none, or a server without accounts)."""
        if self.accounts is None:
            return None
        try:
            return await self.accounts.store.account_by_name_key(key)
        except StoreError as exc:
            log.warning("could not look up an account: %s", exc)
            raise ProtocolError("store_failed", "the accounts cannot be read now; try again "
                                "shortly", request=None) from None

    async def authenticate(self, token: str) -> Auth | None:
        """Whom a token signs in (for a WebSocket upgrade), or None: unknown, expired, ended,
        its account disabled, or a JWT that is not valid. StoreError if the accounts cannot
        be read."""
        checked = monotonic()
        if self.jwt is not None and looks_like_jwt(token):
            embedded = self.jwt.check(token)
            if embedded is None:
                return None
            bound = (None if self.accounts is None
                     else await self.accounts.bound_account(embedded.sub))
            if bound is not None:  # it signed in with a token before: it is that account
                return None if bound.disabled else Auth("", bound, checked, embedded)
            try:
                check_username(embedded.name)
            except ProtocolError:
                return None  # the application vouches for a name this chat does not allow
            return Auth("", None, checked, embedded)
        if self.accounts is None:
            return None
        if token.startswith(TOKEN_PREFIX):
            return await self._token(token, checked)
        found = await self.accounts.session_for(token)
        return None if found is None else Auth(found[0].id, found[1], checked)

    async def _token(self, secret: str, checked: float) -> Auth | None:
        """An API token's connection: its account, with the token's scopes (and whether the
        account is a bot); None for an unknown or revoked token or a disabled account."""
        assert self.tokens is not None
        found = await self.tokens.resolve(secret)
        if found is None:
            return None
        return Auth(TOKEN_SESSION_PREFIX + found.token.id, found.account, checked,
                    scopes=found.token.scopes, bot=found.bot)

    def add(self, client: Client) -> None:
        """A connection opened with `client.auth`: closed when that ends."""
        auth = client.auth
        if auth is None:
            return
        loop = asyncio.get_running_loop()
        if auth.embedded is not None:
            loop.call_later(remaining(auth.embedded), self._expired, client)
        if auth.account is not None:
            self.signed_in.setdefault(auth.account.id, set()).add(client)
            for heard, revocation in self.revocations:
                # Heard while the session was checked: may have missed it (a registration
                # revokes nothing).
                if heard >= auth.checked and revocation.name_key is None:
                    loop.call_soon(self._close_if_revoked, client, revocation)

    def remove(self, client: Client) -> None:
        """A connection closed."""
        account = client.auth.account if client.auth is not None else None
        if account is None:
            return
        mine = self.signed_in.get(account.id)
        if mine is not None:
            mine.discard(client)
            if not mine:
                del self.signed_in[account.id]

    def revoked(self, revocation: Revocation) -> None:
        """Close the sockets of an ended session, or all of a disabled account's."""
        now = monotonic()
        self.revocations.append((now, revocation))
        while self.revocations[0][0] < now - RECENT_REVOCATIONS_S:
            self.revocations.popleft()
        if revocation.name_key is not None:  # a registration: the account's sockets stay
            self.on_registered(revocation.name_key)
            return
        for client in list(self.signed_in.get(revocation.account_id, ())):
            self._close_if_revoked(client, revocation)

    def registered_since(self, key: str, since: float) -> bool:
        """Whether an account was registered under `key` since monotonic time `since` (a
        guest's claim that began before may have missed it in the store)."""
        return any(heard >= since and revocation.name_key == key
                   for heard, revocation in self.revocations)

    @staticmethod
    def _expired(client: Client) -> None:
        """A connection token (--jwt-key) expired: the application must hand a new one."""
        if not client.closed:
            client.peer.close(CLOSE_REVOKED, "signed out: the connection token expired")

    @staticmethod
    def _close_if_revoked(client: Client, revocation: Revocation) -> None:
        auth = client.auth
        if auth is None or auth.account is None or auth.account.id != revocation.account_id:
            return
        if revocation.session_id is None:
            reason = "signed out: the account was disabled or its sessions ended"
        elif revocation.session_id == auth.session_id:
            reason = ("signed out: this API token was revoked" if auth.scopes is not None
                      else "signed out: this session ended")
        else:
            return
        client.peer.close(CLOSE_REVOKED, reason)

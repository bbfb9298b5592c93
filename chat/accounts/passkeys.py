"""Passkeys (WebAuthn): add one to an account, create an account with one, sign in with one.

Each ceremony is two calls: a begin that stores a random challenge (in the account store, by
its sha256, so any node can finish what another began) and answers the browser's options, and
a finish that takes the challenge back (once: the row is deleted) and checks what the
authenticator signed with py_webauthn (the `webauthn` package).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url, parse_client_data_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.parse_authentication_credential_json import (
    parse_authentication_credential_json,
)
from webauthn.helpers.parse_registration_credential_json import (
    parse_registration_credential_json,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from chat.accounts.base import PasskeyTaken
from chat.accounts.model import Account, AccountError, Challenge, Passkey, Session
from chat.accounts.passkey_rules import (
    CEREMONY_TIMEOUT_MS,
    CHALLENGE_TTL_MS,
    DECOY_SECRET,
    KNOWN_TRANSPORTS,
    MAX_CHALLENGES_PER_ADDRESS,
    MAX_PASSKEYS_PER_ACCOUNT,
    NO_CEREMONY,
    REFUSED,
    RelyingParty,
    challenge_hash,
    check_label,
    decoys,
    descriptor,
    malformed,
    new_challenge,
    new_handle,
    taken,
    too_many,
    unb64,
)
from chat.accounts.service import AccountService, check_email, check_name, secret_hash
from chat.people.names import name_key


class PasskeyService:
    """The three ceremonies and the list, over an AccountService (its store, clock, throttle)."""

    def __init__(self, accounts: AccountService) -> None:
        self.accounts = accounts
        self.store = accounts.store
        self._decoy_secret: bytes | None = None  # read from the store at the first use

    def _now(self) -> int:
        return self.accounts._now()

    async def _begin(self, purpose: str, account_id: int | None, data: dict[str, Any],
                     challenge: bytes, address: str) -> None:
        now = self._now()
        if not await self.store.create_challenge(Challenge(
                challenge_hash(challenge), purpose, account_id, json.dumps(data),
                now + CHALLENGE_TTL_MS, address), now,
                max_per_address=MAX_CHALLENGES_PER_ADDRESS):
            raise AccountError("too_many_ceremonies", f"{MAX_CHALLENGES_PER_ADDRESS} passkey "
                               "requests from this address are unfinished; finish one, or "
                               f"wait {CHALLENGE_TTL_MS // 60_000} minutes")

    async def _take(self, client_data_json: bytes, purpose: str) -> tuple[Challenge, bytes]:
        """The stored challenge the authenticator signed, removed (single use) and still valid
        for `purpose`; invalid_challenge otherwise."""
        try:
            challenge = parse_client_data_json(client_data_json).challenge
        except (WebAuthnException, ValueError):
            raise AccountError("bad_request", "clientDataJSON is not WebAuthn client data"
                               ) from None
        taken = await self.store.take_challenge(challenge_hash(challenge))
        if taken is None or taken.purpose != purpose or taken.expires_ts < self._now():
            raise NO_CEREMONY
        return taken, challenge

    # ---- adding a passkey to a signed-in account ------------------------------------------

    async def begin_add(self, account: Account, rp: RelyingParty,
                        address: str) -> dict[str, Any]:
        """Creation options for another passkey of `account`."""
        mine = await self.store.passkeys_of(account.id)
        if len(mine) >= MAX_PASSKEYS_PER_ACCOUNT:
            raise too_many()
        handle = mine[0].user_handle if mine else new_handle()
        return await self._registration(rp, account.name, handle, mine, "add", account.id, {},
                                        address)

    async def finish_add(self, account: Account, credential: Any, label: str | None,
                         rp: RelyingParty) -> Passkey:
        """Register the new passkey the authenticator made for `account`."""
        passkey, challenge = await self._verified_registration(credential, label, rp, "add")
        if challenge.account_id != account.id:
            raise NO_CEREMONY  # begun by another session's account
        if len(await self.store.passkeys_of(account.id)) >= MAX_PASSKEYS_PER_ACCOUNT:
            raise too_many()
        try:
            await self.store.add_passkey(dataclasses.replace(passkey, account_id=account.id))
        except PasskeyTaken:
            raise taken() from None
        added = await self.store.passkey_by_id(passkey.id)
        assert added is not None
        return added

    # ---- a new account with a passkey and no password ----------------------------------------

    async def begin_signup(self, username: str, email: str | None, invite: str | None,
                           rp: RelyingParty, address: str) -> dict[str, Any]:
        """Creation options for the first passkey of an account not made yet (as
        --registration allows; the name is checked now and taken at the finish)."""
        self.accounts.check_registration(invite)
        name = check_name(username)
        email = check_email(email)
        if await self.store.account_by_name_key(name_key(name)) is not None:
            raise AccountError("name_taken", f"the name {name!r} (or one that looks the same) "
                               "is taken")
        invite_hash = (secret_hash(invite) if invite and self.accounts.policy.registration
                       == "invite" else None)
        data = {"name": name, "email": email, "invite_hash": invite_hash}
        return await self._registration(rp, name, new_handle(), [], "signup", None, data,
                                        address)

    async def finish_signup(self, credential: Any, label: str | None, rp: RelyingParty,
                            address: str, user_agent: str) -> tuple[str, Session, Account]:
        """The account, created with the passkey in one transaction, and a session of it."""
        passkey, challenge = await self._verified_registration(credential, label, rp,
                                                               "signup")
        data = json.loads(challenge.data)
        self.accounts.check_registration("invite" if data.get("invite_hash") else None)
        try:
            account = await self.accounts.insert(data["name"], data.get("email"), "",
                                                 data.get("invite_hash"), passkey)
        except PasskeyTaken:
            raise taken() from None
        return await self.accounts.open_session(account, address, user_agent)

    async def _registration(self, rp: RelyingParty, name: str, handle: str,
                            existing: Sequence[Passkey], purpose: str, account_id: int | None,
                            data: dict[str, Any], address: str) -> dict[str, Any]:
        options = generate_registration_options(
            rp_id=rp.id, rp_name=rp.name, user_name=name, user_display_name=name,
            user_id=unb64(handle), challenge=new_challenge(), timeout=CEREMONY_TIMEOUT_MS,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.PREFERRED),
            exclude_credentials=[descriptor(p) for p in existing])
        await self._begin(purpose, account_id, {**data, "handle": handle}, options.challenge,
                          address)
        shown: dict[str, Any] = json.loads(options_to_json(options))
        return shown

    async def _verified_registration(self, credential: Any, label: str | None,
                                     rp: RelyingParty, purpose: str,
                                     ) -> tuple[Passkey, Challenge]:
        try:
            parsed = parse_registration_credential_json(credential)
        except (WebAuthnException, ValueError, TypeError):
            raise malformed() from None
        challenge, expected = await self._take(parsed.response.client_data_json, purpose)
        try:
            verified = verify_registration_response(
                credential=parsed, expected_challenge=expected, expected_rp_id=rp.id,
                expected_origin=list(rp.origins))
        except (WebAuthnException, ValueError) as exc:
            raise AccountError("passkey_rejected", f"the passkey was not accepted: {exc}"
                               ) from None
        transports = tuple(str(t.value) for t in parsed.response.transports or ()
                           if str(t.value) in KNOWN_TRANSPORTS)
        return Passkey(
            bytes_to_base64url(verified.credential_id), challenge.account_id or 0,
            verified.credential_public_key, verified.sign_count, transports,
            json.loads(challenge.data)["handle"], check_label(label), self._now(), None,
        ), challenge

    # ---- signing in -------------------------------------------------------------------------

    async def begin_signin(self, username: str | None, rp: RelyingParty,
                           address: str) -> dict[str, Any]:
        """Request options: any passkey of this site (discoverable), or `username`'s. A name
        with no passkeys, or no account, is shown stable decoys in their place (the answer
        never tells which names have passkeys); any credential then fails as a wrong one."""
        allowed: list[PublicKeyCredentialDescriptor] = []
        account_id = None
        if username is not None and username.strip():
            key = name_key(username.strip())
            account = await self.store.account_by_name_key(key)
            account_id = 0 if account is None else account.id  # 0: no account, nothing fits
            allowed = [descriptor(p) for p in await self.store.passkeys_of(account_id)]
            if not allowed:
                allowed = decoys(await self._decoy_key(), key)
        options = generate_authentication_options(
            rp_id=rp.id, challenge=new_challenge(), timeout=CEREMONY_TIMEOUT_MS,
            allow_credentials=allowed,
            user_verification=UserVerificationRequirement.PREFERRED)
        await self._begin("signin", account_id, {}, options.challenge, address)
        shown: dict[str, Any] = json.loads(options_to_json(options))
        return shown

    async def _decoy_key(self) -> bytes:
        if self._decoy_secret is None:
            self._decoy_secret = await self.store.server_secret(DECOY_SECRET)
        return self._decoy_secret

    async def finish_signin(self, credential: Any, rp: RelyingParty, address: str,
                            user_agent: str) -> tuple[str, Session, Account]:
        """A session of the passkey's account. Throttled as password sign-ins are (per
        address, and per account once the passkey names one); every refusal the same."""
        try:
            parsed = parse_authentication_credential_json(credential)
        except (WebAuthnException, ValueError, TypeError):
            raise malformed() from None
        passkey = await self.store.passkey_by_id(bytes_to_base64url(parsed.raw_id))
        account = None if passkey is None else await self.store.account_by_id(
            passkey.account_id)
        counters = ((f"address:{address}",) if account is None
                    else (f"address:{address}", f"name:{account.name_key}"))
        await self.accounts.count_attempt(counters)
        # From here the attempt counts as a failure until it succeeds.
        challenge, expected = await self._take(parsed.response.client_data_json, "signin")
        if passkey is None or account is None:
            raise REFUSED
        if challenge.account_id is not None and challenge.account_id != account.id:
            raise REFUSED  # begun for another name
        handle = parsed.response.user_handle
        if handle is not None and bytes_to_base64url(handle) != passkey.user_handle:
            raise REFUSED
        try:
            verified = verify_authentication_response(
                credential=parsed, expected_challenge=expected, expected_rp_id=rp.id,
                expected_origin=list(rp.origins), credential_public_key=passkey.public_key,
                credential_current_sign_count=passkey.sign_count)
        except (WebAuthnException, ValueError):
            raise REFUSED from None
        if not await self.store.use_passkey(passkey.id, passkey.sign_count,
                                            verified.new_sign_count, self._now()):
            raise REFUSED  # another sign-in used this counter value first
        await self.accounts.succeeded(counters)
        if account.disabled:  # told only to who holds the passkey
            raise AccountError("account_disabled", "this account is disabled")
        return await self.accounts.open_session(account, address, user_agent)

    # ---- the list -----------------------------------------------------------------------------

    async def passkeys_of(self, account: Account) -> list[Passkey]:
        return await self.store.passkeys_of(account.id)

    async def delete(self, account: Account, credential_id: str) -> None:
        """Delete one of `account`'s passkeys; no_such_passkey, or last_sign_in when it is
        the account's only way in."""
        if credential_id not in {p.id for p in await self.store.passkeys_of(account.id)}:
            raise AccountError("no_such_passkey", "you have no passkey with this id")
        if not await self.store.delete_passkey(credential_id, account.id):
            raise AccountError("last_sign_in", "this passkey is the account's only way to sign "
                               "in; add another passkey first")

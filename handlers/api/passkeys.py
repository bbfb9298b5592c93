"""Passkeys over HTTP: begin a ceremony (POST /api/v1/passkey-challenges), then finish it by
adding a passkey (POST /api/v1/passkeys), creating an account (POST /api/v1/passkey-accounts)
or signing in (POST /api/v1/passkey-sessions); list and delete your passkeys."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from chat.accounts import AccountService
from chat.accounts.model import AccountError, Passkey, Session
from chat.accounts.passkey_rules import RelyingParty
from chat.accounts.passkeys import PasskeyService
from chat.config import Settings
from handlers.api.base import ApiError, ApiHandler, account_json, session_json

log = logging.getLogger("chat.api")

# A passkey's id in a path: a base64url credential id (at most 1,023 bytes: 1,364 characters).
PASSKEY_ID_PATTERN = r"[A-Za-z0-9_-]{1,1400}"
PURPOSES = ("add", "signup", "signin")


def passkey_json(passkey: Passkey) -> dict[str, Any]:
    """A passkey as its owner sees it: never its public key or counter."""
    return {"id": passkey.id, "label": passkey.label, "created_ts": passkey.created_ts,
            "last_used_ts": passkey.last_used_ts, "transports": list(passkey.transports)}


class PasskeyHandler(ApiHandler):
    """What the passkey routes share: the service, the Relying Party of this request."""

    def initialize(self, accounts: AccountService, settings: Settings,  # type: ignore[override]
                   passkeys: PasskeyService) -> None:
        super().initialize(accounts, settings)
        self.passkeys = passkeys

    def relying_party(self) -> RelyingParty:
        """--rp-id/--rp-origins, or this request's host name and origin when unset."""
        settings = self.chat_settings
        rp_id = settings.rp_id or self.request.host_name.lower()
        try:
            ipaddress.ip_address(rp_id.strip("[]"))
        except ValueError:
            pass
        else:
            raise ApiError(400, "passkeys_unavailable", f"passkeys need the page reached by a "
                           f"host name (localhost works), not the address {rp_id}; or set "
                           "--rp-id")
        origins = tuple(settings.rp_origins) or (
            f"{self.request.protocol}://{self.request.host.lower()}",)
        return RelyingParty(rp_id, settings.rp_name, origins)

    def credential(self, body: dict[str, Any]) -> dict[str, Any]:
        value = body.get("credential")
        if not isinstance(value, dict):
            raise ApiError(400, "bad_request", "the field 'credential' must be the "
                           "PublicKeyCredential as a JSON object")
        return value

    def signed_in_answer(self, token: str, session: Session, account: Any,
                         status: int = 200) -> None:
        self.set_session_cookie(token)
        self.send_json({
            "token": token,
            "session": session_json(session, session.id),
            "account": account_json(account, self.chat_settings.avatars, own=True),
        }, status)


class PasskeyChallengesHandler(PasskeyHandler):
    """POST {purpose, ...}: the options for navigator.credentials.create() or .get()."""

    SUPPORTED_METHODS = ("POST",)

    async def post(self) -> None:
        body = self.json_body()
        purpose = self.required(body, "purpose")
        if purpose not in PURPOSES:
            raise ApiError(400, "bad_request", f"the purpose {purpose[:40]!r} is not one of "
                           f"{', '.join(PURPOSES)}")
        rp = self.relying_party()
        try:
            if purpose == "add":
                signed = await self.signed_in()
                options = await self.passkeys.begin_add(signed.account, rp, self.address)
            elif purpose == "signup":
                options = await self.passkeys.begin_signup(
                    self.required(body, "username"), self.optional(body, "email"),
                    self.optional(body, "invite"), rp, self.address)
            else:
                options = await self.passkeys.begin_signin(self.optional(body, "username"), rp,
                                                           self.address)
        except AccountError as exc:
            raise ApiError.of(exc) from None
        self.send_json({"options": options})


class PasskeysHandler(PasskeyHandler):
    """GET: your passkeys; POST {credential, label?}: add the one just made."""

    SUPPORTED_METHODS = ("GET", "POST")

    async def get(self) -> None:
        signed = await self.signed_in()
        listed = await self.passkeys.passkeys_of(signed.account)
        self.send_json({"passkeys": [passkey_json(p) for p in listed]})

    async def post(self) -> None:
        body = self.json_body()
        signed = await self.signed_in()
        try:
            added = await self.passkeys.finish_add(
                signed.account, self.credential(body), self.optional(body, "label"),
                self.relying_party())
        except AccountError as exc:
            raise ApiError.of(exc) from None
        log.info("account %d added a passkey", signed.account.id)
        self.send_json({"passkey": passkey_json(added)}, 201)


class OnePasskeyHandler(PasskeyHandler):
    """DELETE: one of your passkeys (another's is as unknown: 404; never the last way in)."""

    SUPPORTED_METHODS = ("DELETE",)

    async def delete(self, credential_id: str) -> None:
        signed = await self.signed_in()
        try:
            await self.passkeys.delete(signed.account, credential_id)
        except AccountError as exc:
            raise ApiError.of(exc) from None
        self.set_status(204)
        self.finish()


class PasskeyAccountsHandler(PasskeyHandler):
    """POST {credential, label?}: the new account of a signup ceremony, signed in."""

    SUPPORTED_METHODS = ("POST",)

    async def post(self) -> None:
        body = self.json_body()
        try:
            token, session, account = await self.passkeys.finish_signup(
                self.credential(body), self.optional(body, "label"), self.relying_party(),
                self.address, self.request.headers.get("User-Agent", ""))
        except AccountError as exc:
            raise ApiError.of(exc) from None
        log.info("account %d (%r) registered with a passkey from %s", account.id,
                 account.name, self.address)
        self.set_header("Location", "/api/v1/me")
        self.signed_in_answer(token, session, account, 201)


class PasskeySessionsHandler(PasskeyHandler):
    """POST {credential}: sign in with a passkey (the cookie and the token, as with a
    password)."""

    SUPPORTED_METHODS = ("POST",)

    async def post(self) -> None:
        body = self.json_body()
        try:
            token, session, account = await self.passkeys.finish_signin(
                self.credential(body), self.relying_party(), self.address,
                self.request.headers.get("User-Agent", ""))
        except AccountError as exc:
            raise ApiError.of(exc) from None
        log.info("account %d signed in with a passkey from %s (session %s)", account.id,
                 self.address, session.id)
        self.signed_in_answer(token, session, account)

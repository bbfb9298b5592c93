"""POST /api/v1/accounts (register) and GET /api/v1/me (who this session is)."""

from __future__ import annotations

import logging

from chat.accounts.model import AccountError
from handlers.api.base import ApiError, ApiHandler, account_json, session_json

log = logging.getLogger("chat.api")


class AccountsHandler(ApiHandler):
    """Create an account, as --registration allows (open, invite, closed)."""

    SUPPORTED_METHODS = ("POST",)

    async def post(self) -> None:
        body = self.json_body()
        username = self.required(body, "username")
        password = self.required(body, "password")
        email = self.optional(body, "email")
        invite = self.optional(body, "invite")
        try:
            account = await self.accounts.register(username, password, email, invite,
                                                   self.address)
        except AccountError as exc:
            raise ApiError.of(exc) from None
        log.info("account %d (%r) registered from %s", account.id, account.name, self.address)
        self.set_header("Location", "/api/v1/me")
        self.send_json({"account": account_json(account, self.chat_settings.avatars, own=True)},
                       201)


class MeHandler(ApiHandler):
    """The signed-in account (with its email) and the session used."""

    SUPPORTED_METHODS = ("GET",)

    async def get(self) -> None:
        signed = await self.signed_in()
        self.send_json({
            "account": account_json(signed.account, self.chat_settings.avatars, own=True),
            "session": session_json(signed.session, signed.session.id),
        })

"""Personal access tokens (an account's own) and, for admins, every token and the bots."""

from __future__ import annotations

import logging
from typing import Any

from chat.accounts import AccountService
from chat.accounts.model import Account, AccountError
from chat.accounts.tokens import Tokens
from chat.config import Settings
from chat.node.apiuse import ApiUse
from handlers.api.base import ApiError, ApiHandler, account_json

log = logging.getLogger("chat.api")

TOKEN_ID_PATTERN = r"[A-Za-z0-9_-]{1,32}"  # what chat.accounts.tokens makes, with room to spare
BOT_NAME_PATTERN = r"[^/]{1,400}"


class TokensApiHandler(ApiHandler):
    """A route of tokens or bots: refusals of the account service as API errors."""

    def initialize(self, accounts: AccountService, settings: Settings,  # type: ignore[override]
                   tokens: Tokens, use: ApiUse) -> None:
        super().initialize(accounts, settings)
        self.tokens = tokens
        self.use = use
        self.service = tokens

    async def admin(self) -> Account:
        """The caller, a server admin (by a session, or a token with the admin scope)."""
        caller = await self.authorized("admin")
        if not caller.admin:
            raise ApiError(403, "forbidden", "only server admins may manage bots and others' "
                           "tokens")
        return caller.account

    async def issue(self, owner: Account, by: Account) -> dict[str, Any]:
        """A new token of `owner` from the body's `name` and `scopes`: shown once, here."""
        body = self.json_body()
        name = self.required(body, "name")
        try:
            secret, token = await self.service.create(owner, name, body.get("scopes"), by)
        except AccountError as exc:
            raise ApiError.of(exc) from None
        log.info("account %d made API token %s for account %d", by.id, token.id, owner.id)
        return {"token": secret, "api_token": token.as_json()}


class TokensHandler(TokensApiHandler):
    """GET: your tokens (never their secrets); POST: a new one, its secret shown once. With a
    session only: a token cannot make more tokens."""

    SUPPORTED_METHODS = ("GET", "POST")
    ROUTE = "tokens"

    async def get(self) -> None:
        signed = await self.signed_in()
        tokens = await self.service.of(signed.account.id)
        self.send_json({"tokens": [token.as_json() for token in tokens]})

    async def post(self) -> None:
        signed = await self.signed_in()
        self.send_json(await self.issue(signed.account, signed.account), 201)


class OneTokenHandler(TokensApiHandler):
    """DELETE: revoke one of your tokens (with a session; another's is as unknown: 404)."""

    SUPPORTED_METHODS = ("DELETE",)
    ROUTE = "tokens"

    async def delete(self, token_id: str) -> None:
        signed = await self.signed_in()
        mine = signed.account
        if not await self.service.revoke(token_id, mine.id):
            raise ApiError(404, "no_such_token", "you have no token with this id")
        log.info("account %d revoked its API token %s", mine.id, token_id)
        self.set_status(204)
        self.finish()


class AdminTokensHandler(TokensApiHandler):
    """GET: every token with its account's name (admins)."""

    SUPPORTED_METHODS = ("GET",)
    ROUTE = "admin_tokens"

    async def get(self) -> None:
        await self.admin()
        self.send_json({"tokens": [{**token.as_json(), "username": name}
                                   for token, name in await self.service.every()]})


class AdminTokenHandler(TokensApiHandler):
    """DELETE: revoke anyone's token (admins)."""

    SUPPORTED_METHODS = ("DELETE",)
    ROUTE = "admin_tokens"

    async def delete(self, token_id: str) -> None:
        admin = await self.admin()
        if not await self.service.revoke(token_id, None):
            raise ApiError(404, "no_such_token", "no token has this id")
        log.info("admin %d revoked API token %s", admin.id, token_id)
        self.set_status(204)
        self.finish()


class BotsHandler(TokensApiHandler):
    """GET: the bots; POST: a new bot (`username`), with a first token if `scopes` is given."""

    SUPPORTED_METHODS = ("GET", "POST")
    ROUTE = "bots"

    async def get(self) -> None:
        await self.admin()
        self.send_json({"bots": [bot_json(bot, self.chat_settings.avatars)
                                 for bot in await self.service.bots()]})

    async def post(self) -> None:
        admin = await self.admin()
        body = self.json_body()
        username = self.required(body, "username")
        try:
            bot = await self.service.create_bot(username, admin)
        except AccountError as exc:
            raise ApiError.of(exc) from None
        log.info("admin %d created bot %d (%r)", admin.id, bot.id, bot.name)
        self.send_json({"account": bot_json(bot, self.chat_settings.avatars)}, 201)


class OneBotHandler(TokensApiHandler):
    """DELETE: revoke a bot (admins): its account is disabled, so each of its tokens is refused
    at once and its sockets close (4003), on every node; its name and messages stay.
    `chat_server.py accounts enable NAME` lets it in again."""

    SUPPORTED_METHODS = ("DELETE",)
    ROUTE = "bots"

    async def delete(self, raw_name: str) -> None:
        admin = await self.admin()
        try:
            bot = await self.service.bot(raw_name)
            await self.accounts.set_disabled(bot, True)
        except AccountError as exc:
            raise ApiError.of(exc) from None
        log.info("admin %d revoked bot %d (%r)", admin.id, bot.id, bot.name)
        self.set_status(204)
        self.finish()


class BotTokensHandler(TokensApiHandler):
    """POST: a new token of a bot (`name`, `scopes`), its secret shown once (admins)."""

    SUPPORTED_METHODS = ("POST",)
    ROUTE = "bots"

    async def post(self, raw_name: str) -> None:
        admin = await self.admin()
        try:
            bot = await self.service.bot(raw_name)
        except AccountError as exc:
            raise ApiError.of(exc) from None
        self.send_json(await self.issue(bot, admin), 201)


def bot_json(bot: Account, avatars: str) -> dict[str, Any]:
    return {**account_json(bot, avatars, own=False), "bot": True, "disabled": bot.disabled}

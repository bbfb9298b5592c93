"""/api/v1/webhooks: a room's owners (and server admins) create, list and revoke its webhooks.

Signed in as for any call (a session), or by an API token with the `admin` scope (which only
a server admin's token has): a hook is a credential that outlives the token that made it (its
URL posts, its calls carry the room's messages out), so a leaked read or write token must not
be able to leave one behind, as it cannot make more tokens.
"""

from __future__ import annotations

import logging
from typing import Any

from chat.accounts import AccountService
from chat.accounts.model import Account
from chat.accounts.tokens import Tokens
from chat.config import Settings
from chat.hooks.service import HookError, Webhooks
from chat.node.apiuse import ApiUse
from handlers.api.base import ApiError, ApiHandler

log = logging.getLogger("chat.api")

HOOK_ID_PATTERN = r"[0-9a-f]{1,64}"


def api_error(exc: HookError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.reason, retry_after=exc.retry_after)


class WebhookApi(ApiHandler):
    """What both webhook handlers are given."""

    ROUTE = "webhooks"

    def initialize(self, accounts: AccountService, settings: Settings,  # type: ignore[override]
                   hooks: Webhooks, tokens: Tokens, use: ApiUse) -> None:
        super().initialize(accounts, settings)
        self.hooks = hooks
        self.tokens = tokens
        self.use = use

    async def manager(self) -> Account:
        """Who manages: a session's account, or an admin-scope token's (the hook service then
        checks that it owns the room or is a server admin)."""
        return (await self.authorized("admin")).account


class WebhooksHandler(WebhookApi):
    """GET ?room=: a room's live webhooks; POST: a new one (its secret shown this once)."""

    SUPPORTED_METHODS = ("GET", "POST")

    async def get(self) -> None:
        account = await self.manager()
        room = self.get_query_argument("room", None)
        if room is None:
            raise ApiError(400, "bad_request", "give the room: ?room=NAME")
        try:
            hooks = await self.hooks.list(account, room)
        except HookError as exc:
            raise api_error(exc) from None
        self.send_json({"webhooks": [hook.as_json() for hook in hooks]})

    async def post(self) -> None:
        account = await self.manager()
        body = self.json_body()
        room = self.required(body, "room")
        name = self.required(body, "name")
        kind = self.optional(body, "kind") or "incoming"
        answer: dict[str, Any]
        try:
            if kind == "incoming":
                hook, secret = await self.hooks.create_incoming(account, room, name)
                path = f"/hooks/{secret}"
                answer = {"webhook": hook.as_json(), "path": path,
                          "url": f"{self.request.protocol}://{self.request.host}{path}"}
            elif kind == "outgoing":
                triggers = body.get("triggers", [])
                if not isinstance(triggers, list) or not all(
                        isinstance(word, str) for word in triggers):
                    raise ApiError(400, "bad_request", "the field 'triggers' must be an array "
                                   "of strings")
                hook = await self.hooks.create_outgoing(account, room, name,
                                                        self.required(body, "url"), triggers)
                answer = {"webhook": hook.as_json(), "signing_key": hook.signing_key}
            else:
                raise ApiError(400, "bad_request", f"kind is {kind[:20]!r}; it must be "
                               "incoming or outgoing")
        except HookError as exc:
            raise api_error(exc) from None
        log.info("account %d made %s webhook %s in %s", account.id, kind, hook.id,
                 hook.room)
        self.send_json(answer, 201)


class WebhookHandler(WebhookApi):
    """DELETE: revoke a webhook at once (its URL answers 404, its calls stop)."""

    SUPPORTED_METHODS = ("DELETE",)

    async def delete(self, hook_id: str) -> None:
        account = await self.manager()
        try:
            hook = await self.hooks.revoke(account, hook_id)
        except HookError as exc:
            raise api_error(exc) from None
        log.info("account %d revoked webhook %s of %s", account.id, hook.id, hook.room)
        self.set_status(204)
        self.finish()

"""Sign in (POST /api/v1/sessions), list your sessions, sign out of one or of this one."""

from __future__ import annotations

import logging

from chat.accounts.model import Account, AccountError, Session
from chat.accounts.service import AccountService
from chat.config import Settings
from chat.people.embedding import Verifier
from handlers.api.base import ApiError, ApiHandler, account_json, session_json

log = logging.getLogger("chat.api")

# A session id in a path: what chat.accounts.service makes (token_urlsafe), with room to spare.
SESSION_ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"


class SessionsHandler(ApiHandler):
    """POST: sign in with a name and password, or with an embedding application's token
    (`{"jwt"}`, --jwt-key) (cookie + token); GET: your sessions."""

    SUPPORTED_METHODS = ("GET", "POST")

    def initialize(self, accounts: AccountService, settings: Settings,
                   jwt: Verifier | None = None) -> None:
        super().initialize(accounts, settings)
        self.jwt = jwt

    async def post(self) -> None:
        body = self.json_body()
        agent = self.request.headers.get("User-Agent", "")
        try:
            if "jwt" in body:
                token, session, account = await self._with_jwt(self.required(body, "jwt"),
                                                               agent)
            else:
                username = self.required(body, "username")
                password = self.required(body, "password")
                token, session, account = await self.accounts.login(
                    username, password, self.address, agent)
        except AccountError as exc:
            raise ApiError.of(exc) from None
        log.info("account %d signed in from %s (session %s)", account.id, self.address,
                 session.id)
        self.set_session_cookie(token)
        self.send_json({
            "token": token,
            "session": session_json(session, session.id),
            "account": account_json(account, self.chat_settings.avatars, own=True),
        })

    async def _with_jwt(self, token: str, agent: str) -> tuple[str, Session, Account]:
        """A session for the user an embedding application's token names (docs/api.md)."""
        if self.jwt is None:
            raise ApiError(400, "jwt_not_accepted", "this server takes no application tokens "
                           "(it runs without --jwt-key)")
        embedded = self.jwt.check(token)
        if embedded is None:
            raise ApiError(401, "invalid_jwt", "the token is not one this server's --jwt-key "
                           "verifies: wrong key or algorithm, expired, or without sub, name "
                           "and exp")
        return await self.accounts.external_login(embedded.sub, embedded.name, self.address,
                                                  agent)

    async def get(self) -> None:
        signed = await self.signed_in()
        current = signed.session.id
        sessions = await self.accounts.sessions_of(signed.account)
        self.send_json({"sessions": [session_json(s, current) for s in sessions],
                        "current": current})


class CurrentSessionHandler(ApiHandler):
    """DELETE: sign out (this session ends; the cookie is cleared)."""

    SUPPORTED_METHODS = ("DELETE",)

    async def delete(self) -> None:
        signed = await self.signed_in()
        await self.accounts.logout(signed.token)
        self.clear_session_cookie()
        self.set_status(204)
        self.finish()


class SessionHandler(ApiHandler):
    """DELETE: end one of your own sessions by its id (another's is as unknown: 404)."""

    SUPPORTED_METHODS = ("DELETE",)

    async def delete(self, session_id: str) -> None:
        signed = await self.signed_in()
        # Own sessions only, admins included: ending another's is the admin command's.
        mine = {session.id for session in await self.accounts.sessions_of(signed.account)}
        if session_id not in mine or not await self.accounts.revoke(session_id, signed.account):
            raise ApiError(404, "no_such_session", "you have no session with this id")
        if session_id == signed.session.id:
            self.clear_session_cookie()
        self.set_status(204)
        self.finish()

"""What every /api/v1 handler shares: JSON bodies and errors, the session cookie, sign-in, CSRF."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from tornado.web import HTTPError, RequestHandler

from chat.accounts import AccountService
from chat.accounts.model import Account, AccountError, Session, server_admin
from chat.accounts.tokens import TOKEN_PREFIX, ApiToken, Scope, Tokens
from chat.addresses import address_group
from chat.config import Settings
from chat.node.apiuse import ApiUse
from chat.people.identity import avatar_for

COOKIE_NAME = "chat_session"  # the contract with the page and the socket: the token itself
JSON_TYPE = "application/json"
# The HTTP status of each AccountError code (anything unlisted is a 400: bad input).
STATUS_OF_CODE = {
    "invalid_login": 401,
    "registration_closed": 403,
    "invite_required": 403,
    "invalid_invite": 403,
    "account_disabled": 403,
    "forbidden": 403,
    "no_such_account": 404,
    "name_taken": 409,
    "last_admin": 409,
    "login_throttled": 429,
    # passkeys (handlers/api/passkeys.py)
    "invalid_passkey": 401,
    "no_such_passkey": 404,
    "passkey_taken": 409,
    "last_sign_in": 409,
    "too_many_passkeys": 409,
    "too_many_ceremonies": 429,
    # tokens and bots (handlers/api/tokens.py)
    "no_such_bot": 404,
    "too_many_tokens": 409,
}
UNSAFE_METHODS = frozenset({"POST", "DELETE", "PUT", "PATCH"})


class ApiError(HTTPError):
    """An answer other than success: `status` and the JSON body {code, reason[, retry_after]}."""

    def __init__(self, status: int, code: str, reason: str, *,
                 retry_after: int | None = None) -> None:
        super().__init__(status)  # no log_message: a refusal is no fault, Tornado logs none
        self.body: dict[str, str | int] = {"code": code, "reason": reason}
        if retry_after is not None:
            self.body["retry_after"] = retry_after

    @classmethod
    def of(cls, error: AccountError) -> ApiError:
        """The answer to a refused account operation: its as_dict() with the code's status."""
        answer = cls(STATUS_OF_CODE.get(error.code, 400), error.code, error.reason)
        answer.body = error.as_dict()
        return answer


def account_json(account: Account, avatars: str, *, own: bool) -> dict[str, Any]:
    """An account as the API shows it: never a hash; the email only to its owner."""
    shown: dict[str, Any] = {
        "id": account.id, "username": account.name, "role": account.role,
        "avatar": avatar_for(avatars, account.email, account.name),
        "created_ts": account.created_ts,
    }
    if own:
        shown["email"] = account.email
    return shown


def session_json(session: Session, current_id: str | None) -> dict[str, Any]:
    """A session as its owner sees it (its id names it; nothing in it opens it)."""
    return {
        "id": session.id, "created_ts": session.created_ts,
        "last_seen_ts": session.last_seen_ts, "address": session.address,
        "user_agent": session.user_agent, "current": session.id == current_id,
    }


class Signed:
    """The session a request came with: how it came (cookie or bearer) and its token."""

    __slots__ = ("account", "by_cookie", "session", "token")

    def __init__(self, session: Session, account: Account, token: str, by_cookie: bool) -> None:
        self.session = session
        self.account = account
        self.token = token
        self.by_cookie = by_cookie


class Caller:
    """Who a request acts as: an account, by an API token (`token`) or by a session."""

    __slots__ = ("account", "session_id", "token")

    def __init__(self, account: Account, token: ApiToken | None,
                 session_id: str | None) -> None:
        self.account = account
        self.token = token
        self.session_id = session_id

    @property
    def scopes(self) -> tuple[str, ...] | None:
        """The token's scopes, None for a session (chat.accounts.model.server_admin)."""
        return None if self.token is None else tuple(self.token.scopes)

    @property
    def admin(self) -> bool:
        """Whether the caller may use its account's server-admin rights."""
        return server_admin(self.account, self.scopes)


class ApiHandler(RequestHandler):
    """JSON in and out; refusals as ApiError; unsafe cookie requests only from the page's origin.

    A subclass lists its methods in SUPPORTED_METHODS (others get 405 with `Allow`), which the
    OpenAPI test also reads.
    """

    SUPPORTED_METHODS: tuple[str, ...] = ()
    ROUTE = ""  # the route's name in /metrics (chat_api_requests_total{route=...})
    # Set by the routes that take API tokens (handlers/api/tokens.py, messages.py); None:
    # sessions only.
    tokens: Tokens | None = None
    use: ApiUse | None = None

    def initialize(self, accounts: AccountService, settings: Settings) -> None:
        self.accounts = accounts
        self.chat_settings = settings

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", f"{JSON_TYPE}; charset=utf-8")
        self.set_header("Cache-Control", "no-store")  # sessions and tokens: never in a cache

    def prepare(self) -> None:
        if self.request.method in UNSAFE_METHODS and self._bearer() is None:
            self._check_same_origin()
        if self.request.method == "POST":
            content_type = self.request.headers.get("Content-Type", "")
            if content_type.partition(";")[0].strip().lower() != JSON_TYPE:
                raise ApiError(415, "unsupported_media_type",
                               f"the body must be JSON, sent with Content-Type: {JSON_TYPE}")

    def _check_same_origin(self) -> None:
        """403 for a browser request from another site: the cookie would ride along (CSRF).

        Bearer requests are exempt: a token in a header is never sent by a browser on its own.
        Sign-in and registration are checked too (a forged sign-in would set the cookie).
        """
        if self.request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
            raise ApiError(403, "cross_origin", "a request from another site may not use the "
                           "session cookie (Sec-Fetch-Site: cross-site)")
        origin = self.request.headers.get("Origin")
        if origin is None:
            return  # not a browser (every browser sends Origin on a POST or DELETE)
        if origin.rstrip("/").lower() in self.chat_settings.allowed_origins_set:
            return
        if urlsplit(origin).netloc.lower() != self.request.host.lower():
            raise ApiError(403, "cross_origin", f"the origin {origin[:100]!r} is not this "
                           "server's own, nor one of --allowed-origins")

    def json_body(self) -> dict[str, Any]:
        """The request's body: a JSON object, else 400."""
        try:
            body = json.loads(self.request.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, "bad_request", f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "bad_request", "the body must be a JSON object")
        return body

    @staticmethod
    def optional(body: dict[str, Any], name: str) -> str | None:
        """A string field of the body, or None when absent or null; 400 naming it otherwise."""
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise ApiError(400, "bad_request", f"the field {name!r} must be a string, "
                           f"not {type(value).__name__}")
        return value

    def required(self, body: dict[str, Any], name: str) -> str:
        """A string field the body must have; 400 naming it when missing or not a string."""
        value = self.optional(body, name)
        if value is None:
            raise ApiError(400, "bad_request", f"the field {name!r} is required")
        return value

    @property
    def address(self) -> str:
        """The client's address as the per-address limits count it (--xheaders aware)."""
        return address_group(self.request.remote_ip or "")

    def _bearer(self) -> str | None:
        header = self.request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "invalid_session", "the Authorization header must be "
                           "'Bearer <token>'")
        return token.strip()

    async def authorized(self, scope: Scope) -> Caller:
        """Who the request acts as: an API token that has `scope` (rate-limited per token), or
        a session (cookie or bearer), which may do whatever its account may; else 401, 403 or
        429. The one place a bearer token is resolved (uploads and webhooks' admin routes
        too)."""
        secret = self._bearer()
        if secret is None or not secret.startswith(TOKEN_PREFIX):
            signed = await self.signed_in()
            if self.use is not None:
                self.use.used(self.ROUTE, "session")
            return Caller(signed.account, None, signed.session.id)
        found = None if self.tokens is None else await self.tokens.resolve(secret)
        if found is None:
            self._refused("unknown")
            raise ApiError(401, "invalid_token", "this API token is unknown, revoked, or its "
                           "account is disabled")
        token, account, _ = found
        if scope not in token.scopes:
            self._refused("scope")
            raise ApiError(403, "insufficient_scope", f"this token has the scopes "
                           f"{', '.join(token.scopes)}; this request needs {scope!r}")
        wait = 0 if self.use is None else await self.use.take(token.id)
        if wait:
            self._refused("rate")
            raise ApiError(429, "rate_limited", f"more than "
                           f"{self.chat_settings.api_rate_limit:g} requests per second with "
                           "this token (--api-rate-limit); slow down", retry_after=wait)
        if self.use is not None:
            self.use.used(self.ROUTE, "token")
        return Caller(account, token, None)

    def _refused(self, reason: str) -> None:
        if self.use is not None:
            self.use.refused(reason)

    async def signed_in(self) -> Signed:
        """The live session of the request's bearer token or cookie; 401 without one (403 for
        an API token: the routes that use this take sessions only)."""
        token = self._bearer()
        if token is not None and token.startswith(TOKEN_PREFIX):
            self._refused("not_accepted")
            raise ApiError(403, "token_not_accepted", "this route takes a session (sign in: "
                           "POST /api/v1/sessions), not an API token")
        by_cookie = token is None
        if token is None:
            token = self.get_cookie(COOKIE_NAME)
        if not token:
            raise ApiError(401, "not_signed_in", "sign in first: POST /api/v1/sessions")
        found = await self.accounts.session_for(token)
        if found is None:
            if by_cookie:
                self.clear_session_cookie()  # send_error keeps cookies set before it
            raise ApiError(401, "invalid_session", "this session has ended or expired; "
                           "sign in again")
        return Signed(found[0], found[1], token, by_cookie)

    def set_session_cookie(self, token: str) -> None:
        self.set_cookie(COOKIE_NAME, token, path="/", httponly=True, samesite="Lax",
                        secure=self.request.protocol == "https",
                        max_age=self.accounts.policy.session_max_ms // 1000)

    def clear_session_cookie(self) -> None:
        self.clear_cookie(COOKIE_NAME, path="/", httponly=True, samesite="Lax",
                          secure=self.request.protocol == "https")

    def send_json(self, body: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(body, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            body = exc.body
            if "retry_after" in body:
                self.set_header("Retry-After", str(body["retry_after"]))
        else:
            body = {"code": _GENERIC_CODES.get(status_code, "error"), "reason": self._reason}
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="chat"')
        if status_code == 405:
            self.set_header("Allow", ", ".join(self.SUPPORTED_METHODS))
        self.finish(json.dumps(body, ensure_ascii=False))


_GENERIC_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
                  500: "internal_error"}


class ApiNotFound(ApiHandler):
    """Any other path under /api/: 404 as JSON, whatever the method."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def prepare(self) -> None:
        raise ApiError(404, "not_found", f"no API route {self.request.path[:200]!r}; "
                       "see /api/v1/openapi.json")

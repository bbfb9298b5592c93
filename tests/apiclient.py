"""A small client of the HTTP API (/api/v1) for tests: real HTTP through AsyncHTTPClient."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.httputil import HTTPHeaders

STRONG_PASSWORD = "correct horse battery staple"


@dataclass
class Answer:
    """A response: status, headers, the JSON body (None when empty)."""

    status: int
    headers: HTTPHeaders
    body: Any

    def cookie(self, name: str = "chat_session") -> Any:
        """The Set-Cookie morsel for `name` (None if the response sets none)."""
        for header in self.headers.get_list("Set-Cookie"):
            parsed: SimpleCookie = SimpleCookie()
            parsed.load(header)
            if name in parsed:
                return parsed[name]
        return None


def merged(headers: dict[str, str] | None, named: dict[str, str]) -> dict[str, str]:
    """`headers` and the keyword ones (X_Real_IP meaning X-Real-IP) in one dict."""
    return {**(headers or {}), **{key.replace("_", "-"): value for key, value in named.items()}}


class Api:
    """Calls /api/v1 on 127.0.0.1:`port`; `origin` is sent as Origin on every call if given."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    async def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                   cookie: str | None = None, raw: bytes | None = None,
                   content_type: str = "application/json",
                   headers: dict[str, str] | None = None, **named: str) -> Answer:
        """One request; headers as a dict, or as keywords (X_Real_IP for X-Real-IP)."""
        sent = merged(headers, named)
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if cookie is not None:
            sent["Cookie"] = f"chat_session={cookie}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is None and method == "POST":
            data = b""
        if data is not None:
            sent["Content-Type"] = content_type
        response: HTTPResponse = await AsyncHTTPClient().fetch(
            f"{self.base}{path}", method=method, body=data, headers=sent, raise_error=False,
            allow_nonstandard_methods=True, follow_redirects=False)
        text = response.body or b""
        return Answer(response.code, response.headers, json.loads(text) if text else None)

    async def register(self, username: str, password: str = STRONG_PASSWORD,
                       **more: Any) -> Answer:
        return await self.call("POST", "/api/v1/accounts",
                               {"username": username, "password": password, **more})

    async def login(self, username: str, password: str = STRONG_PASSWORD,
                    headers: dict[str, str] | None = None, **named: str) -> Answer:
        return await self.call("POST", "/api/v1/sessions",
                               {"username": username, "password": password},
                               headers=merged(headers, named))

    async def signed_up(self, username: str, password: str = STRONG_PASSWORD) -> str:
        """Register `username` and sign in; the token."""
        assert (await self.register(username, password)).status == 201
        answer = await self.login(username, password)
        assert answer.status == 200, answer.body
        token: str = answer.body["token"]
        return token

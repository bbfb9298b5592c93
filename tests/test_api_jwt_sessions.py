"""POST /api/v1/sessions with an embedding application's token ({"jwt"}, --jwt-key): a browser
gets the session cookie it cannot otherwise put on a WebSocket upgrade. From the attacker's
side: only valid tokens sign in, and a token never reaches a local account."""

from __future__ import annotations

import time

import jwt
import pytest

from chat_server import ChatApplication
from handlers.httpserver import ChatHTTPServer
from tests.apiclient import Api
from tests.helpers import Connect
from tests.test_auth_jwt import SECRET, claims, unsigned
from tests.test_auth_socket import error_of

OTHER_SECRET = "another HS256 secret, also longer than 32 bytes"


@pytest.fixture
def api(http_server: ChatHTTPServer, http_port: int) -> Api:
    return Api(http_port)


async def with_jwt(api: Api, token: str) -> tuple[int, dict[str, object]]:
    answer = await api.call("POST", "/api/v1/sessions", {"jwt": token})
    return answer.status, answer.body


@pytest.mark.settings(jwt_key=SECRET)
@pytest.mark.gen_test(timeout=30)
async def test_a_valid_token_gets_a_session_of_its_own_account(
    api: Api, connect: Connect,
) -> None:
    """The first token of a `sub` makes its account (a member, under `name`) and answers like a
    password sign-in: cookie and bearer; the next token of that `sub` is the same account, even
    under another name; the session opens a socket as the account."""
    answer = await api.call("POST", "/api/v1/sessions", {"jwt": jwt.encode(claims(), SECRET)})
    assert answer.status == 200, answer.body
    cookie = answer.cookie()
    assert cookie is not None and cookie.value == answer.body["token"] and cookie["httponly"]
    account = answer.body["account"]
    assert (account["username"], account["role"]) == ("Zoe", "member")
    again = await with_jwt(api, jwt.encode(claims(name="Zed"), SECRET))
    assert again[0] == 200 and again[1]["account"]["id"] == account["id"]  # type: ignore[index]
    me = await api.call("GET", "/api/v1/me", token=answer.body["token"])
    assert me.status == 200 and me.body["account"]["username"] == "Zoe"
    zoe = await connect(Cookie=f"chat_session={cookie.value}")
    assert (await zoe.join("zoe"))["account"]["id"] == account["id"]
    # The upgrade's own bearer JWT of that sub is the same account now, not a vouched name.
    tab = await connect(Authorization=f"Bearer {jwt.encode(claims(), SECRET)}")
    assert (await tab.join("zoe"))["account"]["id"] == account["id"]


@pytest.mark.settings(jwt_key=SECRET)
@pytest.mark.gen_test(timeout=30)
async def test_forged_expired_and_none_tokens_sign_in_nobody(api: Api) -> None:
    """Another key, an expired token, `alg: none`, HS256 with a wrong MAC, a token without
    `name`: 401 invalid_jwt, no cookie; a body with a non-string jwt: 400."""
    forged = [jwt.encode(claims(), OTHER_SECRET),
              jwt.encode(claims(exp=int(time.time()) - 60), SECRET),
              unsigned(claims()),
              unsigned(claims(), alg="HS256", key=OTHER_SECRET.encode()),
              jwt.encode(claims(name=None), SECRET),
              "not.a.token"]
    for token in forged:
        answer = await api.call("POST", "/api/v1/sessions", {"jwt": token})
        assert (answer.status, answer.body["code"]) == (401, "invalid_jwt"), (token, answer.body)
        assert answer.cookie() is None
    answer = await api.call("POST", "/api/v1/sessions", {"jwt": 42})
    assert answer.status == 400


@pytest.mark.settings(jwt_key=SECRET)
@pytest.mark.gen_test(timeout=30)
async def test_a_token_never_reaches_a_local_account_nor_a_name_it_may_not_have(
    api: Api, app: ChatApplication, connect: Connect,
) -> None:
    """A token naming a registered account (in any spelling) is refused 409 name_taken and
    signs in as nobody; a name the chat does not allow is refused 400; an external account
    has no password to sign in with."""
    assert (await api.register("alice")).status == 201
    for name in ("alice", "ALICE", "\u0430lice"):
        status, body = await with_jwt(api, jwt.encode(claims(sub="evil", name=name), SECRET))
        assert (status, body["code"]) == (409, "name_taken"), body
    status, body = await with_jwt(api, jwt.encode(claims(sub="x", name="a\u0000b"), SECRET))
    assert status == 400, body
    assert (await with_jwt(api, jwt.encode(claims(sub="u-9", name="Ona"), SECRET)))[0] == 200
    refused = await api.call("POST", "/api/v1/sessions",
                             {"username": "Ona", "password": "!external"})
    assert (refused.status, refused.body["code"]) == (401, "invalid_login")
    # The refused `sub` did not become anyone: a guest may still not be alice either.
    guest = await connect()
    assert (await error_of(guest, {"type": "join", "username": "alice"}))["code"] == \
        "name_registered"


@pytest.mark.settings(jwt_key=SECRET)
@pytest.mark.gen_test(timeout=30)
async def test_a_cross_site_token_sign_in_is_forbidden(api: Api) -> None:
    """A sign-in with a token from another site's page is refused (it would set the cookie)."""
    answer = await api.call("POST", "/api/v1/sessions", {"jwt": jwt.encode(claims(), SECRET)},
                            Origin="https://evil.example")
    assert (answer.status, answer.body["code"]) == (403, "cross_origin")


@pytest.mark.gen_test(timeout=30)
async def test_without_a_jwt_key_tokens_are_not_taken(api: Api) -> None:
    """A server without --jwt-key answers 400 jwt_not_accepted to any token."""
    status, body = await with_jwt(api, jwt.encode(claims(), SECRET))
    assert (status, body["code"]) == (400, "jwt_not_accepted")

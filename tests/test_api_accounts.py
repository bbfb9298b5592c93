"""The HTTP API's accounts: register, sign in, me, sign out; refusals as JSON errors."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest

from handlers.httpserver import ChatHTTPServer
from tests.apiclient import STRONG_PASSWORD, Api


@pytest.fixture
def api(http_server: ChatHTTPServer, http_port: int) -> Api:
    return Api(http_port)


@pytest.mark.gen_test(timeout=30)
async def test_register_sign_in_me_sessions_sign_out(api: Api) -> None:
    """Register, sign in, see yourself and your session, sign out: the token then opens nothing."""
    created = await api.register("Alice", email="alice@example.org")
    assert created.status == 201, created.body
    assert created.body["account"]["username"] == "Alice"
    assert created.body["account"]["role"] == "admin"  # the first account
    signed = await api.login("alice")  # any case
    assert signed.status == 200, signed.body
    token = signed.body["token"]
    assert signed.body["account"]["id"] == created.body["account"]["id"]
    assert signed.cookie().value == token
    me = await api.call("GET", "/api/v1/me", token=token)
    assert me.status == 200
    assert me.body["account"]["email"] == "alice@example.org"
    assert me.body["session"]["id"] == signed.body["session"]["id"]
    by_cookie = await api.call("GET", "/api/v1/me", cookie=token)
    assert by_cookie.body["account"]["username"] == "Alice"
    listed = await api.call("GET", "/api/v1/sessions", token=token)
    assert listed.status == 200
    assert [s["id"] for s in listed.body["sessions"]] == [listed.body["current"]]
    assert listed.body["sessions"][0]["current"] is True
    assert listed.body["sessions"][0]["address"] == "127.0.0.1"
    out = await api.call("DELETE", "/api/v1/sessions/current", cookie=token)
    assert out.status == 204
    assert out.cookie().value == ""  # cleared
    assert parsedate_to_datetime(out.cookie()["expires"]) < datetime.now(UTC)
    for way in ({"token": token}, {"cookie": token}):
        after = await api.call("GET", "/api/v1/me", **way)
        assert after.status == 401
        assert after.body["code"] == "invalid_session"


@pytest.mark.gen_test(timeout=30)
async def test_no_secret_and_no_hash_in_an_account_shown(api: Api) -> None:
    """An account in JSON has id, name, role, avatar and time; no hash; the email only to you."""
    created = await api.register("bob", email="bob@example.org")
    shown = created.body["account"]
    assert set(shown) == {"id", "username", "role", "avatar", "created_ts", "email"}
    assert shown["avatar"].startswith("data:")  # --avatars initials


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize(("password", "code"), [
    ("short", "password_too_short"),
    ("x" * 1025, "password_too_long"),
    ("password123", "weak_password"),
])
async def test_a_weak_password_is_refused(api: Api, password: str, code: str) -> None:
    """Too short, too long or too common a password: 400 with the reason's code."""
    answer = await api.register("carol", password)
    assert (answer.status, answer.body["code"]) == (400, code)
    assert (await api.login("carol", password)).status == 401  # nothing was created


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("variant", ["dave", "DAVE", " Dave ", "Ｄａｖｅ", "Dаve"])  # а: Cyrillic
async def test_a_taken_name_is_refused_in_any_look_alike_spelling(api: Api, variant: str) -> None:
    """A registered name, in another case, width or look-alike letters: 409 name_taken."""
    assert (await api.register("Dave")).status == 201
    answer = await api.register(variant, "another good passphrase")
    assert (answer.status, answer.body["code"]) == (409, "name_taken")


@pytest.mark.gen_test(timeout=30)
async def test_an_invalid_name_is_refused(api: Api) -> None:
    """A name the chat's rules refuse is refused as an account's too (400)."""
    answer = await api.register("a" * 200)
    assert answer.status == 400
    assert answer.body["code"] != "bad_request"  # the username rules' own code


@pytest.mark.settings(registration="closed")
@pytest.mark.gen_test(timeout=30)
async def test_closed_registration_is_refused(api: Api) -> None:
    """With --registration closed, POST /api/v1/accounts is 403 registration_closed."""
    answer = await api.register("erin")
    assert (answer.status, answer.body["code"]) == (403, "registration_closed")


@pytest.mark.settings(registration="invite")
@pytest.mark.gen_test(timeout=30)
async def test_invite_registration_takes_a_code_once(api: Api, app: object) -> None:
    """With --registration invite: no code 403, a wrong one 403, a good one once only."""
    accounts = app.accounts  # type: ignore[attr-defined]
    code = await accounts.create_invite()
    missing = await api.register("frank")
    assert (missing.status, missing.body["code"]) == (403, "invite_required")
    wrong = await api.register("frank", invite="not-a-code")
    assert (wrong.status, wrong.body["code"]) == (403, "invalid_invite")
    assert (await api.register("frank", invite=code)).status == 201
    again = await api.register("grace", invite=code)
    assert (again.status, again.body["code"]) == (403, "invalid_invite")


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize(("raw", "reason"), [
    (b"not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"password": "correct horse battery"}', "'username' is required"),
    (b'{"username": 5, "password": "correct horse battery"}', "'username' must be a string"),
    (b'{"username": "hal", "password": null}', "'password' is required"),
    (b'{"username": "hal", "password": "correct horse", "email": []}', "'email' must be"),
    (b"\xff\xfe", "not JSON"),
])
async def test_a_bad_body_is_a_400_naming_the_problem(api: Api, raw: bytes, reason: str) -> None:
    """A body that is not a JSON object, or a field missing or mistyped: 400 bad_request."""
    for path in ("/api/v1/accounts", "/api/v1/sessions"):
        if path.endswith("sessions") and "email" in reason:
            continue
        answer = await api.call("POST", path, raw=raw)
        assert answer.status == 400, answer.body
        assert answer.body["code"] == "bad_request"
        assert reason in answer.body["reason"]


@pytest.mark.gen_test(timeout=30)
async def test_a_post_must_say_it_is_json(api: Api) -> None:
    """A POST whose Content-Type is not application/json is 415 (no form can forge one)."""
    answer = await api.call("POST", "/api/v1/sessions", raw=b'{"username": "x", "password": "y"}',
                            content_type="application/x-www-form-urlencoded")
    assert (answer.status, answer.body["code"]) == (415, "unsupported_media_type")
    charset = await api.call("POST", "/api/v1/accounts", {"username": "ivan",
                                                          "password": STRONG_PASSWORD},
                             content_type="application/json; charset=utf-8")
    assert charset.status == 201


@pytest.mark.gen_test(timeout=30)
async def test_a_body_past_the_server_limit_is_refused(api: Api) -> None:
    """A body larger than the HTTP server's cap (handlers/httpserver.py) is refused with 400."""
    answer = await api.call("POST", "/api/v1/accounts",
                            {"username": "judy", "password": "p" * 8000})
    assert answer.status == 400


@pytest.mark.gen_test(timeout=30)
async def test_api_answers_are_not_cached_nor_sniffed(api: Api) -> None:
    """Every API answer, errors included, is JSON with no-store and nosniff."""
    for answer in (await api.register("kim"), await api.call("GET", "/api/v1/me"),
                   await api.call("GET", "/api/v1/nowhere"),
                   await api.call("PUT", "/api/v1/me", raw=b"{}")):
        assert answer.headers["Cache-Control"] == "no-store"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Content-Type"].startswith("application/json")
        assert "code" in answer.body or "account" in answer.body


@pytest.mark.gen_test(timeout=30)
async def test_unknown_routes_and_methods_are_json_errors(api: Api) -> None:
    """An unknown /api path is 404 and an unsupported method 405 with Allow, both as JSON."""
    missing = await api.call("GET", "/api/v2/me")
    assert (missing.status, missing.body["code"]) == (404, "not_found")
    wrong = await api.call("PUT", "/api/v1/sessions", raw=b"{}")
    assert (wrong.status, wrong.body["code"]) == (405, "method_not_allowed")
    assert wrong.headers["Allow"] == "GET, POST"


@pytest.mark.gen_test(timeout=30)
async def test_me_needs_a_session(api: Api) -> None:
    """Without a session /me is 401 not_signed_in; with a made-up one 401 invalid_session."""
    none = await api.call("GET", "/api/v1/me")
    assert (none.status, none.body["code"]) == (401, "not_signed_in")
    assert none.headers["WWW-Authenticate"].startswith("Bearer")
    made_up = await api.call("GET", "/api/v1/me", token="x" * 43)
    assert (made_up.status, made_up.body["code"]) == (401, "invalid_session")
    stale = await api.call("GET", "/api/v1/me", cookie="x" * 43)
    assert stale.status == 401
    assert stale.cookie().value == ""  # a stale cookie is cleared
    basic = await api.call("GET", "/api/v1/me", Authorization="Basic eDp5")
    assert basic.status == 401


@pytest.mark.gen_test(timeout=30)
async def test_the_longest_password_fits_the_body_limit(api: Api) -> None:
    """A password of 1,024 characters (the most allowed) registers and signs in."""
    password = "Longest-" + "x" * 1016
    assert (await api.register("lena", password)).status == 201
    assert (await api.login("lena", password)).status == 200


@pytest.mark.gen_test(timeout=30)
async def test_a_disabled_account_can_neither_sign_in_nor_use_its_session(
        api: Api, app: object) -> None:
    """Disabling an account: its token gets 401; signing in, 403 only with the right password."""
    accounts = app.accounts  # type: ignore[attr-defined]
    await api.register("admin")  # the first account is the admin; another stays one
    token = await api.signed_up("mike")
    await accounts.set_disabled(await accounts.find("mike"), True)
    assert (await api.call("GET", "/api/v1/me", token=token)).status == 401
    right = await api.login("mike")
    assert (right.status, right.body["code"]) == (403, "account_disabled")
    wrong = await api.login("mike", "not the passphrase")
    assert (wrong.status, wrong.body["code"]) == (401, "invalid_login")

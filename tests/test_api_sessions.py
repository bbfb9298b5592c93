"""The HTTP API's sessions: identical login errors, throttling, cookie flags, CSRF, ownership."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from tornado.ioloop import IOLoop

from chat.accounts import AccountService, open_accounts
from chat.config import Settings
from chat.store import SQLiteStore
from chat_server import ChatApplication, make_app
from handlers.httpserver import ChatHTTPServer
from tests.apiclient import STRONG_PASSWORD, Api
from tests.conftest import Clock, close_app


@pytest.fixture
def app(settings: Settings, io_loop: IOLoop, clock: Clock) -> Iterator[ChatApplication]:
    """conftest's app, its accounts on `clock` (throttle delays pass without sleeping)."""
    store = SQLiteStore(":memory:", settings.history_per_room)
    accounts = open_accounts(":memory:", revocation_poll_s=settings.revocation_poll)
    io_loop.run_sync(store.start)
    io_loop.run_sync(accounts.start)
    made = make_app(settings, store, accounts=AccountService(accounts, settings.account_policy,
                                                            clock=clock))
    yield made
    close_app(made, io_loop, accounts.close, store.close)


@pytest.fixture
def api(http_server: ChatHTTPServer, http_port: int) -> Api:
    return Api(http_port)


@pytest.mark.gen_test(timeout=30)
async def test_unknown_name_and_wrong_password_get_the_same_answer(api: Api) -> None:
    """A wrong password and an unknown name: the same status, headers that matter, and body."""
    await api.register("alice")
    wrong = await api.login("alice", "not the right passphrase")
    unknown = await api.login("nobody-here", "not the right passphrase")
    assert wrong.status == unknown.status == 401
    assert wrong.body == unknown.body == {"code": "invalid_login",
                                          "reason": wrong.body["reason"]}
    assert wrong.cookie() is None
    assert unknown.cookie() is None
    for header in ("Content-Type", "WWW-Authenticate", "Cache-Control"):
        assert wrong.headers.get(header) == unknown.headers.get(header)


@pytest.mark.settings(login_throttle_after=2, login_throttle_first=2.5, login_throttle_max=2.5)
@pytest.mark.gen_test(timeout=30)
async def test_repeated_failures_are_throttled_then_the_owner_gets_in(
        api: Api, clock: Clock) -> None:
    """After --login-throttle-after failures: 429 with Retry-After; after that wait, it works."""
    await api.register("bob")
    for _ in range(2):
        assert (await api.login("bob", "guess guess guess")).status == 401
    throttled = await api.login("bob")  # even the right password waits
    assert throttled.status == 429
    assert throttled.body["code"] == "login_throttled"
    retry = int(throttled.headers["Retry-After"])
    assert retry == throttled.body["retry_after"] == 3  # 2.5 s, rounded up to whole seconds
    clock.now += 2
    assert (await api.login("bob")).status == 429  # not yet
    clock.now += retry - 2
    assert (await api.login("bob")).status == 200


@pytest.mark.settings(xheaders=True, login_throttle_after=1, login_throttle_first=60,
                      login_throttle_max=60)
@pytest.mark.gen_test(timeout=30)
async def test_the_throttle_counts_the_address_the_server_sees(api: Api) -> None:
    """Behind --xheaders the throttle counts X-Real-IP, one IPv6 /64 as one address."""
    await api.register("carol")
    first = await api.login("nobody-1", "guess guess guess", X_Real_IP="2001:db8::1")
    assert first.status == 401
    same_64 = await api.login("nobody-2", "guess guess guess", X_Real_IP="2001:db8::ffff")
    assert (same_64.status, same_64.body["code"]) == (429, "login_throttled")
    elsewhere = await api.login("carol", X_Real_IP="2001:db8:1::1")
    assert elsewhere.status == 200
    assert elsewhere.body["session"]["address"] == "2001:db8:1::/64"


@pytest.mark.gen_test(timeout=30)
async def test_the_session_cookie_has_its_flags(api: Api, app: object) -> None:
    """chat_session: HttpOnly, SameSite=Lax, Path=/, Max-Age the session's; not Secure on HTTP."""
    await api.register("dave")
    cookie = (await api.login("dave")).cookie()
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    policy = app.accounts.policy  # type: ignore[attr-defined]
    assert int(cookie["max-age"]) == policy.session_max_ms // 1000
    assert not cookie["secure"]


@pytest.mark.settings(xheaders=True)
@pytest.mark.gen_test(timeout=30)
async def test_the_cookie_is_secure_behind_an_https_proxy(api: Api) -> None:
    """Behind --xheaders with X-Forwarded-Proto: https the cookie (set and cleared) is Secure."""
    await api.register("erin")
    signed = await api.login("erin", X_Forwarded_Proto="https")
    assert signed.cookie()["secure"] is True
    out = await api.call("DELETE", "/api/v1/sessions/current", cookie=signed.body["token"],
                         X_Forwarded_Proto="https")
    assert out.status == 204
    assert out.cookie()["secure"] is True


@pytest.mark.gen_test(timeout=30)
async def test_https_claims_are_ignored_without_xheaders(api: Api) -> None:
    """Without --xheaders X-Forwarded-Proto is not believed: the cookie is not Secure."""
    await api.register("fay")
    assert not (await api.login("fay", X_Forwarded_Proto="https")).cookie()["secure"]


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
])
async def test_a_cookie_request_from_another_site_is_refused(
        api: Api, http_port: int, headers: dict[str, str]) -> None:
    """A cookie-authenticated DELETE (or a sign-in) from another site is 403 (CSRF)."""
    token = await api.signed_up("grace")
    for path in ("/api/v1/sessions/current",):
        refused = await api.call("DELETE", path, cookie=token, headers=headers)
        assert (refused.status, refused.body["code"]) == (403, "cross_origin")
    forged_login = await api.login("grace", headers=headers)
    assert forged_login.status == 403
    assert forged_login.cookie() is None
    assert (await api.call("GET", "/api/v1/me", token=token)).status == 200  # still signed in
    own = await api.call("DELETE", "/api/v1/sessions/current", cookie=token,
                         Origin=f"http://127.0.0.1:{http_port}", Sec_Fetch_Site="same-origin")
    assert own.status == 204


@pytest.mark.gen_test(timeout=30)
async def test_a_bearer_request_is_not_held_to_the_origin(api: Api) -> None:
    """A bearer-authenticated DELETE from another origin works: no browser sends it by itself."""
    token = await api.signed_up("heidi")
    answer = await api.call("DELETE", "/api/v1/sessions/current", token=token,
                            Origin="https://app.example", Sec_Fetch_Site="cross-site")
    assert answer.status == 204


@pytest.mark.settings(allowed_origins=["https://chat.example.org"])
@pytest.mark.gen_test(timeout=30)
async def test_allowed_origins_may_use_the_cookie(api: Api) -> None:
    """An origin in --allowed-origins may make cookie requests; a look-alike may not."""
    token = await api.signed_up("ivan")
    fake = await api.call("DELETE", "/api/v1/sessions/current", cookie=token,
                          Origin="https://chat.example.org.evil.example")
    assert fake.status == 403
    ok = await api.call("DELETE", "/api/v1/sessions/current", cookie=token,
                        Origin="https://chat.example.org")
    assert ok.status == 204


@pytest.mark.gen_test(timeout=30)
async def test_you_can_end_your_other_sessions(api: Api) -> None:
    """Two sessions: one lists both and ends the other, whose token then opens nothing."""
    token = await api.signed_up("judy")
    other = (await api.login("judy")).body
    listed = await api.call("GET", "/api/v1/sessions", token=token)
    assert {s["id"] for s in listed.body["sessions"]} == {listed.body["current"],
                                                          other["session"]["id"]}
    ended = await api.call("DELETE", f"/api/v1/sessions/{other['session']['id']}", token=token)
    assert ended.status == 204
    assert ended.cookie() is None  # not this session: the cookie stays
    assert (await api.call("GET", "/api/v1/me", token=other["token"])).status == 401
    assert (await api.call("GET", "/api/v1/me", token=token)).status == 200


@pytest.mark.gen_test(timeout=30)
async def test_another_accounts_session_is_as_unknown(api: Api) -> None:
    """Ending another account's session (even as the admin) is 404, like an unknown id; it lives."""
    admin = await api.signed_up("mallory")  # the first account: an admin
    victim = await api.signed_up("kim")
    victim_session = (await api.call("GET", "/api/v1/me", token=victim)).body["session"]["id"]
    theirs = await api.call("DELETE", f"/api/v1/sessions/{victim_session}", token=admin)
    unknown = await api.call("DELETE", "/api/v1/sessions/AAAAAAAAAAAAAAAA", token=admin)
    assert theirs.status == unknown.status == 404
    assert theirs.body == unknown.body
    assert (await api.call("GET", "/api/v1/me", token=victim)).status == 200
    listed = await api.call("GET", "/api/v1/sessions", token=admin)
    assert victim_session not in {s["id"] for s in listed.body["sessions"]}


@pytest.mark.gen_test(timeout=30)
async def test_no_password_or_token_in_the_logs(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """Registering, signing in and out, and failing, log neither a password nor a token."""
    caplog.set_level(logging.DEBUG)
    token = await api.signed_up("leo", STRONG_PASSWORD)
    await api.login("leo", "my wrong passphrase")
    await api.call("GET", "/api/v1/me", cookie=token)
    await api.call("DELETE", "/api/v1/sessions/current", token=token)
    await api.call("GET", "/api/v1/me", token=token)
    assert "signed in" in caplog.text  # the log was captured
    for secret in (STRONG_PASSWORD, "my wrong passphrase", token):
        assert secret not in caplog.text

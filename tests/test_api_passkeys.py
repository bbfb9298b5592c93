"""Passkeys over the HTTP API, driven by a software authenticator: add one, create an account
with one, sign in with one; and every way an attacker could try to misuse a ceremony."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.ioloop import IOLoop
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from chat.accounts import AccountService, open_accounts
from chat.accounts.passkey_rules import (
    CHALLENGE_TTL_MS,
    DECOY_SECRET,
    KNOWN_TRANSPORTS,
    MAX_CHALLENGES_PER_ADDRESS,
    REFUSED,
    RelyingParty,
    decoys,
)
from chat.accounts.passkeys import PasskeyService
from chat.accounts.policy import AccountPolicy, Registration
from chat.config import ConfigError, Settings
from chat.people.names import name_key
from chat.store import SQLiteStore
from chat_server import ChatApplication, make_app
from handlers.httpserver import ChatHTTPServer
from tests.apiclient import Answer, Api
from tests.conftest import TEST_DEFAULTS, Clock, close_app
from tests.softauthn import SoftAuthenticator
from tests.test_api_openapi import check

ORIGIN = "http://localhost:8000"  # what --rp-origins says the page is reached at


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    """The tests' settings with --rp-id localhost --rp-origins ORIGIN (a marker changes them)."""
    marker = request.node.get_closest_marker("settings")
    return Settings(**{**TEST_DEFAULTS, "rp_id": "localhost", "rp_origins": [ORIGIN],
                       **(marker.kwargs if marker else {})})


@pytest.fixture
def service(request: pytest.FixtureRequest, settings: Settings, io_loop: IOLoop,
            clock: Clock) -> Iterator[AccountService]:
    """On SQLite in memory; a test parametrized with "postgres" (indirect) on PostgreSQL."""
    db = (request.getfixturevalue("postgres_url") if getattr(request, "param", "") == "postgres"
          else ":memory:")
    store = open_accounts(db, revocation_poll_s=settings.revocation_poll)
    io_loop.run_sync(store.start)
    yield AccountService(store, settings.account_policy, clock=clock)
    io_loop.run_sync(store.close)


@pytest.fixture
def app(settings: Settings, io_loop: IOLoop, service: AccountService,
        ) -> Iterator[ChatApplication]:
    store = SQLiteStore(":memory:", settings.history_per_room)
    io_loop.run_sync(store.start)
    made = make_app(settings, store, accounts=service)
    yield made
    close_app(made, io_loop, store.close)


@pytest.fixture
def api(http_server: ChatHTTPServer, http_port: int) -> Api:
    return Api(http_port)


async def begin(api: Api, purpose: str, token: str | None = None, **more: Any) -> Answer:
    return await api.call("POST", "/api/v1/passkey-challenges", {"purpose": purpose, **more},
                          token=token)


async def options(api: Api, purpose: str, token: str | None = None, **more: Any
                  ) -> dict[str, Any]:
    answer = await begin(api, purpose, token, **more)
    assert answer.status == 200, answer.body
    result: dict[str, Any] = answer.body["options"]
    return result


async def sign_in(api: Api, key: SoftAuthenticator, **more: Any) -> Answer:
    """A whole passkey sign-in: begin, the authenticator's assertion, finish."""
    asked = await options(api, "signin", **more)
    return await api.call("POST", "/api/v1/passkey-sessions", {"credential": key.get(asked)})


async def signed_up_with_passkey(api: Api, name: str, key: SoftAuthenticator) -> Answer:
    made = key.create(await options(api, "signup", username=name))
    answer = await api.call("POST", "/api/v1/passkey-accounts", {"credential": made})
    assert answer.status == 201, answer.body
    return answer


@pytest.mark.gen_test(timeout=30)
async def test_a_passkey_added_to_an_account_signs_in_as_it(api: Api) -> None:
    """Add a passkey beside the password, then sign in with it: a session, cookie and token."""
    token = await api.signed_up("alice")
    key = SoftAuthenticator(ORIGIN)
    asked = await options(api, "add", token)
    assert asked["rp"] == {"id": "localhost", "name": "Simple Chat"}
    added = await api.call("POST", "/api/v1/passkeys",
                           {"credential": key.create(asked), "label": "  my   laptop "},
                           token=token)
    assert added.status == 201, added.body
    assert added.body["passkey"]["label"] == "my laptop"
    assert "public_key" not in added.body["passkey"]
    signed = await sign_in(api, key)
    assert signed.status == 200, signed.body
    assert signed.body["account"]["username"] == "alice"
    assert signed.cookie()["httponly"]
    me = await api.call("GET", "/api/v1/me", token=signed.body["token"])
    assert me.body["account"]["username"] == "alice"
    listed = await api.call("GET", "/api/v1/passkeys", token=token)
    assert [p["id"] for p in listed.body["passkeys"]] == [key.credentials[0].b64id]
    assert listed.body["passkeys"][0]["last_used_ts"] is not None


@pytest.mark.gen_test(timeout=30)
async def test_sign_in_by_username_allows_only_that_accounts_passkeys(api: Api) -> None:
    """Named sign-in lists the account's passkeys; another account's passkey is refused."""
    alice, bob = SoftAuthenticator(ORIGIN), SoftAuthenticator(ORIGIN)
    await signed_up_with_passkey(api, "alice", alice)
    await signed_up_with_passkey(api, "bob", bob)
    asked = await options(api, "signin", username="ALICE")
    assert [c["id"] for c in asked["allowCredentials"]] == [alice.credentials[0].b64id]
    wrong = await api.call("POST", "/api/v1/passkey-sessions",
                           {"credential": bob.get(asked, credential=bob.credentials[0])})
    assert wrong.status == 401
    assert wrong.body["code"] == "invalid_passkey"
    assert wrong.cookie() is None
    assert (await sign_in(api, alice, username="alice")).status == 200


@pytest.mark.gen_test(timeout=30)
async def test_an_account_made_with_a_passkey_has_no_password(api: Api) -> None:
    """A passkey-only account is signed in at once; no password, not even an empty one,
    opens it; its only passkey cannot be deleted."""
    key = SoftAuthenticator(ORIGIN)
    made = await signed_up_with_passkey(api, "carol", key)
    assert made.body["account"]["role"] == "admin"  # the first account, as with a password
    token = made.body["token"]
    assert (await api.call("GET", "/api/v1/me", token=token)).status == 200
    assert (await api.login("carol", "")).status in (400, 401)
    assert (await api.login("carol", "correct horse battery staple")).status == 401
    only = key.credentials[0].b64id
    kept = await api.call("DELETE", f"/api/v1/passkeys/{only}", token=token)
    assert kept.status == 409
    assert kept.body["code"] == "last_sign_in"
    second = SoftAuthenticator(ORIGIN)
    asked = await options(api, "add", token)
    assert [c["id"] for c in asked["excludeCredentials"]] == [only]
    assert (await api.call("POST", "/api/v1/passkeys", {"credential": second.create(asked)},
                           token=token)).status == 201
    assert (await api.call("DELETE", f"/api/v1/passkeys/{only}", token=token)).status == 204
    assert (await sign_in(api, key)).status == 401
    assert (await sign_in(api, second)).status == 200


@pytest.mark.parametrize("mode", ["closed", "invite"])
@pytest.mark.gen_test(timeout=30)
async def test_creating_an_account_with_a_passkey_respects_registration(
        api: Api, service: AccountService, mode: Registration) -> None:
    """--registration closed refuses a passkey signup; invite needs a code, used once."""
    service.policy = AccountPolicy(registration=mode)
    refused = await begin(api, "signup", username="dave")
    assert refused.status == 403
    assert refused.body["code"] == ("registration_closed" if mode == "closed"
                                    else "invite_required")
    if mode == "invite":
        code = await service.create_invite()
        key = SoftAuthenticator(ORIGIN)
        first = key.create(await options(api, "signup", username="dave", invite=code))
        second = key.create(await options(api, "signup", username="erin", invite=code))
        made = await api.call("POST", "/api/v1/passkey-accounts", {"credential": first})
        assert made.status == 201, made.body
        reused = await api.call("POST", "/api/v1/passkey-accounts", {"credential": second})
        assert reused.status == 403
        assert reused.body["code"] == "invalid_invite"


@pytest.mark.gen_test(timeout=30)
async def test_a_challenge_is_used_once(api: Api) -> None:
    """A sign-in replayed with its challenge (even with a higher counter) is refused."""
    key = SoftAuthenticator(ORIGIN)
    await signed_up_with_passkey(api, "alice", key)
    asked = await options(api, "signin")
    first = key.get(asked)
    assert (await api.call("POST", "/api/v1/passkey-sessions", {"credential": first})).status \
        == 200
    again = await api.call("POST", "/api/v1/passkey-sessions", {"credential": key.get(asked)})
    assert again.status == 400
    assert again.body["code"] == "invalid_challenge"


@pytest.mark.gen_test(timeout=30)
async def test_an_expired_challenge_is_refused(api: Api, clock: Clock) -> None:
    """A ceremony finished after CHALLENGE_TTL_MS is refused, for sign-in and signup."""
    key = SoftAuthenticator(ORIGIN)
    await signed_up_with_passkey(api, "alice", key)
    asked = await options(api, "signin")
    signup = await options(api, "signup", username="bob")
    clock.now += CHALLENGE_TTL_MS / 1000 + 1
    late = await api.call("POST", "/api/v1/passkey-sessions", {"credential": key.get(asked)})
    assert late.body["code"] == "invalid_challenge"
    late = await api.call("POST", "/api/v1/passkey-accounts",
                          {"credential": key.create(signup)})
    assert late.body["code"] == "invalid_challenge"
    assert (await api.login("bob")).status == 401


@pytest.mark.gen_test(timeout=30)
async def test_a_finish_without_a_begin_is_refused(api: Api) -> None:
    """A credential over a challenge the server never gave, or gave for another purpose."""
    key = SoftAuthenticator(ORIGIN)
    await signed_up_with_passkey(api, "alice", key)
    made_up = {"challenge": "bm90LWEtY2hhbGxlbmdl", "rp": {"id": "localhost"},
               "user": {"id": "AAAA"}}
    answer = await api.call("POST", "/api/v1/passkey-sessions",
                            {"credential": key.get(made_up)})
    assert answer.body["code"] == "invalid_challenge"
    signup = await options(api, "signup", username="bob")  # a signup's, used to sign in
    answer = await api.call("POST", "/api/v1/passkey-sessions", {"credential": key.get(signup)})
    assert answer.body["code"] == "invalid_challenge"


@pytest.mark.gen_test(timeout=30)
async def test_another_accounts_add_ceremony_cannot_be_finished(api: Api) -> None:
    """Bob cannot finish, as himself, the passkey addition Alice's session began."""
    alice, bob = await api.signed_up("alice"), await api.signed_up("bob")
    asked = await options(api, "add", alice)
    taken = await api.call("POST", "/api/v1/passkeys",
                           {"credential": SoftAuthenticator(ORIGIN).create(asked)}, token=bob)
    assert taken.body["code"] == "invalid_challenge"
    assert (await api.call("GET", "/api/v1/passkeys", token=bob)).body["passkeys"] == []
    assert (await begin(api, "add")).status == 401  # adding needs a session


@pytest.mark.gen_test(timeout=30)
async def test_a_passkey_registered_twice_or_deleted_by_another_is_refused(api: Api) -> None:
    """The same credential cannot be registered to a second account, nor deleted by it."""
    key = SoftAuthenticator(ORIGIN)
    await signed_up_with_passkey(api, "alice", key)
    bob = await api.signed_up("bob")
    asked = await options(api, "add", bob)
    made = key.create(asked, credential_id=key.credentials[0].id)  # alice's passkey's id
    again = await api.call("POST", "/api/v1/passkeys", {"credential": made}, token=bob)
    assert again.status == 409, again.body
    assert again.body["code"] == "passkey_taken"
    gone = await api.call("DELETE", f"/api/v1/passkeys/{key.credentials[0].b64id}", token=bob)
    assert gone.status == 404
    assert (await sign_in(api, key, username="alice")).status == 200


@pytest.mark.gen_test(timeout=30)
async def test_a_lower_sign_count_is_refused(api: Api) -> None:
    """An assertion whose counter is not above the last one seen (a cloned key) is refused."""
    key = SoftAuthenticator(ORIGIN)
    await signed_up_with_passkey(api, "alice", key)
    assert (await sign_in(api, key)).status == 200  # counter 1
    assert (await sign_in(api, key)).status == 200  # counter 2
    asked = await options(api, "signin")
    cloned = await api.call("POST", "/api/v1/passkey-sessions",
                            {"credential": key.get(asked, sign_count=2)})
    assert cloned.status == 401
    assert cloned.body["code"] == "invalid_passkey"


@pytest.mark.gen_test(timeout=30)
async def test_a_ceremony_from_another_origin_is_refused(api: Api) -> None:
    """Client data from an origin outside --rp-origins: no passkey made, no sign-in."""
    key = SoftAuthenticator(ORIGIN)
    made = key.create(await options(api, "signup", username="alice"),
                      origin="https://evil.example")
    refused = await api.call("POST", "/api/v1/passkey-accounts", {"credential": made})
    assert refused.status == 400
    assert refused.body["code"] == "passkey_rejected"
    assert (await api.login("alice")).status == 401
    await signed_up_with_passkey(api, "alice", key)
    asked = await options(api, "signin")
    phished = await api.call("POST", "/api/v1/passkey-sessions",
                             {"credential": key.get(asked, origin="https://evil.example")})
    assert phished.status == 401


def shape(asked: dict[str, Any]) -> set[tuple[str, ...]]:
    """What an allowCredentials list shows but its ids and length: each entry's keys, type,
    whether it names transports."""
    shown = set()
    for entry in asked["allowCredentials"]:
        assert base64url_to_bytes(entry["id"])
        assert set(entry["transports"]) <= KNOWN_TRANSPORTS
        shown.add((*sorted(entry), entry["type"], str(bool(entry["transports"]))))
    return shown


@pytest.mark.parametrize("service", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)],
                         indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_a_named_sign_in_does_not_tell_which_names_have_passkeys(
        api: Api, service: AccountService) -> None:
    """A name with passkeys, one with a password only and an unknown one get answers of one
    shape, the same at every ask; any credential for the latter two fails as a wrong one."""
    alice, dave = SoftAuthenticator(ORIGIN), SoftAuthenticator(ORIGIN)
    await signed_up_with_passkey(api, "alice", alice)
    await signed_up_with_passkey(api, "dave", dave)
    await api.signed_up("bob")
    asked = {name: await options(api, "signin", username=name)
             for name in ("alice", "bob", "carol")}
    for name, first in asked.items():
        assert sorted(first) == sorted(asked["alice"])
        assert shape(first) == shape(asked["alice"]), name
        again = await options(api, "signin", username=name.upper())
        assert again["allowCredentials"] == first["allowCredentials"], name
    ids = {name: [c["id"] for c in a["allowCredentials"]] for name, a in asked.items()}
    assert ids["alice"] == [alice.credentials[0].b64id]
    assert ids["bob"] != ids["carol"]
    # The others' are their decoys (one or two, drawn from the server's secret and the name).
    secret = await service.store.server_secret(DECOY_SECRET)
    for name in ("bob", "carol"):
        assert ids[name] == [bytes_to_base64url(d.id) for d in decoys(secret, name_key(name))]
    assert not set(ids["bob"] + ids["carol"]) & {c.b64id for c in dave.credentials}
    # A second service on the same store (another node, a restart) shows the same decoys.
    other = PasskeyService(AccountService(service.store, service.policy))
    again = await other.begin_signin("bob", RelyingParty("localhost", "x", (ORIGIN,)), "1.2.3.4")
    assert [c["id"] for c in again["allowCredentials"]] == ids["bob"]
    # The finish: another's real passkey, or one made with a decoy's id, fails as a wrong one.
    forger = SoftAuthenticator(ORIGIN)
    forger.create({"challenge": "AAAA", "rp": {"id": "localhost"}, "user": {"id": "AAAA"}},
                  credential_id=base64url_to_bytes(ids["bob"][0]))
    refusals = [
        await api.call("POST", "/api/v1/passkey-sessions", {"credential": dave.get(
            await options(api, "signin", username=name), credential=dave.credentials[0])})
        for name in ("alice", "bob", "carol")]
    refusals.append(await api.call("POST", "/api/v1/passkey-sessions", {
        "credential": forger.get(await options(api, "signin", username="bob"))}))
    assert {(r.status, r.body["code"], r.body["reason"]) for r in refusals} == {
        (401, "invalid_passkey", REFUSED.reason)}
    assert (await sign_in(api, alice, username="alice")).status == 200


@pytest.mark.gen_test(timeout=30)
async def test_a_disabled_account_cannot_sign_in_with_a_passkey(
        api: Api, service: AccountService) -> None:
    """Disabled: the right passkey gets account_disabled and no session."""
    key = SoftAuthenticator(ORIGIN)
    await api.signed_up("admin")
    await signed_up_with_passkey(api, "alice", key)
    await service.set_disabled(await service.find("alice"), True)
    refused = await sign_in(api, key)
    assert refused.status == 403
    assert refused.body["code"] == "account_disabled"
    assert refused.cookie() is None


@pytest.mark.settings(login_throttle_after=2, login_throttle_first=60, login_throttle_max=60)
@pytest.mark.gen_test(timeout=30)
async def test_failed_passkey_sign_ins_are_throttled(api: Api, clock: Clock) -> None:
    """After --login-throttle-after failed passkey sign-ins even the right passkey waits."""
    key, stranger = SoftAuthenticator(ORIGIN), SoftAuthenticator(ORIGIN)
    await signed_up_with_passkey(api, "alice", key)
    stranger.create({"challenge": "AAAA", "rp": {"id": "localhost"}, "user": {"id": "AAAA"}})
    for _ in range(2):
        assert (await sign_in(api, stranger)).status == 401  # unknown to the server
    throttled = await sign_in(api, key)
    assert throttled.status == 429
    assert throttled.headers["Retry-After"] == "60"
    clock.now += 61
    assert (await sign_in(api, key)).status == 200


@pytest.mark.settings(rp_id="", rp_origins=[])
@pytest.mark.gen_test(timeout=30)
async def test_without_rp_settings_the_request_host_is_the_relying_party(
        api: Api, http_port: int) -> None:
    """Unset --rp-id/--rp-origins: localhost works as reached; an IP address is told why not."""
    here = f"localhost:{http_port}"
    key = SoftAuthenticator(f"http://{here}")
    answer = await api.call("POST", "/api/v1/passkey-challenges",
                            {"purpose": "signup", "username": "alice"}, Host=here)
    assert answer.body["options"]["rp"]["id"] == "localhost"
    made = await api.call("POST", "/api/v1/passkey-accounts",
                          {"credential": key.create(answer.body["options"])}, Host=here)
    assert made.status == 201, made.body
    by_ip = await begin(api, "signin")
    assert by_ip.status == 400
    assert by_ip.body["code"] == "passkeys_unavailable"


@pytest.mark.gen_test(timeout=30)
async def test_passkey_calls_with_the_cookie_from_another_site_are_refused(api: Api) -> None:
    """The CSRF origin rule holds for every passkey POST and DELETE."""
    token = await api.signed_up("alice")
    for path in ("/api/v1/passkey-challenges", "/api/v1/passkeys",
                 "/api/v1/passkey-accounts", "/api/v1/passkey-sessions"):
        answer = await api.call("POST", path, {"purpose": "add"}, cookie=token,
                                Origin="https://evil.example")
        assert answer.status == 403, path
        assert answer.body["code"] == "cross_origin"
    answer = await api.call("DELETE", "/api/v1/passkeys/AAAA", cookie=token,
                            Sec_Fetch_Site="cross-site")
    assert answer.status == 403


@pytest.mark.gen_test(timeout=30)
async def test_passkey_answers_fit_the_documented_schemas(api: Api) -> None:
    """Success and error answers of the passkey routes validate against the OpenAPI document."""
    key = SoftAuthenticator(ORIGIN)
    begun = await begin(api, "signup", username="alice")
    check(begun, "/api/v1/passkey-challenges", "post")
    check(await begin(api, "add"), "/api/v1/passkey-challenges", "post")  # 401
    made = await api.call("POST", "/api/v1/passkey-accounts",
                          {"credential": key.create(begun.body["options"])})
    check(made, "/api/v1/passkey-accounts", "post")
    token = made.body["token"]
    check(await api.call("POST", "/api/v1/passkey-accounts", {"credential": {}}),
          "/api/v1/passkey-accounts", "post")  # 400
    added = await api.call("POST", "/api/v1/passkeys", {"credential": SoftAuthenticator(
        ORIGIN).create(await options(api, "add", token))}, token=token)
    check(added, "/api/v1/passkeys", "post")
    check(await api.call("GET", "/api/v1/passkeys", token=token), "/api/v1/passkeys", "get")
    check(await sign_in(api, key), "/api/v1/passkey-sessions", "post")
    asked = await options(api, "signin", username="bob")
    check(await api.call("POST", "/api/v1/passkey-sessions", {
        "credential": key.get(asked, credential=key.credentials[0])}),
          "/api/v1/passkey-sessions", "post")  # 401
    one = "/api/v1/passkeys/{id}"
    check(await api.call("DELETE", "/api/v1/passkeys/AAAA", token=token), one, "delete")
    check(await api.call("DELETE", f"/api/v1/passkeys/{key.credentials[0].b64id}",
                         token=token), one, "delete")


@pytest.mark.gen_test(timeout=30)
async def test_one_address_cannot_pile_up_unfinished_ceremonies(api: Api, clock: Clock) -> None:
    """Past MAX_CHALLENGES_PER_ADDRESS unfinished begins: 429 too_many_ceremonies, until the
    challenges expire or are finished."""
    for _ in range(MAX_CHALLENGES_PER_ADDRESS):
        assert (await begin(api, "signin")).status == 200
    piled = await begin(api, "signin")
    assert piled.status == 429
    assert piled.body["code"] == "too_many_ceremonies"
    # Without --xheaders a forged X-Real-IP is the same address.
    forged = await api.call("POST", "/api/v1/passkey-challenges", {"purpose": "signin"},
                            X_Real_IP="10.1.2.3")
    assert forged.status == 429
    clock.now += CHALLENGE_TTL_MS / 1000 + 1
    assert (await begin(api, "signin")).status == 200


@pytest.mark.parametrize(("given", "named"), [
    ({"rp_id": "Chat.Example"}, "--rp-id is 'Chat.Example'"),
    ({"rp_id": "127.0.0.1"}, "--rp-id is '127.0.0.1'"),
    ({"rp_id": "https://chat.example"}, "--rp-id is 'https://chat.example'"),
    ({"rp_origins": ["chat.example"]}, "--rp-origins has 'chat.example'"),
    ({"rp_origins": ["https://chat.example/app"]}, "--rp-origins has 'https://chat.example/app'"),
    ({"rp_id": "chat.example", "rp_origins": ["https://chat.example.evil"]},
     "whose host is not --rp-id (chat.example)"),
    ({"rp_name": " "}, "--rp-name is ' '; it must be 1 to 64 characters"),
])
def test_bad_relying_party_settings_are_refused_by_name(given: dict[str, Any], named: str,
                                                        ) -> None:
    """--rp-id, --rp-origins and --rp-name that cannot work are refused, naming the value."""
    with pytest.raises(ConfigError, match=re.escape(named)):
        Settings(**given)
    Settings(rp_id="chat.example", rp_origins=["https://chat.example",
                                               "https://eu.chat.example:8443"])

"""Managing webhooks, bots and tokens with API tokens: an admin-scope token lists, creates and
revokes them over HTTP, every use counted in /metrics; from the attacker's side a member, a
read or write token, a non-admin's token and another room's owner are refused. Each on SQLite
and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from handlers.httpserver import ChatHTTPServer
from tests import test_rooms
from tests.apiclient import Api
from tests.test_api_openapi import check
from tests.test_metrics import sample

app = test_rooms.app  # the fixture: each test runs on SQLite and on PostgreSQL


@pytest.fixture
def api(http_server: ChatHTTPServer, http_port: int) -> Api:
    return Api(http_port)


async def token_of(api: Api, session: str, *scopes: str) -> str:
    made = await api.call("POST", "/api/v1/tokens", {"name": "t", "scopes": list(scopes)},
                          token=session)
    assert made.status == 201, made.body
    secret: str = made.body["token"]
    return secret


async def metrics(port: int) -> str:
    answer = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/metrics")
    text: str = answer.body.decode()
    return text


def counted(text: str, route: str, auth: str) -> float:
    try:
        return sample(text, f'chat_api_requests_total{{auth="{auth}",route="{route}"}}')
    except AssertionError:
        return 0.0


HOOK_CALLS = (("POST", "/api/v1/webhooks", {"room": "ops", "name": "x"}),
              ("GET", "/api/v1/webhooks?room=ops", None))


def template(path: str) -> str:
    """The documented route of a path called here."""
    path = path.split("?")[0]
    for prefix, name in (("/api/v1/webhooks/", "{id}"), ("/api/v1/admin/tokens/", "{id}")):
        if path.startswith(prefix):
            return prefix + name
    if path.startswith("/api/v1/bots/"):
        return "/api/v1/bots/{username}" + ("/tokens" if path.endswith("/tokens") else "")
    return path


@pytest.mark.gen_test(timeout=60)
async def test_an_admin_token_manages_webhooks_and_no_lesser_token_does(
    api: Api, http_port: int,
) -> None:
    """root's admin-scope token creates, lists and revokes a hook of ann's room (counted as
    token uses); ann's own read+write token (she owns the room), root's read+write token and
    bob's session (owner of another room) are refused; a revoked admin token is 401."""
    root = await api.signed_up("root")
    ann = await api.signed_up("ann")
    bob = await api.signed_up("bob")
    assert (await api.call("PUT", "/api/v1/rooms/ops/membership", token=ann)).body["room"][
        "role"] == "owner"
    assert (await api.call("PUT", "/api/v1/rooms/dev/membership", token=bob)).body["room"][
        "role"] == "owner"
    admin = await token_of(api, root, "admin")
    made = await api.call("POST", "/api/v1/webhooks", {"room": "ops", "name": "Deploys"},
                          token=admin)
    assert made.status == 201, made.body
    check(made, "/api/v1/webhooks", "post")
    outgoing = await api.call("POST", "/api/v1/webhooks", {
        "room": "ops", "name": "Ask", "kind": "outgoing", "url": "https://hooks.example/x",
        "triggers": ["!ask"]}, token=admin)
    assert outgoing.status == 201, outgoing.body
    listed = await api.call("GET", "/api/v1/webhooks?room=ops", token=admin)
    assert [hook["name"] for hook in listed.body["webhooks"]] == ["Deploys", "Ask"]
    hook_id = made.body["webhook"]["id"]
    attackers: list[tuple[str, int, str]] = [
        (await token_of(api, ann, "read", "write"), 403, "insufficient_scope"),
        (await token_of(api, root, "read", "write"), 403, "insufficient_scope"),
        (bob, 403, "forbidden"),
    ]
    for token, status, code in attackers:
        for method, path, body in (*HOOK_CALLS, ("DELETE", f"/api/v1/webhooks/{hook_id}",
                                                 None)):
            refused = await api.call(method, path, body, token=token)
            assert (refused.status, refused.body["code"]) == (status, code), (method, token)
            check(refused, template(path), method.lower())
    assert len((await api.call("GET", "/api/v1/webhooks?room=ops", token=ann)).body[
        "webhooks"]) == 2  # nothing made, nothing revoked by them
    assert (await api.call("DELETE", f"/api/v1/webhooks/{hook_id}", token=admin)).status == 204
    text = await metrics(http_port)
    assert counted(text, "webhooks", "token") == 4  # root's four admin-scope uses
    assert counted(text, "webhooks", "session") >= 4  # bob's three refusals and ann's list
    assert sample(text, 'chat_api_token_failures_total{reason="scope"}') == 6
    tokens = await api.call("GET", "/api/v1/tokens", token=root)
    admin_id = next(t["id"] for t in tokens.body["tokens"] if t["scopes"] == ["admin"])
    assert (await api.call("DELETE", f"/api/v1/tokens/{admin_id}", token=root)).status == 204
    for method, path, body in HOOK_CALLS:
        gone = await api.call(method, path, body, token=admin)
        assert (gone.status, gone.body["code"]) == (401, "invalid_token")


@pytest.mark.gen_test(timeout=60)
async def test_an_admin_token_lists_creates_and_revokes_bots_and_their_tokens(
    api: Api, http_port: int,
) -> None:
    """Over HTTP with an admin-scope token: make a bot, two tokens of it, list both, revoke
    one (refused at once), revoke the bot (its other token refused, the list marks it
    disabled); each call counted. A member's session, its write token and the admin's read
    token are refused every one of these; a person is no bot to revoke."""
    root = await api.signed_up("root")
    ann = await api.signed_up("ann")
    admin = await token_of(api, root, "admin")
    made = await api.call("POST", "/api/v1/bots", {"username": "ci-bot"}, token=admin)
    assert made.status == 201, made.body
    secrets = []
    for label in ("one", "two"):
        issued = await api.call("POST", "/api/v1/bots/ci-bot/tokens",
                                {"name": label, "scopes": ["read", "write"]}, token=admin)
        assert issued.status == 201, issued.body
        secrets.append((issued.body["token"], issued.body["api_token"]["id"]))
    every = await api.call("GET", "/api/v1/admin/tokens", token=admin)
    assert [t["name"] for t in every.body["tokens"] if t["username"] == "ci-bot"] == [
        "one", "two"]
    bots = await api.call("GET", "/api/v1/bots", token=admin)
    check(bots, "/api/v1/bots", "get")
    assert [(b["username"], b["bot"], b["disabled"]) for b in bots.body["bots"]] == [
        ("ci-bot", True, False)]
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/api/v1/bots", None),
        ("POST", "/api/v1/bots", {"username": "evil-bot"}),
        ("POST", "/api/v1/bots/ci-bot/tokens", {"name": "mine", "scopes": ["read"]}),
        ("GET", "/api/v1/admin/tokens", None),
        ("DELETE", f"/api/v1/admin/tokens/{secrets[0][1]}", None),
        ("DELETE", "/api/v1/bots/ci-bot", None),
    ]
    attackers = [(ann, "forbidden"), (await token_of(api, ann, "read", "write"),
                                      "insufficient_scope"),
                 (await token_of(api, root, "read"), "insufficient_scope")]
    for token, code in attackers:
        for method, path, body in calls:
            refused = await api.call(method, path, body, token=token)
            assert (refused.status, refused.body["code"]) == (403, code), (method, path)
            check(refused, template(path), method.lower())
    posted = await api.call("GET", "/api/v1/rooms", token=secrets[0][0])
    assert posted.status == 200  # nothing an attacker sent revoked it
    assert (await api.call("DELETE", f"/api/v1/admin/tokens/{secrets[0][1]}",
                           token=admin)).status == 204
    assert (await api.call("GET", "/api/v1/rooms", token=secrets[0][0])).status == 401
    assert (await api.call("GET", "/api/v1/rooms", token=secrets[1][0])).status == 200
    person = await api.call("DELETE", "/api/v1/bots/ann", token=admin)
    assert (person.status, person.body["code"]) == (404, "no_such_bot")
    check(person, "/api/v1/bots/{username}", "delete")
    revoked = await api.call("DELETE", "/api/v1/bots/ci-bot", token=admin)
    assert revoked.status == 204
    check(revoked, "/api/v1/bots/{username}", "delete")
    refused = await api.call("GET", "/api/v1/rooms", token=secrets[1][0])
    assert (refused.status, refused.body["code"]) == (401, "invalid_token")
    bots = await api.call("GET", "/api/v1/bots", token=admin)
    assert [(b["username"], b["disabled"]) for b in bots.body["bots"]] == [("ci-bot", True)]
    assert (await api.call("GET", "/api/v1/me", token=ann)).status == 200  # ann untouched
    text = await metrics(http_port)
    assert counted(text, "bots", "token") == 7  # 1 bot, 2 tokens, 2 lists, revoke x2
    assert counted(text, "admin_tokens", "token") == 2

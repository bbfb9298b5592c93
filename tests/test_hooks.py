"""Incoming webhooks: managed by a room's owners, posting Slack-format payloads into the room
live and into its history, on SQLite and PostgreSQL, and refused from the attacker's side."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient

from chat.config import ConfigError, Settings
from chat.hooks.service import HOOKS_PER_ROOM
from chat_server import ChatApplication
from tests import test_rooms
from tests.apiclient import Answer, Api
from tests.helpers import ChatClient, Connect
from tests.test_api_openapi import check
from tests.test_auth_socket import PASSWORD, bearer, signed_up
from tests.test_metrics import sample
from tests.test_rooms import make_room

app = test_rooms.app  # the fixture: each test runs on SQLite and on PostgreSQL

ALERTMANAGER = {  # Alertmanager's Slack receiver, default templates (attachments, mrkdwn_in)
    "channel": "#ops", "username": "Alertmanager", "icon_emoji": ":fire:", "link_names": False,
    "attachments": [{
        "title": "[FIRING:1] DiskFull (node-1 critical)",
        "title_link": "http://alertmanager:9093/#/alerts?receiver=chat",
        "pretext": "", "text": "*Alert:* disk 97% full on `node-1` - _critical_",
        "fallback": "[FIRING:1] DiskFull | http://alertmanager:9093", "callback_id": "",
        "footer": "", "color": "danger", "mrkdwn_in": ["fallback", "pretext", "text"],
        "fields": [], "actions": []}]}
GRAFANA = {  # Grafana's Slack contact point
    "username": "Grafana", "icon_url": "https://grafana.com/assets/img/fav32.png",
    "attachments": [{
        "color": "#D63232", "title": "[FIRING:1] High latency (api)",
        "title_link": "http://grafana:3000/alerting/list", "text":
        "**Firing**\n\nValue: A=1.2\nLabels:\n - alertname = High latency",
        "fallback": "[FIRING:1] High latency", "footer": "Grafana v10.2.0",
        "footer_icon": "https://grafana.com/assets/img/fav32.png", "ts": 1700000000,
        "mrkdwn_in": ["pretext"]}]}
GITHUB_ACTIONS = {  # slackapi/slack-github-action, webhook-trigger with a blocks payload
    "text": "GitHub Action build result: success",
    "blocks": [{"type": "section", "text": {
        "type": "mrkdwn", "text": "Build *success* for <https://github.com/o/r/actions/runs/1|"
                                  "run 1> on `main` &amp; deployed"}}]}


async def hook_post(port: int, path: str, body: Any, *, form: bool = False,
                    raw: bytes | None = None) -> Answer:
    """POST to an incoming hook's path: JSON, or Slack's form-encoded `payload=`."""
    data = raw if raw is not None else (urlencode({"payload": json.dumps(body)}).encode()
                                        if form else json.dumps(body).encode())
    response = await AsyncHTTPClient().fetch(
        f"http://127.0.0.1:{port}{path}", method="POST", body=data, raise_error=False,
        headers={"Content-Type": "application/x-www-form-urlencoded" if form
                 else "application/json"})
    return Answer(response.code, response.headers,
                  json.loads(response.body) if response.body else None)


async def owner_with_hook(app: ChatApplication, connect: Connect, api: Api,
                          name: str = "CI") -> tuple[ChatClient, str, str]:
    """root (admin), ann owning room `ops` (her socket in it); her new hook's path and token."""
    await signed_up(app, "root")
    ann_token = await signed_up(app, "ann")
    ann = await connect(**bearer(ann_token))
    await ann.join("ann")
    await make_room(ann, "ops")
    await ann.send({"type": "join", "room": "ops"})
    await ann.recv_type("history")
    made = await api.call("POST", "/api/v1/webhooks", {"room": "ops", "name": name},
                          token=ann_token)
    assert made.status == 201, made.body
    assert made.body["url"].endswith(made.body["path"])
    return ann, made.body["path"], ann_token


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize(("payload", "expected"), [
    ({"text": "deploy *done* <https://x.org/1|build 1> ~old~ <!here>"},
     "deploy **done** [build 1](https://x.org/1) ~~old~~ @here"),
    (ALERTMANAGER, "**[[FIRING:1] DiskFull (node-1 critical)]"
                   "(http://alertmanager:9093/#/alerts?receiver=chat)**\n"
                   "**Alert:** disk 97% full on `node-1` - _critical_"),
    (GRAFANA, "**[[FIRING:1] High latency (api)](http://grafana:3000/alerting/list)**\n"
              "**Firing**\n\nValue: A=1.2\nLabels:\n - alertname = High latency"),
    (GITHUB_ACTIONS, "Build **success** for [run 1](https://github.com/o/r/actions/runs/1) "
                     "on `main` & deployed"),
    ({"attachments": [{"fallback": "only the fallback"}]}, "only the fallback"),
], ids=["mrkdwn", "alertmanager", "grafana", "github-actions", "fallback"])
async def test_a_slack_payload_posts_its_text_live_and_into_history(
    app: ChatApplication, connect: Connect, http_port: int, payload: dict[str, Any],
    expected: str,
) -> None:
    """A Slack-format payload posts the expected text, marked `bot`, to the room's sockets at
    once and into its history."""
    api = Api(http_port)
    ann, path, _ = await owner_with_hook(app, connect, api)
    answer = await hook_post(http_port, path, payload)
    assert answer.status == 200, answer.body
    # What Alertmanager's and Grafana's Slack senders read as success from a JSON answer.
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.body["ok"] is True
    live = await ann.recv_type("message")
    assert (live["room"], live["message"], live.get("bot")) == ("ops", expected, True)
    assert live["username"] == payload.get("username", "CI")
    await ann.send({"type": "history", "room": "ops"})
    page = await ann.recv_type("history")
    assert [(m["message"], m.get("bot")) for m in page["messages"]] == [(expected, True)]


@pytest.mark.gen_test(timeout=30)
async def test_a_form_encoded_payload_posts_as_slack_accepts_it(
    app: ChatApplication, connect: Connect, http_port: int,
) -> None:
    """`payload=<json>` form-encoded (curl -d payload=...) posts as a JSON body does."""
    ann, path, _ = await owner_with_hook(app, connect, Api(http_port))
    answer = await hook_post(http_port, path, {"text": "from a form"}, form=True)
    assert answer.status == 200, answer.body
    assert (await ann.recv_type("message"))["message"] == "from a form"


@pytest.mark.gen_test(timeout=30)
async def test_a_wrong_secret_is_404_and_a_revoked_hook_stops_at_once(
    app: ChatApplication, connect: Connect, http_port: int,
) -> None:
    """A secret no hook has is 404; after DELETE the hook's own URL is 404 and posts
    nothing; the list no longer shows it."""
    api = Api(http_port)
    ann, path, token = await owner_with_hook(app, connect, api)
    wrong = await hook_post(http_port, path[:-4] + "AAAA", {"text": "guess"})
    assert (wrong.status, wrong.body["code"]) == (404, "no_such_webhook")
    assert (wrong.body["ok"], wrong.body["error"]) == (False, "no_such_webhook")  # as Slack's
    listed = await api.call("GET", "/api/v1/webhooks?room=ops", token=token)
    [hook] = listed.body["webhooks"]
    assert "secret" not in json.dumps(hook) and path.split("/")[-1] not in json.dumps(hook)
    assert (await api.call("DELETE", f"/api/v1/webhooks/{hook['id']}", token=token)).status \
        == 204
    gone = await hook_post(http_port, path, {"text": "after revoke"})
    assert gone.status == 404
    await ann.nothing()
    assert (await api.call("GET", "/api/v1/webhooks?room=ops", token=token)).body == {
        "webhooks": []}


@pytest.mark.gen_test(timeout=30)
async def test_only_owners_and_admins_manage_a_rooms_hooks(
    app: ChatApplication, connect: Connect, http_port: int,
) -> None:
    """A member who is not an owner cannot create, list or revoke a room's hooks (403); in a
    private room a non-member is told there is no such room (404); without a session 401;
    the server admin may."""
    api = Api(http_port)
    ann, _, ann_token = await owner_with_hook(app, connect, api)
    hook_id = (await api.call("GET", "/api/v1/webhooks?room=ops", token=ann_token)
               ).body["webhooks"][0]["id"]
    bob_token = await signed_up(app, "bob")
    bob = await connect(**bearer(bob_token))
    await bob.join("bob", "ops")  # a member of ops, not its owner
    for method, path, body in (("POST", "/api/v1/webhooks", {"room": "ops", "name": "x"}),
                               ("GET", "/api/v1/webhooks?room=ops", None),
                               ("DELETE", f"/api/v1/webhooks/{hook_id}", None)):
        refused = await api.call(method, path, body, token=bob_token)
        assert (refused.status, refused.body["code"]) == (403, "forbidden"), method
        assert (await api.call(method, path, body)).status == 401
    await make_room(ann, "den", visibility="private")
    hidden = await api.call("POST", "/api/v1/webhooks", {"room": "den", "name": "x"},
                            token=bob_token)
    assert (hidden.status, hidden.body["code"]) == (404, "no_such_room")
    assert app.accounts is not None
    root_session, _, _ = await app.accounts.login("root", PASSWORD, "127.0.0.1")
    made = await api.call("POST", "/api/v1/webhooks", {"room": "den", "name": "Ops bot"},
                          token=root_session)
    assert made.status == 201, made.body
    assert (await api.call("DELETE", f"/api/v1/webhooks/{hook_id}", token=root_session)
            ).status == 204
    assert bob  # kept open: his membership is what is tested


@pytest.mark.gen_test(timeout=30)
@pytest.mark.settings(webhook_max_body_bytes=2048, webhook_max_text_chars=50,
                      webhook_burst=2, webhook_rate=0.01)
async def test_the_hooks_limits_answer_with_the_value_and_the_limit(
    app: ChatApplication, connect: Connect, http_port: int,
) -> None:
    """A body over --webhook-max-body-bytes is 413, a text over --webhook-max-text-chars 400,
    a payload with no text 400, and posts past the burst 429 with Retry-After; /metrics
    counts them."""
    ann, path, _ = await owner_with_hook(app, connect, Api(http_port))
    large = await hook_post(http_port, path, {"text": "x" * 3000})
    assert (large.status, large.body["code"]) == (413, "too_large")
    assert "2,048" in large.body["reason"]
    long = await hook_post(http_port, path, {"text": "y" * 51})
    assert (long.status, long.body["code"]) == (400, "too_long")
    assert "51" in long.body["reason"] and "50" in long.body["reason"]
    empty = await hook_post(http_port, path, {"attachments": [{"color": "good"}]})
    assert (empty.status, empty.body["code"]) == (400, "invalid_payload")
    assert (await hook_post(http_port, path, {"text": "third"})).status == 429
    limited = await hook_post(http_port, path, {"text": "fourth"})
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) >= 1
    await ann.nothing()
    metrics = (await AsyncHTTPClient().fetch(f"http://127.0.0.1:{http_port}/metrics")
               ).body.decode()
    assert sample(metrics, 'chat_webhook_posts_total{result="rate_limited"}') == 2
    assert sample(metrics, 'chat_webhook_posts_total{result="refused"}') == 2


@pytest.mark.gen_test(timeout=30)
async def test_a_hook_never_posts_under_an_accounts_name(
    app: ChatApplication, connect: Connect, http_port: int,
) -> None:
    """A `username` that is an account's name (in any look-alike spelling) is posted with
    " (bot)" after it, and marked `bot`; any other `username` is used as given."""
    ann, path, _ = await owner_with_hook(app, connect, Api(http_port))
    assert (await hook_post(http_port, path, {"text": "hi", "username": "ANN"})).status == 200
    spoof = await ann.recv_type("message")
    assert (spoof["username"], spoof["bot"]) == ("ANN (bot)", True)
    assert (await hook_post(http_port, path, {"text": "hi", "username": "Deploys"})).status \
        == 200
    assert (await ann.recv_type("message"))["username"] == "Deploys"


@pytest.mark.gen_test(timeout=30)
@pytest.mark.settings(webhook_max_body_bytes=1024)
async def test_the_webhook_answers_fit_the_documented_schemas(
    app: ChatApplication, connect: Connect, http_port: int,
) -> None:
    """Every webhook route's success and error answers validate against the OpenAPI
    document."""
    api = Api(http_port)
    _, path, token = await owner_with_hook(app, connect, api)
    hooks, one, incoming = "/api/v1/webhooks", "/api/v1/webhooks/{id}", "/hooks/{secret}"
    listed = await api.call("GET", hooks + "?room=ops", token=token)
    check(listed, hooks, "get")
    check(await api.call("GET", hooks + "?room=nowhere", token=token), hooks, "get")  # 404
    made = await api.call("POST", hooks, {"room": "ops", "name": "Out", "kind": "outgoing",
                                          "url": "https://example.org/x", "triggers": ["!a"]},
                          token=token)
    check(made, hooks, "post")
    check(await api.call("POST", hooks, {"room": "ops", "name": "Out", "kind": "outgoing",
                                         "url": "ftp://x"}, token=token), hooks, "post")  # 400
    check(await hook_post(http_port, path, {"text": "ok"}), incoming, "post")
    check(await hook_post(http_port, path, {"nothing": 1}), incoming, "post")  # 400
    check(await hook_post(http_port, "/hooks/nope", {"text": "x"}), incoming, "post")  # 404
    check(await hook_post(http_port, path, {"text": "x" * 2000}), incoming, "post")  # 413
    bob = await signed_up(app, "bob")
    check(await api.call("GET", hooks + "?room=ops", token=bob), hooks, "get")  # 403
    check(await api.call("DELETE", f"/api/v1/webhooks/{made.body['webhook']['id']}",
                         token=token), one, "delete")
    check(await api.call("DELETE", "/api/v1/webhooks/abc", token=token), one, "delete")  # 404


@pytest.mark.gen_test(timeout=30)
async def test_the_access_log_never_shows_a_hooks_secret(
    app: ChatApplication, connect: Connect, http_port: int, caplog: pytest.LogCaptureFixture,
) -> None:
    """The secret is the hook's only credential: its requests are logged as /hooks/***."""
    caplog.set_level(logging.INFO, "tornado.access")
    _, path, _ = await owner_with_hook(app, connect, Api(http_port))
    assert (await hook_post(http_port, path, {"text": "hi"})).status == 200
    assert (await hook_post(http_port, path, {"no": "text"})).status == 400
    secret = path.rsplit("/", 1)[1]
    lines = [record.getMessage() for record in caplog.records]
    assert sum("/hooks/***" in line for line in lines) == 2
    assert not [line for line in lines if secret in line]


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("webhook_max_body_bytes", 100, "--webhook-max-body-bytes is 100; it must be at least 1024"),
    ("webhook_max_text_chars", 0, "--webhook-max-text-chars is 0; it must be 1 or more"),
    ("webhook_rate", 0.0, "--webhook-rate is 0.0; it must be more than 0"),
    ("webhook_burst", 0, "--webhook-burst is 0; it must be 1 or more"),
    ("webhook_timeout", 0.0, "--webhook-timeout is 0.0; it must be more than 0"),
    ("webhook_retries", 11, "--webhook-retries is 11; it must be between 0 and 10"),
    ("webhook_backoff", -1.0, "--webhook-backoff is -1.0; it must be 0 or more"),
    ("webhook_queue", 0, "--webhook-queue is 0; it must be 1 or more"),
])
def test_a_bad_webhook_setting_names_its_value_and_limit(setting: str, value: Any,
                                                         message: str) -> None:
    """Each webhook limit is validated, with the flag, the value and the rule."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings(**{setting: value})


@pytest.mark.gen_test(timeout=30)
async def test_a_room_has_a_bounded_number_of_hooks(
    app: ChatApplication, connect: Connect, http_port: int,
) -> None:
    """Past HOOKS_PER_ROOM live hooks a room's next one is 409, until one is revoked."""
    api = Api(http_port)
    _, _, token = await owner_with_hook(app, connect, api)
    for number in range(1, HOOKS_PER_ROOM):
        made = await api.call("POST", "/api/v1/webhooks", {"room": "ops", "name": f"h{number}"},
                              token=token)
        assert made.status == 201, made.body
    refused = await api.call("POST", "/api/v1/webhooks", {"room": "ops", "name": "one more"},
                             token=token)
    assert (refused.status, refused.body["code"]) == (409, "too_many_webhooks")
    assert "limit is 50" in refused.body["reason"]
    assert (await api.call("DELETE", f"/api/v1/webhooks/{made.body['webhook']['id']}",
                           token=token)).status == 204
    assert (await api.call("POST", "/api/v1/webhooks", {"room": "ops", "name": "one more"},
                           token=token)).status == 201


@pytest.mark.gen_test(timeout=30)
async def test_a_body_larger_than_the_apis_cap_is_taken_up_to_the_hooks_own(
    app: ChatApplication, connect: Connect, http_port: int,
) -> None:
    """The HTTP server's 16 KiB cap is the API's: a hook takes a 100 KiB body (Alertmanager's
    grouped alerts carry much that is not shown) up to --webhook-max-body-bytes."""
    ann, path, _ = await owner_with_hook(app, connect, Api(http_port))
    payload = {"text": "grouped", "attachments": [{"fallback": "f", "color": "danger",
                                                   "callback_id": "x" * 100_000}]}
    answer = await hook_post(http_port, path, payload)
    assert answer.status == 200, answer.body
    assert (await ann.recv_type("message"))["message"] == "grouped\nf"

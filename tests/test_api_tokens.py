"""API tokens, bots and the messages routes: a bot posts and sockets receive it live, history
as the socket reads it, scopes, revocation, idempotent cid, what A's token cannot read, the
per-token rate limit, and the token shown once and never logged."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from chat.config import ConfigError, Settings
from chat_server import ChatApplication
from handlers.httpserver import ChatHTTPServer
from tests.apiclient import Api
from tests.helpers import ChatClient, Connect
from tests.test_api_openapi import check
from tests.test_auth_socket import in_two_calls


@pytest.fixture
def api(http_server: ChatHTTPServer, http_port: int) -> Api:
    return Api(http_port)


async def issued(api: Api, session: str, name: str = "t",
                 scopes: tuple[str, ...] = ("read", "write")) -> dict[str, Any]:
    """A new token of the session's account: the answer's body (token and api_token)."""
    made = await api.call("POST", "/api/v1/tokens", {"name": name, "scopes": list(scopes)},
                          token=session)
    assert made.status == 201, made.body
    body: dict[str, Any] = made.body
    return body


async def bot_token(api: Api, admin: str, name: str = "deploy-bot",
                    scopes: tuple[str, ...] = ("read", "write")) -> str:
    """A new bot made by the admin session, and a token of it."""
    made = await api.call("POST", "/api/v1/bots", {"username": name}, token=admin)
    assert made.status == 201, made.body
    assert made.body["account"]["bot"] is True
    token = await api.call("POST", f"/api/v1/bots/{name}/tokens",
                           {"name": "ci", "scopes": list(scopes)}, token=admin)
    assert token.status == 201, token.body
    secret: str = token.body["token"]
    return secret


async def signed_socket(connect: Connect, session: str, name: str,
                        room: str = "general") -> ChatClient:
    client = await connect(Authorization=f"Bearer {session}")
    await client.join(name, room)
    return client


@pytest.mark.gen_test(timeout=60)
async def test_a_bot_posts_through_the_api_and_a_socket_receives_it_live(
    api: Api, connect: Connect,
) -> None:
    """A bot (made by an admin, with a token) joins a room and posts by HTTP: a socket in the
    room receives the message at once, with the id the API answered; members mark the bot."""
    admin = await api.signed_up("root")
    bot = await bot_token(api, admin)
    joined = await api.call("PUT", "/api/v1/rooms/ops/membership", token=bot)
    assert joined.status == 200, joined.body
    assert joined.body["room"]["role"] == "owner"  # made by joining (TEST_DEFAULTS)
    watcher = await signed_socket(connect, admin, "root", "ops")
    posted = await api.call("POST", "/api/v1/rooms/ops/messages",
                            {"text": "deployed :rocket:", "cid": "d1"}, token=bot)
    assert posted.status == 201, posted.body
    live = await watcher.recv_type("message")
    assert live == posted.body["message"]
    assert (live["username"], live["room"], live["cid"], live["bot"]) == (
        "deploy-bot", "ops", "d1", True)
    assert live["message"] == "deployed 🚀"
    members = await api.call("GET", "/api/v1/rooms/ops/members", token=bot)
    assert members.body["members"] == [{"username": "deploy-bot", "role": "owner",
                                        "bot": True},
                                       {"username": "root", "role": "member"}]
    await watcher.send({"type": "history", "room": "ops"})
    assert (await watcher.recv_type("history"))["messages"] == [live]  # stored marked
    await watcher.send({"type": "message", "room": "ops", "text": "thanks"})
    assert "bot" not in await watcher.recv_type("message")
    login = await api.login("deploy-bot", "")
    assert login.status == 401  # a bot has no password: tokens only


@pytest.mark.gen_test(timeout=60)
async def test_history_through_the_api_equals_history_through_the_socket(
    api: Api, connect: Connect,
) -> None:
    """Pages read by HTTP (before/limit) are the socket's `history` pages, message for
    message, for a room and for a direct conversation."""
    ann = await api.signed_up("ann")
    await api.signed_up("bob")
    token = (await issued(api, ann))["token"]
    socket = await signed_socket(connect, ann, "ann")
    for n in range(5):
        await socket.send({"type": "message", "room": "general", "text": f"s{n}"})
        await socket.recv_type("message")
        await api.call("POST", "/api/v1/rooms/general/messages", {"text": f"a{n}"}, token=token)
        await socket.recv_type("message")
    await api.call("POST", "/api/v1/dms/bob/messages", {"text": "hi bob"}, token=token)
    await socket.send({"type": "dm", "to": "bob", "text": "and again"})
    for request, path in (({"room": "general"}, "/api/v1/rooms/general/messages"),
                          ({"with": "bob"}, "/api/v1/dms/bob/messages")):
        before = None
        while True:
            ask = {"type": "history", **request, "limit": 3}
            query = "?limit=3"
            if before is not None:
                ask["before"] = before
                query += f"&before={before}"
            await socket.send(ask)
            by_socket = await socket.recv_type("history")
            by_api = await api.call("GET", path + query, token=token)
            assert by_api.status == 200, by_api.body
            assert by_api.body["messages"] == by_socket["messages"]
            assert by_api.body["more"] == by_socket["more"]
            if not by_socket["more"]:
                break
            before = by_socket["messages"][0]["id"]
        assert by_api.body["messages"], path


@pytest.mark.gen_test(timeout=60)
async def test_a_revoked_token_stops_working_at_once(api: Api) -> None:
    """Revoked by its owner (or by an admin), a token is refused at its next request."""
    ann = await api.signed_up("ann")
    bob = await api.signed_up("bob")
    first = await issued(api, ann)
    second = await issued(api, bob)
    assert (await api.call("GET", "/api/v1/rooms", token=first["token"])).status == 200
    listed = await api.call("GET", "/api/v1/tokens", token=ann)
    assert [t["id"] for t in listed.body["tokens"]] == [first["api_token"]["id"]]
    # bob cannot revoke ann's token; ann can
    assert (await api.call("DELETE", f"/api/v1/tokens/{first['api_token']['id']}",
                           token=bob)).status == 404
    out = await api.call("DELETE", f"/api/v1/tokens/{first['api_token']['id']}", token=ann)
    assert out.status == 204
    refused = await api.call("GET", "/api/v1/rooms", token=first["token"])
    assert (refused.status, refused.body["code"]) == (401, "invalid_token")
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    # the admin (ann, the first account) revokes bob's
    assert (await api.call("DELETE", f"/api/v1/admin/tokens/{second['api_token']['id']}",
                           token=ann)).status == 204
    assert (await api.call("GET", "/api/v1/rooms", token=second["token"])).status == 401


@pytest.mark.gen_test(timeout=60)
async def test_scopes_are_enforced(api: Api) -> None:
    """read: GET only; write: posting, joining, leaving; admin: only an admin's token, and
    the admin routes; tokens never open the session-only routes."""
    root = await api.signed_up("root")
    ann = await api.signed_up("ann")
    reader = (await issued(api, ann, scopes=("read",)))["token"]
    writer = (await issued(api, ann, scopes=("write",)))["token"]
    for method, path, body in (("POST", "/api/v1/rooms/general/messages", {"text": "x"}),
                               ("PUT", "/api/v1/rooms/general/membership", None),
                               ("DELETE", "/api/v1/rooms/general/membership", None),
                               ("POST", "/api/v1/dms/root/messages", {"text": "x"})):
        answer = await api.call(method, path, body, token=reader)
        assert (answer.status, answer.body["code"]) == (403, "insufficient_scope"), path
    assert (await api.call("PUT", "/api/v1/rooms/general/membership",
                           token=writer)).status == 200
    for path in ("/api/v1/rooms", "/api/v1/rooms/general/messages",
                 "/api/v1/rooms/general/members", "/api/v1/dms/root/messages"):
        answer = await api.call("GET", path, token=writer)
        assert (answer.status, answer.body["code"]) == (403, "insufficient_scope"), path
        assert (await api.call("GET", path, token=reader)).status == 200, path
    admin_scope = await api.call("POST", "/api/v1/tokens", {"name": "x", "scopes": ["admin"]},
                                 token=ann)
    assert (admin_scope.status, admin_scope.body["code"]) == (403, "forbidden")
    for token in (reader, writer):
        answer = await api.call("GET", "/api/v1/admin/tokens", token=token)
        assert (answer.status, answer.body["code"]) == (403, "insufficient_scope")
        for path in ("/api/v1/me", "/api/v1/tokens", "/api/v1/sessions"):
            answer = await api.call("GET", path, token=token)
            assert (answer.status, answer.body["code"]) == (403, "token_not_accepted"), path
    rooted = (await issued(api, root, scopes=("admin",)))["token"]
    assert (await api.call("GET", "/api/v1/admin/tokens", token=rooted)).status == 200
    assert (await api.call("GET", "/api/v1/audit", token=rooted)).status == 200
    assert (await api.call("GET", "/api/v1/audit", token=reader)).status == 403
    made = await api.call("POST", "/api/v1/bots", {"username": "helper"}, token=rooted)
    assert made.status == 201, made.body
    member = await api.call("GET", "/api/v1/bots", token=ann)
    assert (member.status, member.body["code"]) == (403, "forbidden")


@pytest.mark.gen_test(timeout=60)
async def test_a_repeated_cid_over_the_api_is_one_message(api: Api, connect: Connect) -> None:
    """The same cid twice: the same id back (201, then 200), one message stored and sent."""
    ann = await api.signed_up("ann")
    token = (await issued(api, ann))["token"]
    watcher = await signed_socket(connect, ann, "ann")
    first = await api.call("POST", "/api/v1/rooms/general/messages",
                           {"text": "once", "cid": "c-1"}, token=token)
    again = await api.call("POST", "/api/v1/rooms/general/messages",
                           {"text": "once", "cid": "c-1"}, token=token)
    assert (first.status, again.status) == (201, 200)
    assert again.body["message"]["id"] == first.body["message"]["id"]
    other = await api.call("POST", "/api/v1/rooms/general/messages",
                           {"text": "next", "cid": "c-2"}, token=token)
    assert (await watcher.recv_type("message"))["id"] == first.body["message"]["id"]
    assert (await watcher.recv_type("message"))["id"] == other.body["message"]["id"]
    page = await api.call("GET", "/api/v1/rooms/general/messages", token=token)
    assert [m["message"] for m in page.body["messages"]] == ["once", "next"]
    reused = await api.call("POST", "/api/v1/dms/ann/messages", {"text": "x", "cid": "c-1"},
                            token=token)
    assert (reused.status, reused.body["code"]) == (409, "cid_reused")


@pytest.mark.settings(room_creation="explicit")
@pytest.mark.gen_test(timeout=60)
async def test_a_token_cannot_read_another_s_dms_or_a_private_room(
    api: Api, connect: Connect,
) -> None:
    """ann's token reads only ann's own conversations: not bob's DMs with cat, nor bob's
    private room (no_such_room, as for a room that does not exist), nor lists it."""
    await api.signed_up("root")
    ann = await api.signed_up("ann")
    bob = await api.signed_up("bob")
    await api.signed_up("cat")
    token = (await issued(api, ann))["token"]
    bobs = await signed_socket(connect, bob, "bob")
    await bobs.send({"type": "room", "name": "secret", "visibility": "private"})
    assert (await bobs.recv_type("room"))["visibility"] == "private"
    await bobs.send({"type": "dm", "to": "cat", "text": "for cat only"})
    await bobs.recv_type("dm")
    bob_token = (await issued(api, bob))["token"]
    said = await api.call("POST", "/api/v1/rooms/secret/messages", {"text": "hush"},
                          token=bob_token)
    assert said.status == 201, said.body
    for method, path, body in (("GET", "/api/v1/rooms/secret/messages", None),
                               ("POST", "/api/v1/rooms/secret/messages", {"text": "x"}),
                               ("GET", "/api/v1/rooms/secret/members", None),
                               ("PUT", "/api/v1/rooms/secret/membership", None),
                               ("DELETE", "/api/v1/rooms/secret/membership", None),
                               ("GET", "/api/v1/rooms/nowhere/messages", None)):
        answer = await api.call(method, path, body, token=token)
        assert (answer.status, answer.body["code"]) == (404, "no_such_room"), (method, path)
    rooms = await api.call("GET", "/api/v1/rooms", token=token)
    assert [room["name"] for room in rooms.body["rooms"]] == ["general"]
    mine = await api.call("GET", "/api/v1/rooms", token=bob_token)
    assert [room["name"] for room in mine.body["rooms"]] == ["general", "secret"]
    for peer in ("cat", "bob"):
        page = await api.call("GET", f"/api/v1/dms/{peer}/messages", token=token)
        assert page.status == 200
        assert page.body["messages"] == [], peer
    public = await api.call("GET", "/api/v1/rooms/general/messages", token=token)
    assert (public.status, public.body["code"]) == (403, "not_in_room")  # join first


@pytest.mark.settings(api_rate_limit=1.0, api_rate_burst=2)
@pytest.mark.gen_test(timeout=60)
async def test_the_rate_limit_is_per_token_with_retry_after(
    api: Api, http_port: int,
) -> None:
    """Past its burst a token gets 429 rate_limited with Retry-After; another token of the
    same account is not slowed; /metrics counts the uses and the refusal."""
    ann = await api.signed_up("ann")
    first = (await issued(api, ann, "one"))["token"]
    second = (await issued(api, ann, "two"))["token"]
    answers = [await api.call("GET", "/api/v1/rooms", token=first) for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 429]
    assert answers[2].body["code"] == "rate_limited"
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert (await api.call("GET", "/api/v1/rooms", token=second)).status == 200
    await api.call("GET", "/api/v1/rooms", token="chat_pat_not-a-token")
    scraped = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{http_port}/metrics")
    text = scraped.body.decode()
    assert 'chat_api_requests_total{auth="token",route="rooms"} 3.0' in text
    assert 'chat_api_token_failures_total{reason="rate"} 1.0' in text
    assert 'chat_api_token_failures_total{reason="unknown"} 1.0' in text


@pytest.mark.gen_test(timeout=60)
async def test_a_token_is_shown_once_and_never_logged(
    api: Api, caplog: pytest.LogCaptureFixture,
) -> None:
    """The secret is in the creating answer only: lists show ids and names, and no log line
    of the server holds it, even when it is used and refused."""
    caplog.set_level(logging.DEBUG)
    ann = await api.signed_up("ann")
    made = await issued(api, ann)
    secret = made["token"]
    assert secret.startswith("chat_pat_") and len(secret) > 40
    used = await api.call("GET", "/api/v1/rooms", token=secret)
    assert used.status == 200
    await api.call("DELETE", f"/api/v1/tokens/{made['api_token']['id']}", token=ann)
    await api.call("GET", "/api/v1/rooms", token=secret)
    for listing in ("/api/v1/tokens", "/api/v1/admin/tokens"):
        answer = await api.call("GET", listing, token=ann)
        assert secret not in str(answer.body)
    assert "api_token" in made and "token" not in made["api_token"]
    assert caplog.records  # the server did log (its access lines)
    assert not [r for r in caplog.records if secret in r.getMessage()]


def test_the_api_rate_limit_settings_are_validated() -> None:
    """--api-rate-limit must be 0 or more and --api-rate-burst 1 or more, said with the value."""
    with pytest.raises(ConfigError, match=r"--api-rate-limit is -1\.0; it must be 0 or more"):
        Settings(api_rate_limit=-1.0)
    with pytest.raises(ConfigError, match=r"--api-rate-burst is 0; it must be 1 or more"):
        Settings(api_rate_burst=0)
    assert (Settings().api_rate_limit, Settings().api_rate_burst) == (10.0, 20)


@pytest.mark.settings(api_rate_limit=0.0, api_rate_burst=1)
@pytest.mark.gen_test(timeout=60)
async def test_a_rate_limit_of_0_turns_it_off(api: Api) -> None:
    """With --api-rate-limit 0 a token is never slowed."""
    ann = await api.signed_up("ann")
    token = (await issued(api, ann))["token"]
    answers = [await api.call("GET", "/api/v1/rooms", token=token) for _ in range(5)]
    assert {a.status for a in answers} == {200}


@pytest.mark.gen_test(timeout=60)
async def test_real_answers_of_the_token_and_message_routes_fit_the_document(api: Api) -> None:
    """Successes and refusals of the tokens, bots and messages routes validate against the
    OpenAPI document's schemas."""
    root = await api.signed_up("root")
    made = await api.call("POST", "/api/v1/tokens", {"name": "t", "scopes": ["read", "write"]},
                          token=root)
    check(made, "/api/v1/tokens", "post")
    token = made.body["token"]
    check(await api.call("POST", "/api/v1/tokens", {"name": "", "scopes": ["read"]},
                         token=root), "/api/v1/tokens", "post")
    check(await api.call("GET", "/api/v1/tokens", token=root), "/api/v1/tokens", "get")
    check(await api.call("GET", "/api/v1/tokens", token=token), "/api/v1/tokens", "get")
    check(await api.call("POST", "/api/v1/bots", {"username": "b"}, token=root),
          "/api/v1/bots", "post")
    check(await api.call("GET", "/api/v1/bots", token=root), "/api/v1/bots", "get")
    check(await api.call("POST", "/api/v1/bots/b/tokens", {"name": "x", "scopes": ["read"]},
                         token=root), "/api/v1/bots/{username}/tokens", "post")
    check(await api.call("POST", "/api/v1/bots/nobody/tokens", {"name": "x", "scopes": ["read"]},
                         token=root), "/api/v1/bots/{username}/tokens", "post")
    check(await api.call("GET", "/api/v1/admin/tokens", token=root), "/api/v1/admin/tokens",
          "get")
    check(await api.call("GET", "/api/v1/admin/tokens", token=token), "/api/v1/admin/tokens",
          "get")
    join = "/api/v1/rooms/{room}/membership"
    check(await api.call("PUT", "/api/v1/rooms/ops/membership", token=token), join, "put")
    check(await api.call("GET", "/api/v1/rooms", token=token), "/api/v1/rooms", "get")
    check(await api.call("GET", "/api/v1/rooms/ops/members", token=token),
          "/api/v1/rooms/{room}/members", "get")
    messages = "/api/v1/rooms/{room}/messages"
    check(await api.call("POST", "/api/v1/rooms/ops/messages", {"text": "hi", "cid": "1"},
                         token=token), messages, "post")
    check(await api.call("POST", "/api/v1/rooms/ops/messages", {"text": "hi", "cid": "1"},
                         token=token), messages, "post")
    check(await api.call("POST", "/api/v1/rooms/ops/messages", {"text": " "}, token=token),
          messages, "post")
    check(await api.call("GET", "/api/v1/rooms/ops/messages?limit=2", token=token), messages,
          "get")
    check(await api.call("GET", "/api/v1/rooms/ops/messages?limit=0", token=token), messages,
          "get")
    check(await api.call("GET", "/api/v1/rooms/nowhere/messages", token=token), messages, "get")
    dms = "/api/v1/dms/{username}/messages"
    check(await api.call("POST", "/api/v1/dms/root/messages", {"text": "hi"}, token=token),
          dms, "post")
    check(await api.call("POST", "/api/v1/dms/nobody/messages", {"text": "hi"}, token=token),
          dms, "post")
    check(await api.call("GET", "/api/v1/dms/root/messages", token=token), dms, "get")
    check(await api.call("DELETE", "/api/v1/rooms/ops/membership", token=token), join, "delete")
    check(await api.call("DELETE", "/api/v1/rooms/ops/membership", token=token), join, "delete")
    token_id = made.body["api_token"]["id"]
    check(await api.call("DELETE", f"/api/v1/tokens/{token_id}", token=root),
          "/api/v1/tokens/{id}", "delete")
    check(await api.call("GET", "/api/v1/rooms", token=token), "/api/v1/rooms", "get")
    check(await api.call("DELETE", f"/api/v1/admin/tokens/{token_id}", token=root),
          "/api/v1/admin/tokens/{id}", "delete")


@pytest.mark.gen_test(timeout=60)
async def test_mutes_bans_and_leaving_hold_over_the_api(api: Api, connect: Connect) -> None:
    """A mute decided on the socket refuses the account's API posts (403 muted), a ban every
    request about the room (403 banned); leaving by the API takes its sockets out of it."""
    root = await api.signed_up("root")
    ann = await api.signed_up("ann")
    token = (await issued(api, ann))["token"]
    owner = await signed_socket(connect, root, "root", "ops")
    anns = await signed_socket(connect, ann, "ann", "ops")
    left = await api.call("DELETE", "/api/v1/rooms/ops/membership", token=token)
    assert left.status == 204
    gone = await anns.recv_type("leave")
    assert (gone["room"], gone["username"]) == ("ops", "ann")
    assert (await api.call("PUT", "/api/v1/rooms/ops/membership", token=token)).status == 200
    await owner.send({"type": "mute", "room": "ops", "user": "ann", "minutes": 5})
    await owner.recv_type("moderation")
    muted = await api.call("POST", "/api/v1/rooms/ops/messages", {"text": "hi"}, token=token)
    assert (muted.status, muted.body["code"]) == (403, "muted")
    assert (await api.call("GET", "/api/v1/rooms/ops/messages", token=token)).status == 200
    await owner.send({"type": "ban", "room": "ops", "user": "ann", "minutes": 5})
    await owner.recv_type("moderation")
    for method, path in (("GET", "/api/v1/rooms/ops/messages"),
                         ("PUT", "/api/v1/rooms/ops/membership"),
                         ("GET", "/api/v1/rooms/ops/members")):
        banned = await api.call(method, path, token=token)
        assert (banned.status, banned.body["code"]) == (403, "banned"), path


@pytest.mark.gen_test(timeout=60)
async def test_tokens_upgraded_together_are_each_their_own_account_and_scopes(
    api: Api, ws_url: str, app: ChatApplication,
) -> None:
    """Sockets of a bot's token, a read-only token and a revoked one, checked together (their
    hashes looked up in one call): each has its own account, bot mark and scopes; the revoked
    gets 401."""
    admin = await api.signed_up("root")
    bot = await bot_token(api, admin)
    reader = (await issued(api, admin, "reader", ("read",)))["token"]
    writer = (await issued(api, admin, "writer"))["token"]
    revoked = await issued(api, admin, "gone")
    gone = await api.call("DELETE", f"/api/v1/tokens/{revoked['api_token']['id']}",
                          token=admin)
    assert gone.status == 204, gone.body
    assert app.hub.signins.tokens is not None
    opened = await in_two_calls(app, app.hub.signins.tokens.lookups, [
        ChatClient.connect(ws_url, Authorization=f"Bearer {secret}")
        for secret in (writer, bot, reader, revoked["token"])])
    assert isinstance(opened[3], HTTPClientError) and opened[3].code == 401
    by_writer, by_bot, by_reader = opened[:3]
    assert isinstance(by_bot, ChatClient) and isinstance(by_reader, ChatClient)
    assert isinstance(by_writer, ChatClient)
    # Before root is a member of general: joining it then takes the write scope.
    await by_reader.send({"type": "join"})
    assert (await by_reader.recv_type("error"))["code"] == "insufficient_scope"
    for client, name in ((by_bot, "deploy-bot"), (by_writer, "root")):
        await client.send({"type": "join"})
        assert (await client.recv_type("welcome"))["username"] == name
    await by_bot.send({"type": "message", "text": "from the bot"})
    said = await by_writer.recv_type("message")
    assert (said["username"], said["message"], said.get("bot")) == (
        "deploy-bot", "from the bot", True)
    await by_writer.send({"type": "message", "text": "from root"})
    assert (await by_bot.recv_type("message"))["message"] == "from the bot"  # its own copy
    said = await by_bot.recv_type("message")
    assert (said["username"], said["message"], said.get("bot")) == ("root", "from root", None)
    for client in (by_bot, by_reader, by_writer):
        client.close()

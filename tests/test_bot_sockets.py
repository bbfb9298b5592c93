"""Bots on the socket: an API token opens a WebSocket as its account, with its scopes; bots are
marked in presence, joins and their messages; a read-only token reads and is refused writes;
revoking the token closes its sockets (4003); a cookie's upgrade keeps the origin check. Each on
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from handlers.httpserver import ChatHTTPServer
from tests import test_rooms
from tests.apiclient import Api
from tests.helpers import ChatClient, Connect
from tests.test_api_tokens import bot_token, issued, signed_socket
from tests.test_metrics import sample

app = test_rooms.app  # the fixture: each test runs on SQLite and on PostgreSQL
REVOKED = 4003


@pytest.fixture
def api(http_server: ChatHTTPServer, http_port: int) -> Api:
    return Api(http_port)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def error_of(client: ChatClient, frame: dict[str, Any]) -> dict[str, Any]:
    await client.send(frame)
    return await client.recv_type("error")


@pytest.mark.gen_test(timeout=60)
async def test_a_bot_connects_with_its_token_is_marked_and_talks_both_ways(
    api: Api, connect: Connect,
) -> None:
    """A bot's token opens a socket as the bot: a person in the room sees it join and listed
    with `bot: true`; the bot receives the person's message live, and its own reaches the
    person live and in history marked `bot`."""
    admin = await api.signed_up("root")
    secret = await bot_token(api, admin)
    root = await signed_socket(connect, admin, "root")
    bot = await connect(**bearer(secret))
    await bot.send({"type": "join", "room": "general"})
    welcome = await bot.recv_type("welcome")
    assert welcome["account"]["username"] == "deploy-bot"
    assert "guest" not in welcome
    listed = await bot.recv_type("presence")
    notice = await root.recv_type("join")
    assert (notice["username"], notice.get("bot")) == ("deploy-bot", True)
    assert {"username": "deploy-bot", "bot": True}.items() <= next(
        member for member in listed["users"] if member["username"] == "deploy-bot").items()
    assert "bot" not in next(m for m in listed["users"] if m["username"] == "root")
    await root.send({"type": "members", "room": "general"})
    members = (await root.recv_type("members"))["users"]
    assert [m.get("bot", False) for m in members] == [True, False]  # deploy-bot, root
    await root.send({"type": "message", "room": "general", "text": "deploy main"})
    await root.recv_type("message")  # its own, echoed
    heard = await bot.recv_type("message")
    assert (heard["username"], heard["message"], "bot" in heard) == (
        "root", "deploy main", False)
    await bot.send({"type": "message", "room": "general", "text": "deployed", "cid": "b1"})
    live = await root.recv_type("message")
    assert (live["username"], live["message"], live["bot"]) == ("deploy-bot", "deployed", True)
    await root.send({"type": "history", "room": "general"})
    assert (await root.recv_type("history"))["messages"][-1] == live


@pytest.mark.gen_test(timeout=60)
async def test_a_read_only_token_reads_and_is_refused_every_write(
    api: Api, connect: Connect,
) -> None:
    """A read token joins a room its account is a member of, receives and reads its history;
    a message, a dm, a reaction, an edit or a leave is refused with insufficient_scope (and
    nothing is posted; /metrics counts the socket and the refusals); joining a room it is not
    in is refused, a private one as unknown."""
    admin = await api.signed_up("root")
    writer = await bot_token(api, admin, scopes=("read", "write"))
    assert (await api.call("PUT", "/api/v1/rooms/ops/membership", token=writer)).status == 200
    reader = (await api.call("POST", "/api/v1/bots/deploy-bot/tokens",
                             {"name": "ro", "scopes": ["read"]}, token=admin)).body["token"]
    await api.call("PUT", "/api/v1/rooms/public/membership", token=admin)
    await api.call("PUT", "/api/v1/rooms/secret/membership", token=admin)
    root = await signed_socket(connect, admin, "root", "ops")
    await root.send({"type": "room", "name": "secret", "visibility": "private"})
    await root.recv_type("room")
    bot = await connect(**bearer(reader))
    await bot.join("deploy-bot", "ops")
    assert (await root.recv_type("join"))["bot"] is True
    await root.send({"type": "message", "room": "ops", "text": "hello bot"})
    await root.recv_type("message")  # its own
    message = await bot.recv_type("message")
    assert message["message"] == "hello bot"
    refusals = [
        {"type": "message", "room": "ops", "text": "no", "cid": "c1"},
        {"type": "dm", "to": "root", "text": "no"},
        {"type": "react", "room": "ops", "id": message["id"], "emoji": "👍"},
        {"type": "edit", "room": "ops", "id": message["id"], "text": "mine now"},
        {"type": "typing", "room": "ops"},
        {"type": "leave", "room": "ops"},
    ]
    for frame in refusals:
        error = await error_of(bot, frame)
        assert (error["code"], error["request"], error["scope"]) == (
            "insufficient_scope", frame["type"], "write"), error
    assert (await error_of(bot, refusals[0]))["cid"] == "c1"
    await bot.send({"type": "history", "room": "ops"})
    texts = [m["message"] for m in (await bot.recv_type("history"))["messages"]]
    assert texts == ["hello bot"]  # nothing the bot tried was posted
    joined = await error_of(bot, {"type": "join", "room": "public"})
    assert (joined["code"], joined["room"]) == ("insufficient_scope", "public")
    hidden = await error_of(bot, {"type": "join", "room": "secret"})
    assert hidden["code"] == "no_such_room"
    made = await error_of(bot, {"type": "join", "room": "brand-new"})  # --room-creation join
    assert made["code"] == "insufficient_scope"
    rooms = await api.call("GET", "/api/v1/rooms", token=admin)
    assert "brand-new" not in [room["name"] for room in rooms.body["rooms"]]
    members = await api.call("GET", "/api/v1/rooms/public/members", token=admin)
    assert [m["username"] for m in members.body["members"]] == ["root"]
    await root.nothing(0.3)  # no typing notice, no message reached the room
    scraped = (await AsyncHTTPClient().fetch(f"{api.base}/metrics")).body.decode()
    assert sample(scraped, "chat_token_sockets_total") == 1
    assert sample(scraped, "chat_token_scope_refused_frames_total") == len(refusals) + 1


@pytest.mark.gen_test(timeout=60)
async def test_revoking_a_token_closes_its_sockets_and_only_its_own(
    api: Api, connect: Connect,
) -> None:
    """The owner revokes a token: its socket closes with 4003 at once, the same account's
    socket of another token and of its session stay open; the token opens no socket again;
    revoking the bot closes the rest."""
    admin = await api.signed_up("root")
    first = await bot_token(api, admin)
    second = (await api.call("POST", "/api/v1/bots/deploy-bot/tokens",
                             {"name": "two", "scopes": ["read", "write"]},
                             token=admin)).body
    ann = await api.signed_up("ann")
    own = await issued(api, ann)
    tab = await signed_socket(connect, ann, "ann")
    by_token = await connect(**bearer(own["token"]))
    await by_token.join("ann")
    bot_one, bot_two = await connect(**bearer(first)), await connect(**bearer(second["token"]))
    await bot_one.join("deploy-bot")
    await bot_two.join("deploy-bot")
    out = await api.call("DELETE", f"/api/v1/tokens/{own['api_token']['id']}", token=ann)
    assert out.status == 204
    assert await by_token.closed() == REVOKED
    assert by_token.conn.close_reason == "signed out: this API token was revoked"
    await tab.send({"type": "message", "room": "general", "text": "still here"})
    assert (await tab.recv_type("message"))["message"] == "still here"
    with pytest.raises(HTTPClientError) as refused:
        await connect(**bearer(own["token"]))
    assert refused.value.code == 401
    listed = await api.call("GET", "/api/v1/admin/tokens", token=admin)
    token_id = next(t["id"] for t in listed.body["tokens"] if t["id"] != second["api_token"]["id"]
                    and t["username"] == "deploy-bot")
    assert (await api.call("DELETE", f"/api/v1/admin/tokens/{token_id}",
                           token=admin)).status == 204
    assert await bot_one.closed() == REVOKED
    await bot_two.send({"type": "members", "room": "general"})
    assert (await bot_two.recv_type("members"))["room"] == "general"  # still open
    assert (await api.call("DELETE", "/api/v1/bots/deploy-bot", token=admin)).status == 204
    assert await bot_two.closed() == REVOKED


@pytest.mark.gen_test(timeout=30)
async def test_a_bearer_upgrade_skips_the_origin_check_and_a_cookie_keeps_it(
    api: Api, connect: Connect,
) -> None:
    """An API token's upgrade from any Origin is accepted (a browser never sends the header);
    the same account's cookie from another site is still 403; an unknown token is 401."""
    ann = await api.signed_up("ann")
    token = (await issued(api, ann))["token"]
    program = await connect(Origin="https://elsewhere.example", **bearer(token))
    assert (await program.join("ann"))["account"]["username"] == "ann"
    with pytest.raises(HTTPClientError) as cookie:
        await connect(Origin="https://elsewhere.example", Cookie=f"chat_session={ann}")
    assert cookie.value.code == 403
    with pytest.raises(HTTPClientError) as unknown:
        await connect(**bearer("chat_pat_" + "x" * 43))
    assert unknown.value.code == 401
    guest = await connect()
    assert (await guest.join("visitor")).get("guest") is True

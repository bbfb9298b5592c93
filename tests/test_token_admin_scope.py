"""An admin account's API token has the server-admin rights only with the `admin` scope: a
`read,write` token of an admin is refused, on the socket and over HTTP, every power the account
has only as a server admin (removing and deleting others' messages, moderating rooms it is not
staff of, server-wide bans, changing a private room it is not in, the audit log), while its
admin-scope token and its session keep them, and its own room roles stay usable with `write`.
Each on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.httpserver import ChatHTTPServer
from tests import test_rooms
from tests.apiclient import Api
from tests.helpers import ChatClient, Connect
from tests.test_api_tokens import issued, signed_socket

app = test_rooms.app  # the fixture: each test runs on SQLite and on PostgreSQL


@pytest.fixture
def api(http_server: ChatHTTPServer, http_port: int) -> Api:
    return Api(http_port)


# The event that says a frame was done, by the frame's type (else: moderation's ack).
DONE = {"room": "room", "delete": "deleted", "message": "message"}


async def answer(client: ChatClient, frame: dict[str, Any]) -> dict[str, Any]:
    """Send a frame and read its answer: the next `error`, or the event that says it was
    done."""
    await client.send(frame)
    while True:
        got = await client.recv()
        if got.get("type") in (DONE.get(frame["type"], "moderation"), "error"):
            return got


class Scene:
    """root (the first account: an admin), ann (owner of the public room `den` and of the
    private room `vault`) and bob (a member of `den`, who posted in it), all on sockets."""

    def __init__(self, root: str, ann: ChatClient, bob: ChatClient, ids: list[int]) -> None:
        self.root = root
        self.ann = ann
        self.bob = bob
        self.ids = ids  # bob's messages in den, oldest first


async def scene(api: Api, connect: Connect) -> Scene:
    root = await api.signed_up("root")
    ann_session = await api.signed_up("ann")
    bob_session = await api.signed_up("bob")
    ann = await signed_socket(connect, ann_session, "ann", "den")  # made by joining: ann owns
    made = await answer(ann, {"type": "room", "name": "vault", "visibility": "private"})
    assert made["role"] == "owner"
    bob = await signed_socket(connect, bob_session, "bob", "den")
    ids = [(await answer(bob, {"type": "message", "room": "den", "text": f"bob's {n}"}))["id"]
           for n in range(3)]
    return Scene(root, ann, bob, ids)


async def token_socket(api: Api, connect: Connect, session: str, name: str,
                       scopes: tuple[str, ...], room: str = "den") -> tuple[str, ChatClient]:
    """A new token of the session's account with `scopes`, and a socket of it in `room`."""
    token = (await issued(api, session, scopes=scopes))["token"]
    return token, await signed_socket(connect, token, name, room)


@pytest.mark.gen_test(timeout=90)
async def test_an_admins_read_write_token_has_none_of_the_server_admin_powers(
    api: Api, connect: Connect,
) -> None:
    """With an admin's `read,write` token a socket cannot remove or delete bob's message in a
    room it does not moderate, kick, ban or mute there, ban from the whole server, or change
    (or see) a private room it is not in; over HTTP it cannot delete the message or read the
    audit log; the message and bob stay."""
    s = await scene(api, connect)
    token, rw = await token_socket(api, connect, s.root, "root", ("read", "write"))
    refused: list[dict[str, Any]] = [
        {"type": "remove", "room": "den", "id": s.ids[0]},
        {"type": "delete", "room": "den", "id": s.ids[1]},
        {"type": "kick", "room": "den", "user": "bob"},
        {"type": "ban", "room": "den", "user": "bob"},
        {"type": "mute", "room": "den", "user": "bob", "minutes": 5},
        {"type": "role", "room": "den", "user": "bob", "role": "moderator"},
        {"type": "ban", "user": "bob"},  # the whole server
        {"type": "room", "name": "den", "topic": "taken over"},
    ]
    got: dict[str, str] = {}
    for frame in refused:
        reply = await answer(rw, frame)
        got[f"{frame['type']} {frame.get('room', '')}"] = reply.get("code", reply["type"])
    assert got == {key: "forbidden" for key in got}, got
    hidden = await answer(rw, {"type": "room", "name": "vault", "topic": "mine"})
    kicked = await answer(rw, {"type": "kick", "room": "vault", "user": "ann"})
    deleted = await api.call("DELETE", f"/api/v1/rooms/den/messages/{s.ids[2]}", token=token)
    audit = await api.call("GET", "/api/v1/audit", token=token)
    assert (hidden.get("code"), kicked.get("code"), deleted.status, deleted.body.get("code"),
            audit.status, audit.body.get("code")) == (
        "room_name_taken", "no_such_room", 403, "forbidden", 403, "insufficient_scope")
    history = await api.call("GET", "/api/v1/rooms/den/messages", token=token)
    assert [m["message"] for m in history.body["messages"]] == ["bob's 0", "bob's 1", "bob's 2"]
    settings = await answer(s.ann, {"type": "room", "name": "vault"})
    assert settings["topic"] == ""
    await s.bob.send({"type": "message", "room": "den", "text": "still here"})
    assert (await s.bob.recv_type("message"))["message"] == "still here"


@pytest.mark.gen_test(timeout=90)
async def test_an_admins_admin_scope_token_and_session_keep_the_server_admin_powers(
    api: Api, connect: Connect,
) -> None:
    """The same admin's `read,write,admin` token removes bob's message in a room it does not
    moderate, changes the private room it is not in, mutes bob, deletes bob's message over HTTP
    and reads the audit log; its session deletes over HTTP, reads the audit log and bans bob
    from the whole server."""
    s = await scene(api, connect)
    token, full = await token_socket(api, connect, s.root, "root", ("read", "write", "admin"))
    removed = await answer(full, {"type": "remove", "room": "den", "id": s.ids[0]})
    assert (removed["type"], removed["user"]) == ("moderation", "bob"), removed
    changed = await answer(full, {"type": "room", "name": "vault", "topic": "audited"})
    assert (changed["type"], changed["topic"]) == ("room", "audited"), changed
    muted = await answer(full, {"type": "mute", "room": "den", "user": "bob", "minutes": 5})
    assert muted["type"] == "moderation", muted
    assert (await api.call("GET", "/api/v1/audit", token=token)).status == 200
    by_token = await api.call("DELETE", f"/api/v1/rooms/den/messages/{s.ids[2]}", token=token)
    assert by_token.status == 204, by_token.body
    deleted = await api.call("DELETE", f"/api/v1/rooms/den/messages/{s.ids[1]}",
                             token=s.root)
    assert deleted.status == 204, deleted.body
    session_socket = await signed_socket(connect, s.root, "root", "den")
    banned = await answer(session_socket, {"type": "ban", "user": "bob"})
    assert (banned["type"], banned["room"]) == ("moderation", ""), banned
    assert await s.bob.closed() == 4005
    audit = await api.call("GET", "/api/v1/audit", token=s.root)
    assert audit.status == 200
    actions = [entry["action"] for entry in audit.body["entries"]]
    assert {"remove", "update", "mute", "ban"} <= set(actions), actions


@pytest.mark.gen_test(timeout=90)
async def test_an_admins_read_write_token_keeps_its_own_room_roles(
    api: Api, connect: Connect,
) -> None:
    """In a room the admin's account owns, its `read,write` token removes bob's message and
    kicks him: room roles are the account's own rights, usable with `write`."""
    root = await api.signed_up("root")
    bob_session = await api.signed_up("bob")
    _, rw = await token_socket(api, connect, root, "root", ("read", "write"), room="ops")
    bob = await signed_socket(connect, bob_session, "bob", "ops")
    posted = await answer(bob, {"type": "message", "room": "ops", "text": "bob's"})
    removed = await answer(rw, {"type": "remove", "room": "ops", "id": posted["id"]})
    assert removed["type"] == "moderation", removed
    kicked = await answer(rw, {"type": "kick", "room": "ops", "user": "bob"})
    assert kicked["type"] == "moderation", kicked

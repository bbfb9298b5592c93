"""Rooms with owners, private rooms and moderation, from the attacker's side (one server)."""

from __future__ import annotations

from typing import Any

import pytest

from chat.config import Settings
from chat_server import ChatApplication
from tests.apiclient import Api
from tests.conftest import app_on_both_stores
from tests.helpers import ChatClient, Connect
from tests.test_auth_socket import PASSWORD, bearer, error_of, signed_up

# Every test here (and in the modules that import it) on SQLite and on PostgreSQL: pytest
# knows a fixture by the module attribute that holds it.
app = app_on_both_stores


async def signed_in(app: ChatApplication, connect: Connect, name: str,
                    room: str = "general") -> ChatClient:
    """A new account `name` (the first one made is the admin), its socket joined to `room`."""
    client = await connect(**bearer(await signed_up(app, name)))
    await client.join(name, room)
    return client


async def team(app: ChatApplication, connect: Connect,
               *names: str) -> list[ChatClient]:
    """`root` (the server admin, in general only), then the accounts `names`."""
    return [await signed_in(app, connect, name) for name in ("root", *names)]


async def answer(client: ChatClient, frame: dict[str, Any], kind: str) -> dict[str, Any]:
    """Send `frame`; the next frame of type `kind` or an error, whichever comes first."""
    await client.send(frame)
    while True:
        got = await client.recv()
        if got["type"] in (kind, "error"):
            return got


async def each(client: ChatClient, *kinds: str) -> dict[str, dict[str, Any]]:
    """The first frame of each of `kinds`, in whatever order they come."""
    got: dict[str, dict[str, Any]] = {}
    while len(got) < len(kinds):
        frame = await client.recv()
        if frame["type"] in kinds:
            got.setdefault(frame["type"], frame)
    return got


async def make_room(owner: ChatClient, name: str, **fields: Any) -> dict[str, Any]:
    got = await answer(owner, {"type": "room", "name": name, **fields}, "room")
    assert got["type"] == "room", got
    return got


def same_error(one: dict[str, Any], other: dict[str, Any], names: tuple[str, str]) -> None:
    """Two errors are the same but for the room's name."""
    assert one["type"] == other["type"] == "error"
    swapped = {k: (v.replace(names[0], names[1]) if isinstance(v, str) else v)
               for k, v in one.items()}
    assert swapped == other


@pytest.mark.gen_test(timeout=30)
async def test_general_is_public_and_an_account_s_rooms_come_back_on_another_device(
    app: ChatApplication, connect: Connect,
) -> None:
    """A room made by joining is owned by its maker; a second device's welcome lists it."""
    token = await signed_up(app, "ann")
    first = await connect(**bearer(token))
    welcome = await first.join("ann", "general")
    assert welcome["room"] == {"name": "general", "topic": "", "visibility": "public",
                               "role": "member"}
    made = await first.join("ann", "builds")
    assert made["room"]["role"] == "owner"
    second = await connect(**bearer(token))
    again = await second.join("ann")
    assert {"room": "builds", "role": "owner"} in again["member_of"]
    assert {"room": "general", "role": "member"} in again["member_of"]
    # Leaving is explicit, and for every device: the other one leaves too, the rooms forget.
    await second.join("ann", "builds")
    await first.send({"type": "leave", "room": "builds"})
    assert (await second.recv_type("leave"))["room"] == "builds"
    third = await connect(**bearer(token))
    assert "builds" not in {m["room"] for m in (await third.join("ann"))["member_of"]}


@pytest.mark.gen_test(timeout=30)
@pytest.mark.settings(room_creation=Settings().room_creation)  # the server's default
async def test_a_private_room_is_invisible_to_non_members_in_every_way(
    app: ChatApplication, connect: Connect,
) -> None:
    """By default, join, resume, history, members, typing, posting and the directory answer
    a non-member (account or guest) of a private room as for a room that does not exist."""
    assert app.hub.settings.room_creation == "explicit"
    _, ann, bob = await team(app, connect, "ann", "bob")
    await make_room(ann, "secret", visibility="private", topic="plans")
    await make_room(ann, "open", topic="all welcome")
    await ann.join("ann", "secret")
    await ann.send({"type": "message", "room": "secret", "text": "the plan", "cid": "p1"})
    await ann.recv_type("message")
    guest = await connect()
    await guest.join("gus")
    for outsider in (bob, guest):
        for frame in ({"type": "join", "room": "{}"}, {"type": "join", "room": "{}", "since": 0},
                      {"type": "history", "room": "{}"}, {"type": "members", "room": "{}"},
                      {"type": "typing", "room": "{}"},
                      {"type": "message", "room": "{}", "text": "hi", "cid": "x"},
                      {"type": "kick", "room": "{}", "user": "ann"}):
            asked = {k: (v.replace("{}", "secret") if isinstance(v, str) else v)
                     for k, v in frame.items()}
            control = {k: (v.replace("{}", "nothing") if isinstance(v, str) else v)
                       for k, v in frame.items()}
            same_error(await error_of(outsider, asked), await error_of(outsider, control),
                       ("secret", "nothing"))
        listing = await answer(outsider, {"type": "rooms"}, "rooms")
        assert [r["room"] for r in listing["rooms"]] == ["general", "open"]
        assert listing["rooms"][1]["topic"] == "all welcome"
    # Invited, bob can; his welcome lists it, and he reads its history.
    await ann.send({"type": "invite", "room": "secret", "user": "bob"})
    assert (await bob.recv_type("moderated"))["action"] == "invite"
    await bob.send({"type": "join", "room": "secret"})
    assert (await bob.recv_type("welcome"))["room"]["visibility"] == "private"
    history = await bob.recv_type("history")
    assert [m["message"] for m in history["messages"]] == ["the plan"]
    # A guest cannot be invited (memberships are an account's).
    assert (await error_of(ann, {"type": "invite", "room": "secret",
                                 "user": "gus"}))["code"] == "not_an_account"


@pytest.mark.gen_test(timeout=30)
async def test_joining_an_unknown_room_creates_it_unless_creation_is_explicit(
    app: ChatApplication, connect: Connect,
) -> None:
    """--room-creation join (the tests' setting) makes a public room; a name already taken by
    a private room cannot be made again, nor read by its `room` frame."""
    _, ann, bob = await team(app, connect, "ann", "bob")
    await make_room(ann, "hidden", visibility="private")
    taken = await error_of(bob, {"type": "room", "name": "hidden"})
    assert taken["code"] == "room_name_taken"
    assert (await error_of(bob, {"type": "join", "room": "hidden"}))["code"] == "no_such_room"
    guest = await connect()
    welcome = await guest.join("gus", "newroom")
    assert welcome["room"]["visibility"] == "public"
    assert welcome["room"]["role"] is None  # a guest owns nothing
    assert (await error_of(guest, {"type": "room", "name": "other"}))["code"] == "forbidden"


@pytest.mark.gen_test(timeout=30)
async def test_roles_cannot_be_escalated_and_a_member_cannot_moderate(
    app: ChatApplication, connect: Connect,
) -> None:
    """A member cannot kick, ban, mute or change the topic; a moderator cannot change roles
    (not even their own to owner), nor kick the owner; the owner and an admin can."""
    root, ann, bob, cat = await team(app, connect, "ann", "bob", "cat")
    await make_room(ann, "ops")
    await ann.join("ann", "ops")
    await bob.join("bob", "ops")
    await cat.join("cat", "ops")
    for frame in ({"type": "kick", "room": "ops", "user": "cat"},
                  {"type": "ban", "room": "ops", "user": "cat"},
                  {"type": "mute", "room": "ops", "user": "cat", "minutes": 5},
                  {"type": "role", "room": "ops", "user": "bob", "role": "moderator"},
                  {"type": "room", "name": "ops", "topic": "mine now"}):
        assert (await error_of(bob, frame))["code"] == "forbidden", frame
    await ann.send({"type": "role", "room": "ops", "user": "bob", "role": "moderator"})
    assert (await ann.recv_type("moderation"))["role"] == "moderator"
    assert (await cat.recv_type("role")) == {"type": "role", "room": "ops", "username": "bob",
                                             "role": "moderator", "by": "ann"}
    for frame in ({"type": "role", "room": "ops", "user": "bob", "role": "owner"},
                  {"type": "role", "room": "ops", "user": "cat", "role": "moderator"},
                  {"type": "kick", "room": "ops", "user": "ann"},
                  {"type": "ban", "room": "ops", "user": "ann"}):
        assert (await error_of(bob, frame))["code"] == "forbidden", frame
    await bob.send({"type": "room", "name": "ops", "topic": "deploys only"})
    assert (await cat.recv_type("room"))["topic"] == "deploys only"  # members are told
    # The server admin, in no role in ops, can: make cat owner, kick the owner ann.
    await root.send({"type": "role", "room": "ops", "user": "cat", "role": "owner"})
    assert (await root.recv_type("moderation"))["role"] == "owner"
    await root.send({"type": "kick", "room": "ops", "user": "ann"})
    assert (await ann.recv_type("moderated"))["by"] == "root"


@pytest.mark.gen_test(timeout=30)
async def test_kick_ban_and_mute_take_effect_at_once(
    app: ChatApplication, connect: Connect,
) -> None:
    """A kicked user's socket leaves at once; a banned one cannot rejoin until unbanned; a
    muted one's posts are refused with the time left, until the mute is lifted."""
    _, ann, cat = await team(app, connect, "ann", "cat")
    await make_room(ann, "ops")
    await ann.join("ann", "ops")
    await cat.join("cat", "ops")
    await ann.send({"type": "kick", "room": "ops", "user": "cat"})
    kicked = await cat.recv_type("moderated")
    assert (kicked["action"], kicked["by"]) == ("kick", "ann")
    seen = await each(ann, "moderation", "leave")
    assert seen["moderation"]["action"] == "kick"
    assert seen["leave"]["username"] == "cat"
    post = {"type": "message", "room": "ops", "text": "still here?", "cid": "k1"}
    assert (await error_of(cat, post))["code"] == "not_in_room"
    await cat.join("cat", "ops")  # a kick is no ban
    await ann.send({"type": "ban", "room": "ops", "user": "cat", "minutes": 10})
    assert (await cat.recv_type("moderated"))["action"] == "ban"
    assert (await ann.recv_type("moderation"))["action"] == "ban"
    refused = await error_of(cat, {"type": "join", "room": "ops"})
    assert refused["code"] == "banned"
    assert "10 more minute" in refused["reason"]
    await ann.send({"type": "unban", "room": "ops", "user": "cat"})
    assert (await ann.recv_type("moderation"))["action"] == "unban"
    await cat.join("cat", "ops")
    await ann.send({"type": "mute", "room": "ops", "user": "cat", "minutes": 3})
    assert (await cat.recv_type("moderated"))["action"] == "mute"
    muted = await error_of(cat, {**post, "cid": "m1"})
    assert muted["code"] == "muted"
    assert "3 more minute" in muted["reason"]
    await ann.send({"type": "mute", "room": "ops", "user": "cat", "minutes": 0})
    assert (await cat.recv_type("moderated"))["action"] == "unmute"
    await cat.send({**post, "cid": "m2"})
    assert (await cat.recv_type("message"))["message"] == "still here?"


@pytest.mark.gen_test(timeout=30)
async def test_a_guest_is_banned_by_session_and_by_address(
    app: ChatApplication, connect: Connect,
) -> None:
    """A banned guest cannot come back under a new name (a new session) from its address."""
    _, ann = await team(app, connect, "ann")
    await make_room(ann, "lobby")
    guest = await connect()
    await guest.join("spammer", "lobby")
    await ann.send({"type": "ban", "room": "lobby", "user": "spammer"})
    assert (await guest.recv_type("moderated"))["action"] == "ban"
    await ann.recv_type("moderation")
    again = await connect()
    await again.join("innocent")
    refused = await error_of(again, {"type": "join", "room": "lobby"})
    assert refused["code"] == "banned"
    assert "until a moderator lifts it" in refused["reason"]


@pytest.mark.gen_test(timeout=30)
async def test_only_server_admins_read_the_audit_log_and_every_action_is_in_it(
    app: ChatApplication, connect: Connect, http_port: int,
) -> None:
    """GET /api/v1/audit: 401 without a session, 403 for a member (even a room's owner), and
    for the admin every action with who, what, whom, where, when and details."""
    root_token = await signed_up(app, "root")
    ann_token = await signed_up(app, "ann")
    ann = await connect(**bearer(ann_token))
    await ann.join("ann")
    cat = await signed_in(app, connect, "cat")
    await make_room(ann, "ops", topic="deploys")
    await cat.join("cat", "ops")
    for frame in ({"type": "mute", "room": "ops", "user": "cat", "minutes": 2},
                  {"type": "role", "room": "ops", "user": "cat", "role": "moderator"},
                  {"type": "kick", "room": "ops", "user": "cat"}):
        assert (await answer(ann, frame, "moderation"))["type"] == "moderation", frame
    api = Api(http_port)
    assert (await api.call("GET", "/api/v1/audit")).status == 401
    refused = await api.call("GET", "/api/v1/audit", token=ann_token)
    assert (refused.status, refused.body["code"]) == (403, "forbidden")
    log = await api.call("GET", "/api/v1/audit?room=ops", token=root_token)
    assert log.status == 200
    entries = log.body["entries"]
    assert [(e["action"], e["actor"], e["target_name"]) for e in entries] == [
        ("kick", "ann", "cat"), ("role", "ann", "cat"), ("mute", "ann", "cat"),
        ("create", "ann", None)]
    assert entries[1]["details"] == {"role": "moderator"}
    assert entries[2]["details"] == {"minutes": 2}
    assert entries[3]["details"] == {"topic": "deploys", "visibility": "public"}
    assert all(e["room"] == "ops" and e["ts"] > 0 for e in entries)
    assert (await api.call("GET", "/api/v1/audit?limit=0", token=root_token)).status == 400


@pytest.mark.gen_test(timeout=30)
async def test_more_attacks_on_a_private_room_are_refused(
    app: ChatApplication, connect: Connect,
) -> None:
    """A plain member cannot invite to a private room; an outsider cannot invite itself nor
    give itself a role; a guest cannot act at all; a moderator cannot ban a moderator; an
    admin demoted meanwhile loses its rights at once."""
    root, ann, bob, cat, dan = await team(app, connect, "ann", "bob", "cat", "dan")
    await make_room(ann, "inner", visibility="private")
    for frame in ({"type": "role", "room": "inner", "user": "bob", "role": "moderator"},
                  {"type": "invite", "room": "inner", "user": "cat"}):
        assert (await answer(ann, frame, "moderation"))["type"] == "moderation"
    assert (await error_of(cat, {"type": "invite", "room": "inner",
                                 "user": "dan"}))["code"] == "forbidden"
    for frame in ({"type": "invite", "room": "inner", "user": "dan"},
                  {"type": "role", "room": "inner", "user": "dan", "role": "owner"},
                  {"type": "room", "name": "inner", "topic": "mine"}):
        code = (await error_of(dan, frame))["code"]
        assert code in ("no_such_room", "room_name_taken"), frame
    guest = await connect()
    await guest.join("gus")
    assert (await error_of(guest, {"type": "kick", "room": "general",
                                   "user": "ann"}))["code"] == "forbidden"
    await ann.send({"type": "role", "room": "inner", "user": "cat", "role": "moderator"})
    await ann.recv_type("moderation")
    assert (await error_of(bob, {"type": "ban", "room": "inner",
                                 "user": "cat"}))["code"] == "forbidden"
    # root, the admin, may act anywhere, until demoted.
    assert (await answer(root, {"type": "kick", "room": "inner", "user": "cat"},
                         "moderation"))["type"] == "moderation"
    assert app.accounts is not None
    await app.accounts.store.set_role(1, "member")
    assert (await error_of(root, {"type": "kick", "room": "inner",
                                  "user": "bob"}))["code"] == "no_such_room"


@pytest.mark.gen_test(timeout=30)
async def test_a_room_made_private_sends_its_guests_out(
    app: ChatApplication, connect: Connect,
) -> None:
    """Guests have no membership: a public room made private drops their sockets from it and
    they cannot come back; its accounts stay."""
    _, ann, bob = await team(app, connect, "ann", "bob")
    await make_room(ann, "cafe")
    await bob.join("bob", "cafe")
    guest = await connect()
    await guest.join("gus", "cafe")
    await make_room(ann, "cafe", visibility="private")
    out = await guest.recv_type("moderated")
    assert (out["room"], out["action"]) == ("cafe", "private")
    assert (await bob.recv_type("room"))["visibility"] == "private"
    assert (await error_of(guest, {"type": "join", "room": "cafe"}))["code"] == "no_such_room"
    await bob.send({"type": "message", "room": "cafe", "text": "still in", "cid": "c1"})
    assert (await bob.recv_type("message"))["message"] == "still in"


@pytest.mark.gen_test(timeout=30)
async def test_an_admin_bans_from_the_whole_server_and_no_one_else_can(
    app: ChatApplication, connect: Connect,
) -> None:
    """`ban` without a room: a member (even a room owner) is refused; an admin cannot be
    banned; the banned account's sockets close with 4005 and every join (a new room's too)
    is refused until `unban`; a banned guest's address is banned with it."""
    root, ann, bob = await team(app, connect, "ann", "bob")
    await make_room(ann, "mine")
    assert (await error_of(ann, {"type": "ban", "user": "bob"}))["code"] == "forbidden"
    await signed_up(app, "boss")
    assert app.accounts is not None
    await app.accounts.store.set_role(4, "admin")  # boss
    assert (await error_of(root, {"type": "ban", "user": "boss"}))["code"] == "forbidden"
    token, _, _ = await app.accounts.login("bob", PASSWORD, "127.0.0.1")  # a second session
    assert (await answer(root, {"type": "ban", "user": "bob", "minutes": 60},
                         "moderation"))["room"] == ""
    assert await bob.closed() == 4005
    assert bob.conn.close_reason is not None and "60 more minute" in bob.conn.close_reason
    again = await connect(**bearer(token))
    for room in ("general", "brandnew"):
        assert (await error_of(again, {"type": "join", "room": room}))["code"] == "banned"
    await answer(root, {"type": "unban", "user": "bob"}, "moderation")
    await again.join("bob", "brandnew")
    guest = await connect()
    await guest.join("pest")
    await answer(root, {"type": "ban", "user": "pest"}, "moderation")
    assert await guest.closed() == 4005
    other = await connect()
    assert (await error_of(other, {"type": "join", "username": "nice"}))["code"] == "banned"


@pytest.mark.gen_test(timeout=30)
async def test_bad_room_and_moderation_frames_get_errors_naming_the_field_and_limit(
    app: ChatApplication, connect: Connect,
) -> None:
    """A topic over 250 characters, an unknown visibility or role, a mute without minutes,
    minutes over a year: `invalid_field` / `missing_field` naming the field (and limit)."""
    _, ann = await team(app, connect, "ann")
    cases: list[tuple[dict[str, Any], str, str]] = [
             ({"type": "room", "name": "x", "topic": "t" * 251}, "invalid_field", "topic"),
             ({"type": "room", "name": "x", "visibility": "secret"}, "invalid_field",
              "visibility"),
             ({"type": "room", "name": "no spaces"}, "invalid_room", "room"),
             ({"type": "role", "room": "x", "user": "ann", "role": "king"}, "invalid_field",
              "role"),
             ({"type": "mute", "room": "x", "user": "ann"}, "missing_field", "minutes"),
             ({"type": "ban", "room": "x", "user": "ann", "minutes": 525_601}, "invalid_field",
              "minutes")]
    for frame, code, field in cases:
        error = await error_of(ann, frame)
        assert (error["code"], error["field"]) == (code, field), (frame, error)
    assert "250" in (await error_of(ann, cases[0][0]))["reason"]
    assert (await error_of(ann, cases[-1][0]))["limit"] == 525_600
    for name in ("a1", "a2", "a3"):
        await make_room(ann, name)
    page = await answer(ann, {"type": "rooms", "prefix": "A", "limit": 2}, "rooms")
    assert ([r["room"] for r in page["rooms"]], page["more"]) == (["a1", "a2"], True)
    page = await answer(ann, {"type": "rooms", "prefix": "a", "after": "a2"}, "rooms")
    assert ([r["room"] for r in page["rooms"]], page["more"]) == (["a3"], False)
    assert page["rooms"][0]["members"] == 1  # its owner


@pytest.mark.gen_test(timeout=30)
async def test_a_removed_message_is_hidden_from_history_resume_and_live_readers(
    app: ChatApplication, connect: Connect, http_port: int,
) -> None:
    """`remove` by the owner deletes: members are told at once (`deleted`); pages, a join's
    replay and a resume skip it (still `recovered`); a member cannot remove, an outsider of a
    private room gets no_such_room; the audit log has it."""
    root_token = await signed_up(app, "root")
    _, ann, bob, cat = [await connect(**bearer(root_token)),
                        *[await signed_in(app, connect, name) for name in ("ann", "bob", "cat")]]
    await make_room(ann, "ops")
    for client, name in ((ann, "ann"), (bob, "bob"), (cat, "cat")):
        await client.join(name, "ops")
    ids = []
    for n in (1, 2, 3):
        await cat.send({"type": "message", "room": "ops", "text": f"m{n}", "cid": f"c{n}"})
        ids.append((await cat.recv_type("message"))["id"])
    assert (await error_of(cat, {"type": "remove", "room": "ops",
                                 "id": ids[1]}))["code"] == "forbidden"
    await make_room(ann, "inner", visibility="private")
    same_error(await error_of(cat, {"type": "remove", "room": "inner", "id": 1}),
               await error_of(cat, {"type": "remove", "room": "nothing", "id": 1}),
               ("inner", "nothing"))
    assert (await answer(ann, {"type": "remove", "room": "ops", "id": ids[1]},
                         "moderation"))["id"] == ids[1]
    told = await bob.recv_type("deleted")
    assert (told["room"], told["id"], told["by"], told["change"]) == ("ops", ids[1], "ann", 1)
    assert (await error_of(ann, {"type": "remove", "room": "ops",
                                 "id": ids[2] + 100}))["code"] == "no_such_message"
    page = await answer(bob, {"type": "history", "room": "ops"}, "history")
    assert [m["message"] for m in page["messages"]] == ["m1", "m3"]
    fresh = await connect(**bearer(root_token))
    await fresh.send({"type": "join", "username": "root", "room": "ops"})
    joined = await fresh.recv_type("history")
    assert [m["message"] for m in joined["messages"]] == ["m1", "m3"]
    resumed = await connect(**bearer(root_token))
    await resumed.send({"type": "join", "room": "ops", "since": ids[0]})
    replay = await resumed.recv_type("history")
    assert ([m["message"] for m in replay["messages"]], replay["recovered"]) == (["m3"], True)
    log = await Api(http_port).call("GET", "/api/v1/audit?room=ops&limit=1", token=root_token)
    assert [(e["action"], e["target_name"], e["details"]) for e in log.body["entries"]] == [
        ("remove", "cat", {"id": ids[1]})]


@pytest.mark.gen_test(timeout=30)
async def test_a_removed_message_of_general_is_not_shown_before_joining(
    app: ChatApplication, connect: Connect,
) -> None:
    """A server admin removes a message of general (which has no owner): a connection that
    reads general before joining (the tutorial's page) is not sent it."""
    root, ann = await team(app, connect, "ann")
    ids = []
    for text in ("keep", "spam"):
        await ann.send({"type": "message", "text": text, "cid": text})
        ids.append((await ann.recv_type("message"))["id"])
    await answer(root, {"type": "remove", "room": "general", "id": ids[1]}, "moderation")
    reader = await connect()
    first = await reader.recv_type("message")
    assert first["message"] == "keep"
    await reader.nothing()


@pytest.mark.gen_test(timeout=30)
async def test_reading_a_room_lists_its_owners_and_moderators(
    app: ChatApplication, connect: Connect,
) -> None:
    """A `room` reply names the room's owners and moderators (`staff`), not its members."""
    _root, ann, bob, cat = await team(app, connect, "ann", "bob", "cat")
    made = await make_room(ann, "ops")
    assert made["staff"] == [{"username": "ann", "role": "owner"}]
    await bob.join("bob", "ops")
    await cat.join("cat", "ops")
    await ann.send({"type": "role", "room": "ops", "user": "bob", "role": "moderator"})
    await ann.recv_type("moderation")
    got = await answer(cat, {"type": "room", "name": "ops"}, "room")
    assert got["role"] == "member"
    assert got["staff"] == [{"username": "ann", "role": "owner"},
                            {"username": "bob", "role": "moderator"}]
    changed = await answer(bob, {"type": "room", "name": "ops", "topic": "deploys"}, "room")
    while "by" in changed:  # the announcement to members; the reply follows it
        changed = await bob.recv_type("room")
    assert changed["topic"] == "deploys" and len(changed["staff"]) == 2

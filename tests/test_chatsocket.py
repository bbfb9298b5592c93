"""The /ws protocol over real sockets: joining, rooms, presence, DMs, typing, the legacy frame."""

from __future__ import annotations

import asyncio
import json

import pytest

from chat_server import ChatApplication
from tests.helpers import ChatClient, Connect

LEGACY = {"email": "bob@example.com", "username": "bob", "message": "hello :robot:"}


@pytest.mark.settings(avatars="gravatar")
@pytest.mark.gen_test
async def test_join_gets_welcome_presence_and_history(connect: Connect) -> None:
    """A join is answered with welcome, the room's presence, then its history."""
    alice = await connect()
    await alice.send({"type": "join", "username": "alice", "email": " Alice@Example.com "})
    welcome = await alice.recv()
    assert welcome["type"] == "welcome"
    assert welcome["username"] == "alice"
    assert welcome["rooms"] == ["general"]
    assert welcome["limits"] == {"text_chars": 4000}  # the page checks a message's length
    assert welcome["avatar"].startswith("https://www.gravatar.com/avatar/")
    assert "c160f8cc69a4f0bf2b0362752353d060" in welcome["avatar"]  # md5("alice@example.com")
    presence = await alice.recv()
    assert presence == {"type": "presence", "room": "general", "count": 1, "more": False,
                        "users": [{"username": "alice", "avatar": welcome["avatar"],
                                       "guest": True}]}
    assert (await alice.recv())["type"] == "history"


@pytest.mark.gen_test
async def test_message_reaches_every_member_with_id_and_cid(connect: Connect) -> None:
    """A message reaches all members, the sender included, with an id, a ts and its cid."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")
    await bob.join("bob")
    await alice.send({"type": "message", "text": "hi :+1:", "cid": "c-1"})
    for client in (alice, bob):
        event = await client.recv_type("message")
        assert event["username"] == "alice"
        assert event["message"] == "hi 👍"
        assert event["room"] == "general"
        assert event["cid"] == "c-1"
        assert event["id"] == 1
        assert isinstance(event["ts"], int)


@pytest.mark.gen_test
async def test_ids_increase_per_room(connect: Connect) -> None:
    """Ids count up separately in each room."""
    alice = await connect()
    await alice.join("alice")
    await alice.join("alice", room="dev")
    for room in ("general", "dev", "general"):
        await alice.send({"type": "message", "room": room, "text": room})
    ids = [(e["room"], e["id"]) for e in [await alice.recv_type("message") for _ in range(3)]]
    assert ids == [("general", 1), ("dev", 1), ("general", 2)]


@pytest.mark.gen_test
async def test_rooms_are_isolated(connect: Connect) -> None:
    """A message in one room reaches only that room's members."""
    alice, bob, carol = await connect(), await connect(), await connect()
    await alice.join("alice", room="dev")
    await bob.join("bob", room="dev")
    await carol.join("carol", room="ops")
    await alice.recv_type("join")  # bob joined dev
    await alice.send({"type": "message", "room": "dev", "text": "dev only"})
    assert (await bob.recv_type("message"))["message"] == "dev only"
    await carol.nothing()


@pytest.mark.gen_test
async def test_posting_outside_joined_rooms_is_refused(connect: Connect) -> None:
    """Posting to a room one has not joined is an error and reaches no one."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")
    await bob.join("bob", room="dev")
    await alice.send({"type": "message", "room": "dev", "text": "sneaky", "cid": "x"})
    error = await alice.recv()
    assert error["code"] == "not_in_room"
    assert error["room"] == "dev"
    assert error["cid"] == "x"
    await bob.nothing()


@pytest.mark.gen_test
async def test_join_and_leave_notices(connect: Connect) -> None:
    """Members see a user join, leave by frame, and leave by disconnecting."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")
    bob_avatar = (await bob.join("bob"))["avatar"]
    assert await alice.recv() == {"type": "join", "room": "general", "username": "bob",
                                  "avatar": bob_avatar, "count": 2, "guest": True}
    await bob.join("bob", room="dev")
    await bob.send({"type": "leave", "room": "general"})
    left = {"type": "leave", "room": "general", "username": "bob"}
    assert await bob.recv_type("leave") == left  # the acknowledgement
    assert await alice.recv_type("leave") == {**left, "count": 1}
    carol = await connect()
    await carol.join("carol", room="dev")
    await bob.recv_type("join")
    carol.close()
    assert await bob.recv_type("leave") == {"type": "leave", "room": "dev", "username": "carol",
                                            "count": 1}


@pytest.mark.gen_test
async def test_presence_lists_the_users_in_the_room(connect: Connect) -> None:
    """Presence names each user in the room once."""
    alice, bob = await connect(), await connect()
    await alice.join("alice", room="dev")
    await bob.send({"type": "join", "username": "bob", "room": "dev"})
    await bob.recv_type("welcome")
    presence = await bob.recv_type("presence")
    assert [u["username"] for u in presence["users"]] == ["alice", "bob"]


@pytest.mark.gen_test
async def test_name_online_is_refused_case_insensitively(connect: Connect) -> None:
    """A second connection cannot take an online name, whatever its case."""
    alice, imposter = await connect(), await connect()
    await alice.join("Alice")
    await imposter.send({"type": "join", "username": "aLICE"})
    error = await imposter.recv_type("error")
    assert error["code"] == "username_taken"
    await imposter.send({"type": "message", "text": "as alice?"})
    assert (await imposter.recv_type("error"))["code"] == "not_joined"
    await alice.nothing()


@pytest.mark.gen_test
async def test_token_lets_a_second_connection_join_as_the_same_user(connect: Connect) -> None:
    """With the welcome's token, a second tab joins as the same user and shares DMs."""
    tab1, tab2, bob = await connect(), await connect(), await connect()
    token = (await tab1.join("alice"))["token"]
    await tab2.join("alice", token=token)
    await bob.join("bob")
    await bob.send({"type": "dm", "to": "alice", "text": "psst"})
    for tab in (tab1, tab2):
        assert (await tab.recv_type("dm"))["message"] == "psst"


@pytest.mark.gen_test
async def test_a_name_is_free_once_its_user_is_gone(connect: Connect, app: ChatApplication) -> None:
    """After the last connection of a user closes, anyone may take the name."""
    first = await connect()
    await first.join("alice")
    first.close()
    while app.hub.users:  # the server learns of the close a moment after the client
        await asyncio.sleep(0.01)
    second = await connect()
    assert (await second.join("ALICE"))["username"] == "ALICE"


@pytest.mark.gen_test
async def test_impersonation_is_refused(connect: Connect) -> None:
    """A frame claiming another username than the joined one is refused, never obeyed."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")
    await bob.join("bob")
    await alice.send({"type": "join", "username": "bob", "room": "dev"})
    assert (await alice.recv_type("error"))["code"] == "username_mismatch"
    await alice.send({"email": "x", "username": "bob", "message": "I am bob"})
    assert (await alice.recv_type("error"))["code"] == "unknown_type"
    await bob.nothing()


@pytest.mark.gen_test
async def test_dm_reaches_only_the_two_parties(connect: Connect) -> None:
    """A DM reaches every connection of the recipient and the sender's, and no one else."""
    alice, alice2, bob, carol = await connect(), await connect(), await connect(), await connect()
    token = (await alice.join("alice"))["token"]
    await alice2.join("alice", token=token)
    await bob.join("bob")
    await carol.join("carol")
    await alice.send({"type": "dm", "to": "BOB", "text": "secret", "cid": "d1"})
    for client in (alice, alice2, bob):
        dm = await client.recv_type("dm")
        assert (dm["from"], dm["to"], dm["message"], dm["cid"]) == ("alice", "bob", "secret",
                                                                    "d1")
    await carol.nothing()


@pytest.mark.gen_test
async def test_dm_to_an_offline_user_is_an_error(connect: Connect) -> None:
    """A DM to nobody online is refused with not_online."""
    alice = await connect()
    await alice.join("alice")
    await alice.send({"type": "dm", "to": "ghost", "text": "hello?"})
    error = await alice.recv()
    assert (error["code"], error["to"], error["request"]) == ("not_online", "ghost", "dm")


@pytest.mark.gen_test
async def test_typing_reaches_the_other_members_only(connect: Connect) -> None:
    """Typing goes to the room's other members, not the typist, and is throttled."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")
    await bob.join("bob")
    await alice.recv_type("join")
    await alice.send({"type": "typing", "room": "general"})
    await alice.send({"type": "typing", "room": "general"})  # within typing-interval: dropped
    assert await bob.recv() == {"type": "typing", "room": "general", "username": "alice"}
    await bob.nothing()
    await alice.nothing()


@pytest.mark.gen_test
async def test_email_never_leaves_the_server(connect: Connect) -> None:
    """No frame sent to anyone contains a user's email address."""
    alice, bob = await connect(), await connect()
    await alice.send({"type": "join", "username": "alice", "email": "alice.secret@example.com"})
    await bob.send({"email": "bob.secret@example.com", "username": "bob", "message": "hi"})
    await alice.send({"type": "message", "text": "hello"})
    await alice.send({"type": "dm", "to": "carol", "text": "x"})
    seen = []
    for client in (alice, bob):
        while True:
            try:
                seen.append(json.dumps(await client.recv(timeout=0.5)))
            except TimeoutError:
                break
    assert len(seen) >= 6
    assert not [frame for frame in seen if "secret@" in frame]


@pytest.mark.gen_test
async def test_errors_do_not_touch_anyone_else(connect: Connect) -> None:
    """Garbage from one client gets it an error and leaves the others' stream unchanged."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")
    await bob.join("bob")
    await alice.recv_type("join")
    for bad in ("{", "[]", json.dumps({"type": "nope"}), json.dumps({"type": "message"})):
        await bob.send(bad)
        assert (await bob.recv())["type"] == "error"
    await bob.send({"type": "message", "text": "still here"})
    assert (await alice.recv())["message"] == "still here"


@pytest.mark.gen_test
async def test_connections_read_general_before_joining(connect: Connect) -> None:
    """A connection that has not joined receives general's messages, and nothing else."""
    watcher, alice = await connect(), await connect()
    await alice.join("alice")
    await alice.join("alice", room="dev")
    await alice.send({"type": "message", "room": "dev", "text": "not for watchers"})
    await alice.send({"type": "message", "text": "for everyone"})
    assert (await watcher.recv())["message"] == "for everyone"
    await watcher.nothing()
    await watcher.send({"type": "message", "text": "can I?"})
    assert (await watcher.recv())["code"] == "not_joined"


@pytest.mark.gen_test
async def test_new_connection_reads_recent_history_of_general(connect: Connect) -> None:
    """A connection first receives general's recent messages as message events."""
    alice = await connect()
    await alice.join("alice")
    await alice.send({"type": "message", "text": "earlier"})
    await alice.recv_type("message")
    late = await connect()
    assert (await late.recv())["message"] == "earlier"


@pytest.mark.gen_test
async def test_tutorial_frame_joins_and_posts(connect: Connect) -> None:
    """The tutorial's exact frame joins general and posts; typed clients see both."""
    alice, legacy = await connect(), await connect()
    await alice.join("alice")
    await legacy.send(LEGACY)
    notice = await alice.recv()
    assert (notice["type"], notice["username"]) == ("join", "bob")
    event = await alice.recv()
    assert (event["type"], event["username"], event["message"]) == ("message", "bob",
                                                                    "hello 🤖")
    echoed = await legacy.recv()
    assert (echoed["username"], echoed["message"]) == ("bob", "hello 🤖")
    assert "email" not in echoed


@pytest.mark.gen_test
async def test_legacy_connection_receives_only_message_events(connect: Connect) -> None:
    """Notices, presence and typing never reach a tutorial client; messages do."""
    legacy, alice = await connect(), await connect()
    await legacy.send(LEGACY)
    await legacy.recv()
    await alice.join("alice")
    await alice.send({"type": "typing", "room": "general"})
    await alice.send({"type": "message", "text": "hi bob"})
    frame = await legacy.recv()
    assert (frame["type"], frame["message"]) == ("message", "hi bob")
    await legacy.nothing()


@pytest.mark.gen_test
async def test_legacy_errors_render_as_chat_lines(connect: Connect) -> None:
    """A tutorial client's error carries username and message so its page can show it."""
    first, second = await connect(), await connect()
    await first.send(LEGACY)
    await first.recv()
    await second.send({**LEGACY, "message": "me too"})
    error = await second.recv_type("error")
    assert error["code"] == "username_taken"
    assert error["username"] == "server"
    assert "already online" in error["message"]


@pytest.mark.gen_test
async def test_legacy_frames_must_keep_their_username(connect: Connect) -> None:
    """A later tutorial frame under another name is refused and not relayed."""
    legacy, alice = await connect(), await connect()
    await legacy.send(LEGACY)
    await alice.join("alice")
    await legacy.send({**LEGACY, "username": "alice", "message": "I am alice"})
    while (frame := await legacy.recv())["type"] != "error":
        pass
    assert frame["code"] == "username_mismatch"
    await alice.nothing()


@pytest.mark.gen_test
async def test_legacy_frame_with_empty_message_only_joins(connect: Connect) -> None:
    """A tutorial frame with an empty message joins without posting."""
    legacy, alice = await connect(), await connect()
    await alice.join("alice")
    await legacy.send({**LEGACY, "message": ""})
    assert (await alice.recv())["type"] == "join"
    await alice.nothing()


@pytest.mark.settings(rate_limit=0)
@pytest.mark.gen_test
async def test_too_many_rooms_is_refused(connect: Connect, app: ChatApplication) -> None:
    """Joining past max-rooms-per-connection is an error naming the limit."""
    alice: ChatClient = await connect()
    limit = app.hub.settings.max_rooms_per_connection
    for n in range(limit):
        await alice.join("alice", room=f"r{n}")
    await alice.send({"type": "join", "room": "one-more"})
    error = await alice.recv_type("error")
    assert (error["code"], error["limit"]) == ("too_many_rooms", limit)


@pytest.mark.gen_test
async def test_empty_rooms_are_forgotten(connect: Connect, app: ChatApplication) -> None:
    """A room with no members left is removed; general always stays."""
    alice = await connect()
    await alice.join("alice", room="tmp")
    assert "tmp" in app.hub.rooms
    await alice.send({"type": "leave", "room": "tmp"})
    await alice.recv_type("leave")
    assert set(app.hub.rooms) == {"general"}

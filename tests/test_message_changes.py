"""Edits and deletes over real sockets, on SQLite and PostgreSQL: live, in history, on resume
(`changes`), and refused from every side that may not (issue 16)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chat.history.changes import Actor
from chat.protocol.parse import ProtocolError
from chat.record import StoredMessage
from chat_server import ChatApplication
from tests.helpers import ChatClient, Connect
from tests.test_auth_socket import bearer, error_of, signed_up
from tests.test_rooms import answer, app, make_room, team  # noqa: F401 (app: a fixture)


async def post(client: ChatClient, text: str, room: str = "general") -> int:
    """Send a message; its id, from the acknowledgement."""
    await client.send({"type": "message", "room": room, "text": text, "cid": text})
    while True:
        got = await client.recv_type("message")
        if got.get("cid") == text:
            return int(got["id"])


def texts(history: dict[str, Any]) -> list[tuple[str, bool]]:
    """A history frame's messages: (text, edited or not)."""
    return [(m["message"], "edited" in m) for m in history["messages"]]


@pytest.mark.gen_test(timeout=30)
async def test_an_edit_reaches_every_reader_live_and_shows_in_history(
    app: ChatApplication, connect: Connect,  # noqa: F811
) -> None:
    """ann edits her message: bob sees `edited` (text, mark, change 1) at once; pages and a new
    reader show the new text marked edited; history replies carry the change number."""
    _root, ann, bob = await team(app, connect, "ann", "bob")
    first = await post(ann, "helo")
    await ann.send({"type": "edit", "room": "general", "id": first, "text": "hello"})
    for client in (ann, bob):
        told = await client.recv_type("edited")
        assert (told["room"], told["id"], told["message"], told["change"]) == (
            "general", first, "hello", 1)
        assert isinstance(told["edited"], int)
    page = await answer(bob, {"type": "history", "room": "general"}, "history")
    assert texts(page) == [("hello", True)] and page["change"] == 1
    late = await connect()  # reads general before joining: as the tutorial's page shows it
    shown = await late.recv_type("message")
    assert (shown["message"], shown["edited"]) == ("hello", told["edited"])
    await late.send({"type": "join", "username": "guest1"})
    assert (await late.recv_type("history"))["change"] == 1


@pytest.mark.gen_test(timeout=30)
async def test_a_delete_reaches_every_reader_and_leaves_no_trace_in_history(
    app: ChatApplication, connect: Connect,  # noqa: F811
) -> None:
    """ann deletes her message: both see `deleted`; pages and joins leave it out, a resume
    from before it is still `recovered`; deleting or editing it again is no_such_message."""
    _root, ann, bob = await team(app, connect, "ann", "bob")
    keep, gone, after = [await post(ann, text) for text in ("keep", "secret", "after")]
    await ann.send({"type": "delete", "room": "general", "id": gone})
    for client in (ann, bob):
        told = await client.recv_type("deleted")
        assert (told["id"], told["change"], "by" in told) == (gone, 1, False)
    page = await answer(bob, {"type": "history", "room": "general"}, "history")
    assert texts(page) == [("keep", False), ("after", False)]
    reader = await connect()  # reads general before joining
    assert [(await reader.recv_type("message"))["message"] for _ in range(2)] == [
        "keep", "after"]
    await make_room(ann, "ops")
    await ann.join("ann", "ops")
    ops = [await post(ann, text, "ops") for text in ("o1", "o2", "o3")]
    await ann.send({"type": "delete", "room": "ops", "id": ops[1]})
    await ann.recv_type("deleted")
    await bob.send({"type": "join", "room": "ops", "since": ops[0]})
    replay = await bob.recv_type("history")
    assert (texts(replay), replay["recovered"]) == ([("o3", False)], True)
    for frame in ({"type": "delete", "room": "general", "id": gone},
                  {"type": "edit", "room": "general", "id": gone, "text": "back"}):
        assert (await error_of(ann, frame))["code"] == "no_such_message"
    assert keep < gone < after


@pytest.mark.gen_test(timeout=30)
async def test_nobody_else_edits_or_deletes_a_message_but_room_moderators_delete(
    app: ChatApplication, connect: Connect,  # noqa: F811
) -> None:
    """From the attacker's side: bob can neither edit nor delete ann's message; a guest cannot
    touch another guest's; a moderator deletes (told `by`) but cannot edit; an outsider of a
    private room gets not_in_room; the server admin deletes in any room."""
    root, ann, bob = await team(app, connect, "ann", "bob")
    mine = await post(ann, "ann's")
    for frame in ({"type": "edit", "room": "general", "id": mine, "text": "pwned"},
                  {"type": "delete", "room": "general", "id": mine}):
        assert (await error_of(bob, frame))["code"] == "forbidden", frame
    g1, g2 = await connect(), await connect()
    await g1.join("guest1")
    await g2.join("guest2")
    theirs = await post(g1, "guest one's")
    for frame in ({"type": "edit", "room": "general", "id": theirs, "text": "pwned"},
                  {"type": "delete", "room": "general", "id": theirs}):
        assert (await error_of(g2, frame))["code"] == "forbidden", frame
    await make_room(ann, "inner", visibility="private")
    await ann.join("ann", "inner")
    inner = await post(ann, "inner secret", "inner")
    for frame in ({"type": "edit", "room": "inner", "id": inner, "text": "x"},
                  {"type": "delete", "room": "inner", "id": inner},
                  {"type": "changes", "room": "inner", "after": 0}):
        assert (await error_of(bob, frame))["code"] == "not_in_room", frame
    await make_room(ann, "ops")
    for client, name in ((ann, "ann"), (bob, "bob")):
        await client.join(name, "ops")
    bobs = await post(bob, "bob's", "ops")
    assert (await error_of(ann, {"type": "edit", "room": "ops", "id": bobs,
                                 "text": "owner's words"}))["code"] == "forbidden"
    await ann.send({"type": "delete", "room": "ops", "id": bobs})
    assert (await bob.recv_type("deleted"))["by"] == "ann"
    await root.send({"type": "delete", "room": "general", "id": theirs})
    assert (await g1.recv_type("deleted"))["by"] == "root"
    page = await answer(bob, {"type": "history", "room": "general"}, "history")
    assert texts(page) == [("ann's", False)]


@pytest.mark.gen_test(timeout=30)
async def test_a_direct_message_is_edited_and_deleted_by_its_author_only(
    app: ChatApplication, connect: Connect,  # noqa: F811
) -> None:
    """ann edits and deletes her direct message to bob: both are told (`from`, `to`); bob can
    do neither to it; `changes` with `with` lists both changes; cat sees none of it."""
    _root, ann, bob, cat = await team(app, connect, "ann", "bob", "cat")
    await ann.send({"type": "dm", "to": "bob", "text": "psst", "cid": "d1"})
    sent = (await ann.recv_type("dm"))["id"]
    await bob.recv_type("dm")
    for frame in ({"type": "edit", "with": "ann", "id": sent, "text": "pwned"},
                  {"type": "delete", "with": "ann", "id": sent}):
        assert (await error_of(bob, frame))["code"] == "forbidden", frame
    assert (await error_of(cat, {"type": "delete", "with": "ann", "id": sent}))[
        "code"] == "no_such_message"
    await ann.send({"type": "edit", "with": "bob", "id": sent, "text": "hi"})
    told = await bob.recv_type("edited")
    assert (told["from"], told["to"], told["message"]) == ("ann", "bob", "hi")
    await ann.send({"type": "delete", "with": "bob", "id": sent})
    assert (await bob.recv_type("deleted"))["id"] == sent
    got = await answer(bob, {"type": "changes", "with": "ann", "after": 0}, "changes")
    assert ([c["type"] for c in got["changes"]], got["change"], got["more"]) == (
        ["deleted"], 2, False)
    await cat.nothing()


@pytest.mark.settings(edit_window=0.2)
@pytest.mark.gen_test(timeout=30)
async def test_an_edit_after_the_edit_window_is_refused_naming_the_limit(
    app: ChatApplication, connect: Connect,  # noqa: F811
) -> None:
    """Past --edit-window a message cannot be edited (`edit_window_passed`, with the limit);
    it can still be deleted."""
    _root, ann = await team(app, connect, "ann")
    old = await post(ann, "old")
    await asyncio.sleep(0.5)
    error = await error_of(ann, {"type": "edit", "room": "general", "id": old, "text": "new"})
    assert (error["code"], error["limit"]) == ("edit_window_passed", 0.2)
    assert "--edit-window" in error["reason"]
    await ann.send({"type": "delete", "room": "general", "id": old})
    assert (await ann.recv_type("deleted"))["id"] == old


@pytest.mark.gen_test(timeout=30)
async def test_a_client_that_was_away_learns_the_changes_on_resume(
    app: ChatApplication, connect: Connect,  # noqa: F811
) -> None:
    """bob holds three messages and change 0; while he is away ann edits one and deletes
    another; his resume (`since`, `changes`) gets no message again but a `changes` frame with
    both, once each, and the number to ask after next; asking after it gives nothing."""
    _root, ann = await team(app, connect, "ann")
    token = await signed_up(app, "bob")
    bob = await connect(**bearer(token))
    await bob.join("bob")
    ids = [await post(ann, text) for text in ("one", "two", "three")]
    bob.close()
    await ann.send({"type": "edit", "room": "general", "id": ids[0], "text": "ONE"})
    await ann.recv_type("edited")
    await ann.send({"type": "edit", "room": "general", "id": ids[0], "text": "One"})
    await ann.recv_type("edited")
    await ann.send({"type": "delete", "room": "general", "id": ids[1]})
    await ann.recv_type("deleted")
    back = await connect(**bearer(token))
    await back.send({"type": "join", "room": "general", "since": ids[2], "changes": 0})
    replay = await back.recv_type("history")
    assert (replay["messages"], replay["recovered"]) == ([], True)
    got = await back.recv_type("changes")
    assert [(c["type"], c["id"], c.get("message")) for c in got["changes"]] == [
        ("edited", ids[0], "One"), ("deleted", ids[1], None)]
    assert (got["change"], got["more"]) == (3, False)
    again = await answer(back, {"type": "changes", "room": "general", "after": 3}, "changes")
    assert (again["changes"], again["change"]) == ([], 3)


@pytest.mark.gen_test(timeout=30)
async def test_reactions_toggled_from_two_tabs_end_the_same_everywhere(
    app: ChatApplication, connect: Connect,  # noqa: F811
) -> None:
    """ann's two tabs each add 👍 (one as :+1:) then each take it back, all at once, while bob
    adds 🎉: every reader's last `reacted` and the history show bob's 🎉 alone; a resume's
    `changes` brings the reactions to a reader that was away."""
    _root, ann = await team(app, connect, "ann")
    token = await signed_up(app, "bob")
    bob = await connect(**bearer(token))
    await bob.join("bob")
    tab = await connect(**bearer(await signed_up(app, "cat")))
    await tab.join("cat")
    ann2 = await connect(**bearer(token))
    await ann2.join("bob")
    target = await post(ann, "react to me")
    bob.close()
    for frame in ({"emoji": "👍"}, {"emoji": ":+1:"}, {"emoji": "👍", "remove": True},
                  {"emoji": ":thumbsup:", "remove": True}):
        await ann2.send({"type": "react", "room": "general", "id": target, **frame})
        await tab.send({"type": "react", "room": "general", "id": target, **frame})
    await tab.send({"type": "react", "room": "general", "id": target, "emoji": "🎉"})
    last: dict[str, Any] = {}
    while last.get("change") != 9:
        last = await ann.recv_type("reacted")
    assert last["reactions"] == [{"emoji": "🎉", "count": 1, "users": ["cat"]}]
    page = await answer(ann, {"type": "history", "room": "general"}, "history")
    assert page["messages"][-1]["reactions"] == last["reactions"]
    back = await connect(**bearer(token))
    await back.send({"type": "join", "room": "general", "since": target, "changes": 0})
    got = await back.recv_type("changes")
    assert [(c["type"], c["reactions"]) for c in got["changes"]] == [
        ("reacted", last["reactions"])]


@pytest.mark.settings(max_reactions=2)
@pytest.mark.gen_test(timeout=30)
async def test_a_reaction_is_one_emoji_and_a_message_holds_a_limited_number(
    app: ChatApplication, connect: Connect,  # noqa: F811
) -> None:
    """Text, two emoji or an unknown shortcode is invalid_field; a third distinct emoji past
    --max-reactions 2 is too_many_reactions with the limit, adding to one there is fine; a
    non-member of a private room cannot react there."""
    _root, ann, bob = await team(app, connect, "ann", "bob")
    target = await post(ann, "react")
    for bad in ("a", "👍👍", ":no_such_shortcode:", ""):
        error = await error_of(ann, {"type": "react", "room": "general", "id": target,
                                     "emoji": bad})
        assert (error["code"], error.get("field")) in (("invalid_field", "emoji"),
                                                       ("missing_field", "emoji")), bad
    for emoji in ("👍", "🎉"):
        await ann.send({"type": "react", "room": "general", "id": target, "emoji": emoji})
        await ann.recv_type("reacted")
    error = await error_of(bob, {"type": "react", "room": "general", "id": target,
                                 "emoji": "🚀"})
    assert (error["code"], error["limit"]) == ("too_many_reactions", 2)
    assert "--max-reactions" in error["reason"]
    await bob.send({"type": "react", "room": "general", "id": target, "emoji": "👍"})
    assert (await bob.recv_type("reacted"))["reactions"][0] == {
        "emoji": "👍", "count": 2, "users": ["ann", "bob"]}
    await make_room(ann, "inner", visibility="private")
    await ann.join("ann", "inner")
    inner = await post(ann, "inner", "inner")
    assert (await error_of(bob, {"type": "react", "room": "inner", "id": inner,
                                 "emoji": "👍"}))["code"] == "not_in_room"


@pytest.mark.gen_test(timeout=30)
async def test_the_service_works_without_a_socket_and_tells_its_delete_hooks(
    app: ChatApplication, connect: Connect,  # noqa: F811
) -> None:
    """hub.changes (what the HTTP API and bots call) edits and deletes for an actor with no
    connection, checks the same rights, and hands each deleted message to its hooks (where
    a message's files follow it) once its text is gone."""
    _root, ann, bob = await team(app, connect, "ann", "bob")
    target = await post(ann, "from the api")
    service = app.hub.changes
    found = await service.store.find("general", target)
    assert found is not None and found.author is not None
    author = Actor(found.author, "ann")
    seen: list[tuple[int, str]] = []

    async def hook(message: StoredMessage) -> None:
        seen.append((message.id, message.text))

    service.on_deleted.append(hook)
    with pytest.raises(ProtocolError) as refused:
        await service.edit(Actor("a:999", "mallory"), "general", target, "pwned")
    assert refused.value.code == "forbidden"
    edited = await service.edit(author, "general", target, "edited by api")
    assert (await bob.recv_type("edited"))["change"] == edited.change == 1
    await service.delete(author, "general", target)
    assert (await bob.recv_type("deleted"))["id"] == target
    assert seen == [(target, "")]

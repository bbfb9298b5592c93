"""Replies: a message answering another of its conversation carries a quote of it, live and in
history, on SQLite and PostgreSQL; a reply_to the sender may not read is refused, leaking
nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chat.delivery import channels
from chat.history.quotes import EXCERPT_CHARS, excerpt
from chat.record import Quote, StoredMessage
from chat.store import SQLiteStore
from chat.store.postgres import PostgresStore
from chat.store.sql import postgres
from chat_server import ChatApplication
from tests.helpers import ChatClient, Connect
from tests.test_auth_socket import error_of
from tests.test_rooms import answer, app, make_room, same_error, team  # noqa: F401 (app: a fixture)

LONG = "first line of the original\n" + "word " * 40


async def say(client: ChatClient, text: str, room: str = "general", **extra: Any) -> int:
    """Post `text`; its id (from the sender's own copy, the acknowledgement)."""
    await client.send({"type": "message", "room": room, "text": text, **extra})
    return int((await client.recv_type("message"))["id"])


async def dm(client: ChatClient, to: str, text: str, **extra: Any) -> dict[str, Any]:
    await client.send({"type": "dm", "to": to, "text": text, **extra})
    return await client.recv_type("dm")


@pytest.mark.gen_test(timeout=30)
async def test_a_reply_carries_its_quote_live_in_pages_and_on_join(
    app: ChatApplication, connect: Connect,  # noqa: F811 (the fixture imported above)
) -> None:
    """Every reader gets the reply with {id, author, excerpt}; history pages and the latest
    messages a new connection is sent carry the same quote; the excerpt is one line, cut at
    EXCERPT_CHARS."""
    _, ann, bob = await team(app, connect, "ann", "bob")
    original = await say(ann, LONG)
    await bob.recv_type("message")
    await bob.send({"type": "message", "text": "agreed", "reply_to": original, "cid": "r1"})
    flat = " ".join(LONG.split())
    excerpt = flat[:EXCERPT_CHARS - 1] + "…"
    assert len(excerpt) == EXCERPT_CHARS
    quote = {"id": original, "author": "ann", "excerpt": excerpt}
    for reader in (ann, bob):
        event = await reader.recv_type("message")
        assert (event["message"], event["reply_to"]) == ("agreed", quote)
    page = await answer(ann, {"type": "history", "room": "general"}, "history")
    assert [m.get("reply_to") for m in page["messages"]] == [None, quote]
    reader = await connect()  # not joined: sent the room's latest, as the tutorial's page
    assert [(await reader.recv_type("message")).get("reply_to") for _ in "ab"] == [None, quote]
    # The same cid again: the original acknowledgement, quote and all; nothing new stored.
    await bob.send({"type": "message", "text": "agreed", "reply_to": original, "cid": "r1"})
    assert (await bob.recv_type("message"))["reply_to"] == quote
    await ann.nothing()


@pytest.mark.gen_test(timeout=30)
async def test_a_direct_reply_quotes_the_pair_s_own_message(
    app: ChatApplication, connect: Connect,  # noqa: F811 (the fixture imported above)
) -> None:
    """A dm's reply_to is an id of that pair's conversation: never another pair's message."""
    _, ann, bob, cat = await team(app, connect, "ann", "bob", "cat")
    to_cat = await dm(ann, "cat", "for cat only")
    to_ann = await dm(bob, "ann", "hello ann")
    assert to_cat["id"] == to_ann["id"]  # each pair counts from 1: the same number
    assert (await ann.recv_type("dm"))["message"] == "hello ann"
    reply = await dm(ann, "bob", "hi bob", reply_to=to_ann["id"])
    assert reply["reply_to"] == {"id": to_ann["id"], "author": "bob", "excerpt": "hello ann"}
    assert (await bob.recv_type("dm"))["reply_to"] == reply["reply_to"]
    page = await answer(bob, {"type": "history", "with": "ann"}, "history")
    assert page["messages"][-1]["reply_to"] == reply["reply_to"]
    refused = await error_of(bob, {"type": "dm", "to": "ann", "text": "x",
                                   "reply_to": reply["id"] + 1, "cid": "b2"})
    assert (refused["code"], refused["field"], refused["request"]) == (
        "no_such_message", "reply_to", "dm")
    await cat.recv_type("dm")


@pytest.mark.gen_test(timeout=30)
async def test_a_reply_to_what_the_sender_cannot_read_is_refused_and_leaks_nothing(
    app: ChatApplication, connect: Connect,  # noqa: F811 (the fixture imported above)
) -> None:
    """An id of a private room the sender is not in names nothing in the room it posts to;
    posting into that room is refused as for a room that does not exist; nothing is stored."""
    _, ann, bob = await team(app, connect, "ann", "bob")
    await make_room(ann, "secret", visibility="private")
    await ann.join("ann", "secret")
    for n in range(3):
        await say(ann, f"the secret plan {n}", room="secret")
    await say(ann, "hello all")  # general's id 1
    refused = await error_of(bob, {"type": "message", "text": "ha", "reply_to": 3, "cid": "x"})
    assert refused["code"] == "no_such_message"
    assert "plan" not in str(refused) and "ann" not in str(refused)
    inside = {"type": "message", "room": "secret", "text": "ha", "reply_to": 3, "cid": "y"}
    same_error(await error_of(bob, inside),
               await error_of(bob, {**inside, "room": "nothing"}), ("secret", "nothing"))
    page = await answer(ann, {"type": "history", "room": "general"}, "history")
    assert [m["message"] for m in page["messages"]] == ["hello all"]
    for bad in ("3", -1, 1.5, True):
        wrong = await error_of(bob, {"type": "message", "text": "ha", "reply_to": bad})
        assert (wrong["code"], wrong["field"]) == ("invalid_field", "reply_to")


@pytest.mark.gen_test(timeout=30)
async def test_a_reply_to_a_removed_message_shows_it_as_deleted(
    app: ChatApplication, connect: Connect,  # noqa: F811 (the fixture imported above)
) -> None:
    """Once a moderator removes the original, history shows the reply's quote as deleted, with
    no author or text, and a new reply to it is refused."""
    _, ann, bob = await team(app, connect, "ann", "bob")
    await make_room(ann, "ops")
    await ann.join("ann", "ops")
    await bob.join("bob", "ops")
    original = await say(bob, "a pasted password", room="ops")
    await ann.recv_type("message")
    await say(ann, "please remove that", room="ops", reply_to=original)
    await answer(ann, {"type": "remove", "room": "ops", "id": original}, "moderation")
    page = await answer(bob, {"type": "history", "room": "ops"}, "history")
    assert [(m["message"], m.get("reply_to")) for m in page["messages"]] == [
        ("please remove that", {"id": original, "deleted": True})]
    assert "password" not in str(page)
    refused = await error_of(bob, {"type": "message", "room": "ops", "text": "?",
                                   "reply_to": original})
    assert refused["code"] == "no_such_message"


@pytest.mark.parametrize("quote", [Quote(3, "ann", "the plan"), Quote(3, deleted=True), None])
def test_a_reply_s_quote_crosses_the_broker_as_it_was_read(quote: Quote | None) -> None:
    """The broker payload carries the reply's id and the quote the sender's node read, so
    another node sends the same event without reading the store."""
    stored = StoredMessage("general", 4, "bob", "", "agreed", 1, reply_to=3, quote=quote)
    payload = channels.message_payload(stored)
    assert channels.from_fields(json.loads(payload[1:])) == stored


def test_an_excerpt_is_one_line_cut_with_an_ellipsis() -> None:
    """White space runs become one space; a long text is cut to EXCERPT_CHARS, … included."""
    assert excerpt("  a\n\n  b\tc ") == "a b c"
    assert excerpt("x" * EXCERPT_CHARS) == "x" * EXCERPT_CHARS
    cut = excerpt("y" * (EXCERPT_CHARS + 1))
    assert (len(cut), cut[-1]) == (EXCERPT_CHARS, "…")


async def rewrite(chat: ChatApplication, sql: str, params: tuple[Any, ...]) -> None:
    """Change stored messages in place, as an edit or delete of the original would."""
    store = getattr(chat.hub.store, "inner", chat.hub.store)  # the store under WithFiles
    if isinstance(store, PostgresStore):
        async with store._connection() as conn:
            await conn.execute(postgres(sql), params)
    else:
        assert isinstance(store, SQLiteStore)
        await store._on_writer(sql, params)


@pytest.mark.gen_test(timeout=30)
async def test_a_quote_is_read_from_the_original_as_it_is_now(
    app: ChatApplication, connect: Connect,  # noqa: F811 (the fixture imported above)
) -> None:
    """History shows a reply's quote from the original's current text: changed in the store
    (as an edit does), the quote follows; gone (as a delete does), the quote says deleted."""
    _, ann, bob = await team(app, connect, "ann", "bob")
    original = await say(ann, "meet at 10")
    await bob.recv_type("message")
    await say(bob, "ok", reply_to=original)
    update = "UPDATE messages SET text = ? WHERE conversation = ? AND id = ?"
    await rewrite(app, update, ("meet at 11", "general", original))
    page = await answer(ann, {"type": "history", "room": "general"}, "history")
    assert page["messages"][-1]["reply_to"] == {"id": original, "author": "ann",
                                                "excerpt": "meet at 11"}
    await rewrite(app, update, ("", "general", original))  # a delete that blanks the text
    page = await answer(ann, {"type": "history", "room": "general"}, "history")
    assert page["messages"][-1]["reply_to"] == {"id": original, "deleted": True}
    await rewrite(app, "DELETE FROM messages WHERE conversation = ? AND id = ?",
                  ("general", original))  # a delete that drops the row
    page = await answer(ann, {"type": "history", "room": "general"}, "history")
    assert page["messages"][-1]["reply_to"] == {"id": original, "deleted": True}

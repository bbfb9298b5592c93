"""Unread counts on join, through real sockets on SQLite and PostgreSQL: a deleted message is
neither unread nor a mention, and a mention inside code, a link or a URL is no mention."""

from __future__ import annotations

import pytest

from chat.protocol.mentions import mentions, pattern
from chat_server import ChatApplication
from tests.helpers import ChatClient, Connect
from tests.test_auth_socket import bearer, signed_up
from tests.test_people import account, app, none_of, send_dm, unread_after_join  # noqa: F401


async def said(client: ChatClient, text: str) -> int:
    """Send `text` to general; its id."""
    await client.send({"type": "message", "text": text})
    return int((await client.recv_type("message"))["id"])


async def deleted(client: ChatClient, message_id: int, **refs: str) -> None:
    await client.send({"type": "delete", "id": message_id, **refs})
    assert (await client.recv_type("deleted"))["id"] == message_id


@pytest.mark.gen_test(timeout=30)
async def test_a_deleted_message_after_the_mark_is_neither_unread_nor_a_mention(
    app: ChatApplication, connect: Connect,  # noqa: F811 (a fixture)
) -> None:
    """bob's deleted messages after ann's mark, in the room and their direct conversation,
    are left out of ann's counts; a conversation left with nothing unread is not listed."""
    ann, token = await account(app, connect, "ann")
    bob, _ = await account(app, connect, "bob")
    read = await said(bob, "before")
    await ann.send({"type": "read", "room": "general", "id": read})
    await ann.recv_type("read")
    ann.close()
    await bob.recv_type("leave")
    gone = await said(bob, "@ann look at this password")
    kept = await said(bob, "@ann sorry, ignore that")
    last = await said(bob, "removed too")
    for message_id in (gone, last):
        await deleted(bob, message_id, room="general")
    secret = await send_dm(bob, "ann", "@ann the key is 1234", "d1")
    await deleted(bob, secret["id"], **{"with": "ann"})
    again = await connect(**bearer(token))
    unread = await unread_after_join(again)
    assert unread["conversations"] == [{"room": "general", "read": read, "last": last,
                                        "count": 1, "mentions": 1, "more": False}]
    assert kept < last


@pytest.mark.gen_test(timeout=30)
async def test_only_deleted_messages_after_the_mark_leave_nothing_to_tell(
    app: ChatApplication, connect: Connect,  # noqa: F811 (a fixture)
) -> None:
    """Everything after ann's (absent) mark was deleted: her join gets no `unread` at all."""
    bob, _ = await account(app, connect, "bob")
    token = await signed_up(app, "ann")
    for text in ("@ann one", "@ann two"):
        await deleted(bob, await said(bob, text), room="general")
    ann = await connect(**bearer(token))
    await ann.send({"type": "join", "room": "general"})
    await ann.recv_type("history")
    await none_of(ann, "unread")


@pytest.mark.gen_test(timeout=30)
async def test_a_mention_inside_code_a_link_or_a_url_is_no_mention(
    app: ChatApplication, connect: Connect,  # noqa: F811 (a fixture)
) -> None:
    """Of bob's eight messages naming @ann, only the two in prose count as mentions."""
    bob, _ = await account(app, connect, "bob")
    texts = ("use `@ann` as the handle", "```\nping @ann\n```", "    @ann in an indented block",
             "see https://example.org/@ann", "[@ann's page](https://example.org/ann)",
             "<https://example.org/@ann>", "**@ann** look", "> quoting you, @ANN")
    for text in texts:
        await said(bob, text)
    token = await signed_up(app, "ann")
    unread = await unread_after_join(await connect(**bearer(token)))
    assert unread["conversations"] == [{"room": "general", "read": 0, "last": len(texts),
                                        "count": len(texts), "mentions": 2, "more": False}]


def test_mentions_are_found_in_prose_only() -> None:
    """The parse finds @ann in prose, lists and quotes, not in code, links or URLs."""
    ann = pattern("ann")
    for text in ("hi @ann", "- item @ann", "> @Ann", "~~@ann~~", "_@ann_", "`x` @ann `y`",
                 "[x](javascript:alert(1)) @ann", "[@ann](ftp://x.org)"):
        assert mentions(text, ann), text
    for text in ("`@ann`", "``a `@ann` b``", "~~~\n@ann\n~~~", "\t@ann", "x@ann", "@annie",
                 "http://x.org/@ann", "[@ann](http://x.org)", "[me](https://x.org/@ann)",
                 "<http://x.org/@ann>", "```py\nprint('@ann')\n```\n"):
        assert not mentions(text, ann), text

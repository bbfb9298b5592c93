"""--avatars: drawn initials by default (no third party, no hash of an email), or Gravatar."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree

import pytest
from tornado.httpclient import AsyncHTTPClient

from chat.config import ConfigError, Settings
from chat.people.identity import initials, initials_avatar
from chat.people.names import name_key
from chat.record import dm_key
from chat_server import ChatApplication
from tests.helpers import ChatClient, Connect

EMAIL = " Alice@Example.com "
EMAIL_MD5 = hashlib.md5(b"alice@example.com").hexdigest()  # what Gravatar keys on
NAME_MD5 = hashlib.md5(b"bob").hexdigest()  # Gravatar's identicon for a user without an email
OLD_AVATAR = f"https://www.gravatar.com/avatar/{EMAIL_MD5}?d=identicon&s=80"
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE_NAMES = ['<script>alert(1)</script>', '"><img src=x>', "&amp; &lt;", "' onload='x",
                 "a</text><script>", "%3Cscript%3E", "#fff", "é ß", "李 华", "😀 x", "🙂"]
MAX_AVATAR_BYTES = 250  # in every message frame: a Gravatar URL is 81


async def everything(alice: ChatClient, bob: ChatClient, carol: ChatClient) -> list[Any]:
    """Every frame of a join, a message, a direct message, presence and history replies."""
    frames: list[Any] = []

    async def recv(client: ChatClient, kind: str) -> dict[str, Any]:
        while True:
            frame = await client.recv()
            frames.append(frame)
            if frame["type"] == kind:
                return frame

    await alice.send({"type": "join", "username": "alice", "email": EMAIL})
    await recv(alice, "history")
    await bob.send({"type": "join", "username": "bob"})
    await recv(bob, "history")
    await recv(alice, "join")
    await alice.send({"type": "message", "room": "general", "text": "hello", "cid": "c1"})
    await recv(alice, "message")
    await recv(bob, "message")
    await alice.send({"type": "dm", "to": "bob", "text": "psst", "cid": "c2"})
    await recv(alice, "dm")
    await recv(bob, "dm")
    await carol.send({"type": "join", "username": "carol"})  # presence lists alice; history too
    await recv(carol, "history")
    await bob.send({"type": "history", "with": "alice"})
    await recv(bob, "history")
    await bob.send({"type": "members", "room": "general"})
    await recv(bob, "members")
    return frames


@pytest.mark.gen_test
async def test_by_default_no_frame_carries_a_gravatar_url_or_a_hash_of_the_email(
        connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    """Welcome, presence, join, message, dm, history and members frames hold no email hash."""
    caplog.set_level(logging.DEBUG)
    frames = await everything(await connect(), await connect(), await connect())
    text = json.dumps(frames, ensure_ascii=False)
    assert {f["type"] for f in frames} >= {"welcome", "presence", "join", "message", "dm",
                                          "history", "members"}
    assert EMAIL_MD5 not in text and NAME_MD5 not in text
    assert "gravatar" not in text.lower() and "alice@example.com" not in text.lower()
    assert EMAIL_MD5 not in caplog.text
    welcome = frames[0]
    assert welcome["avatar"] == initials_avatar("alice")
    history = next(f for f in frames if f["type"] == "history" and f.get("with") == "alice")
    assert [m["avatar"] for m in history["messages"]] == [initials_avatar("alice")]


@pytest.mark.settings(avatars="gravatar")
@pytest.mark.gen_test
async def test_with_gravatar_the_frames_carry_the_md5_of_the_email(connect: Connect) -> None:
    """--avatars gravatar is the old behaviour: Gravatar URLs keyed by the email's MD5."""
    frames = await everything(await connect(), await connect(), await connect())
    assert frames[0]["avatar"] == OLD_AVATAR
    messages = [f for f in frames if f["type"] in ("message", "dm")]
    assert messages and all(f["avatar"] == OLD_AVATAR for f in messages)
    assert f"https://www.gravatar.com/avatar/{NAME_MD5}?" in json.dumps(frames)


async def stored_with_gravatar(app: ChatApplication, conversation: str,
                               to: str | None = None) -> None:
    """A message kept from a server that ran with Gravatar."""
    await app.hub.store.append(conversation, username="alice", avatar=OLD_AVATAR,
                               text="from before", ts=int(time.time() * 1000), to=to)


async def avatars_shown(app: ChatApplication, connect: Connect) -> list[list[str]]:
    """The avatars of old messages in each way history reaches a connection: the tutorial's
    feed before a join, a join's replay, a room's page and a dm's page."""
    for room in ("general", "dev"):
        await stored_with_gravatar(app, room)
    alice = await connect()
    await alice.join("alice")  # online: a dm's parties are the guests' own ids
    bob = await connect()
    shown = [[(await bob.recv_type("message"))["avatar"]]]
    await bob.join("bob")
    parties = (app.hub.users[name_key("alice")].party, app.hub.users[name_key("bob")].party)
    await stored_with_gravatar(app, dm_key(*parties), to="bob")
    await bob.send({"type": "join", "room": "dev"})
    await bob.recv_type("presence")
    replies = [await bob.recv_type("history")]
    for request in ({"room": "general"}, {"with": "alice"}):
        await bob.send({"type": "history", **request})
        replies.append(await bob.recv_type("history"))
    return shown + [[m["avatar"] for m in reply["messages"]] for reply in replies]


@pytest.mark.gen_test
async def test_history_shows_initials_for_messages_stored_with_a_gravatar_url(
        app: ChatApplication, connect: Connect) -> None:
    """After a switch to initials, old messages come back with the initials, not Gravatar."""
    assert await avatars_shown(app, connect) == [[initials_avatar("alice")]] * 4


@pytest.mark.settings(avatars="gravatar")
@pytest.mark.gen_test
async def test_with_gravatar_history_keeps_the_stored_avatar(
        app: ChatApplication, connect: Connect) -> None:
    """With --avatars gravatar a stored avatar is shown as it was stored."""
    assert await avatars_shown(app, connect) == [[OLD_AVATAR]] * 4


@pytest.mark.parametrize("name", ["alice", "Bob Smith", *HOSTILE_NAMES])
def test_an_initials_avatar_is_a_small_svg_of_letters_whatever_the_name(name: str) -> None:
    """The SVG holds one rect and one text of letters or digits: no markup from the name."""
    url = initials_avatar(name)
    assert url.startswith("data:image/svg+xml,")
    assert re.fullmatch(r"[A-Za-z0-9%:/,+.='()\- ;]+", url), url  # nothing that ends the URL
    root = ElementTree.fromstring(unquote(url.removeprefix("data:image/svg+xml,")))
    assert root.tag == f"{SVG}svg"
    assert [child.tag for child in root] == [f"{SVG}rect", f"{SVG}text"]
    assert all(len(child) == 0 for child in root)
    letters = root[1].text or ""
    assert letters == initials(name) and (letters == "?" or letters.isalnum())
    assert not any(key.startswith("on") for e in root.iter() for key in e.attrib)
    if name.isascii():
        assert len(url) < MAX_AVATAR_BYTES


def test_initials_are_the_first_letters_of_two_words() -> None:
    """Two words give two initials, upper-cased; a name of no letter gives `?`."""
    assert [initials(n) for n in ("alice", "bob smith jr", "<>", "x 😀", "ß")] == [
        "A", "BS", "?", "X", "S"]
    assert initials_avatar("Alice") == initials_avatar("alice")  # one colour per name key


def test_an_unknown_avatar_kind_is_refused() -> None:
    """--avatars takes initials or gravatar; anything else names itself and the choices."""
    with pytest.raises(ConfigError, match="--avatars is robohash; it must be initials or "
                                          "gravatar"):
        Settings(avatars="robohash")


async def page(port: int) -> tuple[str, str]:
    """The page's Content-Security-Policy and HTML."""
    response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/")
    return response.headers["Content-Security-Policy"], response.body.decode()


@pytest.mark.gen_test
async def test_by_default_the_page_may_load_no_picture_from_another_host(
        http_server: object, http_port: int) -> None:
    """The page's policy allows images from itself and data: URLs; it asks for no email."""
    csp, html = await page(http_port)
    assert "img-src 'self' data:;" in csp and "gravatar" not in csp
    assert '<meta name="chat-avatars" content="initials">' in html


@pytest.mark.settings(avatars="gravatar")
@pytest.mark.gen_test
async def test_with_gravatar_the_page_may_load_gravatar_pictures(
        http_server: object, http_port: int) -> None:
    """With --avatars gravatar the policy allows Gravatar's hosts, and the page knows it."""
    csp, html = await page(http_port)
    assert "img-src 'self' data: https://www.gravatar.com https://secure.gravatar.com" in csp
    assert '<meta name="chat-avatars" content="gravatar">' in html

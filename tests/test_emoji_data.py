"""The page's emoji picker data (static/vendor/emoji.json) agrees with the server: every emoji
it offers is a reaction the server takes as it is, every shortcode it shows is one the server
turns into that emoji (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chat.protocol.parse import reaction_emoji
from chat.protocol.text import expand_shortcodes
from chat_server import ChatApplication
from tests.helpers import Connect
from tests.test_message_changes import post
from tests.test_rooms import app, team  # noqa: F401 (app: a fixture)

DATA = Path(__file__).resolve().parent.parent / "static/vendor/emoji.json"


def picker_emoji() -> list[tuple[str, str, list[str], str]]:
    """(emoji, name, shortcodes, keywords) of every emoji the picker offers."""
    data: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    return [(e[0], e[1], e[2], e[3]) for c in data["categories"] for e in c["emoji"]]


def test_every_picker_emoji_is_a_reaction_the_server_keeps_as_sent() -> None:
    """Each emoji is one the `react` frame accepts and stores unchanged (so the picker's
    reaction and the same one sent elsewhere are one), under a unique entry."""
    entries = picker_emoji()
    assert len(entries) > 1500
    refused = [(char, name) for char, name, _, _ in entries if reaction_emoji(char) != char]
    assert refused == []
    chars = [char for char, *_ in entries]
    assert len(set(chars)) == len(chars)


def test_every_shortcode_the_picker_shows_is_one_the_server_converts_to_that_emoji() -> None:
    """:code: in a message and in a `react` frame become the very emoji the picker lists."""
    entries = picker_emoji()
    wrong = [(char, code) for char, _, codes, _ in entries
             for code in codes
             if expand_shortcodes(f":{code}:") != char or reaction_emoji(f":{code}:") != char]
    assert wrong == []
    # All but a few have one: the server's table gives `:beetle:` to 🐞, not to 🪲.
    assert sum(1 for e in entries if not e[2]) <= 5


def test_the_pickers_thumbs_up_is_the_quick_reaction() -> None:
    """"thumbs up" is 👍 without U+FE0F (emojibase adds one): the page's +👍 button sends 👍,
    and the two must be one reaction."""
    by_name = {name: char for char, name, _, _ in picker_emoji()}
    assert by_name["thumbs up"] == "👍"
    assert by_name["red heart"] == "❤️"  # Unicode's fully-qualified form keeps its FE0F


@pytest.mark.gen_test(timeout=30)
async def test_picker_emoji_react_over_a_socket_and_come_back_as_sent(
    app: ChatApplication, connect: Connect,  # noqa: F811
) -> None:
    """The first emoji of each category, a joined (ZWJ) sequence and a flag, each sent in a
    `react` frame, come back in `reacted` exactly as the picker has them."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    chosen = [c["emoji"][0][0] for c in data["categories"]]
    entries = picker_emoji()
    chosen.append(next(char for char, *_ in entries if "\u200d" in char))
    chosen.append(next(char for char, name, *_ in entries if name.startswith("flag: ")))
    _root, ann, bob = await team(app, connect, "ann", "bob")
    target = await post(ann, "react to everything")
    for char in chosen[:6]:  # within the default --max-reactions per message
        await bob.send({"type": "react", "room": "general", "id": target, "emoji": char})
        got = await bob.recv_type("reacted")
        assert got["reactions"][-1]["emoji"] == char
    other = await post(ann, "and the rest")
    for char in chosen[6:]:
        await bob.send({"type": "react", "room": "general", "id": other, "emoji": char})
        got = await bob.recv_type("reacted")
        assert got["reactions"][-1]["emoji"] == char

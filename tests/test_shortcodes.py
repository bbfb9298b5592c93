"""Emoji shortcodes become emoji in a message's prose only: never in code, URLs or words."""

from __future__ import annotations

import pytest

from chat.protocol.shortcodes import expand_shortcodes_in_prose as expand
from tests.helpers import Connect

CONVERTED = [
    ("hi :smile:", "hi 😄"),
    (":smile::smile:", "😄😄"),
    ("**:smile:** and _:tada:_ and ~~:+1:~~", "**😄** and _🎉_ and ~~👍~~"),
    ("> quoted :smile:", "> quoted 😄"),
    ("- item :tada:\n  - nested :tada:", "- item 🎉\n  - nested 🎉"),
    ("# heading :tada: #", "# heading 🎉 #"),
    ("Title :tada:\n===", "Title 🎉\n==="),
    ("[:smile:](https://example.org/)", "[😄](https://example.org/)"),
    ("(:smile:)", "(😄)"),
    ("x\t:smile:", "x\t😄"),
]

LITERAL = [
    "`:smile:`",
    "``a ` :smile: ``",  # a code span opened by two backticks holds a single one
    "```python\nface = ':smile:'\n```",
    "~~~\n:smile:\n~~~",
    "    indented code :smile:",
    "see https://example.org/?q=:smile: now",
    "<https://example.org/?q=:smile:>",
    "[link](https://example.org/?q=:smile:)",
    "[ref]: https://example.org/?q=:smile:",
    "a:smile:b",
    "word:smile:",
    ":smile:word",
    "\\:smile:",  # an escaped colon is a colon
    ":not_an_emoji:",
    "time 10:30: ok",
]


@pytest.mark.parametrize(("text", "expected"), CONVERTED)
def test_shortcodes_in_prose_become_emoji(text: str, expected: str) -> None:
    """A known code standing alone in prose, emphasis, quotes, lists or headings is expanded."""
    assert expand(text) == expected


@pytest.mark.parametrize("text", LITERAL)
def test_shortcodes_stay_literal_in_code_urls_and_words(text: str) -> None:
    """A code inside code, a URL, a word, or after a backslash stays exactly as typed."""
    assert expand(text) == text


def test_code_and_prose_on_one_line_are_told_apart() -> None:
    """On one line, the code span keeps its shortcode and the prose beside it gets the emoji."""
    text = "run `echo :+1:` then :+1: and ``:tada: ` :tada:`` :tada:"
    assert expand(text) == "run `echo :+1:` then 👍 and ``:tada: ` :tada:`` 🎉"


def test_code_block_between_paragraphs_keeps_its_codes() -> None:
    """A fenced block's lines stay literal while the paragraphs around it are expanded."""
    text = ":smile: before\n\n```js\nconst s = ':smile:';\n```\nafter :smile:"
    assert expand(text) == "😄 before\n\n```js\nconst s = ':smile:';\n```\nafter 😄"


def test_html_is_text_and_codes_beside_it_expand() -> None:
    """HTML in a message is not parsed as HTML: codes in it are prose (the page shows text)."""
    assert expand("<b>:smile:</b>") == "<b>😄</b>"


def test_a_long_run_of_codes_expands_every_one() -> None:
    """A thousand :+1: in a row become a thousand thumbs."""
    assert expand(":+1:" * 1000) == "👍" * 1000


@pytest.mark.gen_test
async def test_code_reaches_readers_and_tutorial_clients_as_typed(connect: Connect) -> None:
    """Over a socket, a message's code keeps its shortcodes for readers and tutorial clients."""
    legacy, alice = await connect(), await connect()
    await legacy.send({"email": "bob@example.com", "username": "bob", "message": "hi"})
    await legacy.recv()
    await alice.join("alice")
    text = "**bold** :tada: `:tada:`\n```\n:tada: <script>x</script>\n```"
    await alice.send({"type": "message", "text": text, "cid": "c-1"})
    event = await alice.recv_type("message")
    expected = "**bold** 🎉 `:tada:`\n```\n:tada: <script>x</script>\n```"
    assert event["message"] == expected
    plain = await legacy.recv()
    assert (plain["type"], plain["message"]) == ("message", expected)  # Markdown, as text
    await alice.send({"type": "history", "room": "general"})
    history = await alice.recv_type("history")
    assert history["messages"][-1]["message"] == expected

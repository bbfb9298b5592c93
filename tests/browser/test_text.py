"""How the page splits a message into text, links and mentions (static/js/text.js)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import REPO

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

T, L, M = "text", "link", "mention"

CASES = [
    ("plain words", None, [(T, "plain words")]),
    ("see https://example.org/a?b=1.", None,
     [(T, "see "), (L, "https://example.org/a?b=1"), (T, ".")]),
    ("(https://en.wikipedia.org/wiki/Tornado_(web_server))", None,
     [(T, "("), (L, "https://en.wikipedia.org/wiki/Tornado_(web_server)"), (T, ")")]),
    ("HTTP://EXAMPLE.ORG/X and javascript:alert(1) and data:text/html,x", None,
     [(L, "HTTP://EXAMPLE.ORG/X"), (T, " and javascript:alert(1) and data:text/html,x")]),
    ("write to bob@example.org", "bob", [(T, "write to bob@example.org")]),
    ("@alice, look.", "alice", [(M, "@alice", True), (T, ", look.")]),
    ("thanks @bob.", "alice", [(T, "thanks "), (M, "@bob", False), (T, ".")]),
    ("hi @Ann Lee!", "ann lee", [(T, "hi "), (M, "@Ann Lee", True), (T, "!")]),
    ("@alicex is not @alice", "alice",
     [(M, "@alicex", False), (T, " is not "), (M, "@alice", True)]),
    ("https://example.org/@alice", "alice", [(L, "https://example.org/@alice")]),
]


@pytest.fixture(scope="module")
def page(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """text.js alone, loaded from disk: parsing needs no server."""
    root = tmp_path_factory.mktemp("text")
    script = (REPO / "static/js/text.js").as_uri()
    (root / "index.html").write_text(f'<script src="{script}"></script>')
    context = browser.new_context()
    page = context.new_page()
    page.goto((root / "index.html").as_uri())
    yield page
    context.close()


@pytest.mark.parametrize(("text", "me", "expected"), CASES)
def test_text_splits_into_text_links_and_mentions(
    page: Page, text: str, me: str, expected: list[tuple[str | bool, ...]],
) -> None:
    """Only http(s) URLs become links; @name is a mention, marked when it names the reader."""
    pieces = page.evaluate("([t, me]) => Chat.parseText(t, me)", [text, me])
    got = [
        (p["kind"], p["text"], p["me"]) if p["kind"] == M else (p["kind"], p["text"])
        for p in pieces
    ]
    assert got == expected
    for piece in pieces:
        if piece["kind"] == L:
            assert piece["href"].lower().startswith(("http://", "https://"))

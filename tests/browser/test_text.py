"""How the page splits a message into text, links and mentions (static/js/text.js)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import REPO

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

pytestmark = pytest.mark.browser

T, L, M = "text", "link", "mention"
ORIGIN = "http://text.test"
# The page's test hook (static/js/main.js) is window.Chat; here it holds only the parser.
PAGE = ('<script type="module">import { parseText } from "/js/text.js";'
        " window.Chat = { parseText };</script>")

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
def page(browser: Browser) -> Iterator[Page]:
    """text.js alone, served from disk by the browser context itself: parsing needs no server."""
    # An ES module cannot load from file:// (its fetch needs CORS), so the context answers a
    # made-up origin with the page and static/js; nothing reaches the network.
    context = browser.new_context()

    def serve(route: Route) -> None:
        path = urlsplit(route.request.url).path
        if path == "/":
            route.fulfill(content_type="text/html", body=PAGE)
        elif path == "/js/text.js":
            route.fulfill(content_type="text/javascript", path=REPO / "static/js/text.js")
        else:
            route.abort()

    context.route("**/*", serve)
    page = context.new_page()
    page.goto(f"{ORIGIN}/")
    page.wait_for_function("window.Chat !== undefined")
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

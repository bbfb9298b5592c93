"""A message's Markdown renders as formatting, and HTML or script in it never runs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import People

pytestmark = pytest.mark.browser

# Each would set window.pwned (or open a dialog) if any of it were taken as HTML or a link.
HOSTILE = "\n\n".join([
    'raw <img src=x onerror="window.pwned=1"> and <script>window.pwned=2</script>',
    "[click](javascript:window.pwned=3) <javascript:window.pwned=4> [v](vbscript:msgbox(1))",
    "[d](data:text/html,<script>window.pwned=5</script>) ![pic](https://example.net/p.png)",
    "`` `<img src=x onerror=window.pwned=6>` `` and **`<b>x</b>`**",
    '```"><img src=x onerror=window.pwned=7>\n<script>window.pwned=8</script>\n```',
    "> <iframe src=javascript:window.pwned=9></iframe>",
])

FORMATTED = "\n".join([
    "**bold** _italic_ ~~gone~~ `a := b` @alice `@alice`",
    "",
    "- one",
    "- two :tada: `:tada:`",
    "",
    "> quoted",
    "",
    "```python",
    "print(':tada:')",
    "```",
    "[site](https://example.org/docs) and https://example.com/x",
])


def test_hostile_markdown_renders_inert(people: People) -> None:
    """HTML, script, javascript:/data:/vbscript: links and code in a message stay text."""
    alice, mallory = people("alice"), people("mallory")
    for person in (alice, mallory):
        person.open()
        person.join()
    mallory.say(HOSTILE)
    for person in (alice, mallory):
        page = person.page
        text = person.message("raw <img").locator(".text")
        expect(text).to_contain_text('<img src=x onerror="window.pwned=1">')
        expect(text).to_contain_text("<script>window.pwned=2</script>")
        expect(text).to_contain_text("[click](javascript:window.pwned=3)")
        expect(text.locator("pre")).to_have_attribute(
            "data-language", '"><img')  # the fence's "language": an attribute's text
        expect(text.locator("pre code")).to_have_text("<script>window.pwned=8</script>")
        expect(text.locator("code").first).to_have_text("`<img src=x onerror=window.pwned=6>`")
        assert text.locator("img, script, iframe, b").count() == 0
        # The one link is the image's address (images are off, so it is a plain link); no
        # javascript:, data: or vbscript: address became one.
        expect(text.locator("a")).to_have_count(1)
        expect(text.locator("a")).to_have_attribute("href", "https://example.net/p.png")
        assert page.evaluate("window.pwned") is None
        assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
        assert not any(urlsplit(url).path in ("/x", "/p.png") for url in person.requests)
        person.assert_clean()  # no dialog, no console error, no foreign request (the image)


def test_markdown_subset_renders_as_formatting(people: People) -> None:
    """Bold, italic, strikethrough, code, lists, quotes, fenced code and links render."""
    bob, alice = people("bob"), people("alice")
    for person in (bob, alice):
        person.open()
        person.join()
    bob.say(FORMATTED)
    text = alice.message("bold").locator(".text")
    expect(text.locator("strong")).to_have_text("bold")
    expect(text.locator("em")).to_have_text("italic")
    expect(text.locator("s")).to_have_text("gone")
    expect(text.locator("p code").first).to_have_text("a := b")
    expect(text.locator(".mention")).to_have_count(1)  # not the one in code
    expect(text.locator("ul > li")).to_have_count(2)
    expect(text.locator("ul > li").nth(1)).to_have_text("two 🎉 :tada:")  # the server's emoji
    expect(text.locator("blockquote")).to_have_text("quoted")
    expect(text.locator("pre")).to_have_attribute("data-language", "python")
    expect(text.locator("pre code")).to_have_text("print(':tada:')")
    links = text.locator("a")
    expect(links).to_have_count(2)
    hrefs = ["https://example.org/docs", "https://example.com/x"]
    for link, href in zip(links.all(), hrefs, strict=True):
        expect(link).to_have_attribute("href", href)
        expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
        expect(link).to_have_attribute("target", "_blank")
    expect(links.first).to_have_text("site")
    alice.assert_clean()
    bob.assert_clean()


def test_a_mention_inside_code_a_link_or_a_url_is_not_highlighted(people: People) -> None:
    """Only bob's message naming @alice in prose is marked as mentioning her; those naming
    her inside inline code, a fenced block, a link or a URL are not (the server's unread
    mentions follow the same rule)."""
    alice, bob = people("alice"), people("bob")
    for person in (alice, bob):
        person.open()
        person.join()
    for text in ("inline `@alice` code", "fenced\n```\n@alice\n```", "[@alice page](https://x.org)",
                 "url https://example.org/@alice", "prose @alice here"):
        bob.say(text)
    expect(alice.message("prose")).to_have_class(re.compile(r"\bmentions-me\b"))
    for start in ("inline", "fenced", "page", "url"):
        expect(alice.message(start)).not_to_have_class(re.compile(r"\bmentions-me\b"))
    expect(alice.page.locator(".message.mentions-me")).to_have_count(1)
    alice.assert_clean()
    bob.assert_clean()

"""Mentions: `@name` in a message's prose, never inside code, a link or a URL.

The page decides the same way (static/js/markdown.js's `mentionsMe`): it renders the text with
markdown-it and looks for mentions only in the text of the tree, outside code spans, fenced and
indented code blocks, links (their text and address) and bare http(s) URLs. The server parses
with markdown-it-py, a port of the same parser, with the page's options, so a message the page
does not highlight is not counted as a mention in `unread` either.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from markdown_it import MarkdownIt

# A bare URL in text, as the page's static/js/text.js LINK finds one (to white space or a
# character that cannot appear unescaped in a URL).
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)


def _http(url: str) -> bool:
    return urlsplit(url).scheme.lower() in ("http", "https")


def _parser() -> MarkdownIt:
    """The page's subset: CommonMark, strikethrough, no HTML, headings, rules or images."""
    md = MarkdownIt("commonmark", {"html": False}).enable("strikethrough")
    md.disable(["heading", "lheading", "hr", "image", "html_block", "html_inline"])
    # The page keeps a link to anything but http(s) as text (safeHref): so does this.
    md.validateLink = _http  # type: ignore[method-assign]
    return md


_MD = _parser()


def pattern(name: str) -> re.Pattern[str]:
    """`@name`, in any case, not inside a longer word or name (`@annie` does not name ann)."""
    return re.compile(r"(?<![\w@])@" + re.escape(name) + r"(?!\w)", re.IGNORECASE)


def prose(text: str) -> list[str]:
    """The pieces of `text` a mention counts in: its text outside code and links, each bare
    URL replaced by a space."""
    pieces: list[str] = []
    for token in _MD.parse(text):
        if token.type != "inline":
            continue  # code blocks and fences are block tokens of their own
        in_link = 0
        for child in token.children or []:
            if child.type == "link_open":
                in_link += 1
            elif child.type == "link_close":
                in_link -= 1
            elif child.type == "text" and not in_link:
                pieces.append(_URL.sub(" ", child.content))
    return pieces


def mentions(text: str, named: re.Pattern[str]) -> bool:
    """Whether `text` mentions the name of `named` (a `pattern()`) in its prose."""
    if "@" not in text:
        return False  # the usual case: no parse (not named.search: `_@ann_` is emphasis)
    return any(named.search(piece) for piece in prose(text))

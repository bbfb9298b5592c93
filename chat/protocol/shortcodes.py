"""Emoji :shortcodes: in message text, turned into emoji only where Markdown shows prose.

Message text is Markdown (the page renders it with markdown-it, static/vendor/). A shortcode
stays as typed inside inline code and fenced or indented code blocks, inside a URL (bare,
`<autolink>` or a link's destination), in the middle of a word (`a:smile:b`), and after a
backslash (`\\:smile:`). markdown-it-py finds those places as CommonMark defines them: its
block parser skips code blocks, and an inline rule of ours, tried only where its inline parser
is left with prose, marks each code it meets. The text itself is never re-rendered: each
marked code is replaced in the original string, so what the sender typed is kept byte for byte.
"""

from __future__ import annotations

import re
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

from chat.protocol.text import SHORTCODE, shortcode_emoji

# The end of a URL after its "scheme:": as the page's static/js/text.js ends a bare link.
_URL_REST = re.compile(r"//[^\s<>\"'`]+")
_SCHEME = re.compile(r"(?:^|[^A-Za-z0-9.+-])[A-Za-z][A-Za-z0-9.+-]*$")
_FOUND = "shortcodes"  # the parser env's key: [(inline source, position, code, emoji)]


def _word(ch: str) -> bool:
    return ch.isalnum()  # not "_": `_:tada:_` is emphasis around a code


def _bare_url(state: StateInline, silent: bool) -> bool:
    """A bare URL (`https://x.org/:smile:`) kept as text, so no code inside it is taken."""
    pos = state.pos
    if state.src[pos] != ":" or not _SCHEME.search(state.pending):
        return False
    rest = _URL_REST.match(state.src, pos + 1)
    if rest is None:
        return False
    if not silent:
        state.pending += state.src[pos:rest.end()]
    state.pos = rest.end()
    return True


def _shortcode(state: StateInline, silent: bool) -> bool:
    """A known :code: standing alone (not touching a letter or digit) is marked for emoji."""
    pos, src = state.pos, state.src
    if src[pos] != ":" or (pos > 0 and _word(src[pos - 1])):
        return False
    match = SHORTCODE.match(src, pos, state.posMax)
    if match is None or (match.end() < len(src) and _word(src[match.end()])):
        return False
    emoji = shortcode_emoji(match[0])
    if emoji is None:
        return False
    if not silent:
        state.env[_FOUND].append((src, pos, match[0], emoji))
        state.pending += match[0]
    state.pos = match.end()
    return True


def _parser() -> MarkdownIt:
    """CommonMark with the page's extras (strikethrough), no HTML, and our two rules."""
    md = MarkdownIt("commonmark", {"html": False}).enable("strikethrough")
    md.inline.ruler.before("newline", "bare_url", _bare_url)
    md.inline.ruler.after("bare_url", "shortcode", _shortcode)
    return md


_MD = _parser()


def expand_shortcodes_in_prose(text: str) -> str:
    """`text` with each :shortcode: outside code, URLs and words made its emoji."""
    if ":" not in text or not SHORTCODE.search(text):
        return text
    env: dict[str, Any] = {_FOUND: []}
    tokens = _MD.parse(text, env)
    found: list[tuple[str, int, str, str]] = env[_FOUND]
    if not found:
        return text
    inline = {id(t.content): t for t in tokens if t.type == "inline"}
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    replacements: list[tuple[int, str, str]] = []
    for src, pos, code, emoji in found:
        token = inline.get(id(src))
        at = _offset(token, src, pos, lines, starts) if token is not None else None
        if at is not None and text.startswith(code, at):
            replacements.append((at, code, emoji))
    out: list[str] = []
    last = 0
    for at, code, emoji in sorted(replacements):
        if at < last:
            continue
        out += [text[last:at], emoji]
        last = at + len(code)
    out.append(text[last:])
    return "".join(out)


def _offset(token: Token, src: str, pos: int, lines: list[str], starts: list[int]) -> int | None:
    """Where `pos` of an inline token's source is in the whole text, or None if unsure.

    A block's inline source is its lines with the block's own marks (indent, `>`, list
    bullets, a heading's `#`s) cut from their starts, so each of its lines ends one line of
    the text (give or take trailing spaces). A line whose tabs the parser expanded is not
    found, and its codes are left as typed.
    """
    if token.map is None:
        return None
    row = src.count("\n", 0, pos)
    column = pos - (src.rfind("\n", 0, pos) + 1)
    piece = src.split("\n")[row]
    line_no = token.map[0] + row
    if line_no >= len(lines):
        return None
    start = lines[line_no].rfind(piece)
    return None if start < 0 else starts[line_no] + start + column

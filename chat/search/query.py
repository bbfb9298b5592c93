"""A search query as people type it: words, `word*` prefixes; and the excerpts that mark them.

Nothing a user types reaches the databases' query languages as syntax: the query is cut into
words (runs of letters and digits, as SQLite FTS5's unicode61 tokenizer cuts text, and as the
PostgreSQL index sees text with everything else replaced by spaces), and each word is written
into the backend's query quoted (FTS5) or as a lexeme (tsquery). Quotes, parentheses, `NEAR`,
`AND`/`OR`/`NOT`, `-`, `^` and `column:` filters are only words or separators here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A word: letters and digits (Unicode); `_` and everything else separates, as in FTS5's
# unicode61 (categories L*, N*, Co) and PostgreSQL's [:alnum:].
_WORD = re.compile(r"[^\W_]+")
# A word typed with a `*` right after it is a prefix.
_TERM = re.compile(r"([^\W_]+)(\*?)")
# Words a query may hold: each is a term both backends must intersect (bounded work).
TERMS_MAX = 16
# A prefix shorter than this matches too many words to be a useful search (and costs a scan
# of much of the index): it is searched as a whole word instead (characters).
PREFIX_MIN_CHARS = 2
# Characters of a message shown around its first hit in a result's excerpt (the page shows
# one or two lines; the whole text is a history read away).
EXCERPT_CHARS = 160


@dataclass(frozen=True, slots=True)
class Term:
    word: str  # lower-cased
    prefix: bool = False


def terms(text: str) -> list[Term]:
    """The terms of a query, in order, each once (the caller refuses more than TERMS_MAX)."""
    found: list[Term] = []
    for match in _TERM.finditer(text):
        word = match.group(1).lower()
        term = Term(word, bool(match.group(2)) and len(word) >= PREFIX_MIN_CHARS)
        if term not in found:
            found.append(term)
    return found


def _quoted(words: str) -> str:
    return '"' + words.replace('"', '""') + '"'


def fts5_match(query: list[Term], conversation: str | None = None) -> str:
    """The FTS5 MATCH expression: every term in the text column, each a quoted string (no
    operator survives); with `conversation`, its words as a phrase in the conversation column
    (the index then finds a room's hits without reading every other room's)."""
    match = "{text} : (" + " AND ".join(_quoted(term.word) + ("*" if term.prefix else "")
                                         for term in query) + ")"
    words = _WORD.findall(conversation.lower()) if conversation is not None else []
    if words:  # the exact conversation is compared besides: this only narrows
        match += " AND {conversation} : " + _quoted(" ".join(words))
    return match


def tsquery(query: list[Term]) -> str:
    """The to_tsquery('simple', ...) text: every term a quoted lexeme, `:*` for a prefix."""
    # Words hold letters and digits only; the quotes are doubled all the same.
    return " & ".join("'" + term.word.replace("'", "''") + "'" + (":*" if term.prefix else "")
                      for term in query)


def _hit(word: str, query: list[Term]) -> bool:
    lowered = word.lower()
    return any(lowered.startswith(term.word) if term.prefix else lowered == term.word
               for term in query)


def excerpt(text: str, query: list[Term], width: int = EXCERPT_CHARS) -> list[list[object]]:
    """Up to `width` characters of the text around its first hit, as segments
    [text, hit]: the page marks each hit segment itself (no markup in the text)."""
    spans = [(m.start(), m.end()) for m in _WORD.finditer(text) if _hit(m.group(0), query)]
    start = 0
    if spans and len(text) > width:
        # The first hit a third of the way in, so the words before it give some context.
        start = max(0, min(spans[0][0] - width // 3, len(text) - width))
    end = min(len(text), start + width)
    segments: list[list[object]] = []
    at = start
    for low, high in spans:
        if high <= start or low >= end:
            continue
        low, high = max(low, start), min(high, end)
        if low > at:
            segments.append([text[at:low], False])
        segments.append([text[low:high], True])
        at = high
    if at < end:
        segments.append([text[at:end], False])
    if start > 0:
        segments.insert(0, ["…", False])
    if end < len(text):
        segments.append(["…", False])
    return segments

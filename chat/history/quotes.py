"""Replies' quotes: the message a reply answers, as its readers are shown it now.

A reply stores only the id of the message it answers (`reply_to`, same conversation). Its
author and excerpt are read whenever a reply is sent out, live or from history, so an edited
original shows its new text and a deleted or removed one shows as deleted.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable

from chat.record import Quote, StoredMessage
from chat.store.base import HistoryStore, StoreError

log = logging.getLogger("chat.quotes")

# Characters of the original a reply carries (white space runs count as one): about a line of
# the page's composer, enough to recognise a message, short enough that a page of 200 replies
# stays small (docs/protocol.md, "Replies").
EXCERPT_CHARS = 100

# The ids among a room's messages that moderators removed (Replay._hidden's shape).
Hidden = Callable[[str, list[StoredMessage]], Awaitable[set[int]]]


def excerpt(text: str) -> str:
    """The start of `text` on one line, cut at EXCERPT_CHARS with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[:EXCERPT_CHARS - 1].rstrip() + "…"


async def originals(store: HistoryStore, hidden: Hidden, conversation: str,
                    ids: set[int]) -> dict[int, Quote]:
    """The quote of each id of `conversation`: deleted for one it no longer has or hides."""
    if not ids:
        return {}
    found = await store.by_ids(conversation, ids)
    removed = await hidden(conversation, found)
    quotes = {i: Quote(i, deleted=True) for i in ids}
    for stored in found:
        # Text emptied by a delete (a message is never sent empty) shows as deleted too.
        if stored.id not in removed and stored.text:
            quotes[stored.id] = Quote(stored.id, stored.username, excerpt(stored.text))
    return quotes


async def attach(store: HistoryStore, hidden: Hidden, conversation: str,
                 messages: list[StoredMessage]) -> list[StoredMessage]:
    """`messages` with the quote of each reply among them; as they are if the store fails."""
    ids = {m.reply_to for m in messages if m.reply_to is not None}
    if not ids:
        return messages
    try:
        quotes = await originals(store, hidden, conversation, ids)
    except StoreError as exc:  # the replies go out with their ids only
        log.warning("quotes of %s unavailable: %s", conversation, exc)
        return messages
    return [dataclasses.replace(m, quote=quotes[m.reply_to]) if m.reply_to is not None else m
            for m in messages]

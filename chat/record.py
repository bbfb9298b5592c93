"""The message record every part of the chat passes around: stored, announced, replayed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message as stored; `conversation` is a room name or a `dm_key()`."""

    conversation: str
    id: int
    username: str
    avatar: str
    text: str
    ts: int  # ms since the Unix epoch
    cid: str | None = None
    to: str | None = None  # the recipient's name, for direct messages


def dm_key(a: str, b: str) -> str:
    """The conversation key of the direct messages between users `a` and `b`."""
    # The case-folded spellings, not `names.name_key`: the stored conversations keep their keys,
    # and a look-alike who takes a name once its holder is offline (`аlice` for `alice`) does
    # not read the holder's conversations. Both parties are spelled as they hold their names.
    first, second = sorted((a.casefold(), b.casefold()))
    # '@' and '\x1f' cannot occur in room names, so the key never collides with a room.
    return f"@{first}\x1f{second}"

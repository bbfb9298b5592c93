"""The message record every part of the chat passes around: stored, announced, replayed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
    # Sent by a guest (no account): kept by the stores (since issue 14's guest marks) and
    # carried on the broker, so history pages mark it as live events do.
    guest: bool = False
    # Uploads the message carries (issue 18), as the API shows them ({id, name, size, type,
    # url, ...}); the store keeps them beside the message (chat/files/), not in its row.
    files: tuple[dict[str, Any], ...] = ()


# A direct conversation's key starts with '@' (which no room name has). Since issue 14 its two
# parties are their ids, never their names: `a:<account id>` for an account, `g:<id>` for a
# guest's session (people/identity.py). The '\x1e' after '@' cannot begin a username (control
# characters are refused), so no key written before, `@<name>\x1f<name>` of case-folded names,
# is ever equal to one written now: those old conversations are no longer anyone's
# (docs/protocol.md, "Direct messages").
DM_PREFIX = "@\x1e"


def dm_key(a: str, b: str) -> str:
    """The conversation key of the direct messages between the parties with ids `a` and `b`."""
    first, second = sorted((a, b))
    return f"{DM_PREFIX}{first}\x1f{second}"


def dm_parties(conversation: str) -> list[str]:
    """The party ids of a `dm_key()`; [] for a room or a direct conversation of old (by names)."""
    if not conversation.startswith(DM_PREFIX):
        return []
    return conversation[len(DM_PREFIX):].split("\x1f")

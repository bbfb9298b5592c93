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
    # The id of the message of the same conversation this one answers (replies, issue 16).
    reply_to: int | None = None
    # What the reader is shown of that message, looked up when the event is made (never
    # stored): chat/history/quotes.py. None: not looked up.
    quote: Quote | None = None
    # Sent by a bot account (chat/accounts/tokens.py, through the HTTP API) or posted by a
    # webhook (chat/hooks/): no person wrote it. Kept and carried as `guest` is.
    bot: bool = False

    # The message lifecycle (issue 16, chat/history/changes.py): when it was last edited and
    # deleted (ms; None: not), its conversation's change number of that change (0: none), and
    # its author's party (people/identity.py; None for messages stored before it was kept).
    edited: int | None = None
    deleted: int | None = None
    change: int = 0
    author: str | None = None
    reactions: str | None = None  # JSON (chat/store/reactions.py); None: no reactions

    # Uploads the message carries (issue 18), as the API shows them ({id, name, size, type,
    # url, ...}); the store keeps them beside the message (chat/files/), not in its row.
    files: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Quote:
    """A replied-to message as a reply shows it: its author and the start of its text now.

    `deleted`: it was deleted or removed by a moderator (author and excerpt are then empty).
    """

    id: int
    author: str = ""
    excerpt: str = ""
    deleted: bool = False


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

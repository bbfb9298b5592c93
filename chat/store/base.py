"""The history store interface: what the hub needs from any backend."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol, runtime_checkable

from chat.record import DM_PREFIX, StoredMessage

# A repeated `cid` from the same user within this window returns the original message.
IDEMPOTENCY_WINDOW_MS = 10 * 60 * 1000  # 10 min, as promised in docs/protocol.md
DAY_MS = 24 * 60 * 60 * 1000  # one day in ms: retention's `days` counts these
# Room retention never deletes this conversation: protocol.DEFAULT_ROOM, which always exists.
PERMANENT_CONVERSATION = "general"

class StoreError(Exception):
    """A write or read failed in the backend (disk full, locked file, lost connection)."""


class CidReused(Exception):
    """The sender used this `cid` for a message to another conversation within the window."""

    def __init__(self, cid: str) -> None:
        super().__init__(f"cid {cid!r} was used for another conversation")
        self.cid = cid


class HistoryStore(Protocol):
    """Durable, ordered history per conversation.

    `append` returns only once the message is durable (that is what makes the sender's copy an
    acknowledgement) and raises StoreError otherwise. Ids count up by one per conversation, from
    1, with no gaps and no reuse (also after retention deleted everything): so a reader asking
    `after(since)` knows messages were pruned if the first id it gets is not `since + 1`.
    Concurrent appends resolve in id order. Reads return messages oldest first.

    Retention (the last `per_conversation` messages, none older than `days`) may be applied in
    the background: until it runs, reads can return a few messages more than the limits.
    Room retention deletes a whole conversation (messages and counter) once its newest message
    is older than `room_days` (0: never), or once `days` has emptied it; never
    PERMANENT_CONVERSATION. Ids stay unique per conversation all the same: the store remembers
    one number, the highest last id of any conversation it deleted, and a conversation it has
    no counter for starts above it (so ids start at 1 only until a conversation was deleted).

    A `cid` is scoped to its sender (case-blind) across all conversations, for
    IDEMPOTENCY_WINDOW_MS: repeated in the same conversation, append returns the original
    (or, if retention deleted it meanwhile, the original's id and ts with the repeat's text);
    repeated for another conversation, append raises CidReused and stores nothing.
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def append(
        self,
        conversation: str,
        *,
        username: str,
        avatar: str,
        text: str,
        ts: int,
        cid: str | None = None,
        to: str | None = None,
        guest: bool = False,
        reply_to: int | None = None,
        bot: bool = False,
        author: str | None = None,
    ) -> tuple[StoredMessage, bool]:
        """Store a message; (message, True), or (the original, False) for a repeated cid;
        CidReused for a cid the sender used in another conversation."""
        ...

    async def latest(self, conversation: str, limit: int) -> list[StoredMessage]: ...

    async def before(
        self, conversation: str, before_id: int, limit: int
    ) -> list[StoredMessage]: ...

    async def after(self, conversation: str, after_id: int, limit: int) -> list[StoredMessage]: ...

    async def by_ids(self, conversation: str, ids: Collection[int]) -> list[StoredMessage]:
        """The messages of `conversation` with these ids that it still has, oldest first."""
        ...

    async def prune(self) -> int:
        """Apply retention (room retention too) now; the number of messages it deleted."""
        ...

    # The message lifecycle (chat/history/changes.py). Each edit or delete takes the next
    # number of its conversation's change counter (from 1; 0: nothing changed yet) and stamps
    # the message with it, in one transaction. A deleted message stays as a tombstone: text
    # '', `deleted` set (ids keep no gaps); latest/before/after return tombstones too (readers
    # leave them out). Once `delete` returns, the text is in no file of a SQLite store (its
    # WAL checkpointed) and in no live row of PostgreSQL's (docs/deployment.md: vacuum).

    async def find(self, conversation: str, message_id: int) -> StoredMessage | None:
        """The message (a tombstone too), or None if there is none with that id."""
        ...

    async def edit(self, conversation: str, message_id: int, text: str,
                   ts: int) -> StoredMessage | None:
        """Replace the text, mark it edited at `ts`; the message now, or None if there is no
        such message or it was deleted."""
        ...

    async def delete(self, conversation: str, message_id: int,
                     ts: int) -> StoredMessage | None:
        """Erase the text, mark it deleted at `ts`; the tombstone, or None if there is no
        such message or it was deleted already."""
        ...

    async def react(self, conversation: str, message_id: int, emoji: str, party: str,
                    name: str, add: bool, limit: int) -> StoredMessage | None:
        """Add (or take back) `party`'s `emoji` (chat/store/reactions.py) under the next change
        number; the message now, None if there is no such message or it was deleted;
        TooManyReactions for a new emoji past `limit` distinct ones."""
        ...

    async def changes(self, conversation: str, after_change: int,
                      limit: int) -> list[StoredMessage]:
        """The messages changed after change number `after_change`, in change order (each
        once, as it is now)."""
        ...

    async def last_change(self, conversation: str) -> int:
        """The conversation's last change number (0: none, or no such conversation)."""
        ...


@runtime_checkable
class ReadMarks(Protocol):
    """The last id each party read of each conversation, and when it was last seen (both
    stores keep them).

    `mark_read` keeps the larger of the stored and the given id (a mark never moves back) and
    returns the mark as stored; `unread` reads what is after a mark, tombstones left out;
    `direct_conversations` lists the direct conversations
    (record.dm_key) a party is in, with their last ids.
    """

    async def mark_read(self, party: str, conversation: str, last_read: int) -> int: ...

    async def read_marks(self, party: str) -> dict[str, int]: ...

    async def direct_conversations(self, party: str) -> list[tuple[str, int]]: ...

    async def unread(self, conversation: str, after_id: int, limit: int) -> list[StoredMessage]:
        """The messages after `after_id` that are not deleted (what a mark leaves unread),
        oldest first, at most `limit`."""
        ...

    async def saw(self, party: str, ts: int) -> None:
        """Note that the party was online until `ts` (ms); the latest time is kept."""
        ...

    async def last_seen(self, party: str) -> int | None:
        """When the party was last seen online (ms), or None if never noted."""
        ...


def direct_patterns(party: str) -> tuple[str, str]:
    """The LIKE patterns of the keys of a party's direct conversations (sql.DIRECT_OF)."""
    return f"{DM_PREFIX}{party}\x1f%", f"{DM_PREFIX}%\x1f{party}"

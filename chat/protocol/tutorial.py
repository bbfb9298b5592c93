"""The Go tutorial's frames, at the edge: typed events in, what the tutorial's page shows out.

A connection whose first frame is the tutorial's `{username, email, message}` speaks the
tutorial's dialect from then on. Its page renders every frame as a chat line from `username`,
so it receives room `message` events as they are (they carry `username` and `message`), errors
as a line from "server", and nothing else: no notices, presence, welcome or history frames, and
no direct messages (it is counted as such in the roster). Before its first frame every
connection watches `general` (chat/rooms/room.py), which is how the tutorial's page shows the chat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chat.protocol.frame import Frame

if TYPE_CHECKING:
    from chat.people.connections import Peer

# A legacy (tutorial) page renders every frame as a chat line from `username`.
LEGACY_ERROR_SENDER = "server"


class Dialect:
    """How one connection's events reach it: typed as docs/protocol.md lists them, by default."""

    typed = True  # receives every event type: notices, direct messages, replies

    def reply(self, peer: Peer, frame: Frame) -> None:
        """Answer the client's own request with a frame that is not a `message` event."""
        peer.reply(frame)

    def error(self, event: dict[str, Any]) -> Frame:
        """The frame of an `error` event for this connection."""
        return Frame.of(event)


class Tutorial(Dialect):
    """The tutorial's page: message events, and errors as chat lines; nothing else."""

    typed = False

    def reply(self, peer: Peer, frame: Frame) -> None:
        return None  # it would show a blank line

    def error(self, event: dict[str, Any]) -> Frame:
        return Frame.of({**event, "username": LEGACY_ERROR_SENDER, "message": event["reason"]})


TYPED = Dialect()
TUTORIAL = Tutorial()


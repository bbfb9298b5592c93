"""What a client can ask: the typed commands protocol.parse() returns, and the error it raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ProtocolError(Exception):
    """A frame the server refuses; becomes an `error` event for its sender."""

    def __init__(
        self, code: str, reason: str, *, request: str | None = None, **refs: Any
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.request = request
        self.refs = {key: value for key, value in refs.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Join:
    username: str | None
    email: str | None
    room: str
    token: str | None
    since: int | None
    changes: int | None = None  # the last change number the client holds (a resume)


@dataclass(frozen=True, slots=True)
class Post:
    room: str
    text: str
    cid: str | None
    reply_to: int | None = None  # the id of the room's message it answers
    files: tuple[str, ...] = ()  # upload ids (issue 18); the text may be empty with files


@dataclass(frozen=True, slots=True)
class Direct:
    to: str
    text: str
    cid: str | None
    reply_to: int | None = None  # the id of the conversation's message it answers
    files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Typing:
    room: str | None
    peer: str | None = None  # typing to the user `with`, in a direct conversation


@dataclass(frozen=True, slots=True)
class Leave:
    room: str


@dataclass(frozen=True, slots=True)
class History:
    room: str | None
    peer: str | None  # the other user of a direct conversation (`with`)
    before: int | None
    limit: int


@dataclass(frozen=True, slots=True)
class Members:
    room: str
    after: str | None  # a username: the page starts after it (case-folded order)
    limit: int | None  # None: the server's presence-max-members


@dataclass(frozen=True, slots=True)
class LegacyPost:
    """The tutorial's frame: {"email", "username", "message"} with no type."""

    username: str
    email: str | None
    text: str


@dataclass(frozen=True, slots=True)
class MarkRead:
    """`read`: the last id read of a room or of the direct conversation with `peer`."""

    room: str | None
    peer: str | None
    id: int


@dataclass(frozen=True, slots=True)
class Active:
    """`active`: the person is using the page (not away)."""


@dataclass(frozen=True, slots=True)
class StatusQuery:
    """`status`: who of `users` is online, away, or offline since when."""

    users: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RoomSet:
    """`room`: create a room, or change its topic or visibility (None: unchanged)."""

    name: str
    topic: str | None
    visibility: str | None


@dataclass(frozen=True, slots=True)
class Directory:
    """`rooms`: a page of the public rooms whose names start with `prefix`, after `after`."""

    prefix: str
    after: str
    limit: int


@dataclass(frozen=True, slots=True)
class Moderate:
    """`invite`, `kick`, `ban`, `unban`, `mute` or `role`, about `user` in `room` ("" for a
    ban or unban from the whole server)."""

    action: str
    room: str
    user: str
    minutes: int | None  # ban (None: until lifted), mute (0: lift it)
    role: str | None  # role's new role


@dataclass(frozen=True, slots=True)
class Remove:
    """`remove`: a moderator hides message `id` of `room`."""

    room: str
    id: int


@dataclass(frozen=True, slots=True)
class Change:
    """`edit` (with `text`) or `delete` of message `id` of a room, or of the direct
    conversation with `peer` (then `room` is None); `remove` is `delete` by its old name."""

    action: str  # "edit" or "delete"
    room: str | None
    peer: str | None
    id: int
    text: str | None  # edit's new text


@dataclass(frozen=True, slots=True)
class Changes:
    """`changes`: what changed in a room or direct conversation after change number `after`."""

    room: str | None
    peer: str | None
    after: int


@dataclass(frozen=True, slots=True)
class React:
    """`react`: add (or with `remove`, take back) one's `emoji` on message `id`."""

    room: str | None
    peer: str | None
    id: int
    emoji: str  # one emoji, shortcodes already turned into theirs
    add: bool


@dataclass(frozen=True, slots=True)
class Search:
    """`search`: messages the user may read that hold the query's words (chat/search/)."""

    query: str
    room: str | None  # only this room
    peer: str | None  # only the direct conversation with this user (`with`)
    author: str | None  # only messages by this user (`from`)
    after: int | None  # ms: sent at or after
    before: int | None  # ms: sent before
    offset: int
    limit: int | None  # None: the server's search-page-max


Command = (Join | Post | Direct | Typing | Leave | History | Members | LegacyPost | MarkRead
           | Active | StatusQuery | RoomSet | Directory | Moderate | Remove | Change | Changes
           | React | Search)

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


@dataclass(frozen=True, slots=True)
class Post:
    room: str
    text: str
    cid: str | None
    files: tuple[str, ...] = ()  # upload ids (issue 18); the text may be empty with files


@dataclass(frozen=True, slots=True)
class Direct:
    to: str
    text: str
    cid: str | None
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


Command = (Join | Post | Direct | Typing | Leave | History | Members | LegacyPost | MarkRead
           | Active | StatusQuery | RoomSet | Directory | Moderate | Remove)

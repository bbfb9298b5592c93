"""The wire format (docs/protocol.md): parse() turns a text frame into a command or raises."""

from __future__ import annotations

import re
from collections.abc import Callable

import emoji

from chat.protocol import jsoncodec
from chat.protocol.commands import (
    Active,
    Change,
    Changes,
    Command,
    Direct,
    History,
    Join,
    Leave,
    LegacyPost,
    MarkRead,
    Members,
    Moderate,
    Post,
    ProtocolError,
    React,
    Remove,
    RoomSet,
    Search,
    StatusQuery,
    Typing,
)
from chat.protocol.commands import Directory as RoomDirectory
from chat.protocol.fields import (
    DEFAULT_ROOM,
    USERNAME_MAX_CHARS,
    Fields,
    check_room,
    check_text,
    check_username,
    json_kind,
    search_time,
)
from chat.protocol.text import forbidden_control

CID_MAX_CHARS = 64
TOKEN_MAX_CHARS = 64
EMAIL_MAX_CHARS = 254  # RFC 5321's longest forward path
HISTORY_PAGE_MAX = 200  # messages one `history` request returns at most
# Users one `status` request asks about: a screen of a member list, or the open DMs; each costs
# an account lookup, so a frame may not ask for a whole directory.
STATUS_USERS_MAX = 100
ROOMS_PAGE_MAX = 200  # rooms one `rooms` request returns at most (the page's size bound)
TOPIC_MAX_CHARS = 250  # a room's topic: one line of a channel header (Slack's limit is 250)
# Longest ban or mute in minutes (one year); a ban without `minutes` lasts until lifted.
SANCTION_MAX_MINUTES = 525_600
VISIBILITIES = ("public", "private")
SERVER_WIDE = ""  # the `room` of a ban from the whole server: no room has an empty name
ROOM_ROLES = ("member", "moderator", "owner")

# parse() returns these (chat/protocol/commands.py), and raises ProtocolError; the field checks
# (chat/protocol/fields.py) other modules use: importable from here.
__all__ = [
    "DEFAULT_ROOM",
    "USERNAME_MAX_CHARS",
    "Active",
    "Change",
    "Changes",
    "Command",
    "Direct",
    "History",
    "Join",
    "Leave",
    "LegacyPost",
    "MarkRead",
    "Members",
    "Moderate",
    "Post",
    "ProtocolError",
    "React",
    "Remove",
    "RoomDirectory",
    "RoomSet",
    "Search",
    "StatusQuery",
    "Typing",
    "check_room",
    "check_text",
    "check_username",
    "parse",
    "peek",
]


# A message's `files` (issue 18): ids as chat/files/service.py makes them (24 URL-safe
# characters); 100: the most --files-per-message allows.
FILES_MAX_IDS = 100
_FILE_ID = re.compile(r"[A-Za-z0-9_-]{24}")

def parse(text: str, *, max_text_chars: int) -> Command:
    """Parse one text frame; raises ProtocolError naming what is wrong."""
    try:
        obj = jsoncodec.loads(text)
    except ValueError:
        raise ProtocolError("invalid_json", "the frame is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError(
            "not_an_object", f"the frame must be a JSON object, not {json_kind(obj)}"
        )
    kind = obj.get("type")
    if kind is None and "username" in obj and "message" in obj:
        return _parse_legacy(Fields(obj, None), max_text_chars)
    if not isinstance(kind, str) or kind not in _PARSERS:
        shown = "missing" if kind is None else repr(kind)[:40]
        raise ProtocolError(
            "unknown_type",
            f"type is {shown}; expected one of {', '.join(sorted(_PARSERS))}",
            request=kind if isinstance(kind, str) else None,
        )
    return _PARSERS[kind](Fields(obj, kind), max_text_chars)


def peek(text: str) -> tuple[str | None, str | None]:
    """The `type` and `cid` of a frame not otherwise parsed (one refused by the rate limit)."""
    try:
        obj = jsoncodec.loads(text)
    except ValueError:
        return None, None
    if not isinstance(obj, dict):
        return None, None
    kind, cid = obj.get("type"), obj.get("cid")
    return (kind if isinstance(kind, str) and kind in _PARSERS else None,
            cid if isinstance(cid, str) and len(cid) <= CID_MAX_CHARS else None)


def _parse_legacy(frame: Fields, max_text_chars: int) -> LegacyPost:
    username = check_username(frame.string("username", required=True) or "")
    email = frame.string("email", max_chars=EMAIL_MAX_CHARS)
    message = frame.string("message", required=True) or ""
    text = check_text(message, max_text_chars, None) if message.strip() else ""
    return LegacyPost(username, email, text)


def _parse_join(frame: Fields, _: int) -> Join:
    username = frame.string("username")
    return Join(
        username=check_username(username, "join") if username is not None else None,
        email=frame.string("email", max_chars=EMAIL_MAX_CHARS),
        room=frame.room(),
        token=frame.string("token", max_chars=TOKEN_MAX_CHARS),
        since=frame.integer("since"),
        changes=frame.integer("changes"),
    )


def _parse_post(frame: Fields, max_text_chars: int) -> Post:
    cid = frame.string("cid", max_chars=CID_MAX_CHARS)
    files = _file_ids(frame)
    return Post(frame.room(), _text_with_files(frame, max_text_chars, files), cid,
                frame.integer("reply_to"), files)


def _parse_dm(frame: Fields, max_text_chars: int) -> Direct:
    cid = frame.string("cid", max_chars=CID_MAX_CHARS)
    to = check_username(frame.string("to", required=True) or "", "dm")
    files = _file_ids(frame)
    return Direct(to, _text_with_files(frame, max_text_chars, files), cid,
                  frame.integer("reply_to"), files)


def _file_ids(frame: Fields) -> tuple[str, ...]:
    """The `files` of a message: distinct upload ids (the count's limit is the server's
    --files-per-message, checked when sending; FILES_MAX_IDS bounds what is even read)."""
    raw = frame.obj.get("files")
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > FILES_MAX_IDS or not all(
            isinstance(item, str) and _FILE_ID.fullmatch(item) for item in raw):
        raise frame.fail("invalid_field", "'files' must be a list of at most "
                         f"{FILES_MAX_IDS} upload ids (from POST /api/v1/uploads)",
                         field="files", limit=FILES_MAX_IDS)
    return tuple(dict.fromkeys(raw))


def _text_with_files(frame: Fields, max_text_chars: int, files: tuple[str, ...]) -> str:
    """The message's text; with files it may be empty (or absent): the files are the message."""
    if files and not (frame.string("text") or "").strip():
        return ""
    return frame.text("text", max_text_chars)


def _parse_history(frame: Fields, _: int) -> History:
    peer = frame.string("with")
    limit = frame.integer("limit")
    if limit is None or limit > HISTORY_PAGE_MAX:
        limit = HISTORY_PAGE_MAX if limit is not None else 50
    return History(
        room=None if peer is not None else frame.room(),
        peer=check_username(peer, "history") if peer is not None else None,
        before=frame.integer("before"),
        limit=limit,
    )


def _parse_members(frame: Fields, _: int) -> Members:
    after = frame.string("after")
    return Members(
        room=frame.room(),
        after=check_username(after, "members") if after is not None else None,
        limit=frame.integer("limit"),
    )


def _parse_typing(frame: Fields, _: int) -> Typing:
    peer = frame.string("with")
    if peer is not None:
        return Typing(None, check_username(peer, "typing"))
    return Typing(frame.room(default=None))


def _parse_read(frame: Fields, _: int) -> MarkRead:
    peer = frame.string("with")
    last = frame.integer("id")
    if last is None:
        raise frame.fail("missing_field", "the field 'id' is required", field="id")
    return MarkRead(
        room=None if peer is not None else frame.room(default=None),
        peer=check_username(peer, "read") if peer is not None else None,
        id=last,
    )


def _parse_status(frame: Fields, _: int) -> StatusQuery:
    users = frame.obj.get("users")
    if users is None:
        raise frame.fail("missing_field", "the field 'users' is required", field="users")
    if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
        raise frame.fail("invalid_field", "'users' must be a list of usernames", field="users")
    if not 1 <= len(users) <= STATUS_USERS_MAX:
        raise frame.fail("invalid_field", f"'users' holds {len(users):,} names; it must hold "
                         f"1 to {STATUS_USERS_MAX}", field="users", limit=STATUS_USERS_MAX)
    return StatusQuery(tuple(check_username(u, "status") for u in users))


def _parse_room(frame: Fields, _: int) -> RoomSet:
    topic = frame.string("topic", max_chars=TOPIC_MAX_CHARS)
    if topic is not None and forbidden_control(topic.replace("\n", " ")) is not None:
        raise frame.fail("invalid_field", "a topic cannot contain control characters",
                         field="topic")
    visibility = frame.string("visibility")
    if visibility is not None and visibility not in VISIBILITIES:
        raise frame.fail("invalid_field", f"'visibility' is {visibility[:20]!r}; it must be "
                         "'public' or 'private'", field="visibility")
    return RoomSet(frame.room("name", default=None), None if topic is None else topic.strip(),
                   visibility)


def _parse_rooms(frame: Fields, _: int) -> RoomDirectory:
    prefix = (frame.string("prefix", max_chars=32) or "").strip().lower()
    after = frame.string("after", max_chars=32) or ""
    limit = frame.integer("limit")
    return RoomDirectory(prefix, after.strip().lower(),
                         50 if limit is None else max(1, min(limit, ROOMS_PAGE_MAX)))


def _moderation(action: str) -> Callable[[Fields, int], Moderate]:
    def parse_one(frame: Fields, _: int) -> Moderate:
        # A ban (or unban) with no room is from the whole server (SERVER_WIDE; admins only).
        wide = action in ("ban", "unban") and frame.obj.get("room") is None
        room = SERVER_WIDE if wide else frame.room(default=None)
        user = check_username(frame.string("user", required=True) or "", action)
        minutes = frame.integer("minutes")
        if action == "mute" and minutes is None:
            raise frame.fail("missing_field", "the field 'minutes' is required (0 lifts a "
                             "mute)", field="minutes")
        if minutes is not None and minutes > SANCTION_MAX_MINUTES:
            raise frame.fail("invalid_field", f"'minutes' is {minutes:,}; the limit is "
                             f"{SANCTION_MAX_MINUTES:,} (a year)", field="minutes",
                             limit=SANCTION_MAX_MINUTES)
        role = frame.string("role", required=action == "role") if action == "role" else None
        if role is not None and role not in ROOM_ROLES:
            raise frame.fail("invalid_field", f"'role' is {role[:20]!r}; it must be one of "
                             f"{', '.join(ROOM_ROLES)}", field="role")
        return Moderate(action, room, user, minutes, role)
    return parse_one


def _parse_remove(frame: Fields, _: int) -> Remove:
    message_id = frame.integer("id")
    if message_id is None:
        raise frame.fail("missing_field", "the field 'id' is required", field="id")
    return Remove(frame.room(default=None), message_id)


def _where(frame: Fields, request: str) -> tuple[str | None, str | None]:
    """A lifecycle frame's conversation: (`room`, None) or (None, `with`'s name)."""
    peer = frame.string("with")
    if peer is not None:
        return None, check_username(peer, request)
    return frame.room(default=None), None


def _message_id(frame: Fields) -> int:
    message_id = frame.integer("id")
    if message_id is None:
        raise frame.fail("missing_field", "the field 'id' is required", field="id")
    return message_id


def _parse_edit(frame: Fields, max_text_chars: int) -> Change:
    room, peer = _where(frame, "edit")
    message_id = _message_id(frame)
    return Change("edit", room, peer, message_id, frame.text("text", max_text_chars))


def _parse_delete(frame: Fields, _: int) -> Change:
    room, peer = _where(frame, "delete")
    return Change("delete", room, peer, _message_id(frame), None)


def _parse_changes(frame: Fields, _: int) -> Changes:
    room, peer = _where(frame, "changes")
    after = frame.integer("after")
    if after is None:
        raise frame.fail("missing_field", "the field 'after' is required (the last `change` "
                         "number received; 0 for all)", field="after")
    return Changes(room, peer, after)


# A shortcode is at most this long (characters), colons included: the longest of the emoji
# package's aliases is ~60; a longer one is no shortcode.
SHORTCODE_MAX_CHARS = 64


def reaction_emoji(raw: str) -> str | None:
    """The emoji a reaction names (one emoji, or a shortcode such as :thumbs_up:, stored as
    its emoji so both are one reaction); None if it names none."""
    if len(raw) > SHORTCODE_MAX_CHARS:
        return None
    given = emoji.emojize(raw, language="alias") if raw.startswith(":") else raw
    return given if emoji.is_emoji(given) else None


def _parse_react(frame: Fields, _: int) -> React:
    room, peer = _where(frame, "react")
    message_id = _message_id(frame)
    raw = frame.string("emoji", required=True, max_chars=SHORTCODE_MAX_CHARS) or ""
    given = reaction_emoji(raw)
    if given is None:
        raise frame.fail("invalid_field", f"'emoji' is {raw[:20]!r}: it must be one emoji "
                         "or a shortcode such as :thumbs_up:", field="emoji")
    remove = frame.obj.get("remove", False)
    if not isinstance(remove, bool):
        raise frame.fail("invalid_field", "'remove' must be true or false", field="remove")
    return React(room, peer, message_id, given, not remove)


def _parse_search(frame: Fields, _: int) -> Search:
    # The query's length and the page's size are the server's settings (chat/search/service.py).
    query = frame.string("query", required=True) or ""
    peer = frame.string("with")
    author = frame.string("from")
    room = frame.obj.get("room")
    if peer is not None and room is not None:
        raise frame.fail("invalid_field", "give 'room' or 'with', not both", field="with")
    after, before = search_time(frame, "after"), search_time(frame, "before")
    if after is not None and before is not None and after >= before:
        raise frame.fail("invalid_field", f"'after' ({after:,}) must be earlier than 'before' "
                         f"({before:,})", field="after")
    return Search(query, None if room is None else frame.room(),
                  None if peer is None else check_username(peer, "search"),
                  None if author is None else check_username(author, "search"),
                  after, before, frame.integer("offset") or 0, frame.integer("limit"))


_PARSERS: dict[str, Callable[[Fields, int], Command]] = {
    "join": _parse_join,
    "message": _parse_post,
    "dm": _parse_dm,
    "typing": _parse_typing,
    "leave": lambda frame, _: Leave(frame.room(default=None)),
    "history": _parse_history,
    "members": _parse_members,
    "read": _parse_read,
    "active": lambda frame, _: Active(),
    "status": _parse_status,
    "remove": _parse_remove,
    "room": _parse_room,
    "rooms": _parse_rooms,
    "edit": _parse_edit,
    "delete": _parse_delete,
    "changes": _parse_changes,
    "react": _parse_react,
    "search": _parse_search,
    **{action: _moderation(action)
       for action in ("invite", "kick", "ban", "unban", "mute", "role")},
}

"""A client frame's fields, checked: strings, whole numbers, usernames, room names, text."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

from chat.people import names
from chat.protocol.commands import ProtocolError
from chat.protocol.shortcodes import expand_shortcodes_in_prose
from chat.protocol.text import forbidden_control, shows

DEFAULT_ROOM = "general"
USERNAME_MAX_CHARS = 32
ROOM_RE = re.compile(r"[a-z0-9_.\-]{1,32}")
# The largest integer field: 2^53 - 1, the largest every JSON client holds exactly (a double).
# Beyond it ids mean nothing to a browser, and past 2^63 the stores cannot bind them.
INTEGER_MAX = 2**53 - 1
# The longest ISO 8601 time a `search` bound may be: 2026-11-30T12:00:00.000000+00:00 is 32.
ISO_TIME_MAX_CHARS = 40
# Unicode categories a name may not contain: controls, format (bidi overrides, zero-width
# joiners), surrogates, private use, unassigned, line and paragraph separators.
_FORBIDDEN_IN_NAMES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class Fields:
    """Typed access to the fields of one client frame, raising ProtocolError on misuse."""

    def __init__(self, obj: dict[str, Any], request: str | None) -> None:
        self.obj = obj
        self.request = request

    def fail(self, code: str, reason: str, **refs: Any) -> ProtocolError:
        return ProtocolError(code, reason, request=self.request, **refs)

    def string(self, key: str, *, required: bool = False, max_chars: int = 0) -> str | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                raise self.fail("missing_field", f"the field {key!r} is required", field=key)
            return None
        if not isinstance(value, str):
            raise self.fail(
                "invalid_field", f"{key!r} must be a string, not {json_kind(value)}", field=key
            )
        if max_chars and len(value) > max_chars:
            raise self.fail(
                "invalid_field",
                f"{key!r} is {len(value):,} characters; the limit is {max_chars:,}",
                field=key,
                limit=max_chars,
            )
        return value

    def integer(self, key: str) -> int | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(
                "invalid_field", f"{key!r} must be a whole number of 0 or more", field=key
            )
        if value > INTEGER_MAX:
            raise self.fail(
                "invalid_field", f"{key!r} is {value:,}; the limit is {INTEGER_MAX:,}",
                field=key, limit=INTEGER_MAX,
            )
        return value

    def room(self, key: str = "room", default: str | None = DEFAULT_ROOM) -> str:
        raw = self.string(key, required=default is None)
        if raw is None:
            assert default is not None
            return default
        return check_room(raw, self.request)

    def text(self, key: str, max_chars: int) -> str:
        raw = self.string(key, required=True)
        assert raw is not None
        return check_text(raw, max_chars, self.request, self.obj.get("cid"))


def search_time(frame: Fields, key: str) -> int | None:
    """A `search` time bound in ms: a whole number of ms since the epoch, or an ISO 8601 date
    or date and time (UTC unless it gives an offset); ProtocolError naming the value if not."""
    value = frame.obj.get(key)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return frame.integer(key)
    if isinstance(value, str) and len(value) <= ISO_TIME_MAX_CHARS:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            ms = int(when.timestamp() * 1000)
            if 0 <= ms <= INTEGER_MAX:
                return ms
    raise frame.fail("invalid_field", f"{key!r} is {str(value)[:40]!r}; it must be ms since "
                     "1970 or an ISO 8601 date such as 2026-11-30 or 2026-11-30T12:00:00Z",
                     field=key)


def json_kind(value: Any) -> str:
    return {dict: "an object", list: "an array", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), "null" if value is None else "a string")


def check_username(raw: str, request: str | None = None) -> str:
    """The trimmed username, or ProtocolError('invalid_username')."""
    name = raw.strip()
    if not 1 <= len(name) <= USERNAME_MAX_CHARS:
        raise ProtocolError(
            "invalid_username",
            f"a username is 1 to {USERNAME_MAX_CHARS} characters; {name!r} has {len(name)}",
            request=request, field="username", limit=USERNAME_MAX_CHARS,
        )
    for char in name:
        if unicodedata.category(char) in _FORBIDDEN_IN_NAMES:
            raise ProtocolError(
                "invalid_username",
                f"a username cannot contain the character U+{ord(char):04X}",
                request=request, field="username",
            )
    refused = names.refusal(name)  # look-alikes: invisible characters, stacked marks, `server`
    if refused is not None:
        raise ProtocolError("invalid_username", refused, request=request, field="username")
    return name


def check_room(raw: str, request: str | None = None) -> str:
    """The lower-cased room name, or ProtocolError('invalid_room')."""
    room = raw.strip().lower()
    if not ROOM_RE.fullmatch(room):
        raise ProtocolError(
            "invalid_room",
            f"a room name is 1 to 32 of a-z, 0-9, '-', '_', '.'; {raw[:40]!r} is not",
            request=request, field="room",
        )
    return room


def check_text(raw: str, max_chars: int, request: str | None, cid: Any = None) -> str:
    """The text with shortcodes in its prose made emoji, or ProtocolError (invalid_text...)."""
    cid = cid if isinstance(cid, str) else None
    control = forbidden_control(raw)
    if control is not None:
        raise ProtocolError(
            "invalid_text",
            f"the message contains the control character U+{ord(control):04X}; only newline "
            "and tab are allowed", request=request, cid=cid)
    if not shows(raw):
        raise ProtocolError("empty_text", "the message is empty (or only invisible characters)",
                            request=request, cid=cid)
    if len(raw) > max_chars:
        raise ProtocolError(
            "too_long",
            f"the message is {len(raw):,} characters; the limit is {max_chars:,}",
            request=request, cid=cid, limit=max_chars,
        )
    return expand_shortcodes_in_prose(raw)

"""The wire format: every client frame of docs/protocol.md, parsed without a socket."""

from __future__ import annotations

import json

import pytest

from chat.protocol.parse import (
    Active,
    Direct,
    History,
    Join,
    Leave,
    LegacyPost,
    MarkRead,
    Members,
    Post,
    ProtocolError,
    StatusQuery,
    Typing,
    parse,
)

LIMIT = 4000


def p(obj: object) -> object:
    return parse(obj if isinstance(obj, str) else json.dumps(obj), max_text_chars=LIMIT)


def error_of(obj: object) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        p(obj)
    return caught.value


def test_join_parses_with_defaults() -> None:
    """A join names a user and defaults to the general room."""
    assert p({"type": "join", "username": "  alice "}) == Join("alice", None, "general", None, None)


def test_join_carries_email_room_token_and_since() -> None:
    """A join keeps email, the lower-cased room, the token and `since`."""
    cmd = p({"type": "join", "username": "a", "email": "a@x", "room": "Dev", "token": "t",
             "since": 7})
    assert cmd == Join("a", "a@x", "dev", "t", 7)


def test_message_dm_typing_leave_history_members_parse() -> None:
    """Each client frame type becomes its command."""
    assert p({"type": "message", "text": "hi", "cid": "c1"}) == Post("general", "hi", "c1")
    assert p({"type": "dm", "to": "bob", "text": "yo"}) == Direct("bob", "yo", None)
    assert p({"type": "typing", "room": "dev"}) == Typing("dev")
    assert p({"type": "leave", "room": "dev"}) == Leave("dev")
    assert p({"type": "history", "room": "dev", "before": 9, "limit": 5}) == History(
        "dev", None, 9, 5)
    assert p({"type": "history", "with": "bob"}) == History(None, "bob", None, 50)
    assert p({"type": "members", "room": "dev", "after": " Bob ", "limit": 20}) == Members(
        "dev", "Bob", 20)
    assert p({"type": "members"}) == Members("general", None, None)


def test_read_and_direct_typing_parse() -> None:
    """`read` needs a room or `with` and an id; `typing` may name a user instead of a room."""
    assert p({"type": "read", "room": "Dev", "id": 3}) == MarkRead("dev", None, 3)
    assert p({"type": "read", "with": " bob ", "id": 0}) == MarkRead(None, "bob", 0)
    assert p({"type": "typing", "with": "bob"}) == Typing(None, "bob")
    assert error_of({"type": "read", "id": 3}).refs["field"] == "room"
    assert error_of({"type": "read", "room": "dev"}).refs["field"] == "id"
    assert error_of({"type": "read", "room": "dev", "id": -1}).code == "invalid_field"
    assert error_of({"type": "typing", "with": ""}).code == "invalid_username"


def test_active_and_status_parse() -> None:
    """`active` has no field; `status` takes 1 to 100 usernames."""
    assert p({"type": "active"}) == Active()
    assert p({"type": "status", "users": [" Bob ", "ann"]}) == StatusQuery(("Bob", "ann"))
    assert error_of({"type": "status"}).refs["field"] == "users"
    assert error_of({"type": "status", "users": "bob"}).code == "invalid_field"
    too_many = error_of({"type": "status", "users": ["u"] * 101})
    assert (too_many.code, too_many.refs["limit"]) == ("invalid_field", 100)
    assert error_of({"type": "status", "users": [""]}).code == "invalid_username"


def test_history_limit_is_capped_at_200() -> None:
    """A history page asks for at most 200 messages."""
    cmd = p({"type": "history", "room": "dev", "limit": 10_000})
    assert isinstance(cmd, History)
    assert cmd.limit == 200


def test_legacy_frame_is_recognized() -> None:
    """The tutorial's frame, with no type, is a legacy post."""
    cmd = p({"email": "a@x", "username": "alice", "message": "hello"})
    assert cmd == LegacyPost("alice", "a@x", "hello")


def test_emoji_shortcodes_become_emoji() -> None:
    """Shortcodes, GitHub aliases included, are replaced on the server."""
    cmd = p({"type": "message", "text": "ok :robot: :+1: :thumbsup: :not_an_emoji:"})
    assert isinstance(cmd, Post)
    assert cmd.text == "ok 🤖 👍 👍 :not_an_emoji:"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{nope", "invalid_json"),
        ("[" * 100_000, "invalid_json"),
        ("[1, 2]", "not_an_object"),
        ('"text"', "not_an_object"),
        ({"text": "no type"}, "unknown_type"),
        ({"type": "shout"}, "unknown_type"),
        ({"type": 5}, "unknown_type"),
        ({"type": "message"}, "missing_field"),
        ({"type": "message", "text": 5}, "invalid_field"),
        ({"type": "message", "text": "   \n "}, "empty_text"),
        ({"type": "message", "text": "\x00" * 4000}, "invalid_text"),
        ({"type": "message", "text": "ok\x01"}, "invalid_text"),
        ({"type": "message", "text": "ok\r\n"}, "invalid_text"),
        ({"type": "message", "text": "ok\x1b[2J"}, "invalid_text"),
        ({"type": "message", "text": "ok\x7f"}, "invalid_text"),
        ({"type": "message", "text": "é\x85"}, "invalid_text"),
        ({"type": "message", "text": "ok\x9f"}, "invalid_text"),
        ({"type": "dm", "to": "bob", "text": "\x00"}, "invalid_text"),
        ({"username": "alice", "message": "hi\x00"}, "invalid_text"),
        ({"type": "message", "text": "\u200b\u2060\ufeff"}, "empty_text"),
        ({"type": "message", "text": "\u3164"}, "empty_text"),
        ({"type": "message", "text": "\u115f\u1160\uffa0"}, "empty_text"),
        ({"type": "message", "text": "\u2800 \u2800"}, "empty_text"),
        ({"type": "message", "text": "\ufe0f\ufe0e\U000e0100"}, "empty_text"),
        ({"type": "message", "text": "\u0301\u0300\u20dd"}, "empty_text"),
        ({"type": "message", "text": "\u00a0\u3000\u2028\u180e"}, "empty_text"),
        ({"type": "message", "text": "\U000e0041\U000e007f"}, "empty_text"),
        ({"type": "dm", "to": "bob", "text": "\u200b"}, "empty_text"),
        ({"username": "alice", "message": "\u3164"}, "empty_text"),
        ({"type": "message", "text": "x" * (LIMIT + 1)}, "too_long"),
        ({"type": "message", "text": "hi", "room": "no spaces"}, "invalid_room"),
        ({"type": "message", "text": "hi", "room": "x" * 33}, "invalid_room"),
        ({"type": "message", "text": "hi", "cid": "c" * 65}, "invalid_field"),
        ({"type": "join", "username": ""}, "invalid_username"),
        ({"type": "join", "username": "x" * 33}, "invalid_username"),
        ({"type": "join", "username": "evil\u202eman"}, "invalid_username"),
        ({"type": "join", "username": "a\x00b"}, "invalid_username"),
        ({"type": "join", "username": ["alice"]}, "invalid_field"),
        ({"type": "join", "username": "a", "since": -1}, "invalid_field"),
        ({"type": "join", "username": "a", "since": True}, "invalid_field"),
        ({"type": "join", "username": "a", "since": 2**63}, "invalid_field"),
        ({"type": "join", "username": "a", "since": 2**53}, "invalid_field"),
        ({"type": "history", "room": "a", "before": 2**64 - 1}, "invalid_field"),
        ({"type": "history", "room": "a", "limit": 2**63}, "invalid_field"),
        ({"type": "dm", "text": "hi"}, "missing_field"),
        ({"type": "typing"}, "missing_field"),
        ({"type": "members", "after": 5}, "invalid_field"),
        ({"type": "members", "after": "x" * 33}, "invalid_username"),
        ({"type": "members", "limit": -1}, "invalid_field"),
        ({"username": "", "message": "hi"}, "invalid_username"),
    ],
)
def test_bad_frames_raise_a_named_error(frame: object, code: str) -> None:
    """Every malformed frame is refused with the code docs/protocol.md gives."""
    assert error_of(frame).code == code


def test_errors_name_the_value_and_the_limit() -> None:
    """A too-long text says how long it is, the limit, and which request it answers."""
    err = error_of({"type": "message", "text": "x" * 5012, "cid": "k"})
    assert err.reason == "the message is 5,012 characters; the limit is 4,000"
    assert err.request == "message"
    assert err.refs == {"cid": "k", "limit": 4000}


def test_missing_field_names_the_field() -> None:
    """A missing field is named in the error."""
    assert error_of({"type": "dm", "text": "hi"}).refs["field"] == "to"


def test_username_length_counts_after_trimming() -> None:
    """Thirty-two characters pass once surrounding spaces are trimmed."""
    cmd = p({"type": "join", "username": "  " + "n" * 32 + "  "})
    assert isinstance(cmd, Join)
    assert cmd.username == "n" * 32


def test_unknown_fields_are_ignored() -> None:
    """Extra fields do not break a frame."""
    assert p({"type": "leave", "room": "a", "extra": {"x": 1}}) == Leave("a")


def test_a_control_character_is_named_by_its_code_point() -> None:
    """Text with a control character is refused naming it, with the message's cid."""
    err = error_of({"type": "message", "text": "a\x00b", "cid": "k"})
    assert (err.code, err.request, err.refs) == ("invalid_text", "message", {"cid": "k"})
    assert "U+0000" in err.reason


def test_text_keeps_newlines_tabs_and_characters_that_need_a_base() -> None:
    """Newline, tab, joined emoji and marks after a letter are text like any other."""
    for text in ("a\tb\nc", "👨\u200d👩\u200d👧", "e\u0301", "❤\ufe0f", "\u200bx", "日本語"):
        cmd = p({"type": "message", "text": text})
        assert isinstance(cmd, Post)
        assert cmd.text == text


def test_integers_up_to_2_53_minus_1_are_accepted() -> None:
    """The largest integer every JSON client holds exactly is a valid `since`."""
    cmd = p({"type": "join", "username": "a", "since": 2**53 - 1})
    assert isinstance(cmd, Join)
    assert cmd.since == 2**53 - 1


def test_an_integer_too_large_names_the_field_and_the_limit() -> None:
    """`before` over 2^53 - 1 is refused naming the field and the limit."""
    err = error_of({"type": "history", "room": "a", "before": 2**63})
    assert err.refs == {"field": "before", "limit": 2**53 - 1}
    assert "9,007,199,254,740,991" in err.reason

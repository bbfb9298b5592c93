"""Broker channels and what travels on them: how the nodes of one chat tell each other events.

This module is the cluster's wire format, in Python and, for the roster's scripts that publish
notices from inside Redis, in Lua (`LUA`): both build the same bytes (tests/test_wire.py checks it).

A room's channel carries its messages (in id order) and its notices (join, leave, typing); a
user's channel carries the direct messages to and from that user. Each payload is one kind byte
and a compact JSON object, keys in the order listed:

- `m` a room message and `d` a direct message: the stored fields `conversation`, `id`, `u`
  (username), `a` (avatar), `t` (text), `ts`, then `c` (cid), `to`, `g` ("1": sent by a
  guest) and `b` ("1": sent by a bot) when set, and for a reply `r` (the id it answers) with
  its quote as the sender's node read it: `ra` (author) and `rx` (excerpt), or `rd` ("1":
  deleted); every value a
  string (as the retired Redis store's Lua wrote them: the format stays);
- `n` a notice: the event exactly as clients receive it, forwarded as it is (`join`: type, room,
  username, avatar, count, and `guest: true` for a guest; `leave`: type, room, username,
  count; `typing`: type, room, username). The Redis roster's scripts publish joins and leaves.
- `u` (on a user's channel) an event for every connection of that user, exactly as they
  receive it: `read` (type, room or with, id: the user's read mark, chat/people/reading.py),
  `typing` in a direct conversation (type, with, username), and `edited`, `deleted`,
  `reacted` of a direct message (chat/history/changes.py).
- `c` a control (chat/rooms/control.py): `{"op", ...}` for the nodes, not for clients as is:
  on a room's channel `evict` (a party's connections leave the room, each sent `event`),
  `guests_out` (every connection with no account leaves, sent `event`), `mute` (a party's
  mute ends at `until` ms, 0: none), `notify` (`event` to every member: also a message's
  `edited`, `deleted` and `reacted`), `removed` (sent by nodes of before deletes: `event` to
  every member, and history reads filter); on a user's channel
  `notify` (`event` to every connection of the user) and `close` (banned from the server).

A room member, as the roster keeps it and `presence` lists it, is `{"username", "avatar"}`,
with `"guest": true` for a guest (no account).
"""

from __future__ import annotations

from typing import Any

from chat.protocol import events, jsoncodec
from chat.record import Quote, StoredMessage
from chat.urls import redis_database

PREFIX = "chat:"  # shared with the roster's keys: one chat per prefix

MESSAGE = ord("m")
DIRECT = ord("d")
NOTICE = ord("n")
USER_EVENT = ord("u")
CONTROL = ord("c")


def room(name: str, prefix: str = PREFIX) -> str:
    """The channel of a room."""
    return f"{prefix}room:{name}"


def user(party: str, prefix: str = PREFIX) -> str:
    """The channel of a user's direct messages (`party`: its id, people/identity.py)."""
    return f"{prefix}user:{party}"


def scope(url: str) -> str:
    """What a Redis channel's name starts with for the database that `url` names.

    Pub/Sub ignores database numbers: without this, chats on two databases of one Redis server
    would hear each other. The broker adds it and takes it off; the Lua scripts that publish get
    their channels' names with it.
    """
    return f"{redis_database(url)}/"


def stored_fields(stored: StoredMessage) -> dict[str, Any]:
    """A stored message as its payload's JSON has it."""
    fields: dict[str, Any] = {
        "conversation": stored.conversation, "id": str(stored.id), "u": stored.username,
        "a": stored.avatar, "t": stored.text, "ts": str(stored.ts)}
    if stored.cid is not None:
        fields["c"] = stored.cid
    if stored.to is not None:
        fields["to"] = stored.to
    if stored.guest:
        fields["g"] = "1"
    if stored.reply_to is not None:
        fields["r"] = str(stored.reply_to)
        quote = stored.quote
        if quote is not None and quote.deleted:
            fields["rd"] = "1"
        elif quote is not None:
            fields["ra"], fields["rx"] = quote.author, quote.excerpt
    if stored.bot:
        fields["b"] = "1"
    if stored.files:
        fields["f"] = list(stored.files)
    return fields


def from_fields(fields: dict[str, Any]) -> StoredMessage:
    """The inverse of stored_fields() (KeyError or ValueError for anything else)."""
    reply_to = int(fields["r"]) if "r" in fields else None
    quote = None
    if reply_to is not None and fields.get("rd") == "1":
        quote = Quote(reply_to, deleted=True)
    elif reply_to is not None and "ra" in fields:
        quote = Quote(reply_to, fields["ra"], fields.get("rx", ""))
    return StoredMessage(fields["conversation"], int(fields["id"]), fields["u"], fields["a"],
                         fields["t"], int(fields["ts"]), fields.get("c"), fields.get("to"),
                         fields.get("g") == "1", reply_to, quote,
                         fields.get("b") == "1",
                         files=tuple(fields.get("f", ())))


def message_payload(stored: StoredMessage) -> bytes:
    """The payload announcing a stored message (`m` for a room, `d` for a direct message)."""
    kind = b"d" if stored.to is not None else b"m"
    return kind + jsoncodec.dumps(stored_fields(stored))


def notice_payload(event: dict[str, Any]) -> bytes:
    """The payload of a notice event."""
    return b"n" + jsoncodec.dumps(event)


def user_event_payload(event: dict[str, Any]) -> bytes:
    """The payload of an event for every connection of one user (on the user's channel)."""
    return b"u" + jsoncodec.dumps(event)


def control_payload(op: str, **fields: Any) -> bytes:
    """The payload of a control for the nodes (chat/rooms/control.py)."""
    return b"c" + jsoncodec.dumps({"op": op, **fields})


def join_payload(room: str, username: str, avatar: str, count: int,
                 guest: bool = False, bot: bool = False) -> bytes:
    """The notice that a user joined a room on no node before (`count`: members after it)."""
    return notice_payload(events.joined(room, username, avatar, count, guest, bot))


def leave_payload(room: str, username: str, count: int) -> bytes:
    """The notice that a user left a room on every node (`count`: members after it)."""
    return notice_payload(events.left(room, username, count))


def member_record(username: str, avatar: str, guest: bool = False,
                  bot: bool = False) -> dict[str, Any]:
    """A room member as the roster keeps it and `presence` lists it (`guest` only if one,
    `bot` only for a bot account)."""
    record: dict[str, Any] = {"username": username, "avatar": avatar}
    if guest:
        record["guest"] = True
    if bot:
        record["bot"] = True
    return record


# The notice payloads above as Lua functions, for the roster's scripts that publish from inside
# Redis (counting and announcing in one step). cjson would order keys by hash and write "/" as "\/",
# so objects are written by hand, escaped as jsoncodec.dumps escapes: the same bytes.
LUA = r"""
local json_escapes = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
                      ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t'}
local function json_string(s)
  return '"' .. (string.gsub(s, '[%z\1-\31"\\]', function(c)
    return json_escapes[c] or string.format('\\u%04x', string.byte(c))
  end)) .. '"'
end
-- {key, value, ...} as a JSON object in that order; a value is a string or an integer.
local function json_object(pairs)
  local out = {}
  for i = 1, #pairs, 2 do
    local value = pairs[i + 1]
    if type(value) == 'number' then value = string.format('%d', value)
    elseif type(value) == 'boolean' then value = tostring(value)
    else value = json_string(value) end
    out[#out + 1] = json_string(pairs[i]) .. ':' .. value
  end
  return '{' .. table.concat(out, ',') .. '}'
end
local function join_payload(room, username, avatar, count, guest, bot)
  local fields = {'type', 'join', 'room', room, 'username', username, 'avatar', avatar,
                  'count', count}
  if guest == '1' then fields[#fields + 1] = 'guest'; fields[#fields + 1] = true end
  if bot == '1' then fields[#fields + 1] = 'bot'; fields[#fields + 1] = true end
  return 'n' .. json_object(fields)
end
local function leave_payload(room, username, count)
  return 'n' .. json_object({'type', 'leave', 'room', room, 'username', username,
                             'count', count})
end
"""

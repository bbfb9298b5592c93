"""Broker channels and what travels on them: how the nodes of one chat tell each other events.

A room's channel carries its messages (in id order) and its notices (join, leave, typing); a
user's channel carries the direct messages to and from that user. Each payload is one kind byte
and a JSON body:

- `m` a room message and `d` a direct message: the stored fields, as the Redis store's append
  script writes them (`conversation`, `id`, `u`, `a`, `t`, `ts`, optional `c` and `to`; every
  value a string, as Lua's cjson encodes them);
- `n` a notice: the event exactly as clients receive it, framed as it is.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from chat import jsoncodec
from chat.store.base import StoredMessage

PREFIX = "chat:"  # shared with the Redis store's and the roster's keys: one chat per prefix

MESSAGE = ord("m")
DIRECT = ord("d")
NOTICE = ord("n")


def room(name: str, prefix: str = PREFIX) -> str:
    """The channel of a room."""
    return f"{prefix}room:{name}"


def user(key: str, prefix: str = PREFIX) -> str:
    """The channel of a user's direct messages (`key`: its `names.name_key`)."""
    return f"{prefix}user:{key}"


def scope(url: str) -> str:
    """What a Redis channel's name starts with for the database that `url` names.

    Pub/Sub ignores database numbers: without this, chats on two databases of one Redis server
    would hear each other. The broker adds it and takes it off; the Lua scripts that publish get
    their channels' names with it.
    """
    return f"{urlsplit(url).path.strip('/') or '0'}/"


def stored_fields(stored: StoredMessage) -> dict[str, str]:
    """A stored message as the append script's JSON has it."""
    fields = {"conversation": stored.conversation, "id": str(stored.id), "u": stored.username,
              "a": stored.avatar, "t": stored.text, "ts": str(stored.ts)}
    if stored.cid is not None:
        fields["c"] = stored.cid
    if stored.to is not None:
        fields["to"] = stored.to
    return fields


def from_fields(fields: dict[str, Any]) -> StoredMessage:
    """The inverse of stored_fields() (KeyError or ValueError for anything else)."""
    return StoredMessage(fields["conversation"], int(fields["id"]), fields["u"], fields["a"],
                         fields["t"], int(fields["ts"]), fields.get("c"), fields.get("to"))


def message_payload(stored: StoredMessage) -> bytes:
    """The payload announcing a stored message (`m` for a room, `d` for a direct message)."""
    kind = b"d" if stored.to is not None else b"m"
    return kind + jsoncodec.dumps(stored_fields(stored))


def notice_payload(event: dict[str, Any]) -> bytes:
    """The payload of a notice event."""
    return b"n" + jsoncodec.dumps(event)

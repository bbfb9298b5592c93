"""Server-to-client events (docs/protocol.md), built as dicts and framed once for all recipients."""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from chat.protocol.parse import ProtocolError
from chat.record import StoredMessage
from chat.store import reactions


def _reply(event: dict[str, Any], stored: StoredMessage) -> dict[str, Any]:
    """`reply_to` for a reply: {id, author, excerpt}, {id, deleted: true}, or {id} if unknown."""
    if stored.reply_to is None:
        return event
    quote = stored.quote
    if quote is None:
        event["reply_to"] = {"id": stored.reply_to}
    elif quote.deleted:
        event["reply_to"] = {"id": quote.id, "deleted": True}
    else:
        event["reply_to"] = {"id": quote.id, "author": quote.author, "excerpt": quote.excerpt}
    return event


def message(stored: StoredMessage) -> dict[str, Any]:
    """A room message; `username` and `message` are the keys the tutorial's page reads."""
    event: dict[str, Any] = {
        "type": "message",
        "id": stored.id,
        "room": stored.conversation,
        "username": stored.username,
        "avatar": stored.avatar,
        "message": stored.text,
        "ts": stored.ts,
    }
    if stored.cid is not None:
        event["cid"] = stored.cid
    if stored.guest:
        event["guest"] = True
    if stored.bot:
        event["bot"] = True  # a bot account's or a webhook's post: no person wrote it
    if stored.files:
        event["files"] = list(stored.files)
    _lifecycle(event, stored)
    return _reply(event, stored)


def direct(stored: StoredMessage) -> dict[str, Any]:
    """A direct message, as both of its parties see it."""
    event: dict[str, Any] = {
        "type": "dm",
        "id": stored.id,
        "from": stored.username,
        "to": stored.to,
        "avatar": stored.avatar,
        "message": stored.text,
        "ts": stored.ts,
    }
    if stored.cid is not None:
        event["cid"] = stored.cid
    if stored.guest:
        event["guest"] = True
    if stored.bot:
        event["bot"] = True
    if stored.files:
        event["files"] = list(stored.files)
    _lifecycle(event, stored)
    return _reply(event, stored)


def _lifecycle(event: dict[str, Any], stored: StoredMessage) -> None:
    """A message's `edited` mark (ms), its `reactions`, and `deleted` (ms) for the tombstone a
    gap fill sends."""
    if stored.edited is not None:
        event["edited"] = stored.edited
    if stored.reactions:
        event["reactions"] = reactions.shown(stored.reactions)
    if stored.deleted is not None:
        event["deleted"] = stored.deleted


def _where(stored: StoredMessage) -> dict[str, Any]:
    """Which conversation a change is in: `room`, or a direct message's `from` and `to`."""
    if stored.to is not None:
        return {"from": stored.username, "to": stored.to}
    return {"room": stored.conversation}


def edited(stored: StoredMessage) -> dict[str, Any]:
    """A message's new text (chat/history/changes.py), with its change number (and, in a
    `changes` reply, its reactions as they are now)."""
    event = {"type": "edited", **_where(stored), "id": stored.id, "message": stored.text,
             "edited": stored.edited, "change": stored.change}
    if stored.reactions:
        event["reactions"] = reactions.shown(stored.reactions)
    return event


def reacted(stored: StoredMessage) -> dict[str, Any]:
    """A message's reactions as they are now: [{emoji, count, users}], with its change number."""
    return {"type": "reacted", **_where(stored), "id": stored.id,
            "reactions": reactions.shown(stored.reactions), "change": stored.change}


def deleted(stored: StoredMessage, by: str | None = None) -> dict[str, Any]:
    """A message was deleted (by its author, or `by` a moderator): readers drop it."""
    event = {"type": "deleted", **_where(stored), "id": stored.id, "deleted": stored.deleted,
             "change": stored.change}
    if by is not None and by != stored.username:
        event["by"] = by
    return event


def change_of(stored: StoredMessage) -> dict[str, Any]:
    """The event that brings a reader up to date with a changed message as it is now."""
    if stored.deleted is not None:
        return deleted(stored)
    return edited(stored) if stored.edited is not None else reacted(stored)


def changes(changed: list[dict[str, Any]], change: int, more: bool, *, room: str | None,
            peer: str | None) -> dict[str, Any]:
    """The reply to `changes`: `edited`/`deleted` events in change order, and the number to
    ask after next (`more`: ask again, some did not fit)."""
    event: dict[str, Any] = {"type": "changes"}
    if room is not None:
        event["room"] = room
    if peer is not None:
        event["with"] = peer
    event.update(changes=changed, change=change, more=more)
    return event


def welcome(
    username: str, avatar: str, token: str, rooms: AbstractSet[str], text_chars: int,
    account: dict[str, Any] | None = None, embedded: dict[str, Any] | None = None,
    room: dict[str, Any] | None = None, member_of: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Who the joiner is: a guest (`guest`, and the `token` that proves its name), a signed-in
    `account` ({id, username, role}), or a user an application vouches for (`embedded`:
    {sub}); the last two need no token (their session or signed token proves the name)."""
    # `limits` lets a page check a message before sending it, against this server's own limit.
    event: dict[str, Any] = {"type": "welcome", "username": username, "avatar": avatar}
    if account is not None:
        event["account"] = account
    elif embedded is not None:
        event["embedded"] = embedded
    else:
        event["token"] = token
        event["guest"] = True
    event["rooms"] = sorted(rooms)
    if room is not None:  # the joined room's settings and the joiner's role there
        event["room"] = room
    if member_of is not None:  # an account's durable memberships: {room, role}
        event["member_of"] = member_of
    event["limits"] = {"text_chars": text_chars}
    return event


def presence(room: str, users: list[dict[str, str]], count: int, more: bool) -> dict[str, Any]:
    """A room's member count and its first members (`more`: the list is not all of them)."""
    return {"type": "presence", "room": room, "count": count, "users": users, "more": more}


def members(room: str, users: list[dict[str, str]], count: int, more: bool,
            after: str | None) -> dict[str, Any]:
    """A page of a room's members, in answer to `members`."""
    event: dict[str, Any] = {"type": "members", "room": room, "count": count, "users": users,
                             "more": more}
    if after is not None:
        event["after"] = after
    return event


def joined(room: str, username: str, avatar: str, count: int,
           guest: bool = False, bot: bool = False) -> dict[str, Any]:
    """A user joined; `count`: the room's members after that; `guest` only for a guest,
    `bot` only for a bot account."""
    event: dict[str, Any] = {"type": "join", "room": room, "username": username,
                             "avatar": avatar, "count": count}
    if guest:
        event["guest"] = True
    if bot:
        event["bot"] = True
    return event


def left(room: str, username: str, count: int | None = None) -> dict[str, Any]:
    """A user left (`count`: the members after that; none on a `leave` acknowledgement)."""
    event: dict[str, Any] = {"type": "leave", "room": room, "username": username}
    if count is not None:
        event["count"] = count
    return event


def typing(room: str, username: str) -> dict[str, Any]:
    return {"type": "typing", "room": room, "username": username}


def typing_direct(username: str) -> dict[str, Any]:
    """`username` types in the direct conversation with the receiver (`with` names it)."""
    return {"type": "typing", "with": username, "username": username}


def read(last_read: int, *, room: str | None = None, peer: str | None = None) -> dict[str, Any]:
    """The user's read mark of a room or of the direct conversation `with` a peer, as stored."""
    event: dict[str, Any] = {"type": "read"}
    if room is not None:
        event["room"] = room
    if peer is not None:
        event["with"] = peer
    event["id"] = last_read
    return event


def status(users: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer to `status`: each user's state (online, away, offline) and last_seen."""
    return {"type": "status", "users": users}


def status_change(room: str, username: str, state: str) -> dict[str, Any]:
    """A member of the room is away, or back online (a room notice)."""
    return {"type": "status", "room": room, "username": username, "state": state}


def unread(conversations: list[dict[str, Any]]) -> dict[str, Any]:
    """Conversations with their read mark, last id, unread and mention counts."""
    return {"type": "unread", "conversations": conversations}


def history(
    messages: list[dict[str, Any]], *, room: str | None = None, peer: str | None = None,
    recovered: bool | None = None, more: bool | None = None, change: int | None = None,
) -> dict[str, Any]:
    """A batch of stored events, oldest first: on join (with `recovered`) or a page (`more`);
    `change`: the conversation's change number read before the messages were."""
    event: dict[str, Any] = {"type": "history", "messages": messages}
    if room is not None:
        event["room"] = room
    if peer is not None:
        event["with"] = peer
    if recovered is not None:
        event["recovered"] = recovered
    if more is not None:
        event["more"] = more
    if change is not None:
        event["change"] = change
    return event


def room(name: str, topic: str, visibility: str, role: str | None = None,
         by: str | None = None,
         staff: Sequence[tuple[str, str]] | None = None) -> dict[str, Any]:
    """A room's settings: to the asker of `room` (with its `role`, and the room's owners and
    moderators as `staff`), to members when they change (`by`: who changed them)."""
    event: dict[str, Any] = {"type": "room", "room": name, "topic": topic,
                             "visibility": visibility}
    if role is not None:
        event["role"] = role
    if by is not None:
        event["by"] = by
    if staff is not None:
        event["staff"] = [{"username": who, "role": what} for who, what in staff]
    return event


def directory(rooms: list[tuple[str, str, int]], prefix: str, more: bool) -> dict[str, Any]:
    """A page of the public rooms (`rooms`): name, topic, members."""
    return {"type": "rooms", "prefix": prefix, "more": more,
            "rooms": [{"room": name, "topic": topic, "members": count}
                      for name, topic, count in rooms]}


def moderated(room: str, action: str, by: str, until: int | None = None,
              role: str | None = None) -> dict[str, Any]:
    """To the user a moderation action is about: invite, kick, ban, mute, unmute, role."""
    event: dict[str, Any] = {"type": "moderated", "room": room, "action": action, "by": by}
    if until is not None:
        event["until"] = until
    if role is not None:
        event["role"] = role
    return event


def removed(room: str, message_id: int, by: str) -> dict[str, Any]:
    """A message of the room was removed by a moderator: readers hide it."""
    return {"type": "removed", "room": room, "id": message_id, "by": by}


def role(room: str, username: str, new_role: str, by: str) -> dict[str, Any]:
    """A member's role changed (to the room's members)."""
    return {"type": "role", "room": room, "username": username, "role": new_role, "by": by}


def error(err: ProtocolError) -> dict[str, Any]:
    """An error for the connection whose frame caused it."""
    return {"type": "error", "code": err.code, "reason": err.reason, "request": err.request,
            **err.refs}

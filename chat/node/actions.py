"""What an account does without a socket: post, edit, delete and react, read history, list rooms
and members, join and leave (the HTTP API's messages routes). A bot account posts the same way
(`join`, then `post`); a webhook posts under its own name through Messages.post_as_bot
(chat/hooks/).

The same checks as the socket's (chat/rooms/access.py): a private room one is not in, and an
unknown room, are `no_such_room`; a ban refuses everything, a mute refuses posting, and only a
member of a room (an account's durable membership: join first) posts in it or reads it. The
same send path: the message is stored, then published on the broker (chat/delivery/sending.py),
so every socket in the room receives it live, on every node.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from chat.accounts.model import Account
from chat.config import Settings
from chat.delivery.sending import Messages
from chat.history.changes import Actor, MessageChanges
from chat.history.replay import Replay
from chat.people.connections import User
from chat.people.directory import Directory
from chat.people.identity import account_party, account_token, avatar_for, legacy_party
from chat.people.names import name_key
from chat.protocol.fields import check_text
from chat.protocol.parse import CID_MAX_CHARS, ProtocolError
from chat.record import StoredMessage, dm_key
from chat.rooms.access import RoomAccess, check_mute, left_ms, no_such_room, store_failed
from chat.rooms.control import now_ms
from chat.rooms.store import Access
from chat.store.base import StoreError

log = logging.getLogger("chat.api")

_ROOMS = ("SELECT r.name, r.topic, r.visibility, m.role, (SELECT count(*) FROM room_members c"
          " WHERE c.room = r.name) FROM rooms r LEFT JOIN room_members m ON m.room = r.name"
          " AND m.account_id = ? WHERE (r.visibility = ? OR m.role IS NOT NULL) AND r.name > ?"
          " ORDER BY r.name LIMIT ?")
_MEMBERS = ("SELECT a.name, a.name_key, m.role, (SELECT count(*) FROM bots b"
            " WHERE b.account_id = a.id) FROM room_members m JOIN accounts a"
            " ON a.id = m.account_id WHERE m.room = ? AND a.name_key > ? ORDER BY a.name_key"
            " LIMIT ?")


class AccountActions:
    """An account's messages and memberships, by the socket's rules, with no socket."""

    def __init__(self, settings: Settings, messages: Messages, access: RoomAccess,
                 replay: Replay, users: Directory,
                 started: Callable[[], Awaitable[None]], changes: MessageChanges) -> None:
        self.settings = settings
        self.changes = changes
        # The node's broker and roster are started by its first socket, or here by the first
        # request that needs them (a bot may post before any socket connects).
        self.started = started
        self.messages = messages
        self.access = access
        self.replay = replay
        self.users = users

    def user(self, account: Account) -> User:
        """The account as the sending path sees a user (its name, avatar and party)."""
        return User(account.name, avatar_for(self.settings.avatars, account.email, account.name),
                    account_token(account.id), account_party(account.id), account)

    async def room_access(self, account: Account, name: str, request: str,
                          member: bool = True) -> Access:
        """The room as the account sees it; ProtocolError if it may not see it (or, with
        `member`, is not a member of it)."""
        try:
            access = await self.access.store.access(name, account.id,
                                                    [account_party(account.id)], now_ms())
        except StoreError as exc:
            log.warning("could not read the room %s: %s", name, exc)
            raise store_failed(request, name) from None
        info = access.room
        if info is None or (info.visibility == "private" and access.role is None):
            raise no_such_room(name, request)
        if access.banned_until is not None:
            raise ProtocolError("banned", f"you are banned from {name!r} "
                                f"{left_ms(access.banned_until, now_ms())}", request=request,
                                room=name, until=access.banned_until)
        if member and access.role is None:
            raise ProtocolError("not_in_room", f"you are not in the room {name!r}: join it "
                                "first", request=request, room=name)
        return access

    async def post(self, account: Account, room: str, text: str,
                   cid: str | None) -> tuple[StoredMessage, bool]:
        """A message of the account in a room it is a member of: (the message, whether it is
        new; False: a repeated cid's original)."""
        await self.started()
        checked = self._checked(text, cid, "message")
        access = await self.room_access(account, room, "message")
        if access.muted_until is not None:
            party = account_party(account.id)
            check_mute({party: access.muted_until}, party, room, cid)
        return await self.messages.send_room(self.user(account), room, checked, cid,
                                             bot=await self.is_bot(account))

    async def direct(self, account: Account, to: str, text: str,
                     cid: str | None) -> tuple[StoredMessage, bool]:
        """A direct message of the account to the user named `to` (as post)."""
        await self.started()
        checked = self._checked(text, cid, "dm")
        return await self.messages.send_direct(self.user(account), to, checked, cid,
                                               bot=await self.is_bot(account))

    async def change(self, account: Account, room: str | None, peer: str | None,
                     message_id: int, *, text: str | None = None, emoji: str | None = None,
                     add: bool = True, scopes: tuple[str, ...] | None = None) -> StoredMessage:
        """Edit (`text`), react (`emoji`, `add`) or else delete message `message_id` of a room
        the account is a member of, or of its direct conversation with `peer`; the message as
        it is now. The rights are the socket's (chat/history/changes.py), narrowed by an API
        token's `scopes` (None: a session) as there."""
        await self.started()
        request = "edit" if text is not None else "react" if emoji is not None else "delete"
        if room is not None:
            access = await self.room_access(account, room, request)
            if text is not None and access.muted_until is not None:
                party = account_party(account.id)
                check_mute({party: access.muted_until}, party, room, None)
            conversation, refs = room, {"room": room}
        else:
            assert peer is not None
            conversation, refs = await self._direct_key(account, peer), {"with": peer}
        actor = Actor(account_party(account.id), account.name, account.id, scopes)
        if text is not None:
            checked = check_text(text, self.settings.max_text_chars, request, None)
            return await self.changes.edit(actor, conversation, message_id, checked, **refs)
        if emoji is not None:
            return await self.changes.react(actor, conversation, message_id, emoji, add,
                                            **refs)
        return await self.changes.delete(actor, conversation, message_id, **refs)

    async def _direct_key(self, account: Account, peer: str) -> str:
        """The key of the account's own direct conversation with `peer`."""
        party = await self.users.party_of(peer)
        other = legacy_party(peer) if party is None else party[1]
        return dm_key(account_party(account.id), other)

    async def is_bot(self, account: Account) -> bool:
        """Whether the account is a bot (its messages are marked `bot`)."""
        try:
            rows = await self.access.store.sql.sql_rows(
                "SELECT 1 FROM bots WHERE account_id = ?", (account.id,))
        except StoreError as exc:
            log.warning("could not read whether account %d is a bot: %s", account.id, exc)
            raise store_failed("message", None) from None
        return bool(rows)

    def _checked(self, text: str, cid: str | None, request: str) -> str:
        if cid is not None and not 1 <= len(cid) <= CID_MAX_CHARS:
            raise ProtocolError("invalid_field", f"cid is 1 to {CID_MAX_CHARS} characters; "
                                f"this one has {len(cid)}", request=request, field="cid")
        return check_text(text, self.settings.max_text_chars, request, cid)

    async def history(self, account: Account, room: str | None, peer: str | None,
                      before: int | None, limit: int) -> dict[str, Any]:
        """A page of a room's history (the account a member) or of its direct conversation
        with `peer`: the socket's `history` event for the same request."""
        await self.started()
        hidden: set[int] = set()
        if room is not None:
            access = await self.room_access(account, room, "history")
            conversation = room
        else:
            assert peer is not None
            conversation = await self._direct_key(account, peer)  # the asker's own
        try:
            page, more = await self.replay.page(conversation, before, limit)
            if room is not None and page and access.room is not None and access.room.removals:
                # Read here: the room may be open on no socket of this node (Replay reads
                # removals only for rooms this node holds).
                hidden = await self.access.store.removed_between(room, page[0].id, page[-1].id)
        except StoreError as exc:
            log.warning("history of %s could not be read: %s", conversation, exc)
            raise ProtocolError("store_failed", f"history could not be read: {exc}",
                                request="history") from None
        page = [message for message in page if message.id not in hidden]
        frame = self.replay.page_frame(page, more, room=room, peer=peer)
        event: dict[str, Any] = json.loads(frame.payload)
        return event

    async def join(self, account: Account, room: str) -> dict[str, Any]:
        """Make the account a member of a room it may enter (as a socket's join does, making
        the room with --room-creation join); the room's settings with the account's role."""
        await self.started()
        try:
            access = await self.access.store.access(room, account.id,
                                                    [account_party(account.id)], now_ms())
        except StoreError as exc:
            log.warning("could not read the room %s: %s", room, exc)
            raise store_failed("join", room) from None
        settings, _, _ = await self.access.admit_as(access, self.user(account), room, "join")
        return settings

    async def leave(self, account: Account, room: str) -> None:
        """End the account's membership of a room (its sockets leave it too, on every node)."""
        await self.started()
        await self.room_access(account, room, "leave")
        await self.access.leave(self.user(account), room)

    async def rooms(self, account: Account, after: str, limit: int) -> list[dict[str, Any]]:
        """The rooms the account may see (public ones, and private ones it is a member of),
        by name after `after`: name, topic, visibility, its role (None), members."""
        try:
            rows = await self.access.store.sql.sql_rows(_ROOMS, (account.id, "public", after,
                                                                 limit))
        except StoreError as exc:
            log.warning("could not list the rooms: %s", exc)
            raise store_failed("rooms", None) from None
        return [{"name": str(name), "topic": str(topic), "visibility": str(visibility),
                 "role": role, "members": int(count)}
                for name, topic, visibility, role, count in rows]

    async def members(self, account: Account, room: str, after: str,
                      limit: int) -> list[dict[str, Any]]:
        """A room's members (accounts' memberships), by name after `after`: username, role,
        and `bot: true` for a bot."""
        await self.room_access(account, room, "members")
        try:
            rows = await self.access.store.sql.sql_rows(
                _MEMBERS, (room, name_key(after) if after else "", limit))
        except StoreError as exc:
            log.warning("could not list the members of %s: %s", room, exc)
            raise store_failed("members", room) from None
        found = []
        for name, _, role, bots in rows:
            member: dict[str, Any] = {"username": str(name), "role": str(role)}
            if int(bots):
                member["bot"] = True
            found.append(member)
        return found

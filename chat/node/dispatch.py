"""What each parsed command does on this node: the table from command to the code that acts."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, assert_never

from chat.broker.base import Broker
from chat.delivery.sending import Messages, check_broker
from chat.history.changes import Actor, MessageChanges
from chat.history.paging import Pages
from chat.people.connections import Client, User, user_of
from chat.people.directory import Directory
from chat.people.identity import legacy_party
from chat.people.presence import Presence
from chat.people.reading import Reading
from chat.protocol.parse import (
    DEFAULT_ROOM,
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
    RoomDirectory,
    RoomSet,
    Search,
    StatusQuery,
    Typing,
)
from chat.protocol.tutorial import TUTORIAL
from chat.record import dm_key
from chat.rooms.access import check_mute
from chat.rooms.membership import Membership
from chat.rooms.owned import OwnedRooms
from chat.rooms.registry import Rooms
from chat.search.service import Searcher
from chat.store.base import StoreError


class Dispatcher:
    """Sends each command to the service that acts on it; the few that take several live here."""

    def __init__(self, broker: Broker, users: Directory, rooms: Rooms, owned: OwnedRooms,
                 membership: Membership, messages: Messages, pages: Pages, reading: Reading,
                 presence: Presence, changes: MessageChanges) -> None:
        self.broker = broker
        self.users = users
        self.rooms = rooms
        self.owned = owned
        self.membership = membership
        self.messages = messages
        self.pages = pages
        self.reading = reading
        self.presence = presence
        self.changes = changes
        self.searcher: Searcher | None = None  # set by the hub (chat/search/)

    def dispatch(self, client: Client, command: Command) -> Awaitable[None] | None:
        """Act on a parsed command; an awaitable if the action waits on the store or roster."""
        match command:  # the tutorial's and room messages first: nearly every frame is one
            case LegacyPost():
                return self._legacy(client, command)
            case Post():
                return self._post(client, command)
            case Direct():
                return self._direct(client, command)
            case Typing():
                return self.membership.typing(client, command)
            case Join():
                return self._join(client, command)
            case Leave():
                return self.membership.leave(client, command)
            case History():
                return self._history(client, command)
            case Members():
                return self.membership.members(client, command)
            case MarkRead():
                return self.reading.mark(client, command)
            case Active():
                user_of(client, "active")  # the hub touched its presence once joined
                return None
            case StatusQuery():
                return self.presence.status(client, command)
            case RoomSet():
                return self.owned.access_for(command.name, "room").set_room(client, command)
            case RoomDirectory():
                return self.owned.access_for("", "rooms").directory(client, command)
            case Moderate():
                return self.owned.moderation_for(command.room, command.action).act(client,
                                                                                   command)
            case Remove():
                return self.owned.moderation_for(command.room, "remove").remove(client, command)
            case Change():
                return self._change(client, command)
            case Changes():
                return self._changes(client, command)
            case React():
                return self._react(client, command)
            case Search():
                assert self.searcher is not None  # the hub sets it
                return self.searcher.answer(client, command)
            case _:
                assert_never(command)

    async def _legacy(self, client: Client, cmd: LegacyPost) -> None:
        if client.user is None:
            client.dialect = TUTORIAL  # its first frame is the tutorial's: so are its events
            check_broker(self.broker, "message")
            user = await self.users.claim(client, cmd.username, cmd.email, None, None)
            if self.owned.access is not None:  # a ban from general holds for the tutorial too
                await self.owned.access.admit(client, user, DEFAULT_ROOM, "message")
            await self.rooms.enter(client, user, DEFAULT_ROOM)
        elif client.typed:
            raise ProtocolError("unknown_type", "this connection speaks typed frames; "
                                "add a type", request=None)
        else:
            await self.users.claim(client, cmd.username, None, None, None)
        if cmd.text:
            await self._post(client, Post(DEFAULT_ROOM, cmd.text, None))

    async def _join(self, client: Client, cmd: Join) -> None:
        first, again = client.user is None, cmd.room in client.rooms
        await self.membership.join(client, cmd)
        if client.user is not None:
            self.presence.touch(client.user)
            if not again:  # the read state, after the history
                await self.reading.unread(client, client.user, cmd.room, directs=first)

    async def _post(self, client: Client, cmd: Post) -> None:
        user = user_of(client, "message", cid=cmd.cid)
        room = self.rooms.of(client, cmd.room, "message", cid=cmd.cid)
        if room.muted:
            check_mute(room.muted, user.party, cmd.room, cmd.cid)
        await self.messages.post(client, user, cmd)

    async def _direct(self, client: Client, cmd: Direct) -> None:
        await self.messages.direct(client, user_of(client, "dm", cid=cmd.cid, to=cmd.to), cmd)

    async def _conversation(self, client: Client, user: User, room: str | None,
                            peer: str | None, request: str) -> tuple[str, dict[str, Any]]:
        """A lifecycle frame's conversation key (a joined room, or the DMs with `peer`) and
        the fields that name it in an error."""
        if peer is None:
            assert room is not None
            self.rooms.of(client, room, request)
            return room, {"room": room}
        party = await self.users.party_of(peer)
        return dm_key(user.party, legacy_party(peer) if party is None else party[1]), {
            "with": peer}

    async def _change(self, client: Client, cmd: Change) -> None:
        user = user_of(client, cmd.action)
        conversation, refs = await self._conversation(client, user, cmd.room, cmd.peer,
                                                      cmd.action)
        actor = Actor(user.party, user.name, user.account.id if user.account else None,
                      client.auth.scopes if client.auth else None)
        if cmd.action == "edit":
            assert cmd.text is not None
            if cmd.room is not None and self.rooms[cmd.room].muted:
                check_mute(self.rooms[cmd.room].muted, user.party, cmd.room, None)
            await self.changes.edit(actor, conversation, cmd.id, cmd.text, **refs)
        else:
            await self.changes.delete(actor, conversation, cmd.id, **refs)

    async def _react(self, client: Client, cmd: React) -> None:
        user = user_of(client, "react")
        conversation, refs = await self._conversation(client, user, cmd.room, cmd.peer, "react")
        actor = Actor(user.party, user.name, user.account.id if user.account else None,
                      client.auth.scopes if client.auth else None)
        await self.changes.react(actor, conversation, cmd.id, cmd.emoji, cmd.add, **refs)

    async def _changes(self, client: Client, cmd: Changes) -> None:
        user = user_of(client, "changes")
        conversation, refs = await self._conversation(client, user, cmd.room, cmd.peer,
                                                      "changes")
        try:
            await self.pages.replay.send_changes(client, conversation, cmd.after,
                                                 room=cmd.room, peer=cmd.peer)
        except StoreError as exc:
            raise ProtocolError("store_failed", f"changes could not be read: {exc}",
                                request="changes", **refs) from None

    async def _history(self, client: Client, cmd: History) -> None:
        user = user_of(client, "history")
        room = None
        if cmd.peer is None:
            assert cmd.room is not None
            room = self.rooms.of(client, cmd.room, "history").name
        client.reply(await self.pages.page(client, user.party, room, cmd))

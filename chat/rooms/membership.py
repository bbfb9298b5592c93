"""The room commands: joining (and what a joiner reads first), leaving, members, typing."""

from __future__ import annotations

import contextlib
from time import monotonic
from typing import Any

from chat.broker.base import Broker, BrokerError
from chat.config import Settings
from chat.delivery import channels
from chat.delivery.sending import check_broker
from chat.history.replay import Replay
from chat.people.connections import Client, User, user_of
from chat.people.directory import Directory
from chat.protocol import events
from chat.protocol.frame import Frame
from chat.protocol.parse import DEFAULT_ROOM, Join, Leave, Members, ProtocolError, Typing
from chat.rooms.access import RoomAccess
from chat.rooms.registry import Rooms
from chat.roster.base import MemberPage


class Membership:
    """Puts connections in rooms and takes them out; answers who is in one."""

    def __init__(self, settings: Settings, broker: Broker, users: Directory, rooms: Rooms,
                 replay: Replay, access: RoomAccess | None = None) -> None:
        self.settings = settings
        self.broker = broker
        self.users = users
        self.rooms = rooms
        self.replay = replay
        self.access = access  # None: no accounts, so no owners, no private rooms (tests)

    async def join(self, client: Client, cmd: Join) -> None:
        """Claim the name, enter the room, welcome the client, then send what it missed."""
        if not client.typed:
            raise ProtocolError("unknown_type", "a tutorial client cannot join rooms",
                                request="join")
        check_broker(self.broker, "join", room=cmd.room)
        user = await self.users.claim(client, cmd.username, cmd.email, cmd.token, "join")
        member_of = None if self.access is None else await self.access.member_of(user)
        if cmd.room in client.rooms:
            self.welcome(client, user, cmd.room, await self.rooms.page(cmd.room),
                         member_of=member_of)
            return
        settings, muted, removals = ((None, None, False) if self.access is None
                                     else await self.access.admit(client, user, cmd.room))
        if member_of is not None and settings is not None and not any(
                entry["room"] == cmd.room for entry in member_of):
            member_of = sorted([*member_of, {"room": cmd.room, "role": str(settings["role"])}],
                               key=lambda entry: entry["room"])
        room, page = await self.rooms.enter(client, user, cmd.room)
        if muted is not None:
            room.muted[user.party] = muted
        if removals:
            room.removals = True
        self.welcome(client, user, room.name, page, settings, member_of)
        general = self.rooms[DEFAULT_ROOM]
        first_live = general.watched_from(client)
        if first_live is not None:
            if room is general:  # read live all along: only what came before the feed is missing
                general.end_watch(client)
                await self.replay.catch_up_watcher(client, general, cmd.since, first_live,
                                                   cmd.changes)
                return
            general.drop(client)  # a joined connection reads only its rooms
        await self.replay.catch_up(client, room, cmd.since, cmd.changes)

    def welcome(self, client: Client, user: User, name: str, page: MemberPage,
                settings: dict[str, Any] | None = None,
                member_of: list[dict[str, str]] | None = None) -> None:
        """Tell a joiner who it is and who is in the room (and the room's settings)."""
        account = user.account
        embedded = client.auth.embedded if client.auth is not None else None
        client.reply(Frame.of(events.welcome(
            user.name, user.avatar, user.token, client.rooms, self.settings.max_text_chars,
            None if account is None else {"id": account.id, "username": account.name,
                                          "role": account.role},
            None if embedded is None else {"sub": embedded.sub}, settings, member_of)))
        client.reply(Frame.of(events.presence(name, page.members, page.total, page.more)))
        room = self.rooms.get(name)
        if room is not None:
            room.presented(client)

    async def typing(self, client: Client, cmd: Typing) -> None:
        """Tell the room (or the user `with`) the user types, at most once per typing-interval."""
        if cmd.peer is not None:
            await self._typing_direct(client, cmd.peer)
            return
        assert cmd.room is not None
        user = user_of(client, "typing", room=cmd.room)
        room = self.rooms.of(client, cmd.room, "typing")
        if self._throttled(client, cmd.room):
            return
        payload = channels.notice_payload(events.typing(room.name, user.name))
        with contextlib.suppress(BrokerError):  # ephemeral: not worth an error
            await self.broker.publish(channels.room(room.name), payload)

    async def _typing_direct(self, client: Client, peer: str) -> None:
        """Tell the other party's connections only (not the typist's other ones)."""
        user = user_of(client, "typing", to=peer)
        party = await self.users.party_of(peer)
        if party is None:  # as a `dm` to it would be answered
            raise ProtocolError("not_online", f"{peer!r} is no account and is not online",
                                request="typing", to=peer)
        _, target, online = party
        if target == user.party or not online or self._throttled(client, "@" + target):
            return  # nobody to tell, or told lately
        payload = channels.user_event_payload(events.typing_direct(user.name))
        with contextlib.suppress(BrokerError):
            await self.broker.publish(channels.user(target), payload)

    def _throttled(self, client: Client, about: str) -> bool:
        """Whether the client sent a typing notice about `about` within typing-interval."""
        now = monotonic()
        if client.typing_at is None:
            client.typing_at = {}
        last = client.typing_at.get(about)
        if last is not None and now - last < self.settings.typing_interval:
            return True  # ephemeral: dropping extras loses nothing
        client.typing_at[about] = now
        return False

    async def leave(self, client: Client, cmd: Leave) -> None:
        """Take the connection out of a room, and acknowledge it; an account leaves it on
        every device (its membership ends), a guest's other connections stay."""
        user = user_of(client, "leave", room=cmd.room)
        self.rooms.of(client, cmd.room, "leave")
        self.rooms.exit(client, cmd.room)
        client.reply(Frame.of(events.left(cmd.room, user.name)))  # the acknowledgement
        if self.access is not None:
            await self.access.leave(user, cmd.room)

    async def members(self, client: Client, cmd: Members) -> None:
        """Answer a page of a room's members."""
        user_of(client, "members", room=cmd.room)
        room = self.rooms.of(client, cmd.room, "members")
        page = await self.rooms.page(room.name, cmd.after, cmd.limit)
        client.reply(Frame.of(events.members(room.name, page.members, page.total, page.more,
                                              cmd.after)))

"""Who may enter a room and see it: joining, `room` (create or change), `rooms` (directory).

A private room is invisible to a non-member: every question about it is answered as for a
room that does not exist (`no_such_room`). Accounts' memberships are durable (RoomStore); a
guest's lasts as its connections do. Server admins (account role `admin`) may change any room:
by a session, or by an API token with the `admin` scope (a `read,write` token of an admin has
only the room rights its account holds as owner, moderator or member).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from chat.accounts.base import AccountStore
from chat.accounts.model import Account, server_admin
from chat.addresses import address_group
from chat.config import Settings
from chat.people.connections import Client, User, user_of
from chat.protocol import events
from chat.protocol.frame import Frame
from chat.protocol.parse import ProtocolError, RoomDirectory, RoomSet
from chat.rooms.control import Controls, now_ms
from chat.rooms.room import Room
from chat.rooms.store import Access, AuditEntry, RoomInfo, RoomRole, RoomStore, Visibility
from chat.store.base import StoreError
from chat.tasks import Background

log = logging.getLogger("chat.rooms")

PRIVILEGED = ("owner", "moderator")


def no_such_room(name: str, request: str) -> ProtocolError:
    """The one answer for a room that does not exist and a private room one is not in."""
    return ProtocolError("no_such_room", f"there is no room {name!r}", request=request, room=name)


def store_failed(request: str, room: str | None) -> ProtocolError:
    return ProtocolError("store_failed", "the rooms cannot be read now; try again shortly",
                         request=request, room=room)


def left_ms(until: int, now: int) -> str:
    """How long until `until`, for a reason: minutes, rounded up, or "until lifted"."""
    if until >= 2**61:
        return "until a moderator lifts it"
    return f"for {max(1, -(-(until - now) // 60_000)):,} more minute(s)"


def check_mute(muted: dict[str, int], party: str, room: str, cid: str | None) -> None:
    """ProtocolError('muted') if the party's mute in the room (Room.muted) is not over."""
    until = muted.get(party)
    now = now_ms()
    if until is not None and until > now:
        raise ProtocolError("muted", f"you are muted in {room!r} {left_ms(until, now)}",
                            request="message", room=room, cid=cid, until=until)


class RoomAccess:
    """The rooms' durable side on this node: admission, settings, the directory."""

    def __init__(self, settings: Settings, store: RoomStore, accounts: AccountStore,
                 controls: Controls) -> None:
        self.settings = settings
        self.store = store
        self.accounts = accounts
        self.controls = controls
        self.background = Background()  # address bans being written

    def ban_address(self, room: str, address: str, key: str, until: int) -> None:
        """A guest banned by session is banned by its address too, written by the node that
        holds its connections (the one that knows the address): Controls.on_guest_banned."""
        self.background.spawn(self._ban_address(room, address, key, until))

    async def _ban_address(self, room: str, address: str, key: str, until: int) -> None:
        try:
            await self.store.sanction(room, "ban", ["ip:" + address], key, until)
        except StoreError as exc:
            log.warning("could not ban a guest's address from %s: %s", room, exc)

    async def mark_removals(self, room: Room) -> None:
        """Note on the room whether its history has removed messages (history reads skip
        them; chat/history/replay.py)."""
        try:
            info = (await self.store.access(room.name, None, [], now_ms())).room
        except StoreError as exc:
            log.warning("could not read the room %s: %s", room.name, exc)
            return
        if info is not None and info.removals:
            room.removals = True

    async def is_admin(self, account: Account | None, scopes: Sequence[str] | None) -> bool:
        """Whether the caller may use server-admin rights now (the account read again: a
        demotion counts at once; `scopes`: an API token's, which needs `admin`; None: a
        session's). chat.accounts.model.server_admin is the rule."""
        if account is None:
            return False
        return server_admin(await self.accounts.account_by_id(account.id), scopes)

    async def access(self, client: Client, user: User, name: str, request: str) -> Access:
        """The room as this user sees it (its bans cover a guest's address too)."""
        targets = [user.party]
        if user.guest:
            targets.append("ip:" + address_group(client.address))
        try:
            return await self.store.access(name, user.account.id if user.account else None,
                                           targets, now_ms())
        except StoreError as exc:
            log.warning("could not read the room %s: %s", name, exc)
            raise store_failed(request, name) from None

    async def admit(self, client: Client, user: User, name: str,
                    request: str = "join") -> tuple[dict[str, Any], int | None, bool]:
        """Check that the user may enter the room (making it, or the account a member, as
        needed); the room's settings for the welcome, the user's mute if any (ms), and
        whether messages were removed from the room."""
        access = await self.access(client, user, name, request)
        if client.auth is not None and not client.auth.may("write") and access.role is None:
            # A read-only API token (chat/node/scopes.py): joining for good is a write. A room
            # it may not see is as unknown to it as to anyone.
            info = access.room
            if ((info is None and self.settings.room_creation != "join")
                    or (info is not None and info.visibility == "private")):
                raise no_such_room(name, request)
            raise ProtocolError(
                "insufficient_scope", f"this connection's API token may only read rooms its "
                f"account is a member of; joining {name!r} needs a token with the write scope",
                request=request, room=name, scope="write")
        return await self.admit_as(access, user, name, request)

    async def admit_as(self, access: Access, user: User, name: str,
                       request: str) -> tuple[dict[str, Any], int | None, bool]:
        """admit() with the room as `access` read it for the user: with or without a socket
        (the HTTP API's join, chat/node/actions.py)."""
        account = user.account
        info, role = access.room, access.role
        if access.banned_until is not None:  # from the room, or from the whole server
            raise ProtocolError(
                "banned", f"you are banned from {name!r} "
                f"{left_ms(access.banned_until, now_ms())}", request=request, room=name,
                until=access.banned_until)
        try:
            if info is None:
                if self.settings.room_creation != "join":
                    raise no_such_room(name, request)
                info, role = await self._create_on_join(user, name)
            elif info.visibility == "private" and role is None:
                raise no_such_room(name, request)
            if account is not None and role is None:
                await self.store.add_member(name, account.id, now_ms())
                role = "member"
        except StoreError as exc:
            log.warning("could not admit to the room %s: %s", name, exc)
            raise store_failed(request, name) from None
        return ({"name": info.name, "topic": info.topic, "visibility": info.visibility,
                 "role": role}, access.muted_until, info.removals > 0)

    async def _create_on_join(self, user: User, name: str) -> tuple[RoomInfo, RoomRole | None]:
        """--room-creation join: a new name is a new public room, owned by an account joiner."""
        account = user.account
        now = now_ms()
        owner = account.id if account is not None else None
        await self.store.create(name, "public", "", owner, now, AuditEntry(
            now, owner, user.name, "create", name, details={"visibility": "public",
                                                            "on": "join"}))
        # Another node may have made it a moment before: read what the store holds.
        access = await self.store.access(name, owner, [user.party], now)
        if access.room is None:
            raise StoreError(f"the room {name!r} was not created")
        return access.room, access.role

    async def member_of(self, user: User) -> list[dict[str, str]] | None:
        """An account's durable memberships for its welcome (None for others)."""
        if user.account is None:
            return None
        try:
            return [{"room": room, "role": role}
                    for room, role in await self.store.memberships(user.account.id)]
        except StoreError as exc:
            log.warning("could not read the rooms of account %d: %s", user.account.id, exc)
            return None

    async def leave(self, user: User, name: str) -> None:
        """An account leaves a room for good: its membership ends, on every device."""
        if user.account is None:
            return
        try:
            await self.store.remove_member(name, user.account.id)
        except StoreError as exc:
            log.warning("could not end a membership in %s: %s", name, exc)
            raise store_failed("leave", name) from None
        await self.controls.to_room(name, "evict", party=user.party,
                                    event=events.left(name, user.name))

    async def set_room(self, client: Client, cmd: RoomSet) -> None:
        """`room`: create a room, read its settings, or change them (owners, moderators,
        admins); a change is announced to its members."""
        user = user_of(client, "room", room=cmd.name)
        account = user.account
        if account is None:
            raise ProtocolError("forbidden", "only a signed-in account can create or change "
                                "rooms", request="room", room=cmd.name)
        access = await self.access(client, user, cmd.name, "room")
        info = access.room
        now = now_ms()
        try:
            if info is None:
                made: Visibility = "private" if cmd.visibility == "private" else "public"
                topic = cmd.topic or ""
                if not await self.store.create(cmd.name, made, topic, account.id, now,
                                               AuditEntry(now, account.id, user.name, "create",
                                                          cmd.name, details={
                                                              "visibility": made,
                                                              "topic": topic})):
                    raise self._taken(cmd.name)
                client.reply(Frame.of(events.room(cmd.name, topic, made, "owner",
                                                  staff=[(user.name, "owner")])))
                return
            admin = await self.is_admin(account, client.auth.scopes if client.auth else None)
            if info.visibility == "private" and access.role is None and not admin:
                raise self._taken(cmd.name)  # as for any taken name: it is not shown
            changes: dict[str, str] = {}
            if cmd.topic is not None and cmd.topic != info.topic:
                changes["topic"] = cmd.topic
            if cmd.visibility is not None and cmd.visibility != info.visibility:
                changes["visibility"] = cmd.visibility
            if changes and not admin and access.role not in PRIVILEGED:
                raise ProtocolError("forbidden", f"only the owners and moderators of {cmd.name!r}"
                                    " (or a server admin) may change it", request="room",
                                    room=cmd.name)
            if changes:
                await self.store.update(cmd.name, changes.get("topic"),
                                        "private" if changes.get("visibility") == "private"
                                        else "public" if "visibility" in changes else None,
                                        AuditEntry(now, account.id, user.name, "update",
                                                   cmd.name, details=changes))
            staff = await self.store.staff(cmd.name)
        except StoreError as exc:
            log.warning("could not change the room %s: %s", cmd.name, exc)
            raise store_failed("room", cmd.name) from None
        topic = changes.get("topic", info.topic)
        visibility = changes.get("visibility", str(info.visibility))
        if changes:
            await self.controls.to_room(cmd.name, "notify", event=events.room(
                cmd.name, topic, visibility, by=user.name))
            if changes.get("visibility") == "private":  # no account: no membership
                await self.controls.to_room(cmd.name, "guests_out", event=events.moderated(
                    cmd.name, "private", user.name))
        client.reply(Frame.of(events.room(cmd.name, topic, visibility, access.role,
                                          staff=staff)))

    @staticmethod
    def _taken(name: str) -> ProtocolError:
        return ProtocolError("room_name_taken", f"the room name {name!r} is taken",
                             request="room", room=name)

    async def directory(self, client: Client, cmd: RoomDirectory) -> None:
        """`rooms`: a page of the public rooms, by name."""
        user_of(client, "rooms")
        try:
            found = await self.store.directory(cmd.prefix, cmd.after, cmd.limit + 1)
        except StoreError as exc:
            log.warning("could not read the room directory: %s", exc)
            raise store_failed("rooms", None) from None
        client.reply(Frame.of(events.directory(found[:cmd.limit], cmd.prefix,
                                               len(found) > cmd.limit)))

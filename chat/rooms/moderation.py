"""Moderation: `invite`, `kick`, `ban`, `unban`, `mute`, `role`, checked on this node, written
with their audit entry in one transaction, then applied on every node (chat/rooms/control.py).

Ranks: member 0, moderator 1, owner 2, server admin 3 (in every room). Owners and moderators
(and admins) kick, ban and mute those of a lower rank; only owners (and admins) change roles;
nobody acts on a private room they cannot see (`no_such_room`, as for no room at all). An admin
is one by a session or by an API token with the `admin` scope: an admin's `read,write` token
has only the room roles its account holds (chat.accounts.model.server_admin).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from chat.accounts.model import server_admin
from chat.history.changes import Actor, MessageChanges
from chat.people.connections import Client, User, user_of
from chat.people.directory import Directory
from chat.people.names import name_key
from chat.protocol import events
from chat.protocol.frame import Frame
from chat.protocol.parse import Moderate, ProtocolError, Remove
from chat.rooms.access import RoomAccess, left_ms, no_such_room, store_failed
from chat.rooms.control import now_ms
from chat.rooms.store import FOREVER, SERVER_WIDE, AuditEntry, RoomRole
from chat.store.base import HistoryStore, StoreError

log = logging.getLogger("chat.rooms")

RANKS = {None: -1, "member": 0, "moderator": 1, "owner": 2}
ADMIN_RANK = 3


class Moderation:
    """The moderation frames of this node's connections."""

    def __init__(self, access: RoomAccess, users: Directory, history: HistoryStore) -> None:
        self.access = access
        self.users = users
        self.history = history
        self.changes: MessageChanges | None = None  # set by the hub (deletes go through it)

    async def moderates(self, actor: Actor, room: str) -> bool:
        """Whether the actor is a server admin (by a session or an admin-scope token), or an
        owner or moderator of the room."""
        if actor.account_id is None:
            return False
        try:
            account = await self.access.accounts.account_by_id(actor.account_id)
            if account is None or account.disabled:
                return False
            if server_admin(account, actor.scopes):
                return True
            found = await self.access.store.access(room, actor.account_id, [], now_ms())
        except StoreError as exc:
            log.warning("could not read the rights of %s in %s: %s", actor.name, room, exc)
            raise store_failed("delete", room) from None
        return found.room is not None and RANKS[found.role] >= RANKS["moderator"]

    async def remove(self, client: Client, cmd: Remove) -> None:
        """`remove`: a moderator deletes a message of the room (as `delete` does, for good;
        readers are told `deleted`), with an entry in the audit log."""
        actor = user_of(client, "remove", room=cmd.room)
        access = await self.access.access(client, actor, cmd.room, "remove")
        scopes = client.auth.scopes if client.auth else None
        admin = await self.access.is_admin(actor.account, scopes)
        if access.room is None or (access.room.visibility == "private" and access.role is None
                                   and not admin):
            raise no_such_room(cmd.room, "remove")
        rank = ADMIN_RANK if admin else RANKS[access.role] if actor.account else -1
        if rank < RANKS["moderator"]:
            raise ProtocolError("forbidden", f"only the owners and moderators of {cmd.room!r} "
                                "(and server admins) remove messages", request="remove",
                                room=cmd.room)
        assert self.changes is not None
        deleted = await self.changes.delete(
            Actor(actor.party, actor.name, actor.account.id if actor.account else None, scopes),
            cmd.room, cmd.id, request="remove", room=cmd.room)
        try:
            await self.access.store.record(AuditEntry(
                now_ms(), actor.account.id if actor.account else None, actor.name, "remove",
                cmd.room, None, deleted.username, {"id": cmd.id}))
        except StoreError as exc:  # deleted all the same: the log misses it
            log.warning("could not record a removal in %s: %s", cmd.room, exc)
        client.reply(Frame.of({"type": "moderation", "action": "remove", "room": cmd.room,
                               "user": deleted.username, "id": cmd.id}))

    async def act(self, client: Client, cmd: Moderate) -> None:
        """Check the actor's rank and the target, do it, record it, tell those concerned."""
        actor = user_of(client, cmd.action, room=cmd.room)
        if cmd.room == SERVER_WIDE:
            await self._server_ban(client, actor, cmd)
            return
        access = await self.access.access(client, actor, cmd.room, cmd.action)
        admin = await self.access.is_admin(actor.account,
                                           client.auth.scopes if client.auth else None)
        if access.room is None or (access.room.visibility == "private" and access.role is None
                                   and not admin):
            raise no_such_room(cmd.room, cmd.action)
        rank = ADMIN_RANK if admin else RANKS[access.role] if actor.account else -1
        found = await self.users.party_of(cmd.user)
        if found is None and cmd.action != "unban":
            raise ProtocolError("no_such_user", f"there is no user {cmd.user!r}",
                                request=cmd.action, room=cmd.room, user=cmd.user)
        spelling, party = (found[0], found[1]) if found is not None else (cmd.user, "")
        account_id = int(party[2:]) if party.startswith("a:") else None
        target_role = None
        if account_id is not None:
            target = await self.access.store.access(cmd.room, account_id, [], now_ms())
            target_role = target.role
        needed = self._needed(cmd.action, access.room.visibility)
        if rank < needed or (cmd.action in ("kick", "ban", "mute")
                             and RANKS[target_role] >= rank):
            raise ProtocolError(
                "forbidden", f"you may not {cmd.action} {spelling!r} in {cmd.room!r}: "
                f"{self._who(cmd.action)}", request=cmd.action, room=cmd.room, user=spelling)
        if cmd.action in ("invite", "role") and account_id is None:
            raise ProtocolError("not_an_account", f"{spelling!r} is a guest: only accounts can "
                                f"be {'invited' if cmd.action == 'invite' else 'given a role'}",
                                request=cmd.action, room=cmd.room, user=spelling)
        assert actor.account is not None or admin  # rank >= 0 needs an account
        now = now_ms()
        until = None
        if cmd.action in ("ban", "mute") and cmd.minutes:
            until = now + cmd.minutes * 60_000
        elif cmd.action == "ban":
            until = FOREVER
        entry = AuditEntry(now, actor.account.id if actor.account else None, actor.name,
                           cmd.action, cmd.room, party or None, spelling, details={
                               key: value for key, value in (("minutes", cmd.minutes),
                                                             ("role", cmd.role))
                               if value is not None})
        try:
            await self._write(cmd, party, account_id, spelling, until, entry)
        except StoreError as exc:
            log.warning("could not %s in %s: %s", cmd.action, cmd.room, exc)
            raise store_failed(cmd.action, cmd.room) from None
        await self._apply(cmd, actor, party, spelling, until)
        ack: dict[str, Any] = {"type": "moderation", "action": cmd.action, "room": cmd.room,
                               "user": spelling}
        if until is not None and until < FOREVER:
            ack["until"] = until
        if cmd.role is not None:
            ack["role"] = cmd.role
        client.reply(Frame.of(ack))

    async def _server_ban(self, client: Client, actor: User, cmd: Moderate) -> None:
        """`ban` or `unban` with no room: from the whole server, by server admins only. Every
        socket of the user closes (4005) on every node; every join is refused meanwhile."""
        if not await self.access.is_admin(actor.account,
                                          client.auth.scopes if client.auth else None):
            raise ProtocolError("forbidden", f"only server admins may {cmd.action} from the "
                                "whole server (give a room)", request=cmd.action)
        found = await self.users.party_of(cmd.user)
        if found is None and cmd.action == "ban":
            raise ProtocolError("no_such_user", f"there is no user {cmd.user!r}",
                                request=cmd.action, user=cmd.user)
        spelling, party = (found[0], found[1]) if found is not None else (cmd.user, "")
        if cmd.action == "ban" and party.startswith("a:"):
            target = await self.access.accounts.account_by_id(int(party[2:]))
            if target is not None and target.role == "admin":
                raise ProtocolError("forbidden", f"{spelling!r} is a server admin: demote "
                                    "it first", request=cmd.action, user=spelling)
        now = now_ms()
        until = (now + cmd.minutes * 60_000 if cmd.minutes else FOREVER
                 if cmd.action == "ban" else None)
        entry = AuditEntry(now, actor.account.id if actor.account else None, actor.name,
                           cmd.action, SERVER_WIDE, party or None, spelling,
                           details={} if cmd.minutes is None else {"minutes": cmd.minutes})
        store = self.access.store
        try:
            if until is None:
                await store.lift(SERVER_WIDE, "ban", party, name_key(spelling), entry)
            else:
                await store.sanction(SERVER_WIDE, "ban", [party], name_key(spelling), until,
                                     audit=entry)
        except StoreError as exc:
            log.warning("could not %s from the server: %s", cmd.action, exc)
            raise store_failed(cmd.action, None) from None
        if until is not None:
            await self.access.controls.to_user(
                party, op="close", ban_until=until,
                reason=f"banned from this server {left_ms(until, now)}")
        ack: dict[str, Any] = {"type": "moderation", "action": cmd.action, "room": SERVER_WIDE,
                               "user": spelling}
        if until is not None and until < FOREVER:
            ack["until"] = until
        client.reply(Frame.of(ack))

    @staticmethod
    def _needed(action: str, visibility: str) -> int:
        if action == "role":
            return RANKS["owner"]
        if action == "invite" and visibility == "public":
            return RANKS["member"]
        return RANKS["moderator"]

    @staticmethod
    def _who(action: str) -> str:
        if action == "role":
            return "only its owners (and server admins) change roles"
        return ("only its owners and moderators (and server admins) may, and not to an equal "
                "or higher rank")

    async def _write(self, cmd: Moderate, party: str, account_id: int | None, spelling: str,
                     until: int | None, entry: AuditEntry) -> None:
        store = self.access.store
        now = entry.ts
        match cmd.action:
            case "invite":
                assert account_id is not None
                await store.add_member(cmd.room, account_id, now, entry)
            case "role":
                assert account_id is not None
                role: RoomRole = ("owner" if cmd.role == "owner" else "moderator"
                                  if cmd.role == "moderator" else "member")
                await store.set_role(cmd.room, account_id, role, now, entry)
            case "kick":
                if account_id is not None:
                    await store.remove_member(cmd.room, account_id, entry)
                else:
                    await store.record(entry)
            case "ban" | "mute":
                kind: Literal["ban", "mute"] = "ban" if cmd.action == "ban" else "mute"
                if until is None:  # mute 0: lift it
                    await store.lift(cmd.room, "mute", party, name_key(spelling), entry)
                else:
                    await store.sanction(cmd.room, kind, [party], name_key(spelling), until,
                                         remove_account=account_id if kind == "ban" else None,
                                         audit=entry)
            case "unban":
                await store.lift(cmd.room, "ban", party, name_key(spelling), entry)

    async def _apply(self, cmd: Moderate, actor: User, party: str, spelling: str,
                     until: int | None) -> None:
        """Tell the nodes: the target's sockets leave, the mute holds, members see roles."""
        controls = self.access.controls
        shown = until if until is not None and until < FOREVER else None
        match cmd.action:
            case "kick" | "ban":
                await controls.to_room(cmd.room, "evict", party=party,
                                       event=events.moderated(cmd.room, cmd.action, actor.name,
                                                              shown),
                                       ban_until=until if cmd.action == "ban" else None)
            case "mute":
                await controls.to_room(cmd.room, "mute", party=party, until=until or 0)
                await controls.to_user(party, events.moderated(
                    cmd.room, "mute" if until else "unmute", actor.name, shown))
            case "invite":
                await controls.to_user(party, events.moderated(cmd.room, "invite", actor.name))
            case "role":
                assert cmd.role is not None
                await controls.to_room(cmd.room, "notify", event=events.role(
                    cmd.room, spelling, cmd.role, actor.name))
                await controls.to_user(party, events.moderated(cmd.room, "role", actor.name,
                                                               role=cmd.role))

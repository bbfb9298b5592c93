"""Rooms, accounts' memberships, bans and mutes, and the audit log, in the accounts' database.

Written once for SQLite and PostgreSQL: every statement is SQLite's text with `?` markers, run
through the account store's `sql_rows` / `sql_writes` (chat/accounts/base.py), so the rooms
share the accounts' connection (SQLite) or pool (PostgreSQL) and their migrations
(chat/store/sql.py ROOM_TABLES). Timestamps are ms since the epoch, given by the caller.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Visibility = Literal["public", "private"]
RoomRole = Literal["member", "moderator", "owner"]
ROOM_ROLES: tuple[RoomRole, ...] = ("member", "moderator", "owner")
# A ban or mute with no end is stored with this end (ms, year ~146 million): one NOT NULL
# column compares with `>` in both databases, no NULL case in every query.
FOREVER = 2**62

Step = tuple[str, tuple[Any, ...]]
# The room of a ban from the whole server (chat.protocol.parse.SERVER_WIDE): every room's
# access reads it too.
SERVER_WIDE = ""


class Sql(Protocol):
    """What the room store runs on: an account store (both kinds have these two)."""

    async def sql_rows(self, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        ...

    async def sql_writes(self, steps: Sequence[Step]) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class RoomInfo:
    name: str
    visibility: Visibility
    topic: str
    owner_id: int | None
    removals: int = 0  # messages removed by moderators (0: no history read needs filtering)


@dataclass(frozen=True, slots=True)
class Access:
    """A room as one party sees it: its role there (accounts), and its ban and mute if any."""

    room: RoomInfo | None  # None: no such room
    role: RoomRole | None  # None: not a durable member
    banned_until: int | None  # ms; None: not banned now (from the room or the server)
    muted_until: int | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One moderation action: who (account id and name), what, whom, where, when, details."""

    ts: int
    actor_id: int | None
    actor: str
    action: str
    room: str
    target: str | None = None  # a party (a:<id>, g:<guest>) or None
    target_name: str | None = None
    details: dict[str, Any] | None = None
    seq: int = 0  # given by the store

    def as_json(self) -> dict[str, Any]:
        """The entry as the API and the admin command show it."""
        return {"seq": self.seq, "ts": self.ts, "actor_id": self.actor_id, "actor": self.actor,
                "action": self.action, "room": self.room, "target": self.target,
                "target_name": self.target_name, "details": self.details or {}}


# One row whether or not the room exists: a ban from the whole server holds for any name.
_ACCESS = ("SELECT r.visibility, r.topic, r.owner_id, r.removals,"
           " (SELECT role FROM room_members WHERE room = ? AND account_id = ?),"
           " (SELECT max(until_ts) FROM room_sanctions WHERE room IN (?, ?) AND kind = ?"
           "  AND target IN (?, ?) AND until_ts > ?),"
           " (SELECT max(until_ts) FROM room_sanctions WHERE room = ? AND kind = ?"
           "  AND target IN (?, ?) AND until_ts > ?)"
           " FROM (SELECT 1 AS one) AS x LEFT JOIN rooms r ON r.name = ?")
_CREATE = ("INSERT INTO rooms (name, visibility, topic, owner_id, created_ts)"
           " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING")
# The creator is its owner only if this very creation made the room (an owner and a ts).
_OWNER = ("INSERT INTO room_members (room, account_id, role, joined_ts)"
          " SELECT name, owner_id, CAST(? AS TEXT), created_ts FROM rooms WHERE name = ?"
          " AND owner_id = ?"
          " AND created_ts = ? ON CONFLICT (room, account_id) DO NOTHING")
_ADD = ("INSERT INTO room_members (room, account_id, role, joined_ts) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (room, account_id) DO NOTHING")
_SET_ROLE = ("INSERT INTO room_members (room, account_id, role, joined_ts) VALUES (?, ?, ?, ?)"
             " ON CONFLICT (room, account_id) DO UPDATE SET role = excluded.role")
_REMOVE = "DELETE FROM room_members WHERE room = ? AND account_id = ?"
_MEMBERSHIPS = ("SELECT m.room, m.role FROM room_members m JOIN rooms r ON r.name = m.room"
                " WHERE m.account_id = ? ORDER BY m.room")
# A room's owners and moderators, by name (the `room` reply's `staff`); the accounts table is in
# the same database. STAFF_LISTED bounds the reply: a room has a handful, a frame stays small.
STAFF_LISTED = 200
_STAFF = ("SELECT a.name, m.role FROM room_members m JOIN accounts a ON a.id = m.account_id"
          " WHERE m.room = ? AND m.role <> ? ORDER BY a.name_key LIMIT ?")
_DIRECTORY = ("SELECT r.name, r.topic, (SELECT count(*) FROM room_members m"
              " WHERE m.room = r.name) FROM rooms r WHERE r.visibility = ?"
              " AND substr(r.name, 1, ?) = ? AND r.name > ? ORDER BY r.name LIMIT ?")
_SANCTION = ("INSERT INTO room_sanctions (room, kind, target, name_key, until_ts)"
             " VALUES (?, ?, ?, ?, ?) ON CONFLICT (room, kind, target)"
             " DO UPDATE SET until_ts = excluded.until_ts, name_key = excluded.name_key")
_LIFT = ("DELETE FROM room_sanctions WHERE room = ? AND kind = ?"
         " AND (target = ? OR name_key = ?)")
_AUDIT = ("INSERT INTO audit (ts, actor_id, actor, action, room, target, target_name, details)"
          " VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_AUDIT_COLUMNS = "seq, ts, actor_id, actor, action, room, target, target_name, details"


def _audit_step(entry: AuditEntry | None) -> list[Step]:
    if entry is None:
        return []
    return [(_AUDIT, (entry.ts, entry.actor_id, entry.actor, entry.action, entry.room,
                      entry.target, entry.target_name,
                      json.dumps(entry.details or {}, sort_keys=True)))]


class RoomStore:
    """The durable side of rooms; every method raises chat.store.StoreError when the database
    fails. A change and its audit entry are written in one transaction."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql

    async def access(self, name: str, account_id: int | None, targets: Sequence[str],
                     now: int) -> Access:
        """The room, the account's role in it, and a ban or mute of any of `targets` now."""
        first, second = ([*list(targets), "", ""])[:2]
        rows = await self.sql.sql_rows(_ACCESS, (
            name, account_id if account_id is not None else -1,
            name, SERVER_WIDE, "ban", first, second, now,
            name, "mute", first, second, now, name))
        visibility, topic, owner, removals, role, banned, muted = rows[0]
        info = None if visibility is None else RoomInfo(
            name, visibility, str(topic), None if owner is None else int(owner), int(removals))
        return Access(info, role if info is not None else None,
                      None if banned is None else int(banned),
                      None if muted is None else int(muted))

    async def create(self, name: str, visibility: Visibility, topic: str, owner_id: int | None,
                     ts: int, audit: AuditEntry | None = None) -> bool:
        """A new room (its creator, if an account, its owner); False if the name is taken."""
        steps: list[Step] = [(_CREATE, (name, visibility, topic, owner_id, ts))]
        if owner_id is not None:
            steps.append((_OWNER, ("owner", name, owner_id, ts)))
        created = await self.sql.sql_writes(steps + _audit_step(audit))
        return created[0] == 1

    async def update(self, name: str, topic: str | None, visibility: Visibility | None,
                     audit: AuditEntry | None = None) -> None:
        """Change a room's topic and/or visibility."""
        steps: list[Step] = []
        if topic is not None:
            steps.append(("UPDATE rooms SET topic = ? WHERE name = ?", (topic, name)))
        if visibility is not None:
            steps.append(("UPDATE rooms SET visibility = ? WHERE name = ?", (visibility, name)))
        await self.sql.sql_writes(steps + _audit_step(audit))

    async def add_member(self, name: str, account_id: int, ts: int,
                         audit: AuditEntry | None = None) -> bool:
        """Make the account a member (if it is not one already, with any role)."""
        done = await self.sql.sql_writes([(_ADD, (name, account_id, "member", ts)),
                                          *_audit_step(audit)])
        return done[0] == 1

    async def set_role(self, name: str, account_id: int, role: RoomRole, ts: int,
                       audit: AuditEntry | None = None) -> None:
        await self.sql.sql_writes([(_SET_ROLE, (name, account_id, role, ts)), *_audit_step(audit)])

    async def remove_member(self, name: str, account_id: int,
                            audit: AuditEntry | None = None) -> bool:
        """The account is no longer a member; whether it was."""
        done = await self.sql.sql_writes([(_REMOVE, (name, account_id)), *_audit_step(audit)])
        return done[0] == 1

    async def memberships(self, account_id: int) -> list[tuple[str, RoomRole]]:
        """The rooms the account is a member of, by name, with its role in each."""
        rows = await self.sql.sql_rows(_MEMBERSHIPS, (account_id,))
        return [(str(room), role) for room, role in rows]

    async def staff(self, name: str) -> list[tuple[str, RoomRole]]:
        """The room's owners and moderators (at most STAFF_LISTED): (account name, role)."""
        rows = await self.sql.sql_rows(_STAFF, (name, "member", STAFF_LISTED))
        return [(str(account), role) for account, role in rows]

    async def directory(self, prefix: str, after: str, limit: int) -> list[tuple[str, str, int]]:
        """Public rooms whose name starts with `prefix`, after `after`: (name, topic, members)."""
        rows = await self.sql.sql_rows(_DIRECTORY, ("public", len(prefix), prefix, after, limit))
        return [(str(name), str(topic), int(count)) for name, topic, count in rows]

    async def sanction(self, name: str, kind: Literal["ban", "mute"], targets: Sequence[str],
                       name_key: str, until: int, *, remove_account: int | None = None,
                       audit: AuditEntry | None = None) -> None:
        """Ban or mute the targets until `until` (ms); a ban also ends an account's membership."""
        steps: list[Step] = [(_SANCTION, (name, kind, target, name_key, until))
                             for target in targets]
        if remove_account is not None:
            steps.append((_REMOVE, (name, remove_account)))
        await self.sql.sql_writes(steps + _audit_step(audit))

    async def lift(self, name: str, kind: Literal["ban", "mute"], target: str, name_key: str,
                   audit: AuditEntry | None = None) -> int:
        """End the bans (or mutes) of a party, or of the name (a guest who left); how many."""
        done = await self.sql.sql_writes([(_LIFT, (name, kind, target, name_key)),
                                          *_audit_step(audit)])
        return done[0]

    async def remove_message(self, name: str, message_id: int, audit: AuditEntry) -> bool:
        """Hide a message of the room from now on; False if it was removed already."""
        done = await self.sql.sql_writes([
            ("INSERT INTO removed_messages (room, id, by_id, ts) VALUES (?, ?, ?, ?)"
             " ON CONFLICT (room, id) DO NOTHING", (name, message_id, audit.actor_id, audit.ts)),
            ("UPDATE rooms SET removals = (SELECT count(*) FROM removed_messages"
             " WHERE room = ?) WHERE name = ?", (name, name)),
            *_audit_step(audit)])
        return done[0] == 1

    async def removed_between(self, name: str, low: int, high: int) -> set[int]:
        """The ids from `low` to `high` (inclusive) removed from the room."""
        rows = await self.sql.sql_rows("SELECT id FROM removed_messages WHERE room = ?"
                                       " AND id >= ? AND id <= ?", (name, low, high))
        return {int(row[0]) for row in rows}

    async def record(self, entry: AuditEntry) -> None:
        """Append an entry to the audit log."""
        await self.sql.sql_writes(_audit_step(entry))

    async def audit_log(self, room: str | None, limit: int) -> list[AuditEntry]:
        """The latest `limit` entries (of one room, or all), newest first."""
        where, params = ("WHERE room = ? ", (room,)) if room is not None else ("", ())
        rows = await self.sql.sql_rows(
            f"SELECT {_AUDIT_COLUMNS} FROM audit {where}ORDER BY seq DESC LIMIT ?",
            (*params, limit))
        return [AuditEntry(int(ts), None if actor_id is None else int(actor_id), str(actor),
                           str(action), str(room_), target, target_name, json.loads(details),
                           int(seq))
                for seq, ts, actor_id, actor, action, room_, target, target_name, details
                in rows]

"""Rooms' webhooks in the accounts' database (tables: chat/store/sql.py HOOK_TABLES).

Written once for SQLite and PostgreSQL, as the room store is (chat/rooms/store.py): SQLite's
text with `?` markers, run through the account store's `sql_rows` / `sql_writes`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from chat.rooms.store import Sql

HookKind = Literal["incoming", "outgoing"]
# 32 random bytes (256 bits) in URL-safe base64: a secret that cannot be guessed, so one hash
# lookup (no slow hash) finds its hook, as session tokens are found.
SECRET_BYTES = 32
ID_BYTES = 8  # the public id: names a hook in lists and revocations, opens nothing

_COLUMNS = ("id, kind, room, name, url, triggers, signing_key, created_by, created_ts,"
            " revoked_ts")


def secret_hash(secret: str) -> str:
    """What the database keeps of an incoming hook's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Hook:
    """One webhook of a room; `triggers` and `url`, `signing_key` only for outgoing ones."""

    id: str
    kind: HookKind
    room: str
    name: str
    url: str | None
    triggers: tuple[str, ...]
    signing_key: str | None
    created_by: int | None
    created_ts: int
    revoked_ts: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The hook as the API and the admin command list it: never its secret or key."""
        shown: dict[str, Any] = {"id": self.id, "kind": self.kind, "room": self.room,
                                 "name": self.name, "created_by": self.created_by,
                                 "created_ts": self.created_ts}
        if self.kind == "outgoing":
            shown["url"] = self.url
            shown["triggers"] = list(self.triggers)
        return shown


def _hook(row: tuple[Any, ...]) -> Hook:
    hook_id, kind, room, name, url, triggers, key, by, ts, revoked = row
    return Hook(str(hook_id), kind, str(room), str(name), url,
                tuple(word for word in str(triggers).split("\n") if word), key,
                None if by is None else int(by), int(ts),
                None if revoked is None else int(revoked))


class HookStore:
    """Create, find, list and revoke webhooks; every method raises StoreError on failure."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql

    async def create_incoming(self, room: str, name: str, created_by: int | None,
                              ts: int) -> tuple[Hook, str]:
        """A new incoming hook, and its secret (shown once: only its hash is kept)."""
        secret = secrets.token_urlsafe(SECRET_BYTES)
        hook = Hook(secrets.token_hex(ID_BYTES), "incoming", room, name, None, (), None,
                    created_by, ts)
        await self.sql.sql_writes([(
            "INSERT INTO webhooks (id, kind, room, name, secret_hash, created_by, created_ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (hook.id, hook.kind, room, name, secret_hash(secret), created_by, ts))])
        return hook, secret

    async def create_outgoing(self, room: str, name: str, url: str, triggers: tuple[str, ...],
                              created_by: int | None, ts: int) -> Hook:
        """A new outgoing hook with a new signing key (the caller shows it once)."""
        hook = Hook(secrets.token_hex(ID_BYTES), "outgoing", room, name, url, triggers,
                    secrets.token_urlsafe(SECRET_BYTES), created_by, ts)
        await self.sql.sql_writes([(
            "INSERT INTO webhooks (id, kind, room, name, url, triggers, signing_key,"
            " created_by, created_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (hook.id, hook.kind, room, name, url, "\n".join(triggers), hook.signing_key,
             created_by, ts))])
        return hook

    async def by_secret(self, secret: str) -> Hook | None:
        """The live incoming hook with this secret, or None (revoked, or no such secret)."""
        rows = await self.sql.sql_rows(
            f"SELECT {_COLUMNS} FROM webhooks WHERE secret_hash = ? AND revoked_ts IS NULL",
            (secret_hash(secret),))
        return _hook(rows[0]) if rows else None

    async def by_id(self, hook_id: str) -> Hook | None:
        """The live hook with this id, or None."""
        rows = await self.sql.sql_rows(
            f"SELECT {_COLUMNS} FROM webhooks WHERE id = ? AND revoked_ts IS NULL", (hook_id,))
        return _hook(rows[0]) if rows else None

    async def of_room(self, room: str | None, kind: HookKind | None = None) -> list[Hook]:
        """The live hooks of a room (or of every room), oldest first; of one kind if given."""
        where = ["revoked_ts IS NULL"]
        params: list[Any] = []
        if room is not None:
            where.append("room = ?")
            params.append(room)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        rows = await self.sql.sql_rows(
            f"SELECT {_COLUMNS} FROM webhooks WHERE {' AND '.join(where)}"
            " ORDER BY created_ts, id", tuple(params))
        return [_hook(row) for row in rows]

    async def revoke(self, hook_id: str, ts: int) -> bool:
        """Stop the hook at once, on every node (each call reads the table); whether it was
        live."""
        done = await self.sql.sql_writes([(
            "UPDATE webhooks SET revoked_ts = ? WHERE id = ? AND revoked_ts IS NULL",
            (ts, hook_id))])
        return done[0] == 1

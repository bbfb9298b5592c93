"""Files' records in the accounts' database: who uploaded what, and which messages carry it.

Written once for SQLite and PostgreSQL, as chat/rooms/store.py is: SQLite's text with `?`
markers through the account store's `sql_rows` / `sql_writes`. Every method raises
chat.store.StoreError when the database fails. Timestamps are ms since the epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chat.rooms.store import Sql, Step

_COLUMNS = ("id, owner_id, name, size, type, sha256, width, height, thumb_sha256, thumb_type,"
            " created_ts, attached")
# The quota holds at the insert: the row is written only if the owner's stored bytes with it
# stay within the quota (one statement; under PostgreSQL's READ COMMITTED two uploads at the
# very same instant may each pass it once).
# (PostgreSQL cannot tell a bare parameter's type in a SELECT list: each is cast.)
_INSERT = (f"INSERT INTO files ({_COLUMNS}) SELECT CAST(? AS TEXT), CAST(? AS BIGINT),"
           " CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT),"
           " CAST(? AS INTEGER), CAST(? AS INTEGER), CAST(? AS TEXT), CAST(? AS TEXT),"
           " CAST(? AS BIGINT), 0"
           " WHERE (SELECT coalesce(sum(size), 0) FROM files WHERE owner_id = ?)"
           " + CAST(? AS BIGINT) <= CAST(? AS BIGINT)")
_USED = "SELECT coalesce(sum(size), 0) FROM files WHERE owner_id = ?"
_BY_ID = f"SELECT {_COLUMNS} FROM files WHERE id = ?"
_LINKS_OF = "SELECT conversation, message_id FROM file_links WHERE file_id = ?"
_LINK = ("INSERT INTO file_links (conversation, message_id, file_id) VALUES (?, ?, ?)"
         " ON CONFLICT (conversation, message_id, file_id) DO NOTHING")
_ATTACHED = "UPDATE files SET attached = 1 WHERE id = ?"
_OF_MESSAGES = ("SELECT l.message_id, f.id, f.owner_id, f.name, f.size, f.type, f.sha256,"
                " f.width, f.height, f.thumb_sha256, f.thumb_type, f.created_ts, f.attached"
                " FROM file_links l JOIN files f ON f.id = l.file_id"
                " WHERE l.conversation = ? AND l.message_id >= ? AND l.message_id <= ?"
                " ORDER BY l.message_id, f.created_ts, f.id")
_UNLINK = "DELETE FROM file_links WHERE conversation = ? AND message_id = ?"
# Attached files no message carries any more, and uploads never attached before a time.
_ORPHANS = ("SELECT id, sha256, thumb_sha256 FROM files f WHERE f.attached = 1 AND NOT EXISTS"
            " (SELECT 1 FROM file_links l WHERE l.file_id = f.id) LIMIT ?")
_STALE = ("SELECT id, sha256, thumb_sha256 FROM files WHERE attached = 0 AND created_ts < ?"
          " LIMIT ?")
_DELETE = "DELETE FROM files WHERE id = ?"
_BLOB_USED = "SELECT 1 FROM files WHERE sha256 = ? OR thumb_sha256 = ? LIMIT 1"
_LINKED_CONVERSATIONS = "SELECT DISTINCT conversation FROM file_links"
_RELEASE_BEFORE = "DELETE FROM file_links WHERE conversation = ? AND message_id < ?"
# Messages a moderator removed (chat/rooms/) take their files with them.
_RELEASE_REMOVED = ("DELETE FROM file_links WHERE EXISTS (SELECT 1 FROM removed_messages r"
                    " WHERE r.room = file_links.conversation AND r.id = file_links.message_id)")


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One upload: its display name, size, sniffed type, blob (and thumbnail's) by sha256."""

    id: str
    owner_id: int
    name: str
    size: int
    type: str
    sha256: str
    width: int | None
    height: int | None
    thumb_sha256: str | None
    thumb_type: str | None
    created_ts: int
    attached: bool = False

    def as_json(self) -> dict[str, Any]:
        """The upload as the API and a message's `files` show it (URLs relative to the host)."""
        shown: dict[str, Any] = {"id": self.id, "name": self.name, "size": self.size,
                                 "type": self.type, "url": file_url(self.id)}
        if self.width is not None and self.height is not None:
            shown["width"] = self.width
            shown["height"] = self.height
        if self.thumb_sha256 is not None:
            shown["thumbnail"] = file_url(self.id) + "/thumbnail"
        return shown


def file_url(file_id: str) -> str:
    """The path a file is downloaded from (handlers/api/files.py)."""
    return f"/api/v1/files/{file_id}"


def _record(row: Sequence[Any]) -> FileRecord:
    return FileRecord(str(row[0]), int(row[1]), str(row[2]), int(row[3]), str(row[4]),
                      str(row[5]), None if row[6] is None else int(row[6]),
                      None if row[7] is None else int(row[7]), row[8], row[9], int(row[10]),
                      bool(row[11]))


class FileStore:
    """The files' records; the bytes are chat/files/disk.py's."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql

    async def add(self, record: FileRecord, quota: int) -> bool:
        """Store a new upload's record; False (nothing stored) if it would take its owner past
        `quota` bytes (0: no quota)."""
        limit = quota if quota > 0 else 2**62
        r = record
        done = await self.sql.sql_writes([(_INSERT, (
            r.id, r.owner_id, r.name, r.size, r.type, r.sha256, r.width, r.height,
            r.thumb_sha256, r.thumb_type, r.created_ts, r.owner_id, r.size, limit))])
        return done[0] == 1

    async def used(self, owner_id: int) -> int:
        """The bytes of the account's stored uploads."""
        rows = await self.sql.sql_rows(_USED, (owner_id,))
        return int(rows[0][0])

    async def get(self, file_id: str) -> FileRecord | None:
        rows = await self.sql.sql_rows(_BY_ID, (file_id,))
        return _record(rows[0]) if rows else None

    async def links(self, file_id: str) -> list[tuple[str, int]]:
        """The messages that carry the file: (conversation, message id)."""
        rows = await self.sql.sql_rows(_LINKS_OF, (file_id,))
        return [(str(conversation), int(message)) for conversation, message in rows]

    async def link(self, conversation: str, message_id: int, file_ids: Sequence[str]) -> None:
        """Record that a message carries these files (they are attached from now on)."""
        steps: list[Step] = []
        for file_id in file_ids:
            steps += [(_LINK, (conversation, message_id, file_id)), (_ATTACHED, (file_id,))]
        await self.sql.sql_writes(steps)

    async def of_messages(self, conversation: str, first: int,
                          last: int) -> dict[int, list[FileRecord]]:
        """The files of the conversation's messages with ids from `first` to `last`, by id."""
        rows = await self.sql.sql_rows(_OF_MESSAGES, (conversation, first, last))
        found: dict[int, list[FileRecord]] = {}
        for row in rows:
            found.setdefault(int(row[0]), []).append(_record(row[1:]))
        return found

    async def unlink(self, conversation: str, message_ids: Sequence[int]) -> None:
        """The messages no longer carry files (deleted); the files are swept by orphans()."""
        await self.sql.sql_writes([(_UNLINK, (conversation, message_id))
                                   for message_id in message_ids])

    async def unlink_before(self, conversation: str, first_kept: int) -> int:
        """Retention deleted the conversation's messages below `first_kept`: drop their links."""
        done = await self.sql.sql_writes([(_RELEASE_BEFORE, (conversation, first_kept))])
        return done[0]

    async def unlink_removed(self) -> int:
        """Drop the links of messages moderators removed."""
        done = await self.sql.sql_writes([(_RELEASE_REMOVED, ())])
        return done[0]

    async def linked_conversations(self) -> list[str]:
        rows = await self.sql.sql_rows(_LINKED_CONVERSATIONS, ())
        return [str(row[0]) for row in rows]

    async def orphans(self, limit: int) -> list[tuple[str, str, str | None]]:
        """Attached files no message carries any more: (id, sha256, thumbnail's sha256)."""
        rows = await self.sql.sql_rows(_ORPHANS, (limit,))
        return [(str(a), str(b), c) for a, b, c in rows]

    async def stale(self, before_ts: int, limit: int) -> list[tuple[str, str, str | None]]:
        """Uploads never attached, made before `before_ts`: (id, sha256, thumbnail's sha256)."""
        rows = await self.sql.sql_rows(_STALE, (before_ts, limit))
        return [(str(a), str(b), c) for a, b, c in rows]

    async def delete(self, file_id: str) -> None:
        await self.sql.sql_writes([(_DELETE, (file_id,))])

    async def blob_used(self, sha256: str) -> bool:
        """Whether any record still names this blob (as its bytes or its thumbnail)."""
        return bool(await self.sql.sql_rows(_BLOB_USED, (sha256, sha256)))

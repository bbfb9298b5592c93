"""The files of the chat: an upload becomes a record and a blob; who may read one; release.

Blocking work (decoding images, hashing, renaming) runs on a bounded thread pool of
--image-workers threads, never on the event loop. Records live in the accounts' database
(chat/files/store.py), bytes in --files-dir (chat/files/disk.py).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from chat.accounts.model import Account
from chat.config import Settings
from chat.files import images
from chat.files.disk import Disk, sha256_of
from chat.files.names import display_name
from chat.files.sniff import IMAGE_TYPES, OCTET_STREAM, sniff
from chat.files.store import FileRecord, FileStore
from chat.people.identity import account_party
from chat.record import DM_PREFIX, dm_parties
from chat.rooms.store import RoomStore, Sql
from chat.store.base import HistoryStore

log = logging.getLogger("chat.files")

FILE_ID_BYTES = 18  # 144 random bits, 24 URL-safe characters: an id no one guesses
FILE_ID_PATTERN = r"[A-Za-z0-9_-]{24}"
SWEEP_BATCH = 500  # records one sweep step deletes at most, then looks again
# A blob a sweep took out this long ago (s) and never deleted or put back was left by a node
# that died meanwhile (a live sweep settles one within a store read): the next sweep settles it.
SETTLE_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class Limits:
    """What the settings say about files (chat/config.py: --max-upload-bytes and the rest)."""

    max_upload_bytes: int
    quota_bytes: int  # 0: none
    max_image_pixels: int
    per_message: int
    unattached_ttl_s: float


class QuotaExceeded(Exception):
    """The upload would take its owner past --upload-quota-bytes."""


class Files:
    """Uploads in, records and blobs kept, reads checked, released with their messages."""

    def __init__(self, sql: Sql, history: HistoryStore, root: Path, limits: Limits,
                 workers: int) -> None:
        self.store = FileStore(sql)
        self.rooms = RoomStore(sql)
        self.history = history
        self.disk = Disk(root)
        self.limits = limits
        # Bounded: a burst of uploads queues for the threads instead of decoding at once.
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chat-files")
        # Pillow's own guard too (a warning past it, an error past twice it): the same limit.
        Image.MAX_IMAGE_PIXELS = limits.max_image_pixels

    @classmethod
    def of(cls, settings: Settings, sql: Sql, history: HistoryStore, root: Path) -> Files:
        """The files of a server with these settings, kept under `root`."""
        return cls(sql, history, root, Limits(
            settings.max_upload_bytes, settings.upload_quota_bytes, settings.max_image_pixels,
            settings.files_per_message, settings.unattached_upload_ttl), settings.image_workers)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def accept(self, owner: Account, raw_name: str, temporary: Path, sha256: str,
                     head: bytes) -> FileRecord:
        """Turn a received temporary file (its bytes' hash, its first bytes) into a stored
        upload (the temporary file is gone after, whatever happens); QuotaExceeded or
        StoreError when it cannot be kept."""
        kind = sniff(head)
        try:
            processed = None
            if kind in IMAGE_TYPES:
                processed = await asyncio.get_running_loop().run_in_executor(
                    self.executor, images.process, temporary, kind,
                    self.limits.max_image_pixels, temporary)
                if processed is None:
                    kind = OCTET_STREAM  # no image after all: never shown inline
            loop = asyncio.get_running_loop()
            served = processed.clean if processed is not None else temporary
            sha = (await loop.run_in_executor(self.executor, sha256_of, served)
                   if processed is not None else sha256)
            size = served.stat().st_size
            thumb_sha = thumb_type = None
            if processed is not None and processed.thumbnail is not None:
                thumb_type = images.thumbnail_type(processed.thumbnail)
                thumb_sha = await loop.run_in_executor(self.executor, sha256_of,
                                                       processed.thumbnail)
            record = FileRecord(
                secrets.token_urlsafe(FILE_ID_BYTES), owner.id, display_name(raw_name), size,
                kind, sha, processed.width if processed else None,
                processed.height if processed else None, thumb_sha, thumb_type,
                int(time.time() * 1000))
            # The record first, then the blobs: a sweep that finds the same bytes unused
            # takes its blob out of place and asks again before deleting it (_forget_blobs),
            # so once this record is in, that blob is put back, never lost.
            if not await self.store.add(record, self.limits.quota_bytes):
                raise QuotaExceeded(record.size)
            try:
                if processed is not None and processed.thumbnail is not None:
                    assert thumb_sha is not None
                    self.disk.commit(processed.thumbnail, thumb_sha)
                self.disk.commit(served, sha)
            except OSError:
                await self.store.delete(record.id)
                raise
            return record
        finally:
            for leftover in (temporary, temporary.with_suffix(".clean"),
                             temporary.with_suffix(".thumb")):
                self.disk.discard(leftover)

    async def may_read(self, record: FileRecord, account: Account) -> bool:
        """Whether the account may download the file: its uploader, or a reader of a
        conversation a message carrying it was posted in (a public room: any account; a
        private one: its members; a direct conversation: its two parties). Banned: no."""
        if record.owner_id == account.id:
            return True
        party = account_party(account.id)
        now = int(time.time() * 1000)
        for conversation, _ in await self.store.links(record.id):
            if conversation.startswith(DM_PREFIX):
                if party in dm_parties(conversation):
                    return True
                continue
            access = await self.rooms.access(conversation, account.id, [party], now)
            if access.room is None or access.banned_until is not None:
                continue
            if access.room.visibility == "public" or access.role is not None:
                return True
        return False

    async def attachable(self, owner_id: int, file_ids: Sequence[str]) -> list[FileRecord]:
        """The records of `file_ids` if each is an upload of `owner_id`; LookupError naming the
        first that is not (unknown, or someone else's: the same answer)."""
        found = []
        for file_id in file_ids:
            record = await self.store.get(file_id)
            if record is None or record.owner_id != owner_id:
                raise LookupError(file_id)
            found.append(record)
        return found

    async def release_files(self, conversation: str, message_ids: Sequence[int]) -> None:
        """Deleted messages: their files go too, unless another message still carries them.

        For whoever deletes messages (edit/delete, issue 18's other part): call it after the
        messages are deleted. Retention and moderators' removals are found by sweep().
        """
        await self.store.unlink(conversation, message_ids)
        await self.collect()

    async def collect(self) -> int:
        """Delete attached files no message carries any more, blobs and all; how many."""
        deleted = 0
        while orphans := await self.store.orphans(SWEEP_BATCH):
            for file_id, sha, thumb in orphans:
                await self._delete(file_id, sha, thumb)
            deleted += len(orphans)
            if len(orphans) < SWEEP_BATCH:
                break
        return deleted

    async def sweep(self, now_ms: int) -> int:
        """Retention's and removals' files, and uploads never attached past their time."""
        for conversation in await self.store.linked_conversations():
            oldest = await self.history.after(conversation, 0, 1)
            await self.store.unlink_before(conversation, oldest[0].id if oldest else 2**62)
        await self.store.unlink_removed()
        await self._settle_taken(time.time() - SETTLE_AFTER_S)
        deleted = await self.collect()
        before = now_ms - int(self.limits.unattached_ttl_s * 1000)
        while stale := await self.store.stale(before, SWEEP_BATCH):
            for file_id, sha, thumb in stale:
                await self._delete(file_id, sha, thumb)
            deleted += len(stale)
            if len(stale) < SWEEP_BATCH:
                break
        await asyncio.get_running_loop().run_in_executor(
            self.executor, self._clear_tmp, time.time() - self.limits.unattached_ttl_s)
        return deleted

    async def _settle_taken(self, before_s: float) -> None:
        """Blobs a sweep took out and never settled (its node died meanwhile): put back if a
        record names them, else deleted."""
        for path, blob in self.disk.taken(before_s):
            if await self.store.blob_used(blob):
                self.disk.put_back(path, blob)
            else:
                self.disk.discard(path)

    def _clear_tmp(self, before_s: float) -> None:
        """Temporary files an upload left behind (a node that died while receiving)."""
        for path in self.disk.tmp.glob("*.part"):
            try:
                if path.stat().st_mtime < before_s:
                    path.unlink()
            except FileNotFoundError:
                pass

    async def _delete(self, file_id: str, sha: str, thumb: str | None) -> None:
        await self.store.delete(file_id)
        await self._forget_blobs(sha, thumb)

    async def _forget_blobs(self, sha: str, thumb: str | None) -> None:
        """Delete these blobs unless a record still names them (another upload of the same
        bytes keeps them). An upload adds its record before its blob (accept): so a blob is
        first taken out of place, then the records are asked again, and it is put back if
        one names it now."""
        for blob in (sha, thumb):
            if blob is None or await self.store.blob_used(blob):
                continue
            taken = self.disk.take_out(blob)
            if taken is None:
                continue  # gone already (another node's sweep)
            if await self.store.blob_used(blob):
                self.disk.put_back(taken, blob)
            else:
                self.disk.discard(taken)

"""Where the files live (--files-dir), and the sweep that deletes what no message keeps.

Every --files-sweep-interval a node releases the files of messages retention deleted or
moderators removed, deletes files no message carries any more, uploads never attached for
--unattached-upload-ttl, and temporary files a crashed upload left. Several nodes may sweep
the same database and folder: each deletion is idempotent.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from chat.files.service import Files
from chat.periodic import Periodic
from chat.store.base import StoreError
from chat.urls import is_postgres_db

log = logging.getLogger("chat.files")


def files_folder(files_dir: str, db: str) -> Path | None:
    """--files-dir, or its default for --db: `files` beside a SQLite file, in the working
    folder for PostgreSQL; None for `:memory:` (the server makes a temporary folder)."""
    if files_dir:
        return Path(files_dir)
    if db == ":memory:":
        return None
    if is_postgres_db(db):
        return Path("files")
    return Path(db).resolve().parent / "files"


class FileSweeper(Periodic):
    """Runs Files.sweep every `interval_s` seconds until closed; a failed round is logged and
    tried again at the next."""

    what = "file sweep"
    log = log
    retried = (StoreError, OSError)

    def __init__(self, files: Files, interval_s: float) -> None:
        super().__init__(interval_s)
        self._files = files

    async def sweep(self) -> int:
        """One round now: the number of files it deleted."""
        deleted = await self._files.sweep(int(time.time() * 1000))
        if deleted:
            log.info("file sweep: %d files deleted", deleted)
        return deleted

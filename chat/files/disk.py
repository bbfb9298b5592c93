"""Files on disk, by content hash: written to a temporary file, then renamed into place.

The folder holds `tmp/` (uploads being received, on the same file system so that the rename is
atomic) and `<first two hex digits>/<sha256>` blobs. Two uploads of the same bytes are one
blob; a blob is deleted when no file record names it (chat/files/service.py). In a cluster
every node mounts the same folder (docs/deployment.md).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from pathlib import Path
from typing import BinaryIO

HASH_CHUNK_BYTES = 1024 * 1024  # read per step when hashing a file: bounded memory
TMP_FOLDER = "tmp"


class Disk:
    """The files folder: temporary files, blobs by sha256, nothing named by a user."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / TMP_FOLDER

    def prepare(self) -> None:
        """OSError if the folder could not be made or written; nothing is created yet.

        The folder is made by the first upload: a server that never receives one (a test's,
        a node without uploads) leaves no empty folder behind.
        """
        existing = self.root
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
        if not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(existing))

    def temporary(self) -> tuple[Path, BinaryIO]:
        """A new temporary file, open for writing (its path: a random name in tmp/)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        path = self.tmp / f"{secrets.token_hex(16)}.part"
        return path, path.open("xb")

    def path_of(self, sha256: str) -> Path:
        """Where the blob with this hash lives (the hash is ours: hex digits only)."""
        if len(sha256) != 64 or not all(ch in "0123456789abcdef" for ch in sha256):
            raise ValueError(f"not a sha256: {sha256[:80]!r}")
        return self.root / sha256[:2] / sha256

    def commit(self, temporary: Path, sha256: str) -> Path:
        """Move a finished temporary file into place as the blob `sha256` (atomic; the same
        bytes already there are simply replaced by themselves)."""
        target = self.path_of(sha256)
        target.parent.mkdir(exist_ok=True)
        os.replace(temporary, target)
        return target

    def take_out(self, sha256: str) -> Path | None:
        """Move a blob out of place (atomic) to be deleted or put back; None if it is gone
        (another node swept it)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        out = self.tmp / f"{sha256}.{secrets.token_hex(8)}.out"
        try:
            os.replace(self.path_of(sha256), out)
        except FileNotFoundError:
            return None
        return out

    def taken(self, before_s: float) -> list[tuple[Path, str]]:
        """Blobs taken out before `before_s` (their rename's time) and never settled: a node
        died between taking one out and deleting or putting it back. With their hashes."""
        found = []
        for path in self.tmp.glob("*.out") if self.tmp.is_dir() else ():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_ctime < before_s:
                    found.append((path, path.name.split(".", 1)[0]))
        return found

    def put_back(self, taken: Path, sha256: str) -> None:
        """A blob taken out that a record names after all: in place again (the same bytes an
        upload may have put there meanwhile are replaced by themselves)."""
        with contextlib.suppress(FileNotFoundError):  # settled already (another node)
            self.commit(taken, sha256)

    @staticmethod
    def discard(path: Path) -> None:
        """Delete a temporary file, if it is still there."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file, read a chunk at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()

"""POST /api/v1/uploads (a file's bytes, streamed to disk) and GET /api/v1/files/<id>."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from tornado.web import stream_request_body

from chat.accounts import AccountService
from chat.config import Settings
from chat.files.names import display_name
from chat.files.service import Files, QuotaExceeded
from chat.files.sniff import ACTIVE_TYPES, IMAGE_TYPES, OCTET_STREAM, SNIFF_BYTES
from chat.files.store import FileRecord
from chat.store.base import StoreError
from handlers.api.base import ApiError, ApiHandler, Signed

log = logging.getLogger("chat.files")

READ_CHUNK_BYTES = 256 * 1024  # sent per write when serving a file: bounded memory per download
# No body limit of Tornado's own for an upload: this handler counts the bytes and answers 413
# itself (Tornado would answer a chunked body past its limit with a bare 400).
UNLIMITED = 2**62
# The server's body timeout is --header-timeout (10 s: the API's JSON bodies are small); an
# upload gets that plus the time its largest body takes at this rate (a slow mobile uplink):
# 25 MiB at 32 KiB/s is ~13 minutes. Only a signed-in account gets this far.
UPLOAD_MIN_BYTES_PER_S = 32 * 1024
# A file's id is its only name: what is under it never changes (a new upload is a new id).
CACHE_CONTROL = "private, max-age=86400"
USER_CONTENT_POLICY = "default-src 'none'; sandbox"


def too_large(size: int, limit: int) -> ApiError:
    return ApiError(413, "file_too_large", f"the file is {size:,} bytes or more; the limit is "
                    f"{limit:,} bytes (--max-upload-bytes)")


def over_quota(quota: int) -> ApiError:
    return ApiError(413, "quota_exceeded", f"this upload would take your stored files past "
                    f"your quota of {quota:,} bytes (--upload-quota-bytes); delete messages "
                    "with files, or ask an admin")


@stream_request_body
class UploadHandler(ApiHandler):
    """One file per request: the body is its bytes, `?name=` its name (shown, never a path).

    The body goes to a temporary file as it arrives; past --max-upload-bytes the answer is 413
    at once and the connection closes, the rest unread.
    """

    SUPPORTED_METHODS = ("POST",)

    def initialize(self, accounts: AccountService, settings: Settings,  # type: ignore[override]
                   files: Files) -> None:
        super().initialize(accounts, settings)
        self.files = files
        self._temporary: Path | None = None
        self._file: BinaryIO | None = None
        self._size = 0
        self._head = b""
        self._hash = hashlib.sha256()
        self._signed: Signed | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        if self._bearer() is None:
            self._check_same_origin()
        self._signed = await self.signed_in()
        limit = self.chat_settings.max_upload_bytes
        declared = self.request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large(int(declared), limit)  # refused before one byte is read
        quota = self.chat_settings.upload_quota_bytes
        if quota:
            try:
                used = await self.files.store.used(self._signed.account.id)
            except StoreError:
                raise ApiError(503, "store_failed", "uploads cannot be stored now; try again "
                               "shortly") from None
            if used + (int(declared) if declared.isdigit() else 0) > quota:
                raise over_quota(quota)
        self.request.connection.set_max_body_size(UNLIMITED)  # type: ignore[union-attr]
        self.request.connection.set_body_timeout(  # type: ignore[union-attr]
            self.chat_settings.header_timeout + limit / UPLOAD_MIN_BYTES_PER_S)
        self._temporary, self._file = self.files.disk.temporary()

    def data_received(self, chunk: bytes) -> None:
        if self._finished or self._file is None:
            return  # refused already: what still arrives is dropped until the close
        self._size += len(chunk)
        limit = self.chat_settings.max_upload_bytes
        if self._size > limit:
            self._discard()
            error = too_large(self._size, limit)
            self.set_status(413)
            self.finish_json(error.body)
            return
        if len(self._head) < SNIFF_BYTES:
            self._head += chunk[:SNIFF_BYTES - len(self._head)]
        self._hash.update(chunk)
        # A write of one chunk (Tornado's 64 KiB) to the page cache takes microseconds: done
        # here, in order, rather than through a thread per chunk.
        self._file.write(chunk)

    def finish_json(self, body: dict[str, str | int]) -> None:
        self.finish(json.dumps(body, ensure_ascii=False))

    def _discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._temporary is not None:
            self.files.disk.discard(self._temporary)
            self._temporary = None

    def on_connection_close(self) -> None:
        self._discard()  # the client went away mid-upload: nothing is kept
        super().on_connection_close()

    def on_finish(self) -> None:
        self._discard()

    async def post(self) -> None:
        if self._finished or self._file is None or self._temporary is None:
            return
        assert self._signed is not None
        self._file.close()
        self._file = None
        temporary, self._temporary = self._temporary, None  # accept() owns it from here
        # Raw: Tornado's get_query_argument would turn controls into spaces; names.py drops them.
        raw_name = self.request.query_arguments.get("name", [b""])[-1].decode("utf-8", "replace")
        try:
            record = await self.files.accept(self._signed.account, display_name(raw_name),
                                             temporary, self._hash.hexdigest(), self._head)
        except QuotaExceeded:
            raise over_quota(self.chat_settings.upload_quota_bytes) from None
        except (StoreError, OSError) as exc:
            log.error("could not store an upload of %d bytes: %s", self._size, exc)
            raise ApiError(503, "store_failed", "the file could not be stored; try again "
                           "shortly") from None
        self.send_json(record.as_json(), 201)


class FileHandler(ApiHandler):
    """A file's bytes (or its thumbnail) to whoever may read a conversation it was posted in.

    Unknown and not yours to read get the same 404: an id says nothing about a private room.
    """

    SUPPORTED_METHODS = ("GET",)

    def initialize(self, accounts: AccountService, settings: Settings,  # type: ignore[override]
                   files: Files) -> None:
        super().initialize(accounts, settings)
        self.files = files

    async def get(self, file_id: str, part: str | None = None) -> None:
        signed = await self.signed_in()
        try:
            record = await self.files.store.get(file_id)
            readable = record is not None and await self.files.may_read(record, signed.account)
        except StoreError:
            raise ApiError(503, "store_failed", "files cannot be read now; try again "
                           "shortly") from None
        if record is None or not readable:
            raise ApiError(404, "no_such_file", "there is no such file, or it was not shared "
                           "with you")
        thumbnail = part == "thumbnail"
        if thumbnail and record.thumb_sha256 is None:
            raise ApiError(404, "no_such_file", "this file has no thumbnail")
        sha = record.thumb_sha256 if thumbnail and record.thumb_sha256 else record.sha256
        try:
            file = self.files.disk.path_of(sha).open("rb")
        except FileNotFoundError:
            log.warning("file %s has a record but its bytes %s are missing from %s",
                        record.id, sha[:12], self.files.disk.root)
            raise ApiError(404, "no_such_file", "this file's contents are gone") from None
        with file:
            self._headers_for(record, thumbnail)
            self.set_header("Content-Length", str(file.seek(0, 2)))
            file.seek(0)
            while chunk := file.read(READ_CHUNK_BYTES):
                self.write(chunk)
                await self.flush()  # one chunk in flight at a time: memory bounded
        self.finish()

    def _headers_for(self, record: FileRecord, thumbnail: bool) -> None:
        """What keeps user content from acting as a page of ours: a sniffed type, inline only
        for the four image types, nosniff, and a sandboxing policy with nothing allowed."""
        inline = thumbnail or record.type in IMAGE_TYPES
        if thumbnail:
            kind = record.thumb_type or "image/jpeg"
        elif record.type in ACTIVE_TYPES:
            kind = OCTET_STREAM  # an attachment already; no type a browser would run either
        elif record.type == "text/plain":
            kind = "text/plain; charset=utf-8"
        else:
            kind = record.type
        self.set_header("Content-Type", kind)
        self.set_header("Content-Disposition", content_disposition(
            "inline" if inline else "attachment", record.name))
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", USER_CONTENT_POLICY)
        self.set_header("Cross-Origin-Resource-Policy", "same-origin")
        self.set_header("Cache-Control", CACHE_CONTROL)
        self.set_header("ETag", f'"{record.thumb_sha256 if thumbnail else record.sha256}"')


def content_disposition(disposition: str, name: str) -> str:
    """The header with an ASCII fallback name and the real one in RFC 5987's filename*."""
    fallback = "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\;' else "_"
                       for ch in name) or "file"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"

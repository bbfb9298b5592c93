"""Messages that carry files: checked and linked when sent, read back with their history.

A message's files are rows of `file_links` beside it, not columns of its row, so the history
stores stay as they are: `WithFiles` adds them to what a history read returns, asking only for
messages whose text holds a file link (every message with files has one: the tutorial's
clients read it) or that were edited, so a history without files costs no query.

Files belong to their message by id, not by the link lines in its text: an edit changes the
text only, as in Slack and Mattermost. The page edits the text without the link lines it hides,
a tutorial client with them; either way `WithFiles.edit` puts the message's own link lines back
at the end, so the text still names every file it carries. A file leaves its message only with
the message (`delete`); there is no removing one file from a message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from chat.files.store import FileRecord, FileStore, file_url
from chat.protocol.commands import ProtocolError
from chat.record import StoredMessage
from chat.store.base import HistoryStore

LINK_MARK = file_url("")  # "/api/v1/files/": in the text of every message with files


def text_with_links(text: str, files: Sequence[FileRecord]) -> str:
    """The message's text followed by a line per file (name, size, link): what a client that
    knows nothing of `files` (the tutorial's) shows."""
    lines = [f"[{record.name}, {_size(record.size)}] {file_url(record.id)}" for record in files]
    return "\n".join([text, *lines] if text else lines)


def without_links(text: str, files: Sequence[FileRecord]) -> str:
    """`text` without the link lines of `files` at its end (the page's withoutFileLines:
    a trailing line whose last word is one of their links)."""
    urls = {file_url(record.id) for record in files}
    lines = text.split("\n")
    while lines and lines[-1].split(" ")[-1] in urls:
        lines.pop()
    return "\n".join(lines)


def _size(size: int) -> str:
    if size < 1000:
        return f"{size:,} bytes"
    return f"{size / 1000:.1f} KB" if size < 1_000_000 else f"{size / 1_000_000:.1f} MB"


def with_files(stored: StoredMessage, files: Sequence[FileRecord]) -> StoredMessage:
    return dataclasses.replace(stored, files=tuple(record.as_json() for record in files))


def check_count(file_ids: Sequence[str], limit: int, request: str, cid: str | None) -> None:
    if len(file_ids) > limit:
        raise ProtocolError("too_many_files", f"the message carries {len(file_ids)} files; the "
                            f"limit is {limit} (--files-per-message)", request=request, cid=cid,
                            limit=limit)


class WithFiles:
    """A history store whose reads come with each message's files (the rest passes through)."""

    def __init__(self, inner: HistoryStore, files: FileStore) -> None:
        self.inner = inner
        self.files = files

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # read marks, presence, the commit feed: as they are

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def append(self, conversation: str, *, username: str, avatar: str, text: str,
                     ts: int, cid: str | None = None, to: str | None = None,
                     guest: bool = False, reply_to: int | None = None, bot: bool = False,
                     author: str | None = None) -> tuple[StoredMessage, bool]:
        stored, created = await self.inner.append(
            conversation, username=username, avatar=avatar, text=text, ts=ts, cid=cid, to=to,
            guest=guest, reply_to=reply_to, bot=bot, author=author)
        if not created:  # a repeated cid: the original, which may carry files
            stored = (await self._add([stored]))[0]
        return stored, created

    async def latest(self, conversation: str, limit: int) -> list[StoredMessage]:
        return await self._add(await self.inner.latest(conversation, limit))

    async def before(self, conversation: str, before_id: int,
                     limit: int) -> list[StoredMessage]:
        return await self._add(await self.inner.before(conversation, before_id, limit))

    async def after(self, conversation: str, after_id: int, limit: int) -> list[StoredMessage]:
        return await self._add(await self.inner.after(conversation, after_id, limit))

    async def prune(self) -> int:
        return await self.inner.prune()

    async def edit(self, conversation: str, message_id: int, text: str,
                   ts: int) -> StoredMessage | None:
        """The edit, with the message's files kept: their link lines end the new text."""
        found = await self.files.of_messages(conversation, message_id, message_id)
        files = found.get(message_id, [])
        if files:
            text = text_with_links(without_links(text, files), files)
        changed = await self.inner.edit(conversation, message_id, text, ts)
        return with_files(changed, files) if changed is not None and files else changed

    async def _add(self, messages: list[StoredMessage]) -> list[StoredMessage]:
        """The messages, those with file links given their files (StoreError if unreadable)."""
        # Edited: one edited before edits kept the link lines may carry files all the same.
        carrying = [message.id for message in messages
                    if LINK_MARK in message.text or message.edited is not None]
        if not carrying:
            return messages
        found = await self.files.of_messages(messages[0].conversation, min(carrying),
                                             max(carrying))
        return [with_files(message, found[message.id]) if message.id in found else message
                for message in messages]

"""An outgoing event serialized and framed once (RFC 6455 section 5.2), for all its recipients."""

from __future__ import annotations

import struct
from typing import Any

from chat.protocol import jsoncodec

_FIN_TEXT = 0x81  # FIN bit + opcode 0x1 (text); server frames are never masked
_RSV1 = 0x40  # marks a compressed message once permessage-deflate is agreed (RFC 7692)


def text_frame(payload: bytes, *, compressed: bool = False) -> bytes:
    """The bytes of one unmasked, unfragmented text frame carrying `payload`."""
    first = _FIN_TEXT | _RSV1 if compressed else _FIN_TEXT
    size = len(payload)
    if size < 126:
        return struct.pack("!BB", first, size) + payload
    if size <= 0xFFFF:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


class Frame:
    """One event: its JSON `payload` and its `wire` bytes, shared by every recipient."""

    __slots__ = ("payload", "wire")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.wire = text_frame(payload)

    @classmethod
    def of(cls, event: dict[str, Any]) -> Frame:
        """Serialize and frame an event."""
        return cls(jsoncodec.dumps(event))

    def __repr__(self) -> str:
        return f"Frame({self.payload[:80]!r})"


class Frames:
    """Frames sent together, in order: one by one to a peer that encodes each (deflate), as
    their joined `wire` bytes to one that does not, one queueing for them all."""

    __slots__ = ("frames", "wire")

    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames
        self.wire = b"".join(frame.wire for frame in frames)

    @classmethod
    def cut(cls, frames: list[Frame], wire: bytes) -> Frames:
        """Frames whose joined bytes the caller has already: `wire` must be those of `frames`."""
        made = cls.__new__(cls)
        made.frames, made.wire = frames, wire
        return made

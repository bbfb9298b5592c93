"""RFC 6455 strictness Tornado lacks: close 1002 or 1007 where it aborts or lets a violation by."""

from __future__ import annotations

import struct
from typing import NoReturn

from tornado.concurrent import Future
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketProtocol13

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
_DATA_OPCODES = frozenset({0x0, 0x1, 0x2})
_CONTROL_OPCODES = frozenset({0x8, 0x9, 0xA})
_MAX_CONTROL_PAYLOAD = 125  # bytes, RFC 6455 section 5.5
PING_TIMEOUT_REASON = "ping timed out"  # the reason Tornado's keepalive closes with


def valid_close_code(code: int) -> bool:
    """Whether a peer may send `code` in a close frame (RFC 6455 section 7.4, IANA registry)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class StrictProtocol13(WebSocketProtocol13):
    """Tornado's protocol, failing the connection with the RFC's close code on bad input."""

    _at_header = False

    def fail(self, code: int, reason: str) -> NoReturn:
        """Send a close frame with `code`, then drop the connection without waiting."""
        self.close(code, reason)
        raise StreamClosedError()  # ends Tornado's frame loop, which aborts the stream

    def abort(self) -> None:
        """Drop the connection at once, sending nothing more."""
        self._abort()

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        super().close(code, reason)
        if reason == PING_TIMEOUT_REASON:
            # A peer that does not answer pings will not answer a close either: Tornado would
            # keep it in the room for 5 more seconds waiting for that answer.
            self._abort()

    async def _receive_frame(self) -> None:
        self._at_header = True
        await super()._receive_frame()

    async def _read_bytes(self, n: int) -> bytes:
        data = await super()._read_bytes(n)
        if self._at_header:
            self._at_header = False
            problem = self._header_problem(data[0], data[1])
            if problem:
                self.fail(CLOSE_PROTOCOL_ERROR, problem)
        return data

    def _header_problem(self, first: int, second: int) -> str | None:
        opcode = first & self.OPCODE_MASK
        reserved = first & self.RSV_MASK
        if self._decompressor is not None and opcode in (0x1, 0x2):
            reserved &= ~self.RSV1  # RSV1 marks a compressed message once deflate is agreed
        if reserved:
            return "reserved bits set"
        if opcode not in _DATA_OPCODES and opcode not in _CONTROL_OPCODES:
            return f"reserved opcode {opcode:#x}"
        if not second & 0x80:
            return "client frames must be masked"
        if opcode in _CONTROL_OPCODES:
            if not first & self.FIN:
                return "control frames must not be fragmented"
            if second & 0x7F > _MAX_CONTROL_PAYLOAD:
                return "control frame payload over 125 bytes"
        elif opcode == 0x0 and self._fragmented_message_buffer is None:
            return "continuation frame with nothing to continue"
        elif opcode != 0x0 and self._fragmented_message_buffer is not None:
            return "new message inside a fragmented one"
        return None

    def _handle_message(self, opcode: int, data: bytes) -> Future[None] | None:
        if self.client_terminated:
            return None
        if opcode == 0x1 and not self._frame_compressed:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                self.fail(CLOSE_INVALID_DATA, "text frame is not valid UTF-8")
            self._message_bytes_in += len(data)
            return self._run_callback(self.handler.on_message, text)
        if opcode == 0x8:
            self._check_close_payload(data)
        return super()._handle_message(opcode, data)

    def _check_close_payload(self, data: bytes) -> None:
        if len(data) == 1:
            self.fail(CLOSE_PROTOCOL_ERROR, "close payload of one byte")
        if len(data) >= 2:
            (code,) = struct.unpack("!H", data[:2])
            if not valid_close_code(code):
                self.fail(CLOSE_PROTOCOL_ERROR, f"invalid close code {code}")
            try:
                data[2:].decode("utf-8")
            except UnicodeDecodeError:
                self.fail(CLOSE_INVALID_DATA, "close reason is not valid UTF-8")

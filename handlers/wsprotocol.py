"""RFC 6455 strictness Tornado lacks: close 1002 or 1007 where it aborts or lets a violation by."""

from __future__ import annotations

import struct
from typing import Any, NoReturn, cast

from tornado.concurrent import Future
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketHandler, WebSocketProtocol13

from chat.wire import text_frame

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
_DATA_OPCODES = frozenset({0x0, 0x1, 0x2})
_CONTROL_OPCODES = frozenset({0x8, 0x9, 0xA})
_MAX_CONTROL_PAYLOAD = 125  # bytes, RFC 6455 section 5.5
# The compression option (beside Tornado's own mem_level, compression_level) that bounds the
# deflate window each way, in bits: Tornado would use the 32 KiB default whatever it costs.
WINDOW_BITS = "window_bits"


def valid_close_code(code: int) -> bool:
    """Whether a peer may send `code` in a close frame (RFC 6455 section 7.4, IANA registry)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class StrictProtocol13(WebSocketProtocol13):
    """Tornado's protocol, failing the connection with the RFC's close code on bad input."""

    def fail(self, code: int, reason: str) -> NoReturn:
        """Send a close frame with `code`, then drop the connection without waiting."""
        self.close(code, reason)
        raise StreamClosedError()  # ends Tornado's frame loop, which aborts the stream

    def abort(self) -> None:
        """Drop the connection at once, sending nothing more."""
        self._abort()

    @property
    def deflating(self) -> bool:
        """Whether permessage-deflate was agreed with this client."""
        return self._compressor is not None

    def deflated_frame(self, payload: bytes) -> bytes:
        """The wire bytes of a compressed text frame carrying `payload` (in order of sending)."""
        assert self._compressor is not None
        return text_frame(self._compressor.compress(payload), compressed=True)

    # permessage-deflate with a bounded window (RFC 7692 section 7.1.2). Our compressor may use
    # a smaller window than agreed without telling the client; the client's is bounded by
    # answering its `client_max_window_bits` offer (browsers make it) with our value.

    def _create_compressors(self, side: str, agreed_parameters: dict[str, Any],
                            compression_options: dict[str, Any] | None = None) -> None:
        bits = (compression_options or {}).get(WINDOW_BITS)
        if bits is not None and self._offers_client_window():
            offered = agreed_parameters.get("client_max_window_bits")
            # The same dict is the response header Tornado sends.
            agreed_parameters["client_max_window_bits"] = str(min(int(offered or 15), bits))
        super()._create_compressors(side, agreed_parameters, compression_options)

    def _offers_client_window(self) -> bool:
        """Whether the client's permessage-deflate offer has `client_max_window_bits`.

        Read from the header itself: Tornado's parser drops the parameter when it has no value,
        the way browsers send it.
        """
        handler = cast("WebSocketHandler", self.handler)
        offers = handler.request.headers.get("Sec-WebSocket-Extensions", "")
        for offer in offers.split(","):
            name, *params = (part.strip() for part in offer.split(";"))
            if name == "permessage-deflate":  # Tornado accepts the first one
                return any(p.partition("=")[0].strip() == "client_max_window_bits"
                           for p in params)
        return False

    def _get_compressor_options(self, side: str, agreed_parameters: dict[str, Any],
                                compression_options: dict[str, Any] | None = None
                                ) -> dict[str, Any]:
        options = super()._get_compressor_options(side, agreed_parameters, compression_options)
        bits = (compression_options or {}).get(WINDOW_BITS)
        if side == "server" and bits is not None:  # ours: never wider than agreed
            options["max_wbits"] = min(options["max_wbits"], bits)
        return options

    # Idle connections wait in the header read: checking the header from a callback on Tornado's
    # own read future, rather than in a wrapping coroutine, keeps no extra frame parked per
    # connection. Tornado reads a frame as: header, [extended length], [mask], payload.
    _reads_left = 0  # reads of the current frame still to come; 0: the next read is a header

    def _read_bytes(self, n: int) -> Future[bytes]:  # type: ignore[override]
        assert self.stream is not None
        read = cast("Future[bytes]", self.stream.read_bytes(n))
        self._wire_bytes_in += n
        if self._reads_left:
            self._reads_left -= 1
        elif read.done():
            self._check_header(read)  # already buffered: Tornado goes on without yielding
        else:
            read.add_done_callback(self._check_header)  # runs before Tornado's frame loop wakes
        return read

    def _check_header(self, read: Future[bytes]) -> None:
        if read.cancelled() or read.exception() is not None:
            return  # the frame loop sees the same error
        first, second = read.result()
        length = second & 0x7F
        self._reads_left = (length >= 126) + bool(second & 0x80) + 1
        problem = self._header_problem(first, second)
        if problem:
            # The frame loop resumes after this callback; its next read finds the stream closed.
            self.client_terminated = True
            self.close(CLOSE_PROTOCOL_ERROR, problem)

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

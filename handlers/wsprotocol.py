"""RFC 6455 strictness Tornado lacks (close 1002 or 1007, not abort or let by), bounded deflate."""

from __future__ import annotations

import struct
from typing import Any, NoReturn, cast

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketHandler

from chat.protocol.frame import text_frame
from handlers.tornado_internals import Protocol13Hooks

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


class StrictProtocol13(Protocol13Hooks):
    """Tornado's protocol, failing the connection with the RFC's close code on bad input."""

    def fail(self, code: int, reason: str) -> NoReturn:
        """Send a close frame with `code`, then drop the connection without waiting."""
        self.close(code, reason)
        raise StreamClosedError()  # ends Tornado's frame loop, which aborts the stream

    def deflated_frame(self, payload: bytes) -> bytes:
        """The wire bytes of a compressed text frame carrying `payload` (in order of sending)."""
        return text_frame(self.deflate(payload), compressed=True)

    # permessage-deflate with a bounded window (RFC 7692 section 7.1.2). Our compressor may use
    # a smaller window than agreed without telling the client; the client's is bounded by
    # answering its `client_max_window_bits` offer (browsers make it) with our value.

    def agree_compression(self, agreed_parameters: dict[str, Any],
                          compression_options: dict[str, Any] | None) -> None:
        bits = (compression_options or {}).get(WINDOW_BITS)
        if bits is not None and self._offers_client_window():
            offered = agreed_parameters.get("client_max_window_bits")
            # The same dict is the response header Tornado sends.
            agreed_parameters["client_max_window_bits"] = str(min(int(offered or 15), bits))

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

    def bound_compressor(self, side: str, options: dict[str, Any],
                         compression_options: dict[str, Any] | None) -> None:
        bits = (compression_options or {}).get(WINDOW_BITS)
        if side == "server" and bits is not None:  # ours: never wider than agreed
            options["max_wbits"] = min(options["max_wbits"], bits)

    def bad_frame_header(self, problem: str) -> None:
        # The frame loop resumes after this callback; its next read finds the stream closed.
        self.client_terminated = True
        self.close(CLOSE_PROTOCOL_ERROR, problem)

    def frame_header_problem(self, first: int, second: int, deflate: bool, in_message: bool
                             ) -> str | None:
        opcode = first & self.OPCODE_MASK
        reserved = first & self.RSV_MASK
        if deflate and opcode in (0x1, 0x2):
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
        elif opcode == 0x0 and not in_message:
            return "continuation frame with nothing to continue"
        elif opcode != 0x0 and in_message:
            return "new message inside a fragmented one"
        return None

    def invalid_text(self) -> NoReturn:
        self.fail(CLOSE_INVALID_DATA, "text frame is not valid UTF-8")

    def check_close_payload(self, data: bytes) -> None:
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

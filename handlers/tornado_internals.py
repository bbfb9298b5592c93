"""Every private Tornado name the server uses, each with what it reaches and the measured reason.

Tested on Tornado 6.4, 6.5 and 6.6 (setup.cfg pins that range); tests/test_tornado_internals.py
names whatever an upgrade moves. The figures are in docs/performance.md ("Tornado's write
paths" and "Where the memory goes").
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from typing import Any, cast

from tornado.concurrent import Future
from tornado.httputil import HTTPHeaders, HTTPServerRequest
from tornado.iostream import IOStream
from tornado.options import OptionParser
from tornado.tcpserver import TCPServer
from tornado.web import RequestHandler
from tornado.websocket import WebSocketProtocol13, _WebSocketParams

# Tornado's constructor argument for WebSocketProtocol13. Needed to build our own protocol
# subclass in WebSocketHandler.get_websocket_protocol(): the RFC 6455 checks Tornado lacks.
WebSocketParams = _WebSocketParams


def write_backlog(stream: IOStream) -> int:
    """Bytes the stream holds that the kernel has not taken yet (IOStream._write_buffer._size).

    `stream.writing()` costs ~7% of a saturated server (a method and `__len__` per send), so
    handlers/outbox.py inlines this read on its per-send path, where a call would cost as much.
    """
    return stream._write_buffer._size


def drop_response_state(handler: RequestHandler, headers: HTTPHeaders) -> None:
    """Replace what a RequestHandler keeps for an HTTP response it will never write again.

    An upgraded WebSocket's handler keeps its response headers, output transforms and write
    buffer for the connection's life; with the request's headers they were ~1.5-2 KiB of the
    ~14.4 KiB per idle connection.
    """
    handler._headers = headers
    # Emptied in place: the list is also a local of the handler's _execute coroutine, which
    # stays parked for the connection's life.
    handler._transforms.clear()
    handler._write_buffer = []


def drop_request_cookies(request: HTTPServerRequest) -> None:
    """Forget the cookies a request parsed (`HTTPServerRequest.cookies` caches them in `_cookies`).

    An upgraded WebSocket's request lives as long as the connection; its cookie jar (a
    SimpleCookie, a Morsel per cookie) holds the session token, which nothing reads again.
    """
    request.__dict__.pop("_cookies", None)


def request_summary(handler: RequestHandler) -> str:
    """Tornado's access-log text for a request ("GET /ws (127.0.0.1)").

    Our log function replaces Tornado's (a line per WebSocket upgrade cost ~45 us of the
    ~400 us handshake) and keeps its format.
    """
    return handler._request_summary()


def option_type(parser: OptionParser, name: str) -> type | None:
    """The type of the option `name` defines (None: no such option).

    tornado.options has no public way to ask it; `--port 8000` (beside `--port=8000`) needs to
    know which options take a value.
    """
    option = parser._options.get(name)
    return option.type if option is not None else None


def listen_with(server: TCPServer, sockets: Iterable[socket.socket],
                acceptor: Callable[[socket.socket, Callable[[socket.socket, Any], None]],
                                   Callable[[], None]]) -> None:
    """TCPServer.add_sockets, with `acceptor(sock, on_connection)` accepting on each socket.

    `acceptor` returns its stop function. It replaces netutil.add_accept_handler, which retries
    a failing accept() at once, forever: out of descriptors, that spins the loop at 100% CPU.
    """
    for sock in sockets:
        server._sockets[sock.fileno()] = sock
        server._handlers[sock.fileno()] = acceptor(sock, server._handle_connection)


class Protocol13Hooks(WebSocketProtocol13):
    """Tornado's WebSocketProtocol13, with the private parts we change under names of our own.

    Subclasses override `frame_header_problem`, `bad_frame_header`, `invalid_text`,
    `check_close_payload`, `agree_compression` and `bound_compressor`; the defaults do what
    Tornado does.
    """

    # A slot, not an attribute: Tornado's protocol already holds 29 in its instance dict, and a
    # 30th, first set on the first frame read, turned each connection's dict from shared keys
    # (296 bytes) into its own table (1,584): ~1.3 KiB per connection once it sent anything,
    # a pong included (docs/performance.md, "p99 in every window").
    __slots__ = ("_reads_left",)

    def __init__(self, handler: Any, mask_outgoing: bool, params: _WebSocketParams) -> None:
        super().__init__(handler, mask_outgoing, params)
        self._reads_left = 0  # reads of the current frame still to come; 0: next is a header

    def abort(self) -> None:
        """Drop the connection at once, sending nothing more (a slow reader, a lost peer)."""
        self._abort()

    @property
    def deflating(self) -> bool:
        """Whether permessage-deflate was agreed with this client."""
        return self._compressor is not None

    def deflate(self, payload: bytes) -> bytes:
        """`payload` compressed with this connection's context (call in the order of sending).

        The outbox writes compressed frames itself, like all others: Tornado's write_message
        costs ~29 us per delivery against ~0.7 us through the outbox.
        """
        assert self._compressor is not None
        return self._compressor.compress(payload)

    # Compression: Tornado sizes the deflate window at zlib's default (~156 KiB per connection);
    # bounded, ~46 KiB.

    def _create_compressors(self, side: str, agreed_parameters: dict[str, Any],
                            compression_options: dict[str, Any] | None = None) -> None:
        self.agree_compression(agreed_parameters, compression_options)
        super()._create_compressors(side, agreed_parameters, compression_options)

    def agree_compression(self, agreed_parameters: dict[str, Any],
                          compression_options: dict[str, Any] | None) -> None:
        """Change the agreed permessage-deflate parameters (the response header Tornado sends)."""

    def _get_compressor_options(self, side: str, agreed_parameters: dict[str, Any],
                                compression_options: dict[str, Any] | None = None
                                ) -> dict[str, Any]:
        options = super()._get_compressor_options(side, agreed_parameters, compression_options)
        self.bound_compressor(side, options, compression_options)
        return options

    def bound_compressor(self, side: str, options: dict[str, Any],
                         compression_options: dict[str, Any] | None) -> None:
        """Change `side`'s compressor options (`max_wbits`...) in place before it is built."""

    # Reading: Tornado reads a frame as header, [extended length], [mask], payload, each through
    # _read_bytes. Checking the header from a callback on Tornado's own read future, rather than
    # in a wrapping coroutine, keeps no extra frame parked per idle connection (memory per
    # connection is the limit at 10,000 idle ones).

    def _read_bytes(self, n: int) -> Future[bytes]:  # type: ignore[override]
        assert self.stream is not None
        read = cast("Future[bytes]", self.stream.read_bytes(n))
        self._wire_bytes_in += n
        if self._reads_left:
            self._reads_left -= 1
        elif read.done():
            self._header_read(read)  # already buffered: Tornado goes on without yielding
        else:
            read.add_done_callback(self._header_read)  # runs before Tornado's frame loop wakes
        return read

    def _header_read(self, read: Future[bytes]) -> None:
        if read.cancelled() or read.exception() is not None:
            return  # the frame loop sees the same error
        first, second = read.result()
        self._reads_left = ((second & 0x7F) >= 126) + bool(second & 0x80) + 1
        # Read here and passed on: a property each would add ~40% to the check (per frame).
        problem = self.frame_header_problem(first, second, self._decompressor is not None,
                                            self._fragmented_message_buffer is not None)
        if problem:
            self.bad_frame_header(problem)

    def frame_header_problem(self, first: int, second: int, deflate: bool, in_message: bool
                             ) -> str | None:
        """What is wrong with a frame's two header bytes, before Tornado reads the rest.

        `deflate`: permessage-deflate was agreed (RSV1 may be set); `in_message`: the frames
        before began a fragmented message that has not ended.
        """
        return None

    def bad_frame_header(self, problem: str) -> None:
        """Act on a frame_header_problem (from a callback: Tornado's frame loop goes on after)."""

    # Messages: Tornado aborts on a text message that is not UTF-8 and reads any close payload.
    # Uncompressed text is decoded here, as Tornado would, so that the failure has a hook.

    def _handle_message(self, opcode: int, data: bytes) -> Future[None] | None:
        if self.client_terminated:
            return None
        if opcode == 0x1 and not self._frame_compressed:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                self.invalid_text()
                return None
            self._message_bytes_in += len(data)
            return self._run_callback(self.handler.on_message, text)
        if opcode == 0x8:
            self.check_close_payload(data)
        return super()._handle_message(opcode, data)

    def invalid_text(self) -> None:
        """An uncompressed text message is not UTF-8."""
        self._abort()

    def check_close_payload(self, data: bytes) -> None:
        """See a close frame's payload before Tornado answers it."""

"""The private Tornado names handlers/tornado_internals.py relies on are there and still used."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import socket
import sys
import zlib
from collections.abc import Callable
from typing import Any

import pytest
import tornado
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from tornado.iostream import IOStream
from tornado.options import OptionParser
from tornado.tcpserver import TCPServer
from tornado.testing import bind_unused_port
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketProtocol13, websocket_connect

from chat_server import ChatApplication
from handlers.chatsocket import ChatSocket
from handlers.tornado_internals import (
    Protocol13Hooks,
    WebSocketParams,
    drop_request_cookies,
    listen_with,
    option_type,
    request_summary,
    write_backlog,
)


def moved(what: str) -> str:
    """The failure message: which private name moved, and where it is used."""
    return (f"Tornado {tornado.version}: {what}. handlers/tornado_internals.py relies on it "
            "(its comment there says why); adapt it, or keep Tornado within setup.cfg's pin")


# (class, private method, its parameters after self): what tornado_internals calls or overrides.
PRIVATE_METHODS: list[tuple[type, str, list[str]]] = [
    (WebSocketProtocol13, "_abort", []),
    (WebSocketProtocol13, "_read_bytes", ["n"]),
    (WebSocketProtocol13, "_handle_message", ["opcode", "data"]),
    (WebSocketProtocol13, "_create_compressors",
     ["side", "agreed_parameters", "compression_options"]),
    (WebSocketProtocol13, "_get_compressor_options",
     ["side", "agreed_parameters", "compression_options"]),
    (WebSocketProtocol13, "_run_callback", ["callback", "args", "kwargs"]),
    (WebSocketProtocol13, "_receive_frame", []),
    (RequestHandler, "_request_summary", []),
    (TCPServer, "_handle_connection", ["connection", "address"]),
]


@pytest.mark.parametrize(("owner", "name", "parameters"), PRIVATE_METHODS,
                         ids=[f"{owner.__name__}.{name}" for owner, name, _ in PRIVATE_METHODS])
def test_private_methods_take_the_parameters_we_pass(
        owner: type, name: str, parameters: list[str]) -> None:
    """Each private method we call or override exists with the same parameters."""
    method = getattr(owner, name, None)
    assert method is not None, moved(f"{owner.__name__}.{name} is gone")
    found = list(inspect.signature(method).parameters)[1:]
    assert found == parameters, moved(
        f"{owner.__name__}.{name} takes {found}, no longer {parameters}")


def test_websocket_params_takes_the_keywords_we_pass() -> None:
    """tornado.websocket._WebSocketParams takes the four keywords ChatSocket passes."""
    expected = ["ping_interval", "ping_timeout", "max_message_size", "compression_options"]
    found = list(inspect.signature(WebSocketParams).parameters)
    assert found == expected, moved(f"_WebSocketParams takes {found}, no longer {expected}")


def test_frames_are_read_through_read_bytes_in_the_order_we_count() -> None:
    """Tornado reads a frame as header, [length], [mask], payload and aborts on a closed stream."""
    source = inspect.getsource(WebSocketProtocol13._receive_frame)
    reads = re.findall(r"self\._read_bytes\((\w+)\)", source)
    assert reads == ["2", "2", "8", "4", "payloadlen"], moved(
        f"WebSocketProtocol13._receive_frame reads {reads}, no longer header (2), length "
        "(2 or 8), mask (4), payload: Protocol13Hooks._read_bytes counts the reads of a frame")
    assert "self._handle_message(" in source, moved(
        "WebSocketProtocol13._receive_frame no longer calls _handle_message")
    loop = inspect.getsource(WebSocketProtocol13._receive_frame_loop)
    assert re.search(r"except StreamClosedError:\s+self\._abort\(\)", loop), moved(
        "WebSocketProtocol13._receive_frame_loop no longer aborts on StreamClosedError "
        "(StrictProtocol13.fail raises it to end the loop)")


@pytest.mark.settings(compression=True)
@pytest.mark.gen_test
async def test_the_protocol_keeps_the_state_we_read(ws_url: str, app: ChatApplication) -> None:
    """A deflate connection's protocol has the private fields we read, and deflate() inflates."""
    conn = await websocket_connect(ws_url, compression_options={})
    await conn.write_message(json.dumps({"type": "join", "username": "zip"}))
    welcome = await conn.read_message()
    assert isinstance(welcome, str) and json.loads(welcome)["type"] == "welcome"
    (client,) = app.hub.clients
    assert isinstance(client.peer, ChatSocket)
    protocol = client.peer.ws_connection
    assert isinstance(protocol, Protocol13Hooks)
    fields = ["_compressor", "_decompressor", "_fragmented_message_buffer", "_frame_compressed",
              "_message_bytes_in", "_wire_bytes_in", "client_terminated"]
    missing = [name for name in fields if name not in vars(protocol)]
    assert not missing, moved(f"WebSocketProtocol13 instances have no {missing}")
    assert protocol.deflating
    assert protocol._decompressor is not None and protocol._fragmented_message_buffer is None
    assert protocol._wire_bytes_in > 0, moved("_wire_bytes_in no longer counts bytes read")
    inflate = zlib.decompressobj(-15)
    assert inflate.decompress(protocol.deflate(b"hello") + b"\x00\x00\xff\xff") == b"hello"
    conn.close()


@pytest.mark.gen_test
async def test_reading_frames_adds_nothing_to_the_protocol_s_instance_dict(
    ws_url: str, app: ChatApplication,
) -> None:
    """The frame check's state lives in a slot: the protocol's dict keeps its shared keys
    (a 30th key made each connection's dict its own, ~1.3 KiB more)."""
    conn = await websocket_connect(ws_url)
    while not app.hub.clients:
        await asyncio.sleep(0.01)
    (client,) = app.hub.clients
    assert isinstance(client.peer, ChatSocket)
    protocol = client.peer.ws_connection
    assert isinstance(protocol, Protocol13Hooks)
    keys, size = sorted(vars(protocol)), sys.getsizeof(vars(protocol))
    await conn.write_message(json.dumps({"type": "join", "username": "ann"}))
    assert json.loads(str(await conn.read_message()))["type"] == "welcome"
    assert (sorted(vars(protocol)), sys.getsizeof(vars(protocol))) == (keys, size)
    conn.close()


@pytest.mark.gen_test
async def test_a_request_handler_keeps_the_response_state_we_drop() -> None:
    """While it serves a request a handler holds _headers, _transforms and _write_buffer."""
    seen: dict[str, Any] = {}

    class Recorder(RequestHandler):
        def get(self) -> None:
            seen["fields"] = [name for name in ("_headers", "_transforms", "_write_buffer")
                              if name in vars(self)]
            seen["summary"] = request_summary(self)
            self.write("ok")

    sock, port = bind_unused_port()
    server = HTTPServer(Application([("/", Recorder)]))
    server.add_sockets([sock])
    try:
        response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/")
    finally:
        server.stop()
    assert response.body == b"ok"
    assert seen["fields"] == ["_headers", "_transforms", "_write_buffer"], moved(
        f"a RequestHandler holds only {seen['fields']} of _headers, _transforms, _write_buffer")
    assert seen["summary"] == "GET / (127.0.0.1)", moved(
        f"RequestHandler._request_summary() says {seen['summary']!r}")


def test_a_request_caches_its_cookies_where_we_drop_them() -> None:
    """HTTPServerRequest.cookies parses once into `_cookies`; dropped, it parses again."""
    request = HTTPServerRequest(start_line=RequestStartLine("GET", "/ws", "HTTP/1.1"),
                                headers=HTTPHeaders({"Host": "h", "Cookie": "chat_session=s1"}))
    assert request.cookies["chat_session"].value == "s1"
    assert "_cookies" in vars(request), moved("HTTPServerRequest no longer caches _cookies")
    drop_request_cookies(request)
    assert "_cookies" not in vars(request)
    assert request.cookies["chat_session"].value == "s1"


@pytest.mark.gen_test
async def test_write_backlog_is_what_the_stream_holds() -> None:
    """write_backlog() is 0 with nothing pending and grows when the peer does not read."""
    left, right = socket.socketpair()
    stream = IOStream(left)
    try:
        assert hasattr(stream, "_write_buffer"), moved("IOStream._write_buffer is gone")
        assert write_backlog(stream) == 0 and not stream.writing()
        stream.write(b"x" * (8 << 20))  # more than any socket buffer takes
        assert write_backlog(stream) > 0, moved("IOStream._write_buffer._size stays 0")
        assert stream.writing()
    finally:
        stream.close()
        right.close()


def test_option_type_reads_the_parsers_options() -> None:
    """option_type() finds a defined option's type through OptionParser._options."""
    parser = OptionParser()
    assert hasattr(parser, "_options"), moved("OptionParser._options is gone")
    parser.define("max-size", type=int)
    parser.define("debug", type=bool)
    assert option_type(parser, "max-size") is int
    assert option_type(parser, "debug") is bool
    assert option_type(parser, "nothing") is None


def test_listen_with_registers_what_stop_closes() -> None:
    """listen_with() hands the server's connection handler to the acceptor; stop() stops it."""
    server = TCPServer()
    for name in ("_sockets", "_handlers"):
        assert isinstance(getattr(server, name, None), dict), moved(f"TCPServer.{name} is gone")
    sock, _port = bind_unused_port()
    given: list[Callable[[socket.socket, Any], None]] = []
    stopped: list[bool] = []

    def acceptor(listening: socket.socket,
                 on_connection: Callable[[socket.socket, Any], None]) -> Callable[[], None]:
        given.append(on_connection)
        return lambda: stopped.append(True)

    listen_with(server, [sock], acceptor)
    assert getattr(given[0], "__func__", None) is TCPServer._handle_connection
    server.stop()
    assert stopped == [True], moved("TCPServer.stop() no longer calls what _handlers holds")
    assert sock.fileno() == -1, moved("TCPServer.stop() no longer closes what _sockets holds")

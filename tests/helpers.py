"""Test clients: a JSON WebSocket client on Tornado's, and a raw RFC 6455 client on a socket."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

TIMEOUT_S = 5.0  # generous: CI machines are shared


class ChatClient:
    """A real WebSocket client that speaks JSON frames."""

    def __init__(self, conn: WebSocketClientConnection) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, url: str, **headers: str) -> ChatClient:
        conn = await websocket_connect(HTTPRequest(url, headers=headers))
        return cls(conn)

    async def send(self, obj: Any) -> None:
        await self.conn.write_message(obj if isinstance(obj, str | bytes) else json.dumps(obj),
                                      binary=isinstance(obj, bytes))

    async def recv(self, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """The next frame as a dict; the connection must still be open."""
        frame = await self.recv_or_none(timeout)
        assert frame is not None, "closed while waiting for a frame"
        return frame

    async def recv_or_none(self, timeout: float = TIMEOUT_S) -> dict[str, Any] | None:
        """The next frame as a dict, or None once the connection is closed."""
        text = await asyncio.wait_for(self.conn.read_message(), timeout)
        frame: dict[str, Any] | None = None if text is None else json.loads(text)
        return frame

    async def recv_type(self, kind: str, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """The next frame of type `kind`, skipping others."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - loop.time()))
            assert frame is not None, f"closed while waiting for {kind!r}"
            if frame.get("type") == kind:
                return frame

    async def nothing(self, timeout: float = 0.3) -> None:
        """Assert that no frame arrives within `timeout`."""
        try:
            frame = await asyncio.wait_for(self.conn.read_message(), timeout)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame: {frame!r}")

    async def join(self, username: str, room: str = "general", **extra: Any) -> dict[str, Any]:
        """Join and return the welcome; the presence and history replies are consumed."""
        await self.send({"type": "join", "username": username, "room": room, **extra})
        welcome = await self.recv_type("welcome")
        await self.recv_type("presence")
        await self.recv_type("history")
        return welcome

    async def closed(self, timeout: float = TIMEOUT_S) -> int | None:
        """Read until the server closes; the close code."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await asyncio.wait_for(self.conn.read_message(), deadline - loop.time()) is not None:
            pass
        return self.conn.close_code

    def close(self) -> None:
        self.conn.close()


class RawClient:
    """A WebSocket client on a bare socket, able to break RFC 6455 on purpose."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.head = ""  # the server's handshake response

    @classmethod
    async def connect(cls, port: int, path: str = "/ws", rcvbuf: int | None = None,
                      extensions: str | None = None) -> RawClient:
        sock = socket.socket()
        if rcvbuf is not None:  # a small receive buffer: a non-reader fills up sooner
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        key = base64.b64encode(os.urandom(16)).decode()
        offer = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
        writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n{offer}"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT_S)
        assert head.startswith(b"HTTP/1.1 101"), head
        client = cls(reader, writer)
        client.head = head.decode("latin-1")
        return client

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True,
                   rsv: int = 0) -> None:
        first = (0x80 if fin else 0) | rsv | opcode
        size = len(payload)
        mask_bit = 0x80 if mask else 0
        if size < 126:
            header = struct.pack("!BB", first, mask_bit | size)
        elif size <= 0xFFFF:
            header = struct.pack("!BBH", first, mask_bit | 126, size)
        else:
            header = struct.pack("!BBQ", first, mask_bit | 127, size)
        if mask:
            key = os.urandom(4)
            payload = key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + payload)

    def send_text(self, obj: Any) -> None:
        self.send_frame(0x1, json.dumps(obj).encode())

    async def read_frame(self, timeout: float = TIMEOUT_S) -> tuple[int, bytes]:
        """(opcode, payload) of the next frame; (-1, b"") at end of stream."""
        try:
            head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        except asyncio.IncompleteReadError:
            return -1, b""
        size = head[1] & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return head[0] & 0x0F, await self.reader.readexactly(size)

    async def close_code(self, timeout: float = TIMEOUT_S) -> int | None:
        """Skip data frames until a close frame; its code (None if the stream just ends)."""
        while True:
            opcode, payload = await self.read_frame(timeout)
            if opcode == -1:
                return None
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        self.writer.transport.abort()


async def raw_response(port: int, request: str) -> tuple[int, dict[str, str]]:
    """Send one raw HTTP request; the status and headers (lower-case names) of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request.replace("\n", "\r\n").encode() + b"\r\n")
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT_S)).decode()
    writer.close()
    status_line, *lines = head.strip().split("\r\n")
    headers = {name.lower(): value.strip()
               for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers


# The headers of a valid WebSocket upgrade request (RFC 6455's sample key).
UPGRADE = ("Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Version: 13\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n")


# What the `connect` and `raw_connect` fixtures give a test: open one more client.
Connect = Callable[..., Awaitable[ChatClient]]
RawConnect = Callable[..., Awaitable[RawClient]]


T = TypeVar("T")


def run_apart(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end on a loop of its own, in a test that has no loop of its own.

    Unlike asyncio.run(), it leaves the thread's current event loop alone: asyncio.run() sets
    it to None at its end, and a loop an earlier test left current is then collected unclosed,
    which fails whichever test runs at that moment with a ResourceWarning.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


# How often stop() cancels a task again while it runs on (s).
RECANCEL_S = 0.1


async def stop(task: asyncio.Future[Any]) -> None:
    """Cancel `task` and wait until it has ended, cancelling again while it runs on.

    On Python 3.11 asyncio.wait_for swallows a cancellation that lands as its inner future
    completes (CPython gh-86296, fixed in 3.12): a task looping over recv() then goes on, and
    a lone cancel() followed by gather() waits for it for ever.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_S)
    if not task.cancelled():
        task.exception()  # retrieved: its error, if any, is the test's to find, not the log's

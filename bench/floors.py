"""Two reference servers that show what a WebSocket connection costs below our own code.

- `asyncio`: a bare asyncio Protocol on uvloop. It answers the upgrade and broadcasts each
  text frame to every connection: about the least a Python server can spend per connection.
- `tornado`: Tornado's chat demo in miniature, one WebSocketHandler that broadcasts. It runs on
  uvloop, with our server's collector settings and no access log, so what it costs per
  connection is Tornado's own machinery, which our /ws runs on.

Both speak the tutorial's frames as the Go server does (each text frame goes back to everyone),
so every phase of bench/run.py runs against them: `--servers go,ours,tornado,asyncio`.
Alone: `python -m bench.floors asyncio|tornado --port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import struct
from typing import Any, ClassVar, cast

import uvloop
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketHandler

from chat_server import GC_YOUNG_OBJECTS

ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
MAX_HEAD_BYTES = 8192  # a longer request head is refused: these servers only take upgrades
OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final text frame (a server's)."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def unmask(mask: bytes, data: bytes) -> bytes:
    n = len(data)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")


class Upgrade(asyncio.Protocol):
    """One connection of the `asyncio` server: an upgrade, then text frames to broadcast."""

    peers: ClassVar[set[Upgrade]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        self.buffer = b""
        self.upgraded = False

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            self._upgrade()
        while self.upgraded and self._frame():
            pass

    def _upgrade(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                self.transport.close()
            return
        lines = self.buffer[:end].split(b"\r\n")
        self.buffer = self.buffer[end + 4:]
        key = b""
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        if not key:  # the bench's readiness check (GET /)
            self.transport.write(OK_RESPONSE)
            self.transport.close()
            return
        accept = base64.b64encode(hashlib.sha1(key + ACCEPT_GUID).digest())
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept)
        self.upgraded = True
        self.peers.add(self)

    def _frame(self) -> bool:
        """Handle one whole frame of the buffer; False when none is complete."""
        buf = self.buffer
        if len(buf) < 2:
            return False
        opcode, length, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
        if length == 126:
            (length,), at = struct.unpack_from("!H", buf, 2), 4
        elif length == 127:
            (length,), at = struct.unpack_from("!Q", buf, 2), 10
        if len(buf) < at + 4 + length:
            return False
        payload = unmask(buf[at:at + 4], buf[at + 4:at + 4 + length])
        self.buffer = buf[at + 4 + length:]
        if opcode == 0x1:
            frame = text_frame(payload)
            for peer in self.peers:
                peer.transport.write(frame)
        elif opcode == 0x8:
            self.transport.write(b"\x88\x00")
            self.transport.close()
        elif opcode == 0x9:
            self.transport.write(struct.pack("!BB", 0x8A, len(payload)) + payload)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.peers.discard(self)


class Broadcast(WebSocketHandler):
    """The `tornado` server's /ws: every text frame to every connection."""

    peers: ClassVar[set[Broadcast]] = set()

    def open(self, *args: str, **kwargs: str) -> None:
        self.peers.add(self)

    def on_message(self, message: str | bytes) -> None:
        for peer in self.peers:
            peer.write_message(message)

    def on_close(self) -> None:
        self.peers.discard(self)


class Ok(RequestHandler):
    def get(self) -> None:
        self.write("ok")


def settle_heap() -> None:
    """The collector as our server sets it (chat_server.settle_heap), so it is not compared."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_OBJECTS, *gc.get_threshold()[1:])


async def serve(kind: str, port: int) -> None:
    settle_heap()
    if kind == "asyncio":
        loop = asyncio.get_running_loop()
        await loop.create_server(Upgrade, "127.0.0.1", port, backlog=1024)
    else:
        no_log: Any = lambda handler: None  # noqa: E731 (Tornado's log_function setting)
        app = Application([("/", Ok), ("/ws", Broadcast)], log_function=no_log)
        app.listen(port, "127.0.0.1", backlog=1024)
    await asyncio.Event().wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("kind", choices=["asyncio", "tornado"])
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # as our server runs
    asyncio.run(serve(args.kind, args.port))


if __name__ == "__main__":
    main()

"""Server memory per idle connection with and without --compression (KiB of RSS per connection).

Starts a fresh server per case, posts a few messages to `general`, opens N connections that offer
permessage-deflate as browsers do (each receives that history, then one live message, so its
compressor has run), and reports the server's RSS growth divided by N. Loopback only.

    .venv/bin/python bench/deflate_memory.py --connections 500
    .venv/bin/python bench/deflate_memory.py --server-arg=--compression-window-bits=15 ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.request import urlopen

from tornado.websocket import WebSocketClientConnection, websocket_connect

ROOT = Path(__file__).resolve().parent.parent
SETTLE_S = 1.0  # lets the server finish its writes and the allocator settle before reading RSS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def start_server(port: int, compression: bool, extra: list[str]) -> subprocess.Popen[bytes]:
    flags = ["--port", str(port), "--db", ":memory:", "--rate-limit", "0",
             "--max-connections-per-ip", "0", "--address", "127.0.0.1", "--logging", "warning"]
    if compression:
        flags += ["--compression", *extra]
    proc = subprocess.Popen([sys.executable, "chat_server.py", *flags], cwd=ROOT)
    wait_ready(port)
    return proc


async def grow(port: int, args: argparse.Namespace, rss: Callable[[], int]) -> float:
    """KiB of server RSS per connection opened (each fed history and one live message)."""
    url = f"ws://127.0.0.1:{port}/ws"
    poster = await websocket_connect(url, compression_options={})
    await poster.write_message(json.dumps({"type": "join", "username": "poster"}))
    text = "the quick brown fox jumps over the lazy dog " * 4
    for n in range(args.history):
        await poster.write_message(json.dumps({"type": "message", "text": f"{n} {text}"}))
    while True:  # the poster's own copy of its last message: all are stored
        event = json.loads(await poster.read_message() or "{}")
        if event.get("type") == "message" and event["message"].startswith(
                f"{args.history - 1} "):
            break
    await asyncio.sleep(SETTLE_S)
    before = rss()
    conns: list[WebSocketClientConnection] = []
    for _ in range(args.connections):
        conn = await websocket_connect(url, compression_options={})
        conns.append(conn)
        for _ in range(args.history):
            await conn.read_message()
    await poster.write_message(json.dumps({"type": "message", "text": "live " + text}))
    for conn in conns:
        await conn.read_message()
    await asyncio.sleep(SETTLE_S)
    after = rss()
    for conn in [poster, *conns]:
        conn.close()
    return (after - before) / int(args.connections)


def measure(args: argparse.Namespace, compression: bool) -> float:
    port = free_port()
    proc = start_server(port, compression, args.server_arg)
    try:
        return asyncio.run(grow(port, args, lambda: rss_kib(proc.pid)))
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=500)
    ap.add_argument("--history", type=int, default=5, help="messages each connection receives")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra flag for the --compression server (repeatable)")
    args = ap.parse_args()
    plain = measure(args, False)
    zipped = measure(args, True)
    print(f"{args.connections} connections: {plain:.1f} KiB/connection without --compression, "
          f"{zipped:.1f} with (+{zipped - plain:.1f})")


if __name__ == "__main__":
    main()

"""Unfinished HTTP requests and bodies: timeouts, a bound per address, no body, calm accepts."""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from tornado.http1connection import HTTP1Connection, HTTP1ServerConnection
from tornado.httpclient import AsyncHTTPClient
from tornado.httputil import HTTPHeaders
from tornado.web import OutputTransform

from chat_server import ChatApplication
from handlers.chatsocket import ChatSocket
from handlers.httpserver import MAX_BODY_BYTES, ChatHTTPServer
from tests.helpers import Connect
from tests.serverproc import ROOT, Spawn, child_env, free_port, healthz

GENEROUS_S = 5.0  # far more than any limit set below; the old server waited an hour
HALF_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # no blank line: headers never end
BIG_BODY_BYTES = 32 * 1024 * 1024
# The `starved_child` fixture: the process, its port and its stderr log.
StarvedChild = tuple[subprocess.Popen[bytes], int, Path]


async def open_half(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that has sent half a request header and then goes quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HALF_REQUEST)
    await writer.drain()
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Whether the server closes the connection (within GENEROUS_S) without a response."""
    try:
        return await asyncio.wait_for(reader.read(), GENEROUS_S) == b""
    except TimeoutError:
        return False


async def settled(server: ChatHTTPServer, unfinished: int) -> None:
    """Wait until the server counts `unfinished` connections (upgrades are counted out late)."""
    while len(server.unfinished) != unfinished:
        await asyncio.sleep(0.01)


@pytest.mark.settings(header_timeout=0.3)
@pytest.mark.gen_test(timeout=15)
async def test_half_a_request_header_is_closed_after_the_header_timeout(
        http_server: ChatHTTPServer, http_port: int) -> None:
    """A connection that never finishes its request headers is closed after header-timeout."""
    reader, writer = await open_half(http_port)
    assert await closed_by_server(reader)
    writer.close()


@pytest.mark.settings(idle_timeout=0.3)
@pytest.mark.gen_test(timeout=15)
async def test_a_kept_alive_connection_is_closed_after_the_idle_timeout(
        http_server: ChatHTTPServer, http_port: int) -> None:
    """A kept-alive connection that sends no next request is closed after idle-timeout."""
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    await reader.readuntil(b"}")  # the JSON body: the connection is now idle, kept alive
    assert await closed_by_server(reader)
    writer.close()


@pytest.mark.settings(idle_timeout=0.3, header_timeout=GENEROUS_S)
@pytest.mark.gen_test(timeout=15)
async def test_each_kept_alive_wait_has_the_idle_timeout(
        http_server: ChatHTTPServer, http_port: int) -> None:
    """Every wait for a next request is bounded, not only the first; Tornado's own bound is off."""
    assert http_server.conn_params.header_timeout is None  # the server's timers do it
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    for _ in range(3):
        await asyncio.sleep(0.1)  # well within the idle timeout
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        await reader.readuntil(b"}")
    assert await closed_by_server(reader)
    writer.close()


@pytest.mark.gen_test(timeout=15)
async def test_an_upgraded_connection_keeps_no_http_connection(
        http_server: ChatHTTPServer, connect: Connect, app: ChatApplication) -> None:
    """Once a WebSocket, a connection keeps neither its HTTP connection nor the request headers."""
    chatters = [await connect() for _ in range(3)]
    for n, chatter in enumerate(chatters):
        assert (await chatter.join(f"keeper{n}"))["type"] == "welcome"
    await settled(http_server, 0)
    sockets = [client.peer for client in app.hub.clients]
    assert len(sockets) == 3
    gc.collect()
    for sock in sockets:
        assert isinstance(sock, ChatSocket)
        request = sock.request
        assert request.connection is None and request.server_connection is None
        assert not [o for o in gc.get_referents(request)
                    if isinstance(o, (HTTP1Connection, HTTP1ServerConnection, SimpleCookie))
                    or (isinstance(o, HTTPHeaders) and o)]
        # Tornado's coroutines, parked for the connection's life, hold the upgrade's headers
        # and output transforms in locals.
        owners = (sock, sock.ws_connection)
        parked = [o for o in gc.get_objects() if inspect.iscoroutine(o) and o.cr_frame
                  and o.cr_frame.f_locals.get("self") in owners]
        assert {"_execute", "get"} <= {coroutine.cr_code.co_name for coroutine in parked}
        for coroutine in parked:
            assert coroutine.cr_frame is not None
            values = list(coroutine.cr_frame.f_locals.values())
            assert not any(v for v in values if isinstance(v, HTTPHeaders))
            assert not [t for v in values if isinstance(v, list) for t in v
                        if isinstance(t, OutputTransform)]


@pytest.mark.settings(max_unfinished_per_ip=3)
@pytest.mark.gen_test(timeout=20)
async def test_unfinished_connections_per_address_are_bounded(
        http_server: ChatHTTPServer, http_port: int, connect: Connect) -> None:
    """Past max-unfinished-per-ip a new connection is closed at once; WebSockets don't count."""
    chatters = [await connect() for _ in range(5)]  # more than the bound, all upgraded
    await settled(http_server, 0)
    halves = [await open_half(http_port) for _ in range(3)]
    extra, extra_writer = await open_half(http_port)
    assert await closed_by_server(extra)
    assert len(http_server.unfinished) == 3
    assert http_server.refused == 1
    assert (await chatters[0].join("alice"))["type"] == "welcome"
    for _, writer in halves:
        writer.close()
    extra_writer.close()
    await settled(http_server, 0)
    response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{http_port}/healthz")
    assert response.code == 200


@pytest.mark.settings(max_unfinished_per_ip=2)
@pytest.mark.gen_test(timeout=20)
async def test_idle_kept_alive_connections_make_room_for_new_ones(
        http_server: ChatHTTPServer, http_port: int) -> None:
    """At the bound, a new connection closes the address's oldest idle kept-alive one."""
    idle = []
    for _ in range(2):
        reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await reader.readuntil(b"}")
        idle.append((reader, writer))
    response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{http_port}/healthz")
    assert response.code == 200
    assert await closed_by_server(idle[0][0])
    assert http_server.refused == 0
    for _, writer in idle:
        writer.close()


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("path", ["/", "/healthz", "/ws", "/nowhere"])
async def test_a_large_body_is_refused_before_it_is_read(
    http_server: ChatHTTPServer, http_port: int, path: str,
) -> None:
    """A POST announcing a large body gets 400 and a close from its headers alone, on any path."""
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Content-Length: {BIG_BODY_BYTES}\r\n\r\n".encode())
    writer.write(b"x" * 1024)
    answer = await asyncio.wait_for(reader.read(), GENEROUS_S)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    writer.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_large_chunked_body_is_refused(http_server: ChatHTTPServer, http_port: int) -> None:
    """A chunked body past the limit gets 400 and a close, before the rest is read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    writer.write(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 1024
    writer.write(b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk)
                          for _ in range(2 * MAX_BODY_BYTES // len(chunk))))
    answer = await asyncio.wait_for(reader.read(), GENEROUS_S)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    writer.close()


@pytest.mark.settings(max_message_bytes=256 * 1024)
@pytest.mark.gen_test(timeout=20)
async def test_websocket_frames_up_to_max_message_bytes_still_pass(connect: Connect) -> None:
    """The body limit leaves WebSocket frames alone: one of max-message-bytes is read."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")
    await bob.join("bob")
    await alice.recv_type("join")
    text = "y" * 4000
    padding = " " * (256 * 1024 - len(text) - 100)
    frame = '{"type": "message", "text": "' + text + '"' + padding + "}"
    assert len(frame) < 256 * 1024
    await alice.conn.write_message(frame)
    assert (await bob.recv_type("message"))["message"] == text


def rss_bytes(pid: int) -> int:
    """The resident memory of process `pid`."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_big_post(port: int, sent: int) -> socket.socket:
    """A POST to / announcing BIG_BODY_BYTES, of which `sent` bytes are sent; left open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=GENEROUS_S)
    sock.sendall(f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {BIG_BODY_BYTES}"
                 "\r\n\r\n".encode())
    block = b"x" * (1024 * 1024)
    try:
        for _ in range(sent // len(block)):
            sock.sendall(block)
    except OSError:
        pass  # refused and closed mid-body: what the server should do
    return sock


def test_large_posts_do_not_grow_the_process(spawn: Spawn) -> None:
    """Eight unfinished POSTs of 24 MiB each leave the server's memory as it was."""
    port = free_port()
    child = spawn("--port", str(port), ready_port=port)
    before = rss_bytes(child.proc.pid)
    posts = [start_big_post(port, 24 * 1024 * 1024) for _ in range(8)]
    try:
        assert healthz(port) is not None
        assert rss_bytes(child.proc.pid) - before < 24 * 1024 * 1024
    finally:
        for sock in posts:
            sock.close()


# Opened by the child before it serves: Python, Tornado, the event loop, the listening
# socket. Found by trying; the child needs no more than this to start and answer /healthz.
CHILD_FILES = 48
WRAPPER = (
    "import resource, runpy, sys\n"
    "resource.setrlimit(resource.RLIMIT_NOFILE, ({n}, {n}))\n"
    "sys.argv = ['chat_server.py'] + sys.argv[1:]\n"
    "runpy.run_path('chat_server.py', run_name='__main__')\n"
)


@pytest.fixture
def starved_child(tmp_path: Path) -> Iterator[StarvedChild]:
    """chat_server.py under an open-files limit of CHILD_FILES; killed after the test."""
    port = free_port()
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            # Connections from one address stand in for many clients: no per-address bound.
            [sys.executable, "-c", WRAPPER.format(n=CHILD_FILES), "--port", str(port),
             "--max-unfinished-per-ip", "0"],
            cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 15
        while healthz(port) is None:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield proc, port, log
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_out_of_descriptors_the_server_pauses_logs_once_and_recovers(
    starved_child: StarvedChild,
) -> None:
    """With no descriptor left, accepting pauses: one log line, no busy loop; then it serves."""
    proc, port, log = starved_child
    holders = []
    try:
        for _ in range(CHILD_FILES + 20):  # past the limit: the rest wait in the backlog
            sock = socket.create_connection(("127.0.0.1", port), timeout=GENEROUS_S)
            holders.append(sock)
        deadline = time.monotonic() + GENEROUS_S  # the server takes what it can, then fails
        while "cannot accept connections" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        cpu_before, log_before = cpu_seconds(proc.pid), log.stat().st_size
        time.sleep(1.0)
        cpu_used = cpu_seconds(proc.pid) - cpu_before
        log_growth = log.stat().st_size - log_before
        errors = log.read_text()
        assert errors.count("cannot accept connections") == 1, errors[-2000:]
        assert "Traceback" not in errors
        assert log_growth < 1000, errors[-2000:]
        assert cpu_used < 0.5  # a spinning loop would use the whole second
    finally:
        for sock in holders:
            sock.close()
    deadline = time.monotonic() + 15
    while healthz(port) is None:
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.05)
    assert "accepting connections again" in log.read_text()


def test_the_wrapper_limit_applies(starved_child: StarvedChild) -> None:
    """The starved child really runs under CHILD_FILES open files (guards the test above)."""
    proc, _, _ = starved_child
    limits = Path(f"/proc/{proc.pid}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    assert line.split()[3] == str(CHILD_FILES)
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > CHILD_FILES

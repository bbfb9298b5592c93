"""The write path: frames coalesced per loop iteration, kept in order, bounded in bytes."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from tornado.iostream import IOStream

from chat.config import ConfigError, Settings
from chat_server import ChatApplication
from handlers.outbox import Flusher, Outbox
from handlers.tornado_internals import write_backlog
from tests.helpers import Connect, RawClient, RawConnect

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class CountingSocket(socket.socket):
    """A real socket that counts its send() calls."""

    sends = 0

    def send(self, data: ReadableBuffer, flags: int = 0) -> int:
        CountingSocket.sends += 1
        return super().send(data, flags)


# What `pair` and `tcp_pair` give a test: the server's end (the outbox writes there), the client's.
SocketPair = tuple[socket.socket, socket.socket]


@pytest.fixture
def pair() -> Iterator[SocketPair]:
    left, right = socket.socketpair()
    counted = CountingSocket(fileno=left.detach())
    counted.setblocking(False)
    right.setblocking(False)
    CountingSocket.sends = 0
    yield counted, right
    counted.close()
    right.close()


async def read_all(sock: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < size:
        data += await loop.sock_recv(sock, size - len(data))
    return data


@pytest.mark.gen_test
async def test_frames_of_one_iteration_go_out_in_one_send(pair: SocketPair) -> None:
    """A hundred frames queued in one loop iteration are written with one send."""
    left, right = pair
    stream = IOStream(left)
    overflowed = []
    flusher = Flusher()
    outbox = Outbox(stream, flusher, 1 << 20, lambda: overflowed.append(1))
    frames = [f"frame {n};".encode() for n in range(100)]
    for frame in frames:
        outbox.push(frame)
    assert CountingSocket.sends == 0  # nothing written until the loop turns
    expected = b"".join(frames)
    assert await read_all(right, len(expected)) == expected
    assert CountingSocket.sends == 1
    assert flusher.writes == 1  # what /metrics counts (chat_socket_writes_total)
    assert not overflowed
    stream.close()


@pytest.mark.gen_test
async def test_bytes_never_overtake_what_the_stream_holds(pair: SocketPair) -> None:
    """With a backlog in the stream, queued frames follow Tornado's own writes in order."""
    left, right = pair
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    stream = IOStream(left)
    outbox = Outbox(stream, Flusher(), 64 << 20, lambda: None)
    first = b"A" * 2_000_000  # far more than the kernel takes: the rest waits in the stream
    outbox.push(first)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert stream.writing()
    stream.write(b"PING")  # as Tornado writes a ping or close frame
    outbox.push(b"B" * 1000)
    received = await read_all(right, len(first) + 4 + 1000)
    assert received == first + b"PING" + b"B" * 1000
    stream.close()


@pytest.mark.gen_test
async def test_overflow_evicts_once_and_stops_queueing(pair: SocketPair) -> None:
    """Past the limit the outbox calls its overflow callback once and drops further frames."""
    left, _right = pair
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    stream = IOStream(left)
    evictions = []
    flusher = Flusher()
    outbox = Outbox(stream, flusher, 100_000, lambda: evictions.append(1))
    for _ in range(100):  # the peer never reads
        outbox.push(b"x" * 10_000)
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert evictions == [1]
    assert outbox.closed
    before = flusher.bytes_sent
    outbox.push(b"more")
    outbox.flush()
    assert flusher.bytes_sent == before
    stream.close()


@pytest.mark.gen_test
async def test_flushing_a_closed_stream_is_harmless(pair: SocketPair) -> None:
    """Frames queued for a connection that closed are dropped without an error."""
    left, _right = pair
    stream = IOStream(left)
    outbox = Outbox(stream, Flusher(), 1 << 20, lambda: None)
    outbox.push(b"late")
    stream.close()
    outbox.flush()
    assert outbox.closed


@pytest.fixture
def tcp_pair() -> Iterator[SocketPair]:
    """A loopback TCP connection: what a burst meets on a real server (kernel buffers of MBs)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        right = socket.create_connection(server.getsockname())
        left, _ = server.accept()
    left.setblocking(False)
    right.setblocking(False)
    yield left, right
    left.close()
    right.close()


@pytest.mark.gen_test
async def test_a_burst_the_socket_takes_is_no_overflow(tcp_pair: SocketPair) -> None:
    """More than the limit queued in one iteration goes to the kernel as it grows: no eviction."""
    left, right = tcp_pair
    stream = IOStream(left)
    evictions = []
    outbox = Outbox(stream, Flusher(), 256 * 1024, lambda: evictions.append(1))
    frames = [bytes([65 + n % 26]) * 16_000 for n in range(64)]  # 1 MB before the loop turns
    for frame in frames:
        outbox.push(frame)
    expected = b"".join(frames)
    assert await read_all(right, len(expected)) == expected
    assert evictions == []
    assert not outbox.closed
    stream.close()


@pytest.mark.gen_test
async def test_frames_of_a_burst_keep_their_order_behind_the_stream(pair: SocketPair) -> None:
    """Frames written early in a burst still follow what Tornado queued on the stream."""
    left, right = pair
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    stream = IOStream(left)
    outbox = Outbox(stream, Flusher(), 64 << 20, lambda: None)
    outbox.push(b"A" * 500_000)  # past the flush threshold: written at once, the rest waits
    stream.write(b"PING")
    burst = [bytes([66 + n % 20]) * 10_000 for n in range(30)]
    for frame in burst:
        outbox.push(frame)
    expected = b"A" * 500_000 + b"PING" + b"".join(burst)
    assert await read_all(right, len(expected)) == expected
    stream.close()


async def unread_backlog(outbox: Outbox, stream: IOStream, frames: list[bytes]) -> None:
    """Push `frames` one loop iteration apart, to a peer that is not reading."""
    for frame in frames:
        outbox.push(frame)
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert write_backlog(stream) > 0  # the kernel took what it would


@pytest.mark.gen_test
async def test_a_reply_larger_than_the_limit_is_no_overflow(pair: SocketPair) -> None:
    """Unread bytes of a reply the client asked for do not count; live ones past the limit do."""
    left, _right = pair
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    stream = IOStream(left)
    evictions = []
    outbox = Outbox(stream, Flusher(), 100_000, lambda: evictions.append(1),
                    reply_limit=1 << 20)
    outbox.push_reply(b"h" * 500_000)  # a history page five times the limit
    await asyncio.sleep(0.01)
    assert evictions == []
    await unread_backlog(outbox, stream, [b"x" * 10_000] * 9)  # 90 KB live: within the limit
    assert evictions == []
    await unread_backlog(outbox, stream, [b"x" * 10_000] * 2)
    assert evictions == [1]
    stream.close()


@pytest.mark.gen_test
async def test_a_reply_read_is_no_longer_credited(pair: SocketPair) -> None:
    """Once the client has read a reply, live bytes it leaves unread count in full."""
    left, right = pair
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    stream = IOStream(left)
    evictions = []
    outbox = Outbox(stream, Flusher(), 100_000, lambda: evictions.append(1),
                    reply_limit=1 << 20)
    reply = b"h" * 500_000
    outbox.push_reply(reply)
    assert await read_all(right, len(reply)) == reply
    await unread_backlog(outbox, stream, [b"x" * 10_000] * 20)  # 200 KB live, unread
    assert evictions == [1]
    stream.close()


@pytest.mark.gen_test
async def test_unread_replies_count_past_the_reply_limit(pair: SocketPair) -> None:
    """A client that asks and never reads is dropped once its replies pass their own bound."""
    left, _right = pair
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    stream = IOStream(left)
    evictions = []
    outbox = Outbox(stream, Flusher(), 100_000, lambda: evictions.append(1),
                    reply_limit=200_000)
    for _ in range(3):
        outbox.push_reply(b"h" * 90_000)
        await asyncio.sleep(0.01)
    assert evictions == []  # 270 KB unread: 70 KB past the reply limit
    outbox.push_reply(b"h" * 90_000)
    await asyncio.sleep(0.01)
    assert evictions == [1]
    stream.close()


async def drain(raw: RawClient) -> None:
    """Read and discard everything a raw client is sent, as a prompt reader would."""
    while await raw.reader.read(1 << 16):
        pass


# 140 connections from one address: max_connections_per_ip=0 stands in for many addresses.
@pytest.mark.settings(max_queue_bytes=256 * 1024, max_connections_per_ip=0, rate_limit=0,
                      max_text_chars=60_000, max_message_bytes=128 * 1024)
@pytest.mark.gen_test(timeout=60)
async def test_a_burst_of_posts_evicts_no_healthy_reader(
    connect: Connect, raw_connect: RawConnect, app: ChatApplication,
) -> None:
    """90 posters at once: every prompt reader gets every message; one that stopped is dropped."""
    await burst_of_posts(connect, raw_connect, app)


async def burst_of_posts(connect: Connect, raw_connect: RawConnect, app: ChatApplication) -> None:
    """The burst test's body (tests/test_writer_threads.py runs it over writer threads)."""
    readers = [await connect() for _ in range(50)]
    for n, reader in enumerate(readers):
        await reader.join(f"reader{n}")
    slow = await raw_connect(rcvbuf=4096)  # joins, then never reads again
    slow.send_text({"type": "join", "username": "slow"})
    posters = [await raw_connect() for _ in range(90)]
    drains = [asyncio.ensure_future(drain(poster)) for poster in posters]
    for n, poster in enumerate(posters):
        poster.send_text({"type": "join", "username": f"poster{n}"})
    for reader in readers:  # everyone is in: the last join notice has come
        while (await reader.recv_type("join"))["username"] != "poster89":
            pass
    text = "€" * 4000  # 12 KB of JSON each: ~1 MB for every member in one loop iteration
    for n, poster in enumerate(posters):  # written before the server reads any of them
        poster.send_text({"type": "message", "text": f"{n} {text}"})
    for reader in readers:
        got = {(await reader.recv_type("message"))["message"].split()[0] for _ in posters}
        assert got == {str(n) for n in range(90)}
    assert app.hub.stats.evicted == 0
    big = "y" * 50_000
    for n in range(200):  # live traffic the slow one never reads: ~10 MB
        await readers[0].send({"type": "message", "text": f"{n} {big}"})
        for reader in readers:
            assert (await reader.recv_type("message"))["message"].startswith(f"{n} ")
        if "slow" not in app.hub.users:
            break
    assert app.hub.stats.evicted == 1
    assert "slow" not in app.hub.users
    for task in drains:
        task.cancel()
    for reader in readers:
        reader.close()
    for poster in posters:
        poster.abort()
    slow.abort()
    await asyncio.wait_for(app.hub.drained(), 10)  # so no unsubscription outlives the loop
    await asyncio.sleep(0.1)


# Replies bob asks for and does not read (100 history pages of one 59 KB message, ~5.9 MB) are
# more than the kernel takes, and far more than the 4 KiB limit.
@pytest.mark.settings(max_queue_bytes=4096, rate_limit=0, history_bytes_per_s=0,
                      max_text_chars=60_000, max_message_bytes=128 * 1024)
@pytest.mark.gen_test(timeout=60)
async def test_replies_larger_than_the_limit_evict_no_one(
    connect: Connect, raw_connect: RawConnect, app: ChatApplication,
) -> None:
    """A client sent more history than the limit is kept; live traffic it leaves unread is not."""
    alice = await connect()
    await alice.join("alice")
    text = "h" * 59_000
    for n in range(100):
        await alice.send({"type": "message", "text": f"{n} {text}"})
        await alice.recv_type("message")
    bob = await raw_connect(rcvbuf=4096)
    bob.send_text({"type": "join", "username": "bob"})
    assert (await alice.recv_type("join"))["username"] == "bob"
    for before in range(101, 1, -1):
        bob.send_text({"type": "history", "room": "general", "before": before, "limit": 1})
    await asyncio.sleep(0.5)  # bob reads nothing yet: the replies wait in the stream
    assert app.hub.stats.evicted == 0
    pages: list[int] = []
    while len(pages) < 100:
        opcode, payload = await bob.read_frame()
        assert opcode == 0x1
        event = json.loads(payload)
        if event["type"] == "history" and "more" in event and "recovered" not in event:
            pages.append(event["messages"][0]["id"])
    assert pages == list(range(100, 0, -1))
    assert app.hub.stats.evicted == 0
    for n in range(200):  # live messages bob does not read: dropped, as any slow reader
        await alice.send({"type": "message", "text": f"{n} {text}"})
        await alice.recv_type("message")
        if "bob" not in app.hub.users:
            break
    assert app.hub.stats.evicted == 1


def test_a_negative_reply_queue_bound_is_refused() -> None:
    """--max-reply-queue-bytes below 0 is a settings error naming the value."""
    with pytest.raises(ConfigError, match="--max-reply-queue-bytes is -1; it must be 0 or more"):
        Settings(max_reply_queue_bytes=-1)

"""The write path: frames coalesced per loop iteration, kept in order, bounded in bytes."""

from __future__ import annotations

import asyncio
import socket

import pytest
from tornado.iostream import IOStream

from handlers.outbox import Flusher, Outbox


class CountingSocket(socket.socket):
    """A real socket that counts its send() calls."""

    sends = 0

    def send(self, data, flags=0):  # type: ignore[override]
        CountingSocket.sends += 1
        return super().send(data, flags)


@pytest.fixture
def pair():
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
async def test_frames_of_one_iteration_go_out_in_one_send(pair) -> None:
    """A hundred frames queued in one loop iteration are written with one send."""
    left, right = pair
    stream = IOStream(left)
    overflowed = []
    outbox = Outbox(stream, Flusher(), 1 << 20, lambda: overflowed.append(1))
    frames = [f"frame {n};".encode() for n in range(100)]
    for frame in frames:
        outbox.push(frame)
    assert CountingSocket.sends == 0  # nothing written until the loop turns
    expected = b"".join(frames)
    assert await read_all(right, len(expected)) == expected
    assert CountingSocket.sends == 1
    assert not overflowed
    stream.close()


@pytest.mark.gen_test
async def test_bytes_never_overtake_what_the_stream_holds(pair) -> None:
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
async def test_overflow_evicts_once_and_stops_queueing(pair) -> None:
    """Past the limit the outbox calls its overflow callback once and drops further frames."""
    left, _right = pair
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    stream = IOStream(left)
    evictions = []
    outbox = Outbox(stream, Flusher(), 100_000, lambda: evictions.append(1))
    for _ in range(100):  # the peer never reads
        outbox.push(b"x" * 10_000)
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert evictions == [1]
    assert outbox.closed
    before = outbox.pending()
    outbox.push(b"more")
    assert outbox.pending() == before
    stream.close()


@pytest.mark.gen_test
async def test_flushing_a_closed_stream_is_harmless(pair) -> None:
    """Frames queued for a connection that closed are dropped without an error."""
    left, _right = pair
    stream = IOStream(left)
    outbox = Outbox(stream, Flusher(), 1 << 20, lambda: None)
    outbox.push(b"late")
    stream.close()
    outbox.flush()
    assert outbox.closed

"""--send-threads: a flush's sends shared by writer threads, every byte still in order."""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.iostream import IOStream
from tornado.testing import ExpectLog

from chat.config import ConfigError, Settings
from chat_server import ChatApplication
from handlers.outbox import Flusher, Outbox
from handlers.writer_threads import WriterThreads
from tests.helpers import Connect, RawConnect
from tests.test_metrics import sample
from tests.test_outbox import burst_of_posts, read_all

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

CONNECTIONS = 40


class ThreadNoting(socket.socket):
    """A real socket that notes which threads called its send()."""

    threads: ClassVar[set[int]] = set()

    def send(self, data: ReadableBuffer, flags: int = 0) -> int:
        ThreadNoting.threads.add(threading.get_ident())
        return super().send(data, flags)


Pairs = list[tuple[socket.socket, socket.socket]]


@pytest.fixture
def pairs() -> Iterator[Pairs]:
    """CONNECTIONS socket pairs: (the server's end, noting its sends; the client's end)."""
    made: Pairs = []
    for _ in range(CONNECTIONS):
        left, right = socket.socketpair()
        noting = ThreadNoting(fileno=left.detach())
        noting.setblocking(False)
        right.setblocking(False)
        made.append((noting, right))
    ThreadNoting.threads = set()
    yield made
    for left, right in made:
        left.close()
        right.close()


@pytest.mark.gen_test
async def test_writer_threads_send_every_frame_in_order(pairs: Pairs) -> None:
    """Three threads share each flush; each connection gets its frames once, in order."""
    flusher = Flusher(threads=3, parallel_min=2)
    streams = [IOStream(left) for left, _ in pairs]
    outboxes = [Outbox(stream, flusher, 1 << 20, lambda: None) for stream in streams]
    expected = [b""] * len(pairs)
    for turn in range(20):  # 20 loop iterations, each flushing every outbox
        for n, outbox in enumerate(outboxes):
            frame = f"{n}:{turn};".encode()
            outbox.push(frame)
            expected[n] += frame
        await asyncio.sleep(0)
    for (_, right), wanted in zip(pairs, expected, strict=True):
        assert await read_all(right, len(wanted)) == wanted
    assert len(ThreadNoting.threads) == 3  # the loop's thread and two helpers
    assert flusher.bytes_sent == sum(map(len, expected))
    assert flusher.writes == 20 * CONNECTIONS  # one per connection per iteration
    await flusher.close()
    for stream in streams:
        stream.close()


@pytest.mark.gen_test
async def test_what_the_socket_refuses_goes_through_the_stream_on_the_loop(pairs: Pairs) -> None:
    """Past a full socket buffer the rest waits in Tornado's stream, in order, and the slow
    reader is evicted (on the loop's thread) once past its limit."""
    flusher = Flusher(threads=2, parallel_min=2)
    streams = []
    for left, _ in pairs:
        left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        streams.append(IOStream(left))
    evicted: list[int] = []
    loop_thread = threading.get_ident()
    outboxes = [Outbox(stream, flusher, 100_000, functools.partial(evicted.append, n))
                for n, stream in enumerate(streams)]
    chunk = b"z" * 30_000
    for outbox in outboxes:
        outbox.push(chunk)  # more than the kernel takes at once
    await asyncio.sleep(0)
    assert all(stream.writing() for stream in streams)
    readers = [read_all(right, 3 * len(chunk)) for _, right in pairs[1:]]
    for outbox in outboxes[1:]:  # these are read: two more chunks arrive whole
        outbox.push(chunk)
        outbox.push(chunk)
    for outbox in outboxes[:1]:  # this one is never read: it passes its 100 KB bound
        for _ in range(5):
            outbox.push(chunk)
    received = await asyncio.gather(*readers)
    assert received == [3 * chunk] * (len(pairs) - 1)
    for _ in range(10):
        await asyncio.sleep(0.01)
    assert evicted == [0]
    assert outboxes[0].closed
    assert threading.get_ident() == loop_thread
    await flusher.close()
    for stream in streams:
        stream.close()


@pytest.mark.gen_test
async def test_a_small_flush_and_a_closed_flusher_stay_on_the_loops_thread(pairs: Pairs) -> None:
    """Below parallel_min, and after close, the loop's thread sends alone."""
    flusher = Flusher(threads=4, parallel_min=CONNECTIONS + 1)
    streams = [IOStream(left) for left, _ in pairs]
    outboxes = [Outbox(stream, flusher, 1 << 20, lambda: None) for stream in streams]
    for outbox in outboxes:
        outbox.push(b"small")
    await asyncio.sleep(0)
    await flusher.close()
    for outbox in outboxes:
        outbox.push(b"after")
    await asyncio.sleep(0)
    for _, right in pairs:
        assert await read_all(right, 10) == b"smallafter"
    assert ThreadNoting.threads == {threading.get_ident()}
    for stream in streams:
        stream.close()


def test_a_shard_that_fails_is_logged_and_the_others_results_come_back() -> None:
    """A shard that raises, on a helper or on the caller, is logged on the caller's thread;
    the other shards' results come back and the threads go on."""
    def work(shard: Sequence[int]) -> list[int]:
        if 13 in shard:
            raise ValueError("thirteen")
        return [n * 2 for n in shard]

    writers: WriterThreads[int, list[int]] = WriterThreads(3, work)
    try:
        assert writers.run(list(range(9))) == [[0, 6, 12], [2, 8, 14], [4, 10, 16]]
        with ExpectLog("chat.server", "a writer thread's shard failed"):
            # 13 is in the second shard (a helper's), then in the first (the caller's)
            assert writers.run(list(range(12, 16))) == [[24, 30], [28]]
            assert writers.run(list(range(13, 16))) == [[28], [30]]
        assert writers.run([1, 2, 3]) == [[2], [4], [6]]
    finally:
        writers.close()
    assert writers.run([5, 6]) == [[10, 12]]  # closed: on the caller's thread
    with pytest.raises(ValueError, match="count=1"):
        WriterThreads(1, work)


def test_send_threads_out_of_range_are_refused() -> None:
    """0 and 65 writer threads are refused, naming the value and the range."""
    for bad in (0, 65):
        with pytest.raises(ConfigError, match=rf"send-threads is {bad}; it must be between 1 "
                                              r"and 64"):
            Settings(send_threads=bad)


# The burst of tests/test_outbox.py (90 posters, 50 readers, one reader that stops) on a server
# whose flushes go over three threads: a room of 141 members is past PARALLEL_MIN.
@pytest.mark.settings(max_queue_bytes=256 * 1024, max_connections_per_ip=0, rate_limit=0,
                      max_text_chars=60_000, max_message_bytes=128 * 1024, send_threads=3)
@pytest.mark.gen_test(timeout=60)
async def test_a_burst_over_writer_threads_reaches_every_reader(
    connect: Connect, raw_connect: RawConnect, app: ChatApplication, http_port: int,
) -> None:
    """90 posters at once over three writer threads: every prompt reader gets every message;
    the one that stopped reading is dropped."""
    await burst_of_posts(connect, raw_connect, app)
    metrics = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{http_port}/metrics")
    assert sample(metrics.body.decode(), "chat_threaded_flushes_total") > 0

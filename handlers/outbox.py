"""Frames queued per connection and written once per IOLoop iteration, bounded in bytes.

This is the one place that goes around Tornado's per-message write path (see "Tornado's write
paths" in docs/performance.md: a socket send costs ~3 us, so sends per delivery decide
throughput).
Bytes never overtake what Tornado itself queued on the stream (pings, pongs, close frames):
the socket is written directly only while the stream's own buffer is empty.

The slow-reader bound applies to what the kernel refused (the stream's backlog after a write),
never to what one iteration queued: a burst (a store's commit group fanned out at once) is
written as it grows, and a reader is judged only once the socket would not take it. Replies a
client asked for (history, presence, errors) are credited: only their bytes still unread past
`reply_limit` count against `limit`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError

from chat.protocol.frame import Frame
from handlers.tornado_internals import write_backlog
from handlers.writer_threads import WriterThreads

# Bytes queued in one iteration past which they are written at once rather than at its end. Big
# enough that the common case stays one send per connection per iteration (a loopback send costs
# ~3 us: under 0.05 ns a byte at this size), small enough that a burst reaches the kernel as it
# is fanned out and what waits in Python per connection stays small.
FLUSH_BYTES = 64 * 1024
# Outboxes in one flush from which writer threads share it (--send-threads): below this, waking
# them (~10-20 us for the barrier's two crossings) costs more than the sends they would overlap
# (~3-5 us each).
PARALLEL_MIN = 64

# What a write's second half (Outbox.finish) is given: the bytes, how many the socket took (-1:
# the peer is gone).
Sending = tuple[bytes, int]
NOTHING: tuple[int, Sending | None] = (0, None)
# A writer thread's answer for its shard: bytes written, writes made, the writes left to finish.
Shard = tuple[int, int, list[tuple["Outbox", Sending]]]


class Flusher:
    """Writes the outboxes that received frames, once, on the next IOLoop iteration; with
    `threads` > 1, a flush of `parallel_min` outboxes or more over that many threads
    (handlers/writer_threads.py)."""

    def __init__(self, threads: int = 1, parallel_min: int = PARALLEL_MIN) -> None:
        self._dirty: list[Outbox] = []
        self.bytes_sent = 0  # by every outbox of this flusher, for /metrics
        # Writes that carried bytes (each: every frame one connection got in one iteration), for
        # /metrics: deliveries per write is how well the fan-out batches (docs/performance.md).
        self.writes = 0
        self.threaded_flushes = 0  # flushes the writer threads shared, for /metrics
        self._parallel_min = parallel_min
        self._writers: WriterThreads[Outbox, Shard] | None = (
            WriterThreads(threads, _send_shard) if threads > 1 else None)

    def mark(self, outbox: Outbox) -> None:
        if not self._dirty:
            IOLoop.current().add_callback(self.flush)
        self._dirty.append(outbox)

    def flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        writers = self._writers
        if writers is None or len(dirty) < self._parallel_min:
            for outbox in dirty:
                outbox.write(None)  # Outbox.flush, one call less per delivery
            return
        self.threaded_flushes += 1
        for written, writes, left in writers.run(dirty):
            self.bytes_sent += written
            self.writes += writes
            for outbox, rest in left:
                outbox.finish(rest)

    async def close(self) -> None:
        """Stop the writer threads; later flushes run on the loop's thread alone."""
        writers, self._writers = self._writers, None
        if writers is not None:
            writers.close()


def _send_shard(shard: Sequence[Outbox]) -> Shard:
    """A writer thread's part of a flush: the sends; (bytes written, writes, what is left for
    the loop's thread)."""
    written = writes = 0
    left = []
    for outbox in shard:
        size, rest = outbox.send_direct(None)
        if size:
            written += size
            writes += 1
        if rest is not None:
            left.append((outbox, rest))
    return written, writes, left


class Outbox:
    """One connection's queued frames; `on_overflow` runs (later) once too much is pending."""

    __slots__ = ("_direct", "_flusher", "_frames", "_limit", "_on_overflow", "_queued",
                 "_replies", "_reply_bytes", "_reply_limit", "_stream", "_written", "closed")

    def __init__(
        self, stream: IOStream, flusher: Flusher, limit: int, on_overflow: Callable[[], None],
        reply_limit: int = 0,
    ) -> None:
        self._stream = stream
        # Plain TCP only: a TLS stream must encrypt through its own write path.
        self._direct = type(stream) is IOStream
        self._flusher = flusher
        self._limit = limit
        self._reply_limit = reply_limit
        self._on_overflow = on_overflow
        # None while not marked for this iteration's flush: saves a list per idle connection.
        self._frames: list[bytes] | None = None
        self._queued = 0  # bytes in _frames
        self._written = 0  # bytes ever handed to the socket or the stream
        # Replies not yet known to be read: (start, end) offsets in the bytes pushed here.
        self._replies: deque[tuple[int, int]] | None = None
        self._reply_bytes = 0  # their size in all
        self.closed = False

    def send(self, frame: Frame) -> None:
        """Queue an event's frame (the hub's Peer.send, on the hot path)."""
        self.push(frame.wire)

    def reply(self, frame: Frame) -> None:
        """Queue a frame the client asked for (the hub's Peer.reply)."""
        self.push_reply(frame.wire)

    def push(self, frame: bytes) -> None:
        """Queue one frame for the next flush."""
        if self.closed:
            return
        frames = self._frames
        if frames is None:
            self._frames = [frame]
            self._flusher.mark(self)
        else:
            frames.append(frame)
        self._queued += len(frame)
        if self._queued > FLUSH_BYTES:
            self.write([])  # still marked: the iteration's flush finds it empty

    def push_reply(self, frame: bytes) -> None:
        """Queue a reply: its bytes never count as the client being slow (up to reply_limit)."""
        if self.closed:
            return
        start = self._written + self._queued
        replies = self._replies
        if replies is None:
            replies = self._replies = deque()
        if replies and replies[-1][1] == start:  # right after the last reply: one range
            replies[-1] = (replies[-1][0], start + len(frame))
        else:
            replies.append((start, start + len(frame)))
        self._reply_bytes += len(frame)
        self.push(frame)

    def flush(self) -> None:
        """Write everything queued, as one send where the socket takes it."""
        self.write(None)

    def write(self, then: list[bytes] | None) -> None:
        """Hand the queued frames to the socket now; judge the connection on what it refused.

        `then`: the queue after; None unmarks the outbox (the iteration's flush), [] keeps it
        marked (a write in the middle of an iteration).
        """
        size, rest = self.send_direct(then)
        if size:
            flusher = self._flusher
            flusher.bytes_sent += size
            flusher.writes += 1
        if rest is not None:
            self.finish(rest)

    def send_direct(self, then: list[bytes] | None) -> tuple[int, Sending | None]:
        """A write's first half, safe on a writer thread while the loop waits: the queued
        frames as one send where the stream holds nothing. (The bytes written, what finish()
        must still do on the loop's thread: None when the socket took them all.)"""
        frames = self._frames
        self._frames = then
        if self.closed or not frames:
            return NOTHING
        data = b"".join(frames)  # of one frame: that frame, not a copy (CPython)
        self._queued = 0
        stream = self._stream
        if stream.closed():
            self.closed = True
            return NOTHING
        size = len(data)
        sent = 0
        # tornado_internals.write_backlog(stream), inlined: this runs once per send, and the
        # call would triple the check's cost (~35 ns inline, ~110 ns through a function).
        if self._direct and not stream._write_buffer._size:
            try:
                sent = stream.socket.send(data)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                return 0, (data, -1)
        self._written += size
        if sent < size:
            return size, (data, sent)
        if self._replies is not None:
            self._replies, self._reply_bytes = None, 0  # all taken: all read as far as we know
        return size, None

    def finish(self, sending: Sending) -> None:
        """A write's second half, on the loop's thread: what the socket did not take goes
        through the stream, and the connection is judged on its backlog (or the dead peer's
        stream is closed)."""
        data, sent = sending
        stream = self._stream
        if sent < 0:
            self.closed = True
            stream.close()  # the peer is gone; Tornado reports the close to the handler
            return
        try:
            stream.write(memoryview(data)[sent:])  # which writes what the socket takes now
        except StreamClosedError:
            self.closed = True
            return
        backlog = write_backlog(stream)
        # Replies are looked at on every write while some are unread, so that those read are
        # forgotten even by a client whose backlog never empties.
        if (backlog > self._limit or self._replies is not None) and (
                backlog - self._unread_replies(backlog) > self._limit):
            self.overflow()

    def _unread_replies(self, backlog: int) -> int:
        """Bytes of replies in the backlog (at most reply_limit)."""
        replies = self._replies
        if replies is None:
            return 0
        # Taken by the kernel: everything written but the backlog. Tornado's own frames in the
        # stream (pongs, a close) make this a few bytes short, crediting replies a few more.
        taken = self._written - backlog
        while replies and replies[0][1] <= taken:
            start, end = replies.popleft()
            self._reply_bytes -= end - start
        if not replies:
            self._replies, self._reply_bytes = None, 0
            return 0
        unread = self._reply_bytes - max(0, taken - replies[0][0])
        return min(unread, self._reply_limit)

    def overflow(self) -> None:
        """Stop queueing and evict the connection (on the next iteration)."""
        self.closed = True
        self._frames = None
        self._queued = 0
        self._replies, self._reply_bytes = None, 0
        # Later, not now: the hub may be iterating over a room that eviction changes.
        IOLoop.current().add_callback(self._on_overflow)

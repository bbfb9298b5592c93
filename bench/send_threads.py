"""Whether socket sends from several threads use several cores: issue 19's writer threads.

Run from the repository root: `.venv/bin/python -m bench.send_threads [--threads 1,2,4]`.
CPython releases the GIL around `socket.send`, so threads that each own a shard of the
connections could overlap the kernel's send time, which is most of a saturated server's
(docs/performance.md, "Where the time goes"). This measures that alone, the way the server
flushes (handlers/outbox.py): rounds of one send of one frame to every connection, each round
split over the threads and ended together (the event loop waits for a flush to end). Between
groups of rounds, untimed, the receiving ends are drained so that every send is whole.

It reports per thread count: sends/s, the process's CPU per send and the cores it kept busy.
More sends/s with more threads means the design is worth building in the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import selectors
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tornado.iostream import IOStream

from handlers.outbox import Flusher, Outbox
from handlers.writer_threads import WriterThreads

# Rounds between drains: each connection's unread bytes stay far below loopback's receive
# buffer (frame bytes x rounds), so that no send is partial.
ROUNDS_PER_DRAIN = 20


@dataclass
class Result:
    """One thread count's figures."""

    threads: int
    sends: int
    wall_s: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.sends / self.wall_s

    def line(self) -> str:
        return (f"| {self.threads} | {self.per_s:,.0f} | {self.cpu_s / self.sends * 1e6:.2f} "
                f"| {self.wall_s / self.sends * 1e6:.2f} | {self.cpu_s / self.wall_s:.2f} |")


def pairs(count: int) -> tuple[list[socket.socket], list[socket.socket]]:
    """`count` loopback TCP connections: (the sending ends, non-blocking; the receiving ends)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=count)
    senders: list[socket.socket] = []
    receivers: list[socket.socket] = []
    for _ in range(count):
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server.setblocking(False)
        client.setblocking(False)
        senders.append(server)
        receivers.append(client)
    listener.close()
    return senders, receivers


def drain(receivers: Sequence[socket.socket], expected: int) -> None:
    """Read everything sent to the receiving ends (`expected` bytes in all)."""
    got = 0
    with selectors.DefaultSelector() as selector:
        for sock in receivers:
            selector.register(sock, selectors.EVENT_READ, sock)
        while got < expected:
            for key, _ in selector.select(timeout=5.0):
                sock = key.data
                while True:
                    try:
                        data = sock.recv(1 << 20)
                    except BlockingIOError:
                        break
                    got += len(data)


def timed(rounds: int, one_round: Callable[[], None], receivers: Sequence[socket.socket],
          bytes_per_round: int) -> tuple[float, float]:
    """Wall and process CPU seconds of `rounds` calls of `one_round`; the receiving ends are
    drained after every ROUNDS_PER_DRAIN of them, untimed."""
    wall = cpu = 0.0
    done = 0
    while done < rounds:
        group = min(ROUNDS_PER_DRAIN, rounds - done)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(group):
            one_round()
        wall += time.perf_counter() - wall0
        cpu += time.process_time() - cpu0
        done += group
        drain(receivers, group * bytes_per_round)
    return wall, cpu


def measure(senders: list[socket.socket], receivers: list[socket.socket], threads: int,
            rounds: int, frame: bytes) -> Result:
    """`rounds` rounds of one send to every connection, over `threads` threads (the server's
    own WriterThreads: the caller's thread and threads - 1 helpers)."""
    def send_all(shard: Sequence[socket.socket]) -> int:
        """The sends of one shard; how many the socket did not take whole."""
        return sum(sock.send(frame) != len(frame) for sock in shard)

    writers = WriterThreads(threads, send_all) if threads > 1 else None

    def one_round() -> None:
        short = writers.run(senders) if writers is not None else [send_all(senders)]
        if sum(short) or len(short) < threads:
            raise RuntimeError("a partial or failed send: drain more often")

    try:
        wall, cpu = timed(rounds, one_round, receivers, len(frame) * len(senders))
    finally:
        if writers is not None:
            writers.close()
    return Result(threads, rounds * len(senders), wall, cpu)


async def measure_outboxes(streams: list[IOStream], receivers: list[socket.socket],
                           threads: int, rounds: int, frame: bytes) -> Result:
    """The same through the server's own write path: a frame pushed to every connection's
    Outbox, then the Flusher's flush (handlers/outbox.py) with `threads` writer threads."""
    flusher = Flusher(threads, parallel_min=2)
    outboxes = [Outbox(stream, flusher, 1 << 30, lambda: None) for stream in streams]

    def one_round() -> None:
        for outbox in outboxes:
            outbox.push(frame)
        flusher.flush()  # as the loop's next iteration would (its own call finds none)

    try:
        wall, cpu = timed(rounds, one_round, receivers, len(frame) * len(streams))
        if any(stream.writing() for stream in streams):
            raise RuntimeError("a partial send: drain more often")
    finally:
        await flusher.close()
    return Result(threads, rounds * len(streams), wall, cpu)


async def run_outboxes(senders: list[socket.socket], receivers: list[socket.socket],
                       counts: list[int], rounds: int, frame: bytes, repeat: int) -> None:
    streams = [IOStream(sock) for sock in senders]
    for _ in range(repeat):
        for count in counts:
            print((await measure_outboxes(streams, receivers, count, rounds, frame)).line(),
                  flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--frame-bytes", type=int, default=200,
                        help="one message event's frame, about")
    parser.add_argument("--threads", default="1,2,4", help="thread counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs per thread count")
    parser.add_argument("--outbox", action="store_true",
                        help="through the server's Outbox and Flusher instead of bare sends")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.threads.split(",")]
    senders, receivers = pairs(args.connections)
    frame = b"\x81" + bytes([126]) + (args.frame_bytes - 4).to_bytes(2, "big") + (
        b"x" * (args.frame_bytes - 4))
    print(f"{args.connections} loopback connections, {args.frame_bytes}-byte frames, "
          f"{args.rounds} rounds; {os.cpu_count()} CPUs, "
          f"{len(os.sched_getaffinity(0))} usable")
    print("\n| threads | sends/s | CPU µs per send | wall µs per send | cores busy |")
    print("|---|---|---|---|---|")
    try:
        if args.outbox:
            asyncio.run(run_outboxes(senders, receivers, counts, args.rounds, frame,
                                     args.repeat))
        else:
            for _ in range(args.repeat):
                for count in counts:
                    print(measure(senders, receivers, count, args.rounds, frame).line(),
                          flush=True)
    finally:
        for sock in senders + receivers:
            sock.close()


if __name__ == "__main__":
    main()

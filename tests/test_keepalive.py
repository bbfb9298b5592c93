"""handlers/keepalive.py: every connection pinged once per interval, spread over the interval;
a connection that does not answer is closed after the timeout, one that answers never is."""

from __future__ import annotations

import asyncio

import pytest

from handlers.keepalive import Keepalive

TICK_S = 0.01


class Peer:
    """A connection that answers its pings (if `answers`) and records what it was told."""

    def __init__(self, answers: bool = True) -> None:
        self.awaiting_pong = False
        self.answers = answers
        self.pings = 0
        self.timed_out = False

    def send_ping(self) -> None:
        self.pings += 1
        if self.answers:  # the pong comes back on a later loop iteration, as from a socket
            asyncio.get_running_loop().call_soon(setattr, self, "awaiting_pong", False)

    def ping_timed_out(self) -> None:
        self.timed_out = True


async def keepalive_of(peers: list[Peer], interval_ticks: int, timeout_ticks: int) -> Keepalive:
    """A keepalive with these peers, its timer stopped: the test calls tick() itself."""
    keepalive = Keepalive(interval_ticks * TICK_S, timeout_ticks * TICK_S, TICK_S)
    for peer in peers:
        keepalive.add(peer)
    keepalive.stop()
    return keepalive


async def ticks(keepalive: Keepalive, count: int) -> None:
    """`count` ticks, each followed by the loop iteration that brings the pongs."""
    for _ in range(count):
        keepalive.tick()
        await asyncio.sleep(0)


@pytest.mark.gen_test
async def test_each_tick_pings_one_slice_and_each_connection_once_an_interval() -> None:
    """With 10 slices and 30 connections a tick pings 3, and a round pings every one once."""
    peers = [Peer() for _ in range(30)]
    keepalive = await keepalive_of(peers, 10, 10)
    assert keepalive.slices == 10
    await ticks(keepalive, 1)
    assert sum(peer.pings for peer in peers) == 3
    await ticks(keepalive, 9)
    assert [peer.pings for peer in peers] == [1] * 30


@pytest.mark.gen_test
async def test_a_silent_connection_is_closed_after_the_timeout_and_others_stay() -> None:
    """A peer that never answers is closed the timeout after its ping; answering peers stay,
    the timeout equal to the interval included (its check comes before the next ping)."""
    for timeout_ticks in (3, 10):
        mute, talkers = Peer(answers=False), [Peer() for _ in range(9)]
        keepalive = await keepalive_of([mute, *talkers], 10, timeout_ticks)
        await ticks(keepalive, 1)  # the mute one, in slice 0, is pinged on the first tick
        assert mute.pings == 1
        await ticks(keepalive, timeout_ticks - 1)
        assert not mute.timed_out
        await ticks(keepalive, 1)
        assert mute.timed_out and mute not in keepalive.connections
        await ticks(keepalive, 25)
        assert not any(peer.timed_out for peer in talkers)
        assert min(peer.pings for peer in talkers) >= 2 and mute.pings == 1


@pytest.mark.gen_test
async def test_a_discarded_connection_is_never_pinged() -> None:
    """discard takes a connection out of its slice."""
    gone, kept = Peer(), Peer()
    keepalive = await keepalive_of([gone, kept], 4, 4)
    keepalive.discard(gone)
    await ticks(keepalive, 4)
    assert (gone.pings, kept.pings) == (0, 1)


@pytest.mark.gen_test
async def test_the_timer_pings_and_stops_when_no_connection_is_left() -> None:
    """On its own timer the keepalive pings; with no connection left the timer ends, and the
    next add starts it again."""
    keepalive = Keepalive(2 * TICK_S, 2 * TICK_S, TICK_S)
    peer = Peer()
    keepalive.add(peer)
    while peer.pings == 0:
        await asyncio.sleep(TICK_S)
    keepalive.discard(peer)
    while keepalive._timer is not None:
        await asyncio.sleep(TICK_S)
    keepalive.add(peer)
    while peer.pings == 1:
        await asyncio.sleep(TICK_S)
    keepalive.stop()


def test_an_interval_of_zero_pings_nobody() -> None:
    """ping-interval 0 turns the keepalive off: add registers nothing."""
    keepalive = Keepalive(0, 0)
    keepalive.add(Peer())
    assert keepalive.connections == {}

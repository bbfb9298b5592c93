"""Coalesced store reads (chat/coalesce.py): one call per batch, each answer to its own key."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from chat.coalesce import Coalesced

VALUES = {f"k{i}": i for i in range(10)}


class Fetches:
    """A fetch over VALUES that records each call's keys and can be held or made to fail."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail_next: Exception | None = None

    async def __call__(self, keys: list[str]) -> Mapping[str, int]:
        self.calls.append(keys)
        await self.release.wait()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        return {key: VALUES[key] for key in keys if key in VALUES}

    async def held(self, batched: Coalesced[str, int], *keys: str
                   ) -> list[asyncio.Task[int | None]]:
        """`keys` asked while this fetch is held: once its first call is under way, the asks."""
        self.release.clear()
        asked = [asyncio.ensure_future(batched.ask(key)) for key in keys]
        while not self.calls:
            await asyncio.sleep(0)
        return asked


@pytest.mark.gen_test
async def test_keys_asked_together_share_one_call_and_get_their_own_values() -> None:
    """Keys asked in one iteration go in one call; each gets its own value, an unknown None."""
    fetch = Fetches()
    batched = Coalesced(fetch)
    answers = await asyncio.gather(*(batched.ask(key) for key in ("k3", "k1", "nope", "k7")))
    assert answers == [3, 1, None, 7]
    assert fetch.calls == [["k3", "k1", "nope", "k7"]]
    assert batched.calls == 1


@pytest.mark.gen_test
async def test_keys_asked_during_a_call_wait_and_go_together_in_the_next() -> None:
    """One call runs at a time: what is asked meanwhile is the next call, as one batch."""
    fetch = Fetches()
    batched = Coalesced(fetch)
    [first] = await fetch.held(batched, "k0")
    later = [asyncio.ensure_future(batched.ask(key)) for key in ("k1", "k2", "k3")]
    await asyncio.sleep(0.01)
    assert fetch.calls == [["k0"]]  # the second call waits for the first
    fetch.release.set()
    assert await first == 0
    assert await asyncio.gather(*later) == [1, 2, 3]
    assert fetch.calls == [["k0"], ["k1", "k2", "k3"]]


@pytest.mark.gen_test
async def test_a_key_asked_many_times_at_once_is_fetched_once() -> None:
    """Every asker of a key gets the value of the key's one place in the call."""
    fetch = Fetches()
    batched = Coalesced(fetch)
    answers = await asyncio.gather(*(batched.ask("k5") for _ in range(20)), batched.ask("k6"))
    assert answers == [5] * 20 + [6]
    assert fetch.calls == [["k5", "k6"]]


@pytest.mark.gen_test
async def test_more_keys_than_a_call_takes_go_in_calls_of_at_most_that_many() -> None:
    """`most` bounds a call's keys; the rest go in the calls after, in the order asked."""
    fetch = Fetches()
    batched = Coalesced(fetch, most=4)
    keys = [f"k{i}" for i in range(10)]
    assert await asyncio.gather(*(batched.ask(key) for key in keys)) == list(range(10))
    assert fetch.calls == [keys[0:4], keys[4:8], keys[8:10]]


@pytest.mark.gen_test
async def test_a_failed_call_fails_its_own_askers_only() -> None:
    """A call's error reaches every asker in it; keys asked after are fetched afresh."""
    fetch = Fetches()
    fetch.fail_next = OSError("the store is down")
    batched = Coalesced(fetch)
    failing = await fetch.held(batched, "k1", "k2")
    after = asyncio.ensure_future(batched.ask("k2"))
    fetch.release.set()
    for asked in failing:
        with pytest.raises(OSError, match="the store is down"):
            await asked
    assert await after == 2
    assert fetch.calls == [["k1", "k2"], ["k2"]]


@pytest.mark.gen_test
async def test_an_asker_cancelled_while_waiting_leaves_the_others_their_answers() -> None:
    """Cancelling one asker of a key does not cancel another asker of it, or the call."""
    fetch = Fetches()
    batched = Coalesced(fetch)
    gone, kept = await fetch.held(batched, "k4", "k4")
    gone.cancel()
    fetch.release.set()
    assert await kept == 4
    assert gone.cancelled()


@pytest.mark.gen_test
async def test_pending_counts_the_keys_in_the_call_and_those_waiting() -> None:
    """`pending` is the keys asked and not answered, whether in the call or after it."""
    fetch = Fetches()
    batched = Coalesced(fetch)
    asked = await fetch.held(batched, "k1", "k2")
    asked += [asyncio.ensure_future(batched.ask(key)) for key in ("k3", "k3", "k4")]
    await asyncio.sleep(0)
    assert batched.pending == 4
    fetch.release.set()
    await asyncio.gather(*asked)
    assert batched.pending == 0

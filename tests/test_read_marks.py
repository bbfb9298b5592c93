"""Read marks in both stores: kept per party and conversation, never moving back, durable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chat.record import dm_key
from chat.store.base import HistoryStore, ReadMarks
from tests.test_store import make_store  # noqa: F401 (a fixture)


def marks_of(store: HistoryStore) -> ReadMarks:
    assert isinstance(store, ReadMarks)
    return store


async def post(store: HistoryStore, conversation: str, n: int, to: str | None = None) -> None:
    for i in range(n):
        await store.append(conversation, username="ann", avatar="", text=f"m{i}", ts=1, to=to)


@pytest.mark.gen_test(timeout=30)
async def test_a_mark_never_moves_back_and_survives_a_restart(
    make_store: Callable[..., Any],  # noqa: F811 (a fixture)
) -> None:
    """mark_read keeps the larger id; a reopened file or database still has it."""
    store = make_store()
    await store.start()
    try:
        marks = marks_of(store)
        assert await marks.mark_read("a:1", "general", 5) == 5
        assert await marks.mark_read("a:1", "general", 3) == 5  # backwards: kept
        assert await marks.mark_read("a:1", "general", 7) == 7
        assert await marks.mark_read("a:2", "general", 1) == 1  # another party's own
        assert await marks.read_marks("a:1") == {"general": 7}
        assert await marks.read_marks("a:3") == {}
    finally:
        await store.close()
    again = make_store()
    await again.start()
    try:
        if not getattr(again, "_in_memory", False):
            assert await marks_of(again).read_marks("a:1") == {"general": 7}
    finally:
        await again.close()


@pytest.mark.gen_test(timeout=30)
async def test_direct_conversations_are_a_party_s_own_only(
    make_store: Callable[..., Any],  # noqa: F811 (a fixture)
) -> None:
    """A party's direct conversations, first or second in the key; not a:10's for a:1."""
    store = make_store()
    await store.start()
    try:
        await post(store, dm_key("a:1", "a:2"), 2, to="bob")
        await post(store, dm_key("a:0", "a:1"), 1, to="ann")
        await post(store, dm_key("a:10", "a:2"), 3, to="bob")
        await post(store, "general", 1)
        found = sorted(await marks_of(store).direct_conversations("a:1"))
        assert found == sorted([(dm_key("a:1", "a:2"), 2), (dm_key("a:0", "a:1"), 1)])
        assert sorted(await marks_of(store).direct_conversations("a:2")) == sorted(
            [(dm_key("a:1", "a:2"), 2), (dm_key("a:10", "a:2"), 3)])
    finally:
        await store.close()


@pytest.mark.gen_test(timeout=30)
async def test_last_seen_keeps_the_latest_time(
    make_store: Callable[..., Any],  # noqa: F811 (a fixture)
) -> None:
    """saw() keeps the latest time per party (two nodes may note it out of order)."""
    store = make_store()
    await store.start()
    try:
        marks = marks_of(store)
        assert await marks.last_seen("a:1") is None
        await marks.saw("a:1", 2000)
        await marks.saw("a:1", 1000)  # an older note, arriving late: kept out
        await marks.saw("a:2", 5)
        assert (await marks.last_seen("a:1"), await marks.last_seen("a:2")) == (2000, 5)
    finally:
        await store.close()

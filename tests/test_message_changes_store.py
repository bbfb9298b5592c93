"""The message lifecycle behind the store interface, on every backend (tests/test_store.py's),
and a deleted text's bytes gone from SQLite's file and WAL once the delete returns."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from chat.store import HistoryStore, SQLiteStore, reactions
from chat.store.postgres import PostgresStore
from chat.store.reactions import TooManyReactions
from tests.test_store import make_store, now_ms, running  # noqa: F401 (make_store: a fixture)


@pytest.mark.gen_test(timeout=30)
async def test_edits_and_deletes_are_numbered_per_conversation_and_listed_once_each(
        make_store: Callable[..., HistoryStore]) -> None:  # noqa: F811
    """Each edit or delete takes its conversation's next change number; changes() lists each
    changed message once, as it is now, in change order; a missing or deleted message is
    None and takes no number; reads keep the tombstone (no gap in ids)."""
    async with running(make_store()) as store:
        ids = [(await store.append("r", username="ann", avatar="", text=t, ts=now_ms(),
                                   author="a:1"))[0].id for t in ("one", "two", "three")]
        await store.append("other", username="ann", avatar="", text="x", ts=now_ms())
        assert await store.last_change("r") == 0
        edited = await store.edit("r", ids[0], "ONE", 1234)
        assert edited is not None
        assert (edited.text, edited.edited, edited.change, edited.author) == ("ONE", 1234, 1,
                                                                             "a:1")
        deleted = await store.delete("r", ids[1], 1235)
        assert deleted is not None
        assert (deleted.text, deleted.deleted, deleted.change) == ("", 1235, 2)
        assert await store.delete("r", ids[1], 1236) is None
        assert await store.edit("r", ids[1], "back", 1236) is None
        assert await store.edit("r", 99, "nothing", 1236) is None
        assert await store.edit("r", ids[0], "One", 1237) is not None
        assert await store.last_change("r") == 3
        assert await store.last_change("other") == 0
        assert [(m.id, m.change) for m in await store.changes("r", 0, 10)] == [
            (ids[1], 2), (ids[0], 3)]
        assert [m.id for m in await store.changes("r", 2, 10)] == [ids[0]]
        assert [(m.text, m.deleted is not None) for m in await store.latest("r", 10)] == [
            ("One", False), ("", True), ("three", False)]
        found = await store.find("r", ids[2])
        assert found is not None and (found.edited, found.change) == (None, 0)


@pytest.mark.gen_test(timeout=30)
async def test_a_deleted_text_is_in_neither_the_sqlite_file_nor_its_wal(tmp_path: Path) -> None:
    """Once delete() returns, the text's bytes are in neither chat.db nor chat.db-wal (they
    were in them before), while a reader connection is open and other rows stay."""
    path = tmp_path / "chat.db"
    word = uuid.uuid4().hex.encode()  # one word, as the search index keeps words
    secret = b"hunter2-" + word

    def on_disk() -> bytes:
        wal = Path(f"{path}-wal")
        return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")

    async with running(SQLiteStore(str(path))) as store:
        for n in range(50):
            await store.append("r", username="ann", avatar="", text=f"filler {n} " * 20,
                               ts=now_ms())
        stored, _ = await store.append("r", username="ann", avatar="", text=secret.decode(),
                                       ts=now_ms())
        await store.append("r", username="ann", avatar="", text="after", ts=now_ms())
        assert [m.id for m in await store.latest("r", 2)] == [stored.id, stored.id + 1]
        assert secret in on_disk()
        assert await store.delete("r", stored.id, now_ms()) is not None
        assert secret not in on_disk()
        assert word not in on_disk()  # nor its word in the search index (chat/store/search.py)
        assert b"filler 49" in on_disk()
        # Long enough for overflow pages: those are freed and zeroed as well.
        big = ("x" * 9000 + secret.decode()).encode()
        stored, _ = await store.append("r", username="ann", avatar="", text=big.decode(),
                                       ts=now_ms())
        assert await store.delete("r", stored.id, now_ms()) is not None
        assert secret not in on_disk()


@pytest.mark.postgres
@pytest.mark.gen_test(timeout=30)
async def test_a_deleted_text_is_in_no_live_postgres_row(postgres_url: str) -> None:
    """In PostgreSQL the row keeps no text once delete() returns (docs/deployment.md says
    what vacuum does with the old row version)."""
    postgres = PostgresStore(postgres_url)
    async with running(postgres) as store:
        stored, _ = await store.append("r", username="ann", avatar="", text="hunter2",
                                       ts=now_ms())
        assert await store.delete("r", stored.id, now_ms()) is not None
        pool = postgres.pool
        assert pool is not None
        async with pool.connection() as conn:
            rows = await (await conn.execute(
                "SELECT count(*) FROM messages WHERE text LIKE '%hunter2%'")).fetchall()
        assert rows == [(0,)]


@pytest.mark.gen_test(timeout=30)
async def test_reactions_are_kept_per_party_and_limited_per_message(
        make_store: Callable[..., HistoryStore]) -> None:  # noqa: F811
    """Adding twice or taking back what is not there changes nothing (but takes a number);
    a new emoji past the limit raises TooManyReactions and stores nothing; a deleted message
    takes no reaction."""
    async with running(make_store()) as store:
        stored, _ = await store.append("r", username="ann", avatar="", text="hi", ts=now_ms())
        for party, name in (("a:1", "ann"), ("a:1", "ann"), ("a:2", "bob")):
            await store.react("r", stored.id, "👍", party, name, True, 2)
        await store.react("r", stored.id, "🎉", "a:2", "bob", False, 2)
        now = await store.react("r", stored.id, "🎉", "a:2", "bob", True, 2)
        assert now is not None and now.change == 5
        assert reactions.shown(now.reactions) == [
            {"emoji": "👍", "count": 2, "users": ["ann", "bob"]},
            {"emoji": "🎉", "count": 1, "users": ["bob"]}]
        with pytest.raises(TooManyReactions):
            await store.react("r", stored.id, "🚀", "a:1", "ann", True, 2)
        assert await store.last_change("r") == 5
        await store.delete("r", stored.id, now_ms())
        assert await store.react("r", stored.id, "👍", "a:3", "cat", True, 2) is None
        assert await store.last_change("r") == 6

"""The history store contract, run against every backend; then SQLite's durability and failures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chat.record import dm_parties
from chat.store import (
    IDEMPOTENCY_WINDOW_MS,
    CidReused,
    HistoryStore,
    SQLiteStore,
    StoredMessage,
    StoreError,
    dm_key,
    open_store,
    sqlite_schema,
    sqlite_writer,
)
from chat.store.base import DAY_MS
from chat.store.postgres import PostgresStore
from chat.urls import redacted

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["sqlite-memory", "sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., HistoryStore]:
    """A factory of stores of one backend; a test's SQLite file stores share one file, its
    PostgreSQL stores one database (no other test's); each in-memory store is a database alone."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")

    def make(**kwargs: Any) -> HistoryStore:
        if request.param == "sqlite-memory":
            return SQLiteStore(":memory:", **kwargs)
        if request.param == "postgres":
            return PostgresStore(url, **kwargs)
        return SQLiteStore(str(tmp_path / "chat.db"), **kwargs)

    return make


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "chat.db")


@contextlib.asynccontextmanager
async def running(store: HistoryStore) -> AsyncIterator[HistoryStore]:
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def post(store: HistoryStore, text: str = "hi", room: str = "general", *,
               user: str = "ann", ts: int | None = None, cid: str | None = None,
               to: str | None = None) -> StoredMessage:
    message, _ = await store.append(room, username=user, avatar=f"av-{user}", text=text,
                                    ts=now_ms() if ts is None else ts, cid=cid, to=to)
    return message


def ids(messages: list[StoredMessage]) -> list[int]:
    return [message.id for message in messages]


# The contract: every backend


@pytest.mark.gen_test
async def test_ids_count_up_from_one_per_conversation(make_store: Callable[..., HistoryStore],
                                                      ) -> None:
    """Ids start at 1 and count up by one in each conversation on its own."""
    async with running(make_store()) as store:
        assert [(await post(store, room=room)).id for room in "aabab"] == [1, 2, 1, 3, 2]


@pytest.mark.gen_test
async def test_latest_returns_the_last_messages_oldest_first(
        make_store: Callable[..., HistoryStore]) -> None:
    """latest() returns the last `limit` messages, oldest first, with every field as stored."""
    async with running(make_store()) as store:
        for n in range(1, 6):
            await post(store, f"m{n}", ts=1000 + n, cid=f"c{n}")
        page = await store.latest("general", 2)
        assert page == [StoredMessage("general", 4, "ann", "av-ann", "m4", 1004, "c4"),
                        StoredMessage("general", 5, "ann", "av-ann", "m5", 1005, "c5")]
        assert ids(await store.latest("general", 50)) == [1, 2, 3, 4, 5]


@pytest.mark.gen_test
async def test_before_pages_backwards_without_gap_or_overlap(
        make_store: Callable[..., HistoryStore]) -> None:
    """before() pages backwards from an id: each page ends just before the previous one."""
    async with running(make_store()) as store:
        for _ in range(25):
            await post(store)
        assert ids(await store.before("general", 26, 10)) == list(range(16, 26))
        assert ids(await store.before("general", 16, 10)) == list(range(6, 16))
        assert ids(await store.before("general", 6, 10)) == [1, 2, 3, 4, 5]
        assert await store.before("general", 1, 10) == []


@pytest.mark.gen_test
async def test_after_replays_exactly_the_messages_after_an_id(
        make_store: Callable[..., HistoryStore]) -> None:
    """after() returns the messages after an id, oldest first, up to `limit`."""
    async with running(make_store()) as store:
        for _ in range(25):
            await post(store)
        assert ids(await store.after("general", 0, 10)) == list(range(1, 11))
        assert ids(await store.after("general", 20, 10)) == [21, 22, 23, 24, 25]
        assert await store.after("general", 25, 10) == []


@pytest.mark.gen_test
async def test_unknown_conversations_and_empty_limits_read_nothing(
        make_store: Callable[..., HistoryStore]) -> None:
    """Reading a conversation with no messages, or with a limit of 0 or less, returns []."""
    async with running(make_store()) as store:
        await post(store)
        assert await store.latest("nowhere", 10) == []
        assert await store.after("nowhere", 0, 10) == []
        for limit in (0, -1):
            assert await store.latest("general", limit) == []
            assert await store.before("general", 5, limit) == []
            assert await store.after("general", 0, limit) == []


def test_dm_key_is_symmetric_by_party_ids_and_never_a_room_name_nor_an_old_key() -> None:
    """A DM key is the same from either side, cannot be a room name, nor a key of old (names)."""
    assert dm_key("a:1", "g:x") == dm_key("g:x", "a:1")
    assert dm_key("a:1", "a:2") != dm_key("a:1", "a:20")
    assert dm_key("a:1", "a:2").startswith("@")
    assert dm_parties(dm_key("a:2", "a:1")) == ["a:1", "a:2"]
    assert dm_parties("@a:1\x1fa:2") == []  # a conversation of old, between names


@pytest.mark.gen_test
async def test_direct_messages_have_their_own_history(
        make_store: Callable[..., HistoryStore]) -> None:
    """A DM conversation has its own ids and keeps the recipient; rooms do not see it."""
    async with running(make_store()) as store:
        await post(store, "in the room")
        key = dm_key("a:1", "g:bob")
        first = await post(store, "psst", key, to="Bob")
        reply = await post(store, "what?", dm_key("g:bob", "a:1"), user="Bob", to="ann")
        assert (first.id, first.to, reply.id, reply.to) == (1, "Bob", 2, "ann")
        assert [m.text for m in await store.latest(key, 10)] == ["psst", "what?"]
        assert [m.text for m in await store.latest("general", 10)] == ["in the room"]


@pytest.mark.gen_test
async def test_a_repeated_cid_returns_the_original_acknowledgement(
        make_store: Callable[..., HistoryStore]) -> None:
    """The same user's repeated cid stores nothing and returns the original message."""
    async with running(make_store()) as store:
        original, created = await store.append("general", username="Ann", avatar="a",
                                                text="once", ts=now_ms(), cid="x1")
        again, created_again = await store.append("general", username="ANN", avatar="b",
                                                  text="twice", ts=now_ms(), cid="x1")
        assert (created, created_again) == (True, False)
        assert again == original
        assert [m.text for m in await store.latest("general", 10)] == ["once"]


@pytest.mark.gen_test
async def test_a_guest_s_mark_is_kept_with_its_message(
        make_store: Callable[..., HistoryStore]) -> None:
    """A message appended as a guest's reads back marked, by every read and a repeat; others
    unmarked."""
    async with running(make_store()) as store:
        ts = now_ms()
        marked, _ = await store.append("general", username="gus", avatar="", text="as guest",
                                       ts=ts, cid="g1", guest=True)
        await store.append("general", username="ann", avatar="", text="as account", ts=ts)
        again, created = await store.append("general", username="gus", avatar="",
                                            text="as guest", ts=ts, cid="g1", guest=True)
        assert marked.guest and again.guest and not created
        for page in (await store.latest("general", 10), await store.after("general", 0, 10),
                     await store.before("general", 3, 10)):
            assert [(m.text, m.guest) for m in page] == [("as guest", True),
                                                         ("as account", False)]


@pytest.mark.gen_test
async def test_a_bot_s_message_reads_back_marked(
        make_store: Callable[..., HistoryStore]) -> None:
    """A message appended as a bot's reads back marked `bot` by every read (and a direct one,
    and a repeat); others unmarked."""
    async with running(make_store()) as store:
        ts = now_ms()
        marked, _ = await store.append("general", username="ci", avatar="", text="built",
                                       ts=ts, cid="b1", bot=True)
        await store.append("general", username="ann", avatar="", text="thanks", ts=ts)
        again, created = await store.append("general", username="ci", avatar="",
                                            text="built", ts=ts, cid="b1", bot=True)
        assert marked.bot and again.bot and not created and not marked.guest
        for page in (await store.latest("general", 10), await store.after("general", 0, 10),
                     await store.before("general", 3, 10)):
            assert [(m.text, m.bot) for m in page] == [("built", True), ("thanks", False)]
        direct, _ = await store.append("@\x1ea:1\x1fa:2", username="ci", avatar="", text="hi",
                                       ts=ts, to="ann", bot=True)
        assert [m.bot for m in await store.latest(direct.conversation, 10)] == [True]


@pytest.mark.gen_test
async def test_a_cid_belongs_to_its_user_and_its_window(
        make_store: Callable[..., HistoryStore]) -> None:
    """Another user's equal cid, or the same cid after the window, is a new message."""
    async with running(make_store()) as store:
        ts = now_ms()
        await post(store, "ann's", ts=ts, cid="x1")
        assert (await post(store, "bob's", user="bob", ts=ts, cid="x1")).id == 2
        assert (await post(store, "later", ts=ts + IDEMPOTENCY_WINDOW_MS - 1, cid="x1")).id == 1
        assert (await post(store, "later", ts=ts + IDEMPOTENCY_WINDOW_MS, cid="x1")).id == 3


@pytest.mark.gen_test
async def test_a_cid_used_for_another_conversation_is_refused(
        make_store: Callable[..., HistoryStore]) -> None:
    """A sender's cid repeated for another room or a DM raises CidReused and stores nothing."""
    async with running(make_store()) as store:
        original = await post(store, "once", cid="x1")
        for conversation, to in (("b", None), (dm_key("ann", "bob"), "bob")):
            with pytest.raises(CidReused) as caught:
                await post(store, "elsewhere", conversation, user="ANN", cid="x1", to=to)
            assert caught.value.cid == "x1"
            assert await store.latest(conversation, 10) == []
        assert await store.append("general", username="ann", avatar="av-ann", text="once",
                                  ts=now_ms(), cid="x1") == (original, False)
        assert (await post(store, "b's first", "b", cid="x2")).id == 1


@pytest.mark.gen_test
async def test_a_repeated_cid_whose_message_was_deleted_gets_its_id_and_ts(
        make_store: Callable[..., HistoryStore]) -> None:
    """A repeat whose original retention deleted gets the original id and ts, stores nothing."""
    async with running(make_store(per_conversation=1)) as store:
        original = await post(store, "first", cid="x1", ts=now_ms() - 1000)
        await post(store, "second")
        await store.prune()
        assert ids(await store.latest("general", 10)) == [2]
        again, created = await store.append("general", username="ann", avatar="av-ann",
                                            text="first", ts=now_ms(), cid="x1")
        assert (again, created) == (original, False)
        assert ids(await store.latest("general", 10)) == [2]


@pytest.mark.gen_test
async def test_room_retention_deletes_abandoned_conversations_but_general(
        make_store: Callable[..., HistoryStore]) -> None:
    """A conversation whose newest message is older than room_days goes, general never; a
    conversation made again later never reuses an id it had."""
    old = now_ms() - 31 * DAY_MS
    async with running(make_store(room_days=30)) as store:
        for _ in range(3):  # general first: a background pass may retire `abandoned` at once
            await post(store, "old", ts=old)
            await post(store, "old", "abandoned", ts=old, cid=None)
        await post(store, "old", dm_key("ann", "bob"), ts=old, to="bob")
        await post(store, "quiet", "alive", ts=now_ms() - 29 * DAY_MS)
        await post(store, "quiet", "alive", ts=now_ms() - 28 * DAY_MS)
        await store.prune()  # (it may have run in the background already)
        assert await store.latest("abandoned", 10) == []
        assert await store.latest(dm_key("ann", "bob"), 10) == []
        assert ids(await store.latest("general", 10)) == [1, 2, 3]
        assert len(await store.latest("alive", 10)) == 2
        again = await post(store, "back", "abandoned")
        assert again.id > 3
        assert ids(await store.after("abandoned", 3, 10)) == [again.id]
        assert (await post(store, "on")).id == 4


@pytest.mark.gen_test
async def test_room_retention_zero_keeps_every_conversation(
        make_store: Callable[..., HistoryStore]) -> None:
    """With room_days=0 (and no days) no conversation is deleted, however old."""
    async with running(make_store(room_days=0)) as store:
        await post(store, "old", "quiet", ts=now_ms() - 3650 * DAY_MS)
        assert await store.prune() == 0
        assert ids(await store.latest("quiet", 10)) == [1]


@pytest.mark.gen_test
async def test_concurrent_appends_resolve_in_id_order(
        make_store: Callable[..., HistoryStore]) -> None:
    """Appends from many coroutines at once get distinct ids and complete in id order."""
    async with running(make_store()) as store:
        completed: list[int] = []

        async def send(n: int) -> None:
            completed.append((await post(store, f"m{n}", user=f"u{n % 7}", cid=f"c{n}")).id)

        await asyncio.gather(*(send(n) for n in range(200)))
        assert completed == list(range(1, 201))


@pytest.mark.gen_test(timeout=30)
async def test_reads_during_appends_answer_with_committed_messages_only(
        make_store: Callable[..., HistoryStore]) -> None:
    """Reads made while appends stream in all answer, each with ids 1..n and no gap."""
    async with running(make_store()) as store:
        writing = True

        async def write(writer: int) -> None:
            for n in range(50):
                await post(store, f"w{writer}-{n}", user=f"u{writer}")

        async def read() -> list[list[int]]:
            seen = []
            while writing:
                seen.append(ids(await store.after("general", 0, 10_000)))
                seen.append(sorted(ids(await store.latest("general", 10_000))))
            return seen

        reader = asyncio.ensure_future(read())
        await asyncio.gather(*(write(w) for w in range(10)))
        writing = False
        for seen in await reader:
            assert seen == list(range(1, len(seen) + 1))
        assert ids(await store.after("general", 0, 10_000)) == list(range(1, 501))


@pytest.mark.gen_test
async def test_retention_keeps_the_last_messages_of_each_conversation(
        make_store: Callable[..., HistoryStore]) -> None:
    """After pruning, a conversation holds its last `per_conversation` messages; ids go on."""
    async with running(make_store(per_conversation=5)) as store:
        for _ in range(12):
            await post(store)
        await post(store, room="quiet")
        await store.prune()
        assert ids(await store.after("general", 0, 100)) == [8, 9, 10, 11, 12]
        assert ids(await store.before("general", 100, 100)) == [8, 9, 10, 11, 12]
        assert ids(await store.latest("quiet", 100)) == [1]
        assert (await post(store)).id == 13


@pytest.mark.gen_test
async def test_retention_deletes_messages_older_than_days(
        make_store: Callable[..., HistoryStore]) -> None:
    """After pruning, no message is older than `days`; `days=0` keeps everything."""
    for days, kept in ((1, [4, 5]), (0, [1, 2, 3, 4, 5])):
        async with running(make_store(days=days)) as store:
            latest = await store.latest("general", 1)
            base = latest[-1].id if latest else 0
            for _ in range(3):
                await post(store, "old", ts=now_ms() - 2 * DAY_MS)
            for _ in range(2):
                await post(store, "new")
            await store.prune()
            assert ids(await store.after("general", base, 100)) == [base + n for n in kept]


# SQLite: group commit, durability, schema


@pytest.mark.gen_test
async def test_group_commit_takes_many_appends_per_transaction(db: str) -> None:
    """Under load one transaction (and one fsync) commits many appends."""
    async with running(SQLiteStore(db)) as store:
        await asyncio.gather(*(post(store, f"m{n}") for n in range(500)))
        stats = store.stats  # type: ignore[attr-defined]
        assert stats.stored == 500
        assert stats.largest_batch > 1
        assert stats.batches < 500


@pytest.mark.gen_test
async def test_ids_and_cids_survive_a_reopen(db: str) -> None:
    """After a restart, ids go on from the last one and a repeated cid is still recognised."""
    async with running(SQLiteStore(db)) as store:
        original = await post(store, "once", cid="x1")
        await post(store)
    async with running(SQLiteStore(db)) as store:
        again, created = await store.append("general", username="ann", avatar="", text="twice",
                                            ts=now_ms(), cid="x1")
        assert (again, created) == (original, False)
        assert (await post(store)).id == 3


@pytest.mark.gen_test
async def test_ids_are_never_reused_after_retention_emptied_a_room(db: str) -> None:
    """Once retention has deleted a room's every message, its next id still follows the last."""
    async with running(SQLiteStore(db, days=1)) as store:
        for _ in range(3):
            await post(store, "old", ts=now_ms() - 2 * DAY_MS)
        assert await store.prune() == 3
        assert await store.latest("general", 10) == []
    async with running(SQLiteStore(db, days=1)) as store:
        assert (await post(store)).id == 4


@pytest.mark.gen_test
async def test_retention_forgets_cids_outside_the_window(db: str, tmp_path: Path) -> None:
    """Pruning deletes the cids older than the idempotency window, not the messages."""
    async with running(SQLiteStore(db)) as store:
        await post(store, "old", ts=now_ms() - IDEMPOTENCY_WINDOW_MS - 1000, cid="old")
        await post(store, "new", cid="new")
        await store.prune()
        with contextlib.closing(sqlite3.connect(db)) as conn:
            assert conn.execute("SELECT cid FROM cids").fetchall() == [("new",)]
        assert len(await store.latest("general", 10)) == 2


@pytest.mark.gen_test
async def test_a_message_sqlite_cannot_encode_fails_alone(db: str) -> None:
    """A message that cannot be stored fails by itself; the rest of its batch is stored."""
    async with running(SQLiteStore(db)) as store:
        results = await asyncio.gather(post(store, "a"), post(store, "\ud800"), post(store, "b"),
                                       return_exceptions=True)
        assert isinstance(results[1], StoreError)
        assert [m.text for m in await store.latest("general", 10)] == ["a", "b"]
        assert ids(await store.latest("general", 10)) == [1, 2]


@pytest.mark.gen_test
async def test_migrations_run_in_order_once(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new file gets every migration in order; reopening runs only the ones it lacks."""
    ran: list[str] = []
    current = len(sqlite_schema.MIGRATIONS)

    def next_add_edited(conn: sqlite3.Connection) -> None:
        ran.append("next")
        conn.execute("ALTER TABLE messages ADD COLUMN edited INTEGER")

    async with running(SQLiteStore(db)):
        pass
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", [*sqlite_schema.MIGRATIONS, next_add_edited])
    for _ in range(2):
        async with running(SQLiteStore(db)) as store:
            await post(store)
    assert ran == ["next"]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(current + 1,)]
        assert "edited" in [row[1] for row in conn.execute("PRAGMA table_info(messages)")]


@pytest.mark.gen_test
async def test_a_file_from_a_newer_server_is_refused(db: str) -> None:
    """start() refuses a file whose schema is newer than this server knows."""
    async with running(SQLiteStore(db)):
        pass
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="schema version 99"):
        await SQLiteStore(db).start()


@pytest.mark.gen_test
async def test_open_store_keeps_memory_in_memory_and_a_path_in_a_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`:memory:` gives a SQLite store that writes nothing to disk; a path gives a file."""
    monkeypatch.chdir(tmp_path)
    async with running(open_store(":memory:", per_conversation=5, days=0)) as store:
        assert isinstance(store, SQLiteStore)
        await post(store)
        assert ids(await store.latest("general", 10)) == [1]
    assert list(tmp_path.iterdir()) == []
    assert isinstance(open_store("chat.db", per_conversation=5, days=1.5), SQLiteStore)
    with pytest.raises(ValueError, match="file path or ':memory:'"):
        SQLiteStore("file:chat.db?mode=ro")


@pytest.mark.parametrize("url", ["redis://:secret@127.0.0.1:6379/0", "unix:///run/redis.sock"])
def test_open_store_refuses_redis_naming_where_history_lives(url: str) -> None:
    """A redis:// --db is refused with the URL (password redacted) and where history lives now."""
    with pytest.raises(ValueError, match="history lives in") as caught:
        open_store(url, per_conversation=5, days=0)
    reason = str(caught.value)
    assert redacted(url) in reason and "secret" not in reason
    assert "SQLite or PostgreSQL" in reason and "\n" not in reason


# SQLite in memory


@pytest.mark.gen_test
async def test_in_memory_stores_side_by_side_share_nothing() -> None:
    """Two `:memory:` stores open at once are two histories: ids, messages and cids apart."""
    async with running(SQLiteStore(":memory:")) as one, running(SQLiteStore(":memory:")) as two:
        await post(one, "one", cid="c")
        await post(one, "one again")
        assert (await post(two, "two", cid="c")).id == 1
        assert [m.text for m in await one.latest("general", 10)] == ["one", "one again"]
        assert [m.text for m in await two.latest("general", 10)] == ["two"]


@pytest.mark.gen_test
async def test_an_in_memory_history_outlives_a_failed_batch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed batch drops the writer's connection; the database (kept open) keeps its history."""
    async with running(SQLiteStore(":memory:")) as store:
        await post(store, "kept")
        monkeypatch.setattr(sqlite_writer, "_SAVE_COUNTER", "INSERT INTO nowhere VALUES (?, ?, ?)")
        with pytest.raises(StoreError, match="nowhere"):
            await post(store, "lost")
        monkeypatch.undo()
        assert (await post(store, "after")).id == 2
        assert [m.text for m in await store.after("general", 0, 10)] == ["kept", "after"]


# SQLite: failures at start and at runtime


@pytest.mark.parametrize("where", ["missing/chat.db", "a-file/chat.db", "."])
@pytest.mark.gen_test
async def test_start_refuses_an_unwritable_path_in_one_line(tmp_path: Path, where: str) -> None:
    """start() on a path that cannot hold the file raises StoreError with a one-line reason."""
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(StoreError) as caught:
        await SQLiteStore(str(tmp_path / where)).start()
    assert "unable to open database file" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.gen_test
async def test_start_refuses_a_corrupt_file_in_one_line(db: str) -> None:
    """start() on a file that is not a SQLite database raises StoreError with a one-line reason."""
    Path(db).write_bytes(b"this is not a database\n" * 400)
    with pytest.raises(StoreError) as caught:
        await SQLiteStore(db).start()
    assert str(caught.value).startswith("file is not a database")
    assert "corrupt" in str(caught.value) and "\n" not in str(caught.value)


@contextlib.contextmanager
def read_only(path: str) -> Iterator[None]:
    """Make `path` unwritable: by its mode, or as root (whom modes do not stop) immutable."""
    if os.geteuid() != 0:
        os.chmod(path, 0o444)
        try:
            yield
        finally:
            os.chmod(path, 0o644)
        return
    made = subprocess.run(["chattr", "+i", path], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"root ignores file modes, and chattr +i failed: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", path], check=True)


@pytest.mark.gen_test
async def test_start_refuses_a_read_only_file(db: str) -> None:
    """start() on a file it may not write raises StoreError at once, not at the first message."""
    async with running(SQLiteStore(db)) as store:
        await post(store)
    with read_only(db), pytest.raises(StoreError, match=r"read-?only"):
        await SQLiteStore(db).start()


@pytest.mark.gen_test
async def test_a_failing_disk_fails_the_append_and_the_store_recovers(db: str) -> None:
    """When the disk refuses a write, append raises StoreError; once it accepts, appends resume."""
    async with running(SQLiteStore(db)) as store:
        await post(store, "before")
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        # The kernel now refuses to grow the -wal file (EFBIG), as a full disk (ENOSPC) or a
        # file system remounted read-only (EROFS) would refuse any write.
        resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(db + "-wal"), hard))
        try:
            with pytest.raises(StoreError, match="disk"):
                await post(store, "lost")
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert (await post(store, "after")).id == 2
        assert [m.text for m in await store.latest("general", 10)] == ["before", "after"]


@pytest.mark.gen_test
async def test_a_locked_file_fails_the_append_and_the_store_recovers(db: str) -> None:
    """While another process holds the write lock past the timeout, append raises StoreError."""
    async with running(SQLiteStore(db, lock_timeout_s=0.2)) as store:
        await post(store, "before")
        with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreError, match="locked"):
                await post(store, "lost")
            other.execute("ROLLBACK")
        assert (await post(store, "after")).id == 2
        assert [m.text for m in await store.latest("general", 10)] == ["before", "after"]


@pytest.mark.gen_test
async def test_a_waiting_writer_blocks_neither_reads_nor_the_event_loop(db: str) -> None:
    """While an append waits for a lock, reads answer and the event loop keeps turning."""
    async with running(SQLiteStore(db, lock_timeout_s=5.0)) as store:
        await post(store, "before")
        with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            pending = asyncio.ensure_future(post(store, "waits"))
            ticks = 0
            for _ in range(20):
                await asyncio.sleep(0.01)
                ticks += 1
            assert [m.text for m in await store.latest("general", 10)] == ["before"]
            assert ticks == 20 and not pending.done()
            other.execute("ROLLBACK")
        assert (await pending).id == 2


@pytest.mark.gen_test
async def test_a_closed_store_refuses_appends_and_reads(db: str) -> None:
    """After close(), append and reads raise StoreError instead of waiting forever."""
    store = SQLiteStore(db)
    async with running(store):
        await post(store)
    with pytest.raises(StoreError, match="not open"):
        await post(store)
    with pytest.raises(StoreError, match="not open"):
        await store.latest("general", 10)


# SQLite: kill -9

WRITER_CHILD = """
import asyncio, sys, time
from chat.store import SQLiteStore

async def main(path, writers):
    store = SQLiteStore(path)
    await store.start()
    print("ready", flush=True)

    async def write(n):
        i = 0
        while True:
            message, _ = await store.append("general", username=f"w{n}", avatar="",
                                            text=f"{n}:{i}", ts=int(time.time() * 1000))
            sys.stdout.write(f"{message.id} {message.text}\\n")
            sys.stdout.flush()  # printed = acknowledged
            i += 1

    await asyncio.gather(*(write(n) for n in range(writers)))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


@pytest.mark.gen_test(timeout=60)
async def test_kill_9_loses_no_acknowledged_message(db: str) -> None:
    """Every append acknowledged before a SIGKILL is in the file afterwards, exactly once."""
    acknowledged: dict[int, str] = {}
    with subprocess.Popen([sys.executable, "-c", WRITER_CHILD, db, "20"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        try:
            assert child.stdout.readline() == "ready\n"
            for line in child.stdout:
                message_id, text = line.split()
                acknowledged[int(message_id)] = text
                if len(acknowledged) == 3000:
                    child.send_signal(signal.SIGKILL)  # mid-stream: the writers never pause
                    break
            for line in child.stdout:  # printed before it died: acknowledged too
                if line.endswith("\n"):
                    message_id, text = line.split()
                    acknowledged[int(message_id)] = text
        finally:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert os.path.exists(db + "-wal"), "the child closed the file: it was not killed mid-stream"

    async with running(SQLiteStore(db)) as store:
        stored = await store.after("general", 0, 10**9)
    texts = {message.id: message.text for message in stored}
    assert ids(stored) == list(range(1, len(stored) + 1))
    assert len(set(texts.values())) == len(stored)  # no message twice
    missing = {i: t for i, t in acknowledged.items() if texts.get(i) != t}
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {list(missing)[:5]}"

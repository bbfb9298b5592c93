"""PostgreSQL announces every commit to every node: NOTIFY in the batch, LISTEN per node."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import psycopg
import pytest
from psycopg import sql

from chat.protocol import jsoncodec
from chat.record import StoredMessage
from chat.store.postgres import PostgresStore
from chat.store.postgres_append import PAYLOAD_MAX_BYTES
from chat.store.postgres_notify import APPLICATION_NAME, CHANNEL_MAX_BYTES, channel_for, parse
from tests.pgserver import PostgresCluster

pytestmark = pytest.mark.postgres

WAIT_S = 5.0  # the longest a notification that should come at once may take here
QUIET_S = 1.0  # a listener that heard nothing more for this long (s) has heard it all


async def payloads_of(url: str, appends: Callable[[], Awaitable[object]]) -> list[str]:
    """The payloads announced on the chat's channel while `appends()` runs."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        row = await (await conn.execute("SELECT current_schema()")).fetchone()
        assert row is not None
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel_for(row[0]))))
        await appends()
        return [note.payload async for note in conn.notifies(timeout=QUIET_S)]


@pytest.mark.gen_test(timeout=30)
async def test_a_batch_s_payload_names_each_conversation_s_first_and_last_id(
        postgres_url: str) -> None:
    """One batch's payload lists each conversation once, with its lowest and highest id, in
    the order the batch first names them."""
    dm = "@ann\x1fbob"
    async with started(postgres_url) as writer:
        await append(writer, dm)
        sent = await payloads_of(postgres_url, lambda: asyncio.gather(
            *(append(writer, name) for name in ("lobby", dm, "lobby", "lobby"))))
    assert [parse(p) for p in sent] == [[("lobby", 1, 3), (dm, 2, 2)]]


@pytest.mark.gen_test(timeout=60)
async def test_payloads_stay_below_postgresql_s_limit(postgres_url: str) -> None:
    """A batch over 512 conversations is announced in several payloads, each below 8000 bytes,
    none lost."""
    names = [f"room-{n:04d}-" + "x" * 40 for n in range(1, 513)]
    async with started(postgres_url) as writer:
        sent = await payloads_of(postgres_url, lambda: asyncio.gather(
            *(append(writer, name) for name in names)))
    assert len(sent) > 1
    assert all(len(p.encode()) <= PAYLOAD_MAX_BYTES for p in sent)
    assert [e for p in sent for e in parse(p)] == [(name, 1, 1) for name in names]


def test_a_long_schema_name_still_makes_a_valid_channel() -> None:
    """A channel name fits PostgreSQL's 63 bytes whatever the schema's name; schemas differ."""
    long_a, long_b = "a" * 63, "a" * 62 + "b"
    assert len(channel_for(long_a).encode()) <= CHANNEL_MAX_BYTES
    assert channel_for(long_a) != channel_for(long_b)
    assert channel_for("chat") == "chat_commits_chat"


def test_a_payload_this_module_did_not_write_is_refused() -> None:
    """parse() raises ValueError (logged and ignored by the listener) for foreign payloads."""
    for foreign in ("hello", "{}", jsoncodec.dumps([["lobby", "x", 1]]).decode(), "[[1]]"):
        with pytest.raises(ValueError, match="not a commit notification"):
            parse(foreign)


class Heard:
    """What a watching store was told."""

    def __init__(self) -> None:
        self.commits: list[tuple[str, int, int]] = []
        self.resumed = 0
        self.changed = asyncio.Event()

    def commit(self, conversation: str, first: int, last: int) -> None:
        self.commits.append((conversation, first, last))
        self.changed.set()

    def resume(self) -> None:
        self.resumed += 1
        self.changed.set()

    async def until(self, *, commits: int = 0, resumed: int = 0) -> None:
        """Wait until at least `commits` commits and `resumed` resumptions were heard."""
        deadline = time.monotonic() + WAIT_S
        while len(self.commits) < commits or self.resumed < resumed:
            self.changed.clear()
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"heard {self.commits}, resumed {self.resumed}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


@contextlib.asynccontextmanager
async def started(url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(url)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def append(store: PostgresStore, conversation: str, text: str = "hi") -> StoredMessage:
    stored, _ = await store.append(conversation, username="ann", avatar="", text=text, ts=1)
    return stored


@pytest.mark.gen_test(timeout=30)
async def test_a_node_hears_of_the_commits_of_another(postgres_url: str) -> None:
    """A watching store hears each commit of another store on the same schema, with its ids."""
    async with started(postgres_url) as listener, started(postgres_url) as writer:
        heard = Heard()
        await listener.watch(heard.commit, heard.resume)
        first = await append(writer, "lobby")
        await heard.until(commits=1)
        second, third = await asyncio.gather(append(writer, "lobby"), append(writer, "lobby"))
        await heard.until(commits=2)
        await asyncio.sleep(0.2)  # anything more would come now
        seen = {id_ for conv, lo, hi in heard.commits if conv == "lobby"
                for id_ in range(lo, hi + 1)}
        assert seen == {first.id, second.id, third.id}
        assert all(conv == "lobby" for conv, _, _ in heard.commits)
        assert heard.resumed == 0


@pytest.mark.gen_test(timeout=30)
async def test_a_chat_in_another_schema_is_not_heard(
        postgres_url: str, postgres_server: PostgresCluster) -> None:
    """Commits of a chat in another schema of the same database reach no listener here."""
    other_url = postgres_server.create_schema()
    async with started(postgres_url) as listener, started(other_url) as elsewhere:
        heard = Heard()
        await listener.watch(heard.commit, heard.resume)
        await append(elsewhere, "lobby")
        await asyncio.sleep(0.5)
        assert heard.commits == []


@pytest.mark.gen_test(timeout=60)
async def test_a_lost_listen_connection_comes_back_and_says_so(postgres_url: str) -> None:
    """The LISTEN connection killed by the server: it reconnects, calls on_resumed, and hears
    the commits that follow."""
    async with started(postgres_url) as listener, started(postgres_url) as writer:
        heard = Heard()
        await listener.watch(heard.commit, heard.resume)
        async with await psycopg.AsyncConnection.connect(
                postgres_url.split("?")[0], autocommit=True) as admin:
            cur = await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s", (APPLICATION_NAME,))
            assert len(await cur.fetchall()) == 1
        await heard.until(resumed=1)
        after = await append(writer, "lobby")
        await heard.until(commits=1)
        assert heard.commits == [("lobby", after.id, after.id)]


@pytest.mark.gen_test(timeout=60)
async def test_a_batch_over_many_conversations_is_announced_in_full(postgres_url: str) -> None:
    """Appends to 600 conversations (far over PostgreSQL's 8000-byte payload limit) commit, and
    a listener hears of every conversation, with its own ids."""
    names = [f"room-{n:04d}-" + "x" * 50 for n in range(600)]
    async with started(postgres_url) as listener, started(postgres_url) as writer:
        heard = Heard()
        await listener.watch(heard.commit, heard.resume)
        await asyncio.gather(*(append(writer, name) for name in names))
        await heard.until(commits=len(names))
        assert sorted(heard.commits) == [(name, 1, 1) for name in names]

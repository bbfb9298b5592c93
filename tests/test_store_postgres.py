"""PostgreSQL's store beyond the contract: several nodes on one history, failures, a real server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import psycopg
import pytest
from psycopg.rows import TupleRow

from chat.store import HistoryStore, PostgresOptions, StoredMessage, StoreError, open_store
from chat.store.base import DAY_MS, IDEMPOTENCY_WINDOW_MS, CidReused
from chat.store.postgres import PostgresStore
from chat.store.postgres_batch import CALL, encode
from chat.store.postgres_schema import connection_options
from tests.pgserver import PostgresCluster
from tests.serverproc import (
    Spawn,
    WsConnect,
    assert_clean,
    assert_one_line_error,
    free_port,
    run,
)

pytestmark = pytest.mark.postgres


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@contextlib.asynccontextmanager
async def running(store: HistoryStore) -> AsyncIterator[HistoryStore]:
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def post(store: HistoryStore, text: str = "hi", room: str = "general", *,
               user: str = "ann", cid: str | None = None) -> StoredMessage:
    message, _ = await store.append(room, username=user, avatar="", text=text, ts=now_ms(),
                                    cid=cid)
    return message


@pytest.fixture
def nodes(postgres_url: str) -> Callable[..., PostgresStore]:
    """A factory of PostgresStores ("nodes", each with its own pool) on this test's schema."""
    return lambda **kwargs: PostgresStore(postgres_url, **kwargs)


@pytest.mark.gen_test(timeout=60)
async def test_three_nodes_appending_at_once_get_ids_one_to_n(
        nodes: Callable[..., PostgresStore]) -> None:
    """Three stores appending to two rooms at once share each room's count: ids 1..N per room,
    each once, each node's own appends complete in increasing id order, and all read the same."""
    async with running(nodes()) as a, running(nodes()) as b, running(nodes()) as c:
        completed: dict[tuple[str, str], list[int]] = {}

        async def send(node: HistoryStore, name: str, n: int) -> None:
            room = ("general", "other")[n % 2]
            message = await post(node, f"{name}{n}", room, user=f"u{name}", cid=f"{name}-{n}")
            completed.setdefault((name, room), []).append(message.id)

        await asyncio.gather(*(send(node, name, n) for n in range(120)
                               for node, name in ((a, "a"), (b, "b"), (c, "c"))))
        for room in ("general", "other"):
            everyone = sorted(i for (_, r), got in completed.items() if r == room for i in got)
            assert everyone == list(range(1, 181))
            for name in "abc":
                assert completed[name, room] == sorted(completed[name, room])
            seen = await a.after(room, 0, 1000)
            assert [m.id for m in seen] == everyone
            assert seen == await b.after(room, 0, 1000) == await c.latest(room, 1000)
        assert {(await post(node)).id for node in (a, b, c)} == {181, 182, 183}


@pytest.mark.gen_test(timeout=30)
async def test_a_cid_is_idempotent_across_nodes(nodes: Callable[..., PostgresStore]) -> None:
    """A cid resent through another node returns the original there; sent through three at
    once, it is stored once and all three return the same message."""
    async with running(nodes()) as a, running(nodes()) as b, running(nodes()) as c:
        original, created = await a.append("general", username="Ann", avatar="a",
                                           text="once", ts=now_ms(), cid="x1")
        again, created_again = await b.append("general", username="ANN", avatar="b",
                                              text="twice", ts=now_ms(), cid="x1")
        assert (created, created_again) == (True, False)
        assert again == original
        for n in range(10):
            both = await asyncio.gather(*(node.append("general", username="bob", avatar="",
                                                      text=f"race{n}", ts=now_ms(),
                                                      cid=f"y{n}")
                                          for node in (a, b, c)))
            assert sorted(created for _, created in both) == [False, False, True]
            assert both[0][0] == both[1][0] == both[2][0]
        texts = [m.text for m in await c.latest("general", 100)]
        assert texts == ["once", *(f"race{n}" for n in range(10))]
        assert [m.id for m in await c.latest("general", 100)] == list(range(1, 12))


@pytest.mark.gen_test(timeout=30)
async def test_a_cid_another_node_claims_meanwhile_is_cid_reused_and_leaves_no_gap(
        postgres_url: str) -> None:
    """A batch whose cid claim waits for another node's commit of the same cid (in another
    room) rolls back and is retried: CidReused, and the room's next id is still 1."""
    async with running(PostgresStore(postgres_url)) as store, \
            await psycopg.AsyncConnection.connect(postgres_url) as other:
        theirs = StoredMessage("lobby", 0, "Ann", "", "first", now_ms(), "z", None)
        await other.execute(CALL, (encode([theirs]), "elsewhere", IDEMPOTENCY_WINDOW_MS))
        racing = asyncio.ensure_future(post(store, "second", cid="z"))
        while not await waiting_on_a_lock(other):
            await asyncio.sleep(0.01)
        await other.commit()
        with pytest.raises(CidReused):
            await racing
        assert (await post(store, "next")).id == 1
        assert [m.text for m in await store.latest("lobby", 10)] == ["first"]


async def waiting_on_a_lock(conn: psycopg.AsyncConnection[TupleRow]) -> bool:
    """Whether one of the store's connections waits for a lock (held by `conn`'s transaction)."""
    cur = await conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name ="
                             " 'simple-chat' AND wait_event_type = 'Lock'")
    row = await cur.fetchone()
    return row is not None and row[0] > 0


@pytest.mark.gen_test(timeout=30)
async def test_close_stores_what_is_queued_then_refuses(postgres_url: str) -> None:
    """Appends queued when close() is called are stored and acknowledged; later ones refused."""
    store = PostgresStore(postgres_url)
    await store.start()
    pending = [asyncio.ensure_future(post(store, f"m{n}")) for n in range(50)]
    await asyncio.sleep(0)  # each has queued its message
    await store.close()
    assert [(await p).id for p in pending] == list(range(1, 51))
    with pytest.raises(StoreError, match="not open"):
        await post(store)
    with pytest.raises(StoreError, match="not open"):
        await store.latest("general", 10)
    async with running(PostgresStore(postgres_url)) as again:
        assert [m.text for m in await again.latest("general", 100)] == [
            f"m{n}" for n in range(50)]


@pytest.mark.gen_test(timeout=30)
async def test_a_newer_schema_is_refused(postgres_url: str) -> None:
    """start() refuses a database whose schema version is newer than the server knows."""
    async with running(PostgresStore(postgres_url)):
        pass
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="schema version 99"):
        await PostgresStore(postgres_url).start()


@pytest.mark.gen_test(timeout=30)
async def test_start_refuses_a_server_that_is_not_there_in_one_line() -> None:
    """start() with nothing listening at the URL raises StoreError with a one-line reason."""
    store = open_store(f"postgresql://chat:secret@127.0.0.1:{free_port()}/chat",
                       per_conversation=5, days=0)
    assert isinstance(store, PostgresStore)
    with pytest.raises(StoreError) as caught:
        await store.start()
    assert "refused" in str(caught.value) and "\n" not in str(caught.value)
    assert "secret" not in str(caught.value)
    with pytest.raises(StoreError, match="not open"):
        await post(store)


@pytest.mark.gen_test(timeout=60)
async def test_postgres_going_down_fails_appends_and_the_store_recovers(
        postgres_url: str, postgres_server: PostgresCluster) -> None:
    """While PostgreSQL is down, append and reads raise StoreError (no hang, no loss of what
    was acknowledged); once it is back, the same store works on, ids going on from the last."""
    async with running(PostgresStore(postgres_url)) as store:
        assert (await post(store, "before")).id == 1
        postgres_server.stop("fast")
        try:
            with pytest.raises(StoreError):
                await post(store, "lost")
            with pytest.raises(StoreError):
                await store.latest("general", 10)
        finally:
            postgres_server.start()
        after = None
        for _attempt in range(50):  # the pool reconnects: a sender may be refused meanwhile
            try:
                after = await post(store, "after")
                break
            except StoreError:
                await asyncio.sleep(0.2)
        assert after is not None and after.id == 2
        assert [m.text for m in await store.latest("general", 10)] == ["before", "after"]


# The server on --db postgresql://


@pytest.mark.subprocess
def test_a_bad_postgresql_url_is_one_line_exit_2_and_no_password() -> None:
    """A malformed URL, or one nothing answers at, fails at start-up with one redacted line."""
    for url in (f"postgresql://chat:secret@127.0.0.1:{free_port()}/chat",
                "postgresql://chat:secret@127.0.0.1:notaport/chat"):
        result = run(f"--port={free_port()}", f"--db={url}", CHAT_DB=url)
        assert result.returncode == 2
        line = assert_one_line_error(result)
        assert "history database" in line and "***" in line
        assert "secret" not in result.stderr


@pytest.mark.subprocess
@pytest.mark.gen_test(timeout=60)
async def test_history_on_postgresql_survives_a_server_restart(
        spawn: Spawn, ws: WsConnect, postgres_url: str) -> None:
    """A server on --db postgresql:// stores what is posted; restarted, it serves the same
    messages with the same ids, and numbering goes on from the last."""
    port = free_port()
    child = spawn(f"--port={port}", f"--db={postgres_url}", "--rate-limit=0", ready_port=port)
    alice = await ws(port)
    await alice.join("alice", room="lobby")
    sent = []
    for n in range(5):
        await alice.send({"type": "message", "room": "lobby", "text": f"m{n}", "cid": f"c{n}"})
        sent.append(await alice.recv_type("message"))
    assert [m["id"] for m in sent] == [1, 2, 3, 4, 5]
    assert child.stop() == 0
    assert_clean(child.stderr)
    assert "secret" not in child.stderr

    port = free_port()
    again = spawn(f"--port={port}", f"--db={postgres_url}", "--rate-limit=0", ready_port=port)
    bob = await ws(port)
    await bob.send({"type": "join", "username": "bob", "room": "lobby"})
    await bob.recv_type("welcome")
    history = await bob.recv_type("history")
    assert [(m["id"], m["message"]) for m in history["messages"]] == [
        (m["id"], m["message"]) for m in sent]
    await bob.send({"type": "message", "room": "lobby", "text": "later"})
    assert (await bob.recv_type("message"))["id"] == 6
    assert again.stop() == 0
    assert_clean(again.stderr)


# Pool size and timeouts (--db-pool-size, --db-pool-timeout, --db-connect-timeout,
# --db-statement-timeout)


@pytest.mark.gen_test(timeout=30)
async def test_a_statement_past_the_statement_timeout_fails_and_the_store_goes_on(
        postgres_url: str) -> None:
    """An append that waits on a lock longer than statement_timeout_s fails with StoreError
    (the timeout named) while the lock is still held; once it is released, appends go on."""
    options = PostgresOptions(statement_timeout_s=0.2, connect_timeout_s=2.5)
    given = connection_options(postgres_url, options)
    assert "statement_timeout=200" in str(given["options"])
    assert "search_path" in str(given["options"])  # the URL's own options are kept
    assert given["connect_timeout"] == 3  # libpq takes whole seconds
    async with running(PostgresStore(postgres_url, options=options)) as store:
        assert (await post(store, "first")).id == 1
        async with await psycopg.AsyncConnection.connect(postgres_url) as holder:
            await holder.execute("SELECT * FROM conversations WHERE key = 'general' FOR UPDATE")
            with pytest.raises(StoreError, match="statement timeout"):
                await post(store, "blocked")
            assert holder.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
            await holder.rollback()
        assert (await post(store, "after")).id == 2


def simple_chat_connections(url: str) -> int:
    """The connections the server's stores hold to the test cluster now."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity"
                           " WHERE application_name = 'simple-chat'").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.gen_test(timeout=30)
async def test_a_pool_of_one_connection_serves_concurrent_reads_and_appends(
        postgres_url: str) -> None:
    """With pool_size 1 the store holds one connection, and 40 reads and 40 appends at once
    all complete: ids 1..40, each read a prefix of them."""
    async with running(PostgresStore(postgres_url, options=PostgresOptions(pool_size=1))) as s:
        assert simple_chat_connections(postgres_url) == 1
        appends = [post(s, f"m{n}", cid=f"c{n}") for n in range(40)]
        reads = [s.latest("general", 100) for _ in range(40)]
        done = await asyncio.gather(*appends, *reads)
        stored = done[:40]
        assert sorted(m.id for m in stored if isinstance(m, StoredMessage)) == list(range(1, 41))
        for read in done[40:]:
            assert isinstance(read, list)
            assert [m.id for m in read] == list(range(1, len(read) + 1))
        assert simple_chat_connections(postgres_url) == 1


@pytest.mark.subprocess
def test_bad_pool_and_timeout_settings_are_refused_at_start() -> None:
    """A pool size or a PostgreSQL timeout out of range stops the server at start: exit 2, one
    line naming the option, its value and the limit."""
    for option, reason in (("--db-pool-size=0", "--db-pool-size is 0; it must be between 1 and"
                                                " 1000"),
                           ("--db-pool-timeout=0", "--db-pool-timeout is 0.0; it must be more"
                                                   " than 0"),
                           ("--db-connect-timeout=-1", "--db-connect-timeout is -1.0"),
                           ("--db-statement-timeout=0", "--db-statement-timeout is 0.0; it must"
                                                        " be at least 0.001")):
        result = run(f"--port={free_port()}", option)
        assert result.returncode == 2, result.stderr
        assert reason in assert_one_line_error(result)


@pytest.mark.subprocess
@pytest.mark.gen_test(timeout=60)
async def test_a_server_holds_the_pool_size_it_is_given(
        spawn: Spawn, ws: WsConnect, postgres_url: str) -> None:
    """A server started with --db-pool-size=1 holds one connection to PostgreSQL and serves
    messages through it."""
    port = free_port()
    child = spawn(f"--port={port}", f"--db={postgres_url}", "--db-pool-size=1",
                  "--db-statement-timeout=0.5", ready_port=port)
    alice = await ws(port)
    await alice.join("alice")
    for n in range(3):
        await alice.send({"type": "message", "room": "general", "text": f"m{n}"})
        assert (await alice.recv_type("message"))["id"] == n + 1
    assert simple_chat_connections(postgres_url) == 1
    assert child.stop() == 0
    assert_clean(child.stderr)


# Retention across nodes


@pytest.mark.gen_test(timeout=30)
async def test_retention_prunes_by_count_and_age_what_another_node_wrote(
        nodes: Callable[..., PostgresStore]) -> None:
    """A node's retention keeps the last per_conversation messages and none older than days
    of conversations another node writes to, run after run."""
    async with running(nodes(per_conversation=5, days=1)) as a, \
            running(nodes(per_conversation=5, days=1)) as b:
        await b.prune()
        for n in range(10):
            await post(a, f"x{n}", "x")
        for n in range(3):
            await a.append("y", username="ann", avatar="", text=f"old{n}",
                           ts=now_ms() - 2 * DAY_MS)
        await post(a, "new", "y")
        assert await b.prune() == 5 + 3
        assert [m.text for m in await a.latest("x", 100)] == [f"x{n}" for n in range(5, 10)]
        assert [m.text for m in await a.latest("y", 100)] == ["new"]
        for n in range(10, 17):
            await post(a, f"x{n}", "x")
        assert await b.prune() == 7
        assert [m.id for m in await b.latest("x", 100)] == list(range(13, 18))


@pytest.mark.gen_test(timeout=30)
async def test_retention_looks_only_at_conversations_written_since_its_last_run(
        postgres_url: str, nodes: Callable[..., PostgresStore]) -> None:
    """After its first run, a node's retention leaves alone a conversation nobody wrote to
    since (it was within its cap then): here one made over its cap behind the stores' backs,
    an hour old, which a node starting afresh trims at its first run."""
    async with running(nodes(per_conversation=5)) as a:
        assert await a.prune() == 0
        hour_ago = now_ms() - 3600 * 1000
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            await conn.execute("INSERT INTO conversations VALUES ('quiet', 9, %s)", (hour_ago,))
            for n in range(1, 10):
                await conn.execute("INSERT INTO messages VALUES ('quiet', %s, 'ann', '', 'q',"
                                   " %s, NULL, NULL)", (n, hour_ago))
        assert await a.prune() == 0
        assert len(await a.latest("quiet", 100)) == 9
        async with running(nodes(per_conversation=5)) as fresh:  # its first run is at start
            assert [m.id for m in await fresh.latest("quiet", 100)] == [5, 6, 7, 8, 9]

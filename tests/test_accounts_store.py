"""The account store contract, run against SQLite (in memory and a file) and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest

from chat.accounts import (
    Account,
    AccountService,
    InviteInvalid,
    NameTaken,
    Revocation,
    Session,
    open_accounts,
)
from chat.accounts.base import AccountStore
from chat.accounts.postgres_store import PostgresAccounts
from chat.accounts.sqlite_store import SQLiteAccounts
from chat.people.names import name_key
from tests.test_accounts_service import fast_passwords

BACKENDS = ["sqlite-memory", "sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]
SHARED = ["sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]
HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"  # the store never reads it
T0 = 1_700_000_000_000  # ms


@pytest.fixture(params=BACKENDS)
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AccountStore]:
    """A factory of account stores of one backend; a test's file or PostgreSQL stores share
    one database (as a server's nodes and the admin command do)."""
    return _factory(request, tmp_path)


@pytest.fixture(params=SHARED)
def make_shared(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AccountStore]:
    """As `make`, for the backends whose stores share a database across connections."""
    return _factory(request, tmp_path)


def _factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AccountStore]:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return lambda: PostgresAccounts(url, revocation_poll_s=0.05)
    if request.param == "sqlite-memory":
        return lambda: SQLiteAccounts(":memory:", revocation_poll_s=0.05)
    return lambda: SQLiteAccounts(str(tmp_path / "chat.db"), revocation_poll_s=0.05)


@contextlib.asynccontextmanager
async def running(*stores: AccountStore) -> AsyncIterator[None]:
    for store in stores:
        await store.start()
    try:
        yield
    finally:
        for store in stores:
            await store.close()


async def add(store: AccountStore, name: str, **kwargs: object) -> Account:
    return await store.create_account(name, name_key(name), None, HASH, T0, **kwargs)  # type: ignore[arg-type]


def session(account: Account, sid: str = "s1", ts: int = T0) -> Session:
    return Session(sid, account.id, ts, ts, "127.0.0.1", "test")


@pytest.mark.gen_test
async def test_the_first_account_is_an_admin_and_later_ones_members(
        make: Callable[[], AccountStore]) -> None:
    """The first account created is an admin, the next ones members, with ids counting up."""
    store = make()
    async with running(store):
        first, second = await add(store, "ann"), await add(store, "bob")
        assert (first.role, second.role) == ("admin", "member")
        assert second.id > first.id
        assert await store.account_by_id(first.id) == first
        assert await store.account_by_name_key(name_key("BOB")) == second


@pytest.mark.gen_test
@pytest.mark.parametrize("variant", ["alice", "ALICE", "ＡＬＩＣＥ", "\u0430lice", "aIice"])
async def test_a_name_is_registered_once_up_to_case_and_look_alikes(
        make: Callable[[], AccountStore], variant: str) -> None:
    """A case, fullwidth, Cyrillic or I-for-l variant of a registered name is taken."""
    store = make()
    async with running(store):
        await add(store, "Alice")
        with pytest.raises(NameTaken):
            await add(store, variant)
        assert len(await store.list_accounts()) == 1


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_first_registrations_make_exactly_one_admin(
        make_shared: Callable[[], AccountStore]) -> None:
    """Eight registrations at once on eight connections: exactly one becomes an admin."""
    stores = [make_shared() for _ in range(8)]
    async with running(*stores):
        accounts = await asyncio.gather(*(add(store, f"user{n}")
                                          for n, store in enumerate(stores)))
        assert sorted(account.role for account in accounts) == ["admin"] + ["member"] * 7


@pytest.mark.gen_test(timeout=30)
async def test_an_invite_is_consumed_by_exactly_one_registration(
        make_shared: Callable[[], AccountStore]) -> None:
    """Six registrations with one invite at once: one succeeds, the rest create nothing."""
    stores = [make_shared() for _ in range(6)]
    async with running(*stores):
        await add(stores[0], "admin")
        await stores[0].create_invite("code-hash", None, T0)
        outcomes = await asyncio.gather(*(add(store, f"new{n}", invite_hash="code-hash")
                                          for n, store in enumerate(stores)),
                                        return_exceptions=True)
        assert sum(isinstance(o, Account) for o in outcomes) == 1, outcomes
        assert sum(isinstance(o, InviteInvalid) for o in outcomes) == 5, outcomes
        assert len(await stores[0].list_accounts()) == 2


@pytest.mark.gen_test
async def test_a_failed_registration_leaves_its_invite_unused(
        make: Callable[[], AccountStore]) -> None:
    """A registration refused for a taken name does not use up its invite."""
    store = make()
    async with running(store):
        await add(store, "ann")
        await store.create_invite("h", None, T0)
        with pytest.raises(NameTaken):
            await add(store, "Ann", invite_hash="h")
        assert (await add(store, "bob", invite_hash="h")).name == "bob"
        with pytest.raises(InviteInvalid):
            await add(store, "cy", invite_hash="h")
        with pytest.raises(InviteInvalid):
            await add(store, "dee", invite_hash="never-made")


@pytest.mark.gen_test
async def test_sessions_are_found_by_token_hash_touched_listed_and_ended(
        make: Callable[[], AccountStore]) -> None:
    """A session is found by its token hash, touched forward only, listed, and deleted."""
    store = make()
    async with running(store):
        ann = await add(store, "ann")
        await store.create_session(session(ann, "s1"), "hash1")
        await store.create_session(session(ann, "s2", T0 + 5), "hash2")
        found = await store.session_by_token_hash("hash1")
        assert found == (session(ann, "s1"), ann)
        await store.touch_sessions(["s1"], T0 + 10)
        await store.touch_sessions(["s1", "s2"], T0 + 7)  # an older touch never goes back
        assert [(s.id, s.last_seen_ts) for s in await store.sessions_of(ann.id)] == [
            ("s1", T0 + 10), ("s2", T0 + 7)]
        assert await store.list_accounts() == [(ann, 2)]
        assert await store.delete_session("s1", T0) is True
        assert await store.delete_session("s1", T0) is False
        assert await store.session_by_token_hash("hash1") is None
        assert await store.delete_sessions_of(ann.id, T0) == 1
        assert await store.sessions_of(ann.id) == []


@pytest.mark.gen_test
async def test_sessions_are_found_by_many_token_hashes_at_once(
        make: Callable[[], AccountStore]) -> None:
    """sessions_by_token_hashes maps each known hash to its own session and account."""
    store = make()
    async with running(store):
        ann, bob = await add(store, "ann"), await add(store, "bob")
        await store.create_session(session(ann, "s1"), "hash1")
        await store.create_session(session(bob, "s2", T0 + 5), "hash2")
        await store.create_session(session(ann, "s3", T0 + 6), "hash3")
        found = await store.sessions_by_token_hashes(["hash3", "unknown", "hash2", "hash1"])
        assert found == {"hash1": (session(ann, "s1"), ann),
                         "hash2": (session(bob, "s2", T0 + 5), bob),
                         "hash3": (session(ann, "s3", T0 + 6), ann)}
        assert await store.sessions_by_token_hashes(["unknown"]) == {}
        assert await store.sessions_by_token_hashes([]) == {}


@pytest.mark.gen_test
async def test_disabling_or_a_reset_ends_every_session(make: Callable[[], AccountStore]) -> None:
    """set_disabled(True) and a password set with end_sessions delete the account's sessions."""
    store = make()
    async with running(store):
        ann = await add(store, "ann")
        await store.create_session(session(ann, "s1"), "h1")
        assert await store.set_disabled(ann.id, True, T0)
        assert (await store.account_by_id(ann.id)).disabled  # type: ignore[union-attr]
        assert await store.sessions_of(ann.id) == []
        assert await store.set_disabled(ann.id, False, T0)
        await store.create_session(session(ann, "s2"), "h2")
        assert await store.set_password_hash(ann.id, "new", T0, end_sessions=True)
        assert await store.password_hash(ann.id) == "new"
        assert await store.sessions_of(ann.id) == []
        assert not await store.set_disabled(999, True, T0)
        assert await store.set_role(ann.id, "member")
        assert (await store.account_by_id(ann.id)).role == "member"  # type: ignore[union-attr]


def three_then_wait(counter: tuple[int, int] | None) -> int:
    """A throttle that lets 3 failures through, then asks for a wait of 1 s."""
    return 0 if counter is None or counter[0] < 3 else 1000


@pytest.mark.gen_test
async def test_failure_counters_count_wait_forgive_clear_and_forget(
        make: Callable[[], AccountStore]) -> None:
    """An attempt counts on every key until the wait says no; forgive takes one back, clear
    all; a counter whose last failure is before the cutoff counts from 1 again."""
    store = make()
    async with running(store):
        keys = ("address:10.0.0.1", "name:ann")
        assert await store.failures("name:ann") is None
        for n in range(3):
            assert await store.try_attempt(keys, T0 + n, forget_before=0,
                                           wait_ms=three_then_wait) == 0
        assert await store.failures("name:ann") == (3, T0 + 2)
        assert await store.try_attempt(keys, T0 + 5, forget_before=0,
                                       wait_ms=three_then_wait) == 1000
        assert await store.failures("name:ann") == (3, T0 + 2)  # a refused attempt: no count
        await store.forgive_failure("address:10.0.0.1")
        assert await store.failures("address:10.0.0.1") == (2, T0 + 2)
        await store.clear_failures("name:ann")
        assert await store.failures("name:ann") is None
        await store.try_attempt(keys, T0 + 9, forget_before=T0 + 5, wait_ms=lambda _: 0)
        assert await store.failures("address:10.0.0.1") == (1, T0 + 9)


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_attempts_meet_the_throttle_one_by_one(
        make_shared: Callable[[], AccountStore]) -> None:
    """Ten attempts at once on ten connections: exactly three get through before the wait."""
    stores = [make_shared() for _ in range(10)]
    async with running(*stores):
        waits = await asyncio.gather(*(
            store.try_attempt(["address:10.0.0.9", "name:ann"], T0, forget_before=0,
                              wait_ms=three_then_wait) for store in stores))
        assert sorted(waits) == [0, 0, 0] + [1000] * 7


@pytest.mark.gen_test(timeout=20)
async def test_a_revocation_by_another_connection_reaches_the_watcher(
        make_shared: Callable[[], AccountStore]) -> None:
    """Revocations committed through another connection reach the watcher once each, in
    order; earlier ones are not replayed."""
    watcher, admin = make_shared(), make_shared()
    async with running(watcher, admin):
        ann = await add(admin, "ann")
        await admin.create_session(session(ann, "old"), "h0")
        await admin.delete_session("old", T0)  # before the watch: not heard
        heard: list[Revocation] = []
        await watcher.watch_revocations(heard.append)
        await admin.create_session(session(ann, "s1"), "h1")
        await admin.delete_session("s1", T0 + 1)
        await admin.set_disabled(ann.id, True, T0 + 2)
        for _ in range(200):
            if len(heard) >= 2:
                break
            await asyncio.sleep(0.02)
        assert [(r.account_id, r.session_id, r.ts) for r in heard] == [
            (ann.id, "s1", T0 + 1), (ann.id, None, T0 + 2)]
        assert heard[0].seq < heard[1].seq


@pytest.mark.gen_test(timeout=20)
async def test_deleting_an_api_token_writes_its_revocation_once(
        make_shared: Callable[[], AccountStore]) -> None:
    """Deleting a token is heard by a watcher on another connection as the revocation of
    session `t:<id>` (its sockets close); another account's token is not deleted by an owner's
    delete, and a second delete finds nothing and revokes nothing."""
    watcher, admin = make_shared(), make_shared()
    async with running(watcher, admin):
        ann, bob = await add(admin, "ann"), await add(admin, "bob")
        await admin.sql_writes([(
            "INSERT INTO api_tokens (id, account_id, name, token_hash, scopes, created_ts)"
            " VALUES (?, ?, ?, ?, ?, ?)", (token_id, owner.id, "t", f"h-{token_id}", "read", T0))
            for token_id, owner in (("tok1", ann), ("tok2", bob))])
        heard: list[Revocation] = []
        await watcher.watch_revocations(heard.append)
        assert not await admin.delete_token("tok2", ann.id, T0 + 1)  # bob's, not ann's
        assert await admin.delete_token("tok1", ann.id, T0 + 2)
        assert not await admin.delete_token("tok1", None, T0 + 3)  # gone already
        assert await admin.delete_token("tok2", None, T0 + 4)  # an admin's: anyone's
        for _ in range(200):
            if len(heard) >= 2:
                break
            await asyncio.sleep(0.02)
        assert [(r.account_id, r.session_id, r.ts) for r in heard] == [
            (ann.id, "t:tok1", T0 + 2), (bob.id, "t:tok2", T0 + 4)]
        assert await admin.sql_rows("SELECT id FROM api_tokens", ()) == []


@pytest.mark.postgres
@pytest.mark.gen_test(timeout=20)
async def test_postgres_announces_a_revocation_without_waiting_for_the_poll(
        postgres_url: str) -> None:
    """With a poll of a minute, a revocation committed on another connection still reaches
    the watcher within seconds: the NOTIFY in its transaction wakes it."""
    watcher = PostgresAccounts(postgres_url, revocation_poll_s=60)
    admin = PostgresAccounts(postgres_url)
    async with running(watcher, admin):
        heard: list[Revocation] = []
        await watcher.watch_revocations(heard.append)
        ann = await add(admin, "ann")
        await admin.set_disabled(ann.id, True, T0)
        for _ in range(250):
            if heard:
                break
            await asyncio.sleep(0.02)
        assert [(r.account_id, r.session_id) for r in heard] == [(ann.id, None)]


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("backend", SHARED)
async def test_accounts_share_the_database_with_a_running_history_store(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """An account store beside a running history store on the same database (PostgreSQL: on
    its pool): both migrate it, and appends and account writes interleave without errors."""
    from chat.store import open_store
    from chat.store.postgres import PostgresStore

    db = (request.getfixturevalue("postgres_url") if backend == "postgres"
          else str(tmp_path / "chat.db"))
    history = open_store(db, per_conversation=100, days=0)
    await history.start()
    try:
        pool = history.pool if isinstance(history, PostgresStore) else None
        store = open_accounts(db, pool=pool)
        async with running(store):
            async def post(n: int) -> None:
                await history.append("general", username="ann", avatar="", text=f"m{n}",
                                     ts=T0 + n)

            await asyncio.gather(*(post(n) for n in range(50)),
                                 *(add(store, f"user{n}") for n in range(10)))
            assert len(await store.list_accounts()) == 10
            assert len(await history.latest("general", 100)) == 50
    finally:
        await history.close()


def raw_text(store: str, tmp_path: Path) -> str:
    """Everything the database holds, as text: the SQLite file's bytes (with its WAL), or
    every row of every account table in PostgreSQL."""
    if store.startswith("postgresql://"):
        tables = ["accounts", "sessions", "invites", "login_failures", "revocations"]
        with psycopg.connect(store) as conn:
            return repr([conn.execute(f"SELECT * FROM {t}").fetchall() for t in tables])
    data = b"".join(path.read_bytes() for path in tmp_path.glob("chat.db*"))
    return data.decode("latin-1")


@pytest.mark.gen_test
@pytest.mark.parametrize("backend", SHARED)
async def test_no_password_or_token_is_stored(backend: str, tmp_path: Path,
                                              request: pytest.FixtureRequest) -> None:
    """After registering, logging in and inviting, the database holds neither the password,
    nor the session token, nor the invite code: only their hashes."""
    db = (request.getfixturevalue("postgres_url") if backend == "postgres"
          else str(tmp_path / "chat.db"))
    store = open_accounts(db)
    password = "Zebra-Quartz-Lantern-9"
    async with running(store):
        service = AccountService(store, passwords=fast_passwords())
        await service.register("ann", password)
        token, _, _ = await service.login("ann", password, "127.0.0.1")
        code = await service.create_invite()
        text = raw_text(db, tmp_path)
    assert "argon2id" in text  # the test reads what is stored
    for secret in (password, token, code):
        assert secret not in text
    if backend != "postgres":
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (1,)


@pytest.mark.gen_test(timeout=20)
async def test_a_registration_is_heard_by_every_watcher_and_revokes_nothing(
        make_shared: Callable[[], AccountStore]) -> None:
    """Creating an account (a password one or an application's user) is announced to other
    connections' watchers with its name key and no session."""
    watcher, admin = make_shared(), make_shared()
    async with running(watcher, admin):
        heard: list[Revocation] = []
        await watcher.watch_revocations(heard.append)
        ann = await add(admin, "Ann")
        ext = await admin.create_external("sub-1", "Eve", name_key("Eve"), T0)
        for _ in range(200):
            if len(heard) >= 2:
                break
            await asyncio.sleep(0.02)
        assert [(r.account_id, r.session_id, r.name_key) for r in heard] == [
            (ann.id, None, name_key("Ann")), (ext.id, None, name_key("Eve"))]


@pytest.mark.gen_test
async def test_an_external_user_is_bound_once_never_to_a_taken_name(
        make: Callable[[], AccountStore]) -> None:
    """create_external makes a member bound to its sub (even as the first account); a taken
    name key or a bound sub is NameTaken and creates nothing."""
    store = make()
    async with running(store):
        eve = await store.create_external("sub-1", "Eve", name_key("Eve"), T0)
        assert eve.role == "member"
        assert await store.account_by_external("sub-1") == eve
        assert await store.account_by_external("sub-2") is None
        await add(store, "ann")
        for sub, name in (("sub-2", "ANN"), ("sub-1", "Other")):
            with pytest.raises(NameTaken):
                await store.create_external(sub, name, name_key(name), T0)
        assert len(await store.list_accounts()) == 2
        assert await store.password_hash(eve.id) == ""
        dan = await store.create_external("sub-3", "Dan", name_key("Dan"), T0)
        assert await store.accounts_by_external(["sub-3", "sub-2", "sub-1"]) == {
            "sub-1": eve, "sub-3": dan}
        assert await store.accounts_by_external([]) == {}

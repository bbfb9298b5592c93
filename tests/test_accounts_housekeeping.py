"""Account housekeeping on SQLite and PostgreSQL: the last admin kept atomically, invite
expiry, and the sweep of expired sessions, old login failures, old revocations and expired
passkey challenges."""

from __future__ import annotations

import asyncio
import datetime
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from chat.accounts import (
    AccountError,
    AccountPolicy,
    AccountService,
    InviteInvalid,
    Revocation,
    open_accounts,
)
from chat.accounts.base import AccountStore
from chat.accounts.model import Challenge
from chat.accounts.policy import DAY_MS
from chat.config import ConfigError, Settings
from chat.store import postgres_schema, sqlite_schema
from tests.serverproc import Spawn, assert_one_line_error, free_port
from tests.test_accounts_cli import accounts as cli
from tests.test_accounts_cli import login, ok
from tests.test_accounts_service import PASSWORD, Clock, code_of, fast_passwords
from tests.test_accounts_store import SHARED, T0, _factory, add, running
from tests.test_auth_nodes import REVOKED, create, signed_in


@pytest.fixture(params=SHARED)
def make_shared(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AccountStore]:
    """Account stores of one backend that share one database (a file, or PostgreSQL)."""
    return _factory(request, tmp_path)


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_demotions_of_the_last_two_admins_leave_one(
        make_shared: Callable[[], AccountStore]) -> None:
    """Two admins demoted at once through two stores (two nodes): exactly one demotion
    succeeds, the other is refused as last_admin, and one enabled admin remains."""
    for disable in (False, True):
        first, second = make_shared(), make_shared()
        async with running(first, second):
            one = AccountService(first, passwords=fast_passwords())
            two = AccountService(second, passwords=fast_passwords())
            suffix = "d" if disable else "r"
            ann = await one.create(f"ann{suffix}", PASSWORD, role="admin")
            bob = await one.create(f"bob{suffix}", PASSWORD, role="admin")
            for account in await first.list_accounts():  # earlier rounds' admins step aside
                if account[0].id not in (ann.id, bob.id) and account[0].role == "admin":
                    await first.set_role(account[0].id, "member")
            if disable:
                calls = [one.set_disabled(ann, True), two.set_disabled(bob, True)]
            else:
                calls = [one.set_role(ann, "member"), two.set_role(bob, "member")]
            results = await asyncio.gather(*calls, return_exceptions=True)
            refused = [r for r in results if isinstance(r, AccountError)]
            assert len(refused) == 1 and refused[0].code == "last_admin", results
            admins = [a for a, _ in await first.list_accounts()
                      if a.role == "admin" and not a.disabled]
            assert len(admins) == 1


@pytest.mark.gen_test(timeout=30)
async def test_an_invite_registers_until_it_expires_and_only_once(
        make_shared: Callable[[], AccountStore]) -> None:
    """An invite registers an account until its expiry; an expired one and a used one are
    refused with the same invalid_invite; the default lifetime is invite_ttl_days."""
    clock = Clock()
    store = make_shared()
    async with running(store):
        accounts = AccountService(store, AccountPolicy(registration="invite", invite_ttl_days=2),
                                  fast_passwords(), clock)
        await accounts.register("root", PASSWORD, invite=await accounts.create_invite())
        short, expires = await accounts.invite(ttl_days=1)
        assert expires == round(clock.now * 1000) + DAY_MS
        default = await accounts.create_invite()
        clock.now += DAY_MS / 1000  # the short one's last moment has passed
        expired = await code_of(accounts.register("ann", PASSWORD, invite=short))
        assert await store.account_by_name_key("ann") is None
        assert (await accounts.register("bob", PASSWORD, invite=default)).role == "member"
        used = await code_of(accounts.register("cat", PASSWORD, invite=default))
        assert expired.code == used.code == "invalid_invite"
        assert expired.reason == used.reason == "this invite code is unknown, used or expired"
        states = [invite.state(round(clock.now * 1000)) for invite in await store.list_invites()]
        assert sorted(states) == ["expired", "used", "used"]
        with pytest.raises(ValueError, match=r"is 0 days.*at most 365"):
            await accounts.invite(ttl_days=0)


@pytest.mark.gen_test(timeout=30)
async def test_an_expired_invite_is_refused_by_the_store_itself(
        make_shared: Callable[[], AccountStore]) -> None:
    """The store consumes an invite only before its expiry, and expire_invite ends an open
    one at once (by the id --list shows), never a used one."""
    store = make_shared()
    async with running(store):
        await store.create_invite("a" * 64, None, T0 - 1000, T0)  # expires as ann is added
        with pytest.raises(InviteInvalid):
            await add(store, "ann", invite_hash="a" * 64)
        assert await store.account_by_name_key("ann") is None
        await store.create_invite("c" * 64, None, T0, T0 + 1000)
        assert await store.expire_invite("c" * 12, T0)
        assert not await store.expire_invite("c" * 12, T0)  # no longer open
        with pytest.raises(InviteInvalid):
            await add(store, "bob", invite_hash="c" * 64)
        assert await store.account_by_name_key("bob") is None


@pytest.mark.subprocess
@pytest.mark.gen_test(timeout=90)
@pytest.mark.parametrize("backend", SHARED)
async def test_the_invite_command_prints_the_expiry_lists_and_revokes(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """`accounts invite` prints the code alone on stdout and its expiry on stderr; --list
    shows it open; --revoke expires it, after which it registers nobody; a --ttl-days out of
    range is a one-line usage error naming the value and the limits."""
    db = (request.getfixturevalue("postgres_url") if backend == "postgres"
          else str(tmp_path / "chat.db"))
    ok(cli(db, "create", "root", "--password-stdin", stdin=PASSWORD + "\n"))
    made = cli(db, "invite", "--ttl-days", "3")
    code = ok(made).strip()
    assert "\n" not in code and len(code) >= 16
    said = re.search(r"usable once until (\d{4}-\d\d-\d\d \d\d:\d\d) UTC \(3 days\)",
                     made.stderr)
    assert said is not None, made.stderr
    expires = datetime.datetime.strptime(said[1], "%Y-%m-%d %H:%M").replace(tzinfo=datetime.UTC)
    in_3_days = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)
    assert datetime.timedelta(0) <= in_3_days - expires < datetime.timedelta(minutes=5)
    rows = [line.split() for line in ok(cli(db, "invite", "--list")).splitlines()[1:]]
    assert len(rows) == 1 and rows[0][-1] == "open"
    invite_id = rows[0][0]
    assert ok(cli(db, "invite", "--revoke", invite_id)).strip() == (
        f"accounts: invite {invite_id} expired")
    again = cli(db, "invite", "--revoke", invite_id)
    assert again.returncode == 1 and "no_such_invite" in assert_one_line_error(again)
    assert ok(cli(db, "invite", "--list")).splitlines()[1].split()[-1] == "expired"
    store = open_accounts(db)
    async with running(store):
        service = AccountService(store, AccountPolicy(registration="invite"),
                                 passwords=fast_passwords())
        assert (await code_of(service.register("ann", PASSWORD, invite=code))).code == (
            "invalid_invite")
    for bad in ("0", "400"):
        refused = cli(db, "invite", "--ttl-days", bad)
        line = assert_one_line_error(refused)
        assert refused.returncode == 2 and f"is {bad} days" in line and "at most 365" in line


def test_invites_made_before_expiry_existed_expire_a_week_after_they_were_made(
        tmp_path: Path) -> None:
    """Migrating a file whose invites had no expiry gives each created_ts + 7 days."""
    path = str(tmp_path / "chat.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    before = sqlite_schema.MIGRATIONS.index(sqlite_schema._v12_invite_expiry)
    conn.execute("INSERT INTO schema_version VALUES (?)", (before,))
    for step in sqlite_schema.MIGRATIONS[:before]:
        step(conn)
    conn.execute("INSERT INTO invites (code_hash, created_ts) VALUES ('h', ?)", (T0,))
    sqlite_schema.migrate(conn)
    assert conn.execute("SELECT expires_ts FROM invites").fetchall() == [(T0 + 7 * DAY_MS,)]
    conn.close()


async def rows_of(db: str, statement: str) -> list[tuple[object, ...]]:
    """Rows of a statement run directly on the database (a file, or PostgreSQL)."""
    if db.startswith("postgresql://"):
        async with await psycopg.AsyncConnection.connect(db, autocommit=True) as pg:
            return list(await (await pg.execute(statement)).fetchall())
    lite = sqlite3.connect(db, isolation_level=None)
    try:
        return list(lite.execute(statement).fetchall())
    finally:
        lite.close()


@pytest.mark.gen_test(timeout=30)
async def test_the_sweep_ends_expired_sessions_and_prunes_old_rows(
        make_shared: Callable[[], AccountStore]) -> None:
    """One sweep, in batches of 2 rows, deletes the idle and the too-old sessions (each
    revoked, heard by another node's watcher) but not a live one, failure counters past the
    forget window but not a fresh one, and revocations older than what is kept."""
    clock = Clock()
    policy = AccountPolicy(session_idle_days=2, session_max_days=5)
    store, watcher = make_shared(), make_shared()
    async with running(store, watcher):
        accounts = AccountService(store, policy, fast_passwords(), clock)
        await accounts.register("ann", PASSWORD)
        aged, _, _ = await accounts.login("ann", PASSWORD, "10.0.0.1")  # used, but too old
        ended = [aged] + [(await accounts.login("ann", PASSWORD, "10.0.0.2"))[0]
                          for _ in range(2)]  # never used again: idle
        ended_ids = {session.id for session in await store.sessions_of(1)}
        for step in range(3):  # the aged one used every 1.5 days: never idle for 2
            clock.now += 1.5 * DAY_MS / 1000
            assert await accounts.authenticate(aged) is not None
            if step == 2:
                live_token, live, _ = await accounts.login("ann", PASSWORD, "10.0.0.3")
        clock.now += 1.0 * DAY_MS / 1000  # 5.5 days after the first logins
        for n in range(3):  # three old counters, one fresh
            await store.try_attempt([f"address:old{n}"], T0, forget_before=0,
                                    wait_ms=lambda counter: 0)
        await store.try_attempt(["address:fresh"], round(clock.now * 1000), forget_before=0,
                                wait_ms=lambda counter: 0)
        heard: list[Revocation] = []
        await watcher.watch_revocations(heard.append)
        kept_ms = DAY_MS
        swept = await accounts.sweep(kept_ms, batch=2)
        # The three old counters, and the first logins' address counters (forgiven to 0).
        assert (swept.sessions, swept.failures) == (3, 5)
        assert [session.id for session in await store.sessions_of(1)] == [live.id]
        assert all([await accounts.authenticate(token) is None for token in ended])
        assert await accounts.authenticate(live_token) is not None
        assert await store.failures("address:fresh") is not None
        assert all([await store.failures(f"address:old{n}") is None for n in range(3)])
        for _ in range(250):
            if len(heard) >= 3:
                break
            await asyncio.sleep(0.02)
        assert {r.session_id for r in heard} == ended_ids and len(heard) == 3
        clock.now += 2.5 * DAY_MS / 1000  # the sweep's own revocations are past kept_ms
        again = await accounts.sweep(kept_ms, batch=2)
        assert (again.sessions, again.revocations) == (1, 3)  # the live one is idle now


@pytest.mark.gen_test(timeout=30)
async def test_the_sweep_deletes_expired_passkey_challenges_only(
        make_shared: Callable[[], AccountStore]) -> None:
    """Passkey ceremonies begun and never finished: a sweep in batches of 2 deletes the
    three expired challenges, with no new ceremony begun to forget them, and keeps the live one."""
    clock = Clock()
    store = make_shared()
    async with running(store):
        now = round(clock.now * 1000)
        for n, expires in enumerate((now - 3, now - 2, now - 1, now + 60_000)):
            challenge = Challenge(f"h{n}", "signin", None, "{}", expires, f"10.0.0.{n}")
            assert await store.create_challenge(challenge, now - 10, max_per_address=5)
        accounts = AccountService(store, passwords=fast_passwords(), clock=clock)
        swept = await accounts.sweep(DAY_MS, batch=2)
        assert swept.challenges == 3
        assert [await store.take_challenge(f"h{n}") for n in range(3)] == [None] * 3
        assert await store.take_challenge("h3") is not None


@pytest.mark.gen_test(timeout=30)
async def test_two_nodes_sweeping_at_once_end_each_session_once(
        make_shared: Callable[[], AccountStore]) -> None:
    """Two stores (two nodes) sweeping the same expired sessions at once: every session is
    deleted and revoked exactly once between them."""
    clock = Clock()
    stores = [make_shared(), make_shared()]
    async with running(*stores):
        nodes = [AccountService(store, AccountPolicy(session_idle_days=1), fast_passwords(),
                                clock) for store in stores]
        await nodes[0].register("ann", PASSWORD)
        for _ in range(20):
            await nodes[0].login("ann", PASSWORD, "10.0.0.1")
        clock.now += 2 * DAY_MS / 1000
        swept = await asyncio.gather(*(node.sweep(DAY_MS, batch=3) for node in nodes))
        assert sum(s.sessions for s in swept) == 20
        with_ids = await stores[0]._revocations_after(0)  # type: ignore[attr-defined]
        assert len(with_ids) == 20 and len({r.session_id for r in with_ids}) == 20


@pytest.mark.subprocess
@pytest.mark.gen_test(timeout=90)
@pytest.mark.parametrize("backend", SHARED)
async def test_a_running_server_sweeps_an_expired_session_and_closes_its_socket(
        backend: str, spawn: Spawn, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A server's sweep deletes a session that expired while its socket stayed open (its
    token never used again) and closes that socket with 4003; another account's stays."""
    db = (request.getfixturevalue("postgres_url") if backend == "postgres"
          else str(tmp_path / "chat.db"))
    create(db, "root", "ann")
    port = free_port()
    spawn(f"--port={port}", f"--db={db}", "--revocation-poll=0.2",
          "--account-sweep-interval=0.2", ready_port=port)
    ann = await signed_in(port, await login(db, "ann", PASSWORD), "ann")
    root = await signed_in(port, await login(db, "root", PASSWORD), "root")
    try:
        # Ann's session last used, and made, a year and a day ago.
        await rows_of(db, "UPDATE sessions SET last_seen_ts = 0, created_ts = 0 WHERE"
                          " account_id = (SELECT id FROM accounts WHERE name = 'ann')"
                          " RETURNING id")
        assert await ann.closed(10) == REVOKED
        assert ann.conn.close_reason is not None and "session ended" in ann.conn.close_reason
        assert await rows_of(db, "SELECT count(*) FROM sessions") == [(1,)]  # root's
        assert (await root.recv_type("leave"))["username"] == "ann"
    finally:
        ann.close()
        root.close()


def test_the_sweep_interval_is_validated_with_its_limit() -> None:
    """--account-sweep-interval must be more than 0, said with the value given."""
    with pytest.raises(ConfigError, match=r"--account-sweep-interval is -1\.0; it must be more "
                                          "than 0"):
        Settings(account_sweep_interval=-1.0)
    assert Settings().account_sweep_interval == 600.0


@pytest.mark.postgres
@pytest.mark.gen_test(timeout=30)
async def test_postgres_invites_made_before_expiry_existed_expire_a_week_after(
        postgres_url: str) -> None:
    """PostgreSQL's migration gives invites made without an expiry created_ts + 7 days."""
    before = postgres_schema.MIGRATIONS.index(postgres_schema._v11_invite_expiry)
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        await conn.execute("INSERT INTO schema_version VALUES (%s)", (before,))
        for step in postgres_schema.MIGRATIONS[:before]:
            await step(conn)
        await conn.execute("INSERT INTO invites (code_hash, created_ts) VALUES ('h', %s)", (T0,))
        await postgres_schema.migrate(conn)
        rows = await (await conn.execute("SELECT expires_ts FROM invites")).fetchall()
    assert rows == [(T0 + 7 * DAY_MS,)]

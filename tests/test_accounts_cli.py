"""`chat_server.py accounts ...` end to end, as subprocesses, against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from chat.accounts import AccountPolicy, AccountService, Revocation, open_accounts
from tests.serverproc import ROOT, RUN_TIMEOUT_S, assert_clean, assert_one_line_error, child_env
from tests.test_accounts_service import fast_passwords

pytestmark = pytest.mark.subprocess

PASSWORD = "Zebra-Quartz-Lantern-9"
NEW_PASSWORD = "Otter-Granite-Violin-4"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The --db of a server: a SQLite file, or a PostgreSQL schema of this test's own."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "chat.db")


def accounts(db: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run `chat_server.py accounts ARGS --db DB` to completion."""
    return subprocess.run(
        [sys.executable, "chat_server.py", "accounts", *args, "--db", db], cwd=ROOT,
        env=child_env(), input=stdin, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)
    for secret in (PASSWORD, NEW_PASSWORD):
        assert secret not in result.stdout + result.stderr
    return result.stdout


def listed(db: str) -> list[list[str]]:
    """The rows `accounts list` prints: name, role, disabled, date, time, sessions."""
    return [line.split() for line in ok(accounts(db, "list")).splitlines()[1:]]


async def login(db: str, name: str, password: str) -> str:
    """Log in through the service, as a server would; the token."""
    store = open_accounts(db)
    await store.start()
    try:
        token, _, _ = await AccountService(store, passwords=fast_passwords()).login(
            name, password, "127.0.0.1")
        return token
    finally:
        await store.close()


def test_create_list_promote_demote_and_refusals(db: str) -> None:
    """create makes the first account an admin; list shows name, role, disabled, created and
    sessions; look-alikes, weak passwords and unknown names are refused in one line, exit 1."""
    assert "created 'ann' (admin, id 1)" in ok(accounts(db, "create", "ann", "--password-stdin",
                                                        stdin=PASSWORD + "\n"))
    ok(accounts(db, "create", "Bob", "--password-stdin", "--email", "b@example.org",
                stdin=PASSWORD + "\n"))
    rows = listed(db)
    assert [(r[0], r[1], r[2], r[-1]) for r in rows] == [("ann", "admin", "no", "0"),
                                                        ("Bob", "member", "no", "0")]
    for name, password, code in (("ＡＮＮ", PASSWORD, "name_taken"),
                                 ("\u0430nn", PASSWORD, "name_taken"),
                                 ("cy", "password123", "weak_password"),
                                 ("cy", "short", "password_too_short")):
        result = accounts(db, "create", name, "--password-stdin", stdin=password + "\n")
        assert result.returncode == 1
        assert f": {code}: " in assert_one_line_error(result)
    ok(accounts(db, "promote", "bob"))
    ok(accounts(db, "demote", "ANN"))
    assert [r[1] for r in listed(db)] == ["member", "admin"]
    last = accounts(db, "demote", "bob")
    assert last.returncode == 1 and "last_admin" in assert_one_line_error(last)
    missing = accounts(db, "disable", "nobody")
    assert missing.returncode == 1 and "no_such_account" in assert_one_line_error(missing)


def test_a_password_is_never_taken_from_the_command_line(tmp_path: Path) -> None:
    """There is no --password option: a password on the command line is a usage error."""
    result = accounts(str(tmp_path / "chat.db"), "create", "ann", "--password", PASSWORD)
    assert result.returncode == 2
    assert "unrecognized arguments" in assert_one_line_error(result)
    assert not (tmp_path / "chat.db").exists()


def test_a_missing_file_or_memory_database_is_a_usage_error(tmp_path: Path) -> None:
    """Only create makes a new SQLite file: list on a mistyped path exits 2 and creates
    nothing; :memory: (a server's own) is refused."""
    missing = tmp_path / "typo.db"
    result = accounts(str(missing), "list")
    assert result.returncode == 2
    assert "no database at" in assert_one_line_error(result)
    assert not missing.exists()
    result = accounts(":memory:", "invite")
    assert result.returncode == 2 and ":memory:" in assert_one_line_error(result)


def test_a_database_password_is_redacted() -> None:
    """A database that cannot be reached fails in one line, exit 1, its password hidden."""
    result = accounts("postgresql://chat:s3cret-pw@127.0.0.1:1/chat", "list")
    assert result.returncode == 1
    line = assert_one_line_error(result)
    assert "s3cret-pw" not in result.stdout + result.stderr and "Connection refused" in line


@pytest.mark.gen_test(timeout=60)
async def test_disable_and_reset_password_end_sessions_seen_by_a_running_server(db: str) -> None:
    """disable, run by another process, ends the account's sessions and reaches a running
    store's revocation watch; enable lets it log in again; reset-password ends its sessions
    and only the new password logs in."""
    ok(accounts(db, "create", "root", "--password-stdin", stdin=PASSWORD + "\n"))
    ok(accounts(db, "create", "ann", "--password-stdin", stdin=PASSWORD + "\n"))
    server = open_accounts(db, revocation_poll_s=0.05)
    await server.start()
    try:
        service = AccountService(server, passwords=fast_passwords())
        heard: list[Revocation] = []
        await server.watch_revocations(heard.append)
        token = await login(db, "ann", PASSWORD)
        assert [r[-1] for r in listed(db)] == ["0", "1"]
        ok(accounts(db, "disable", "ann"))
        for _ in range(250):
            if heard:
                break
            await asyncio.sleep(0.02)
        ann = await service.find("ann")
        assert [(r.account_id, r.session_id) for r in heard] == [(ann.id, None)]
        assert await service.authenticate(token) is None
        assert [r[2] for r in listed(db)] == ["no", "yes"]
        ok(accounts(db, "enable", "ann"))
        token = await login(db, "ann", PASSWORD)
        ok(accounts(db, "reset-password", "ann", "--password-stdin", stdin=NEW_PASSWORD + "\n"))
        assert await service.authenticate(token) is None
        assert await login(db, "ann", NEW_PASSWORD)
        with pytest.raises(Exception, match="invalid_login"):
            await login(db, "ann", PASSWORD)
    finally:
        await server.close()


@pytest.mark.gen_test(timeout=60)
async def test_invite_prints_a_code_that_registers_once(db: str) -> None:
    """invite prints one code, which registers one account under --registration invite."""
    ok(accounts(db, "create", "root", "--password-stdin", stdin=PASSWORD + "\n"))
    code = ok(accounts(db, "invite")).strip()
    assert len(code) >= 16 and "\n" not in code
    store = open_accounts(db)
    await store.start()
    try:
        service = AccountService(store, AccountPolicy(registration="invite"),
                                 passwords=fast_passwords())
        assert (await service.register("ann", PASSWORD, invite=code)).role == "member"
        with pytest.raises(Exception, match="invalid_invite"):
            await service.register("bob", PASSWORD, invite=code)
    finally:
        await store.close()

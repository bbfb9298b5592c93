"""copy-history and backup carry the accounts: SQLite into PostgreSQL and back, with ids,
password hashes, roles, invites, passkeys, external ids, adopted old names and the rooms
(members, bans, removed messages, audit log) kept, and no session or passkey challenge."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chat.accounts import Account, AccountError, AccountPolicy, AccountService, open_accounts
from chat.accounts.base import AccountStore
from chat.accounts.model import Challenge, Invite, Passkey
from chat.files.store import FileRecord, FileStore
from chat.hooks.store import HookStore
from chat.rooms.store import FOREVER, AuditEntry, RoomStore
from tests.serverproc import assert_one_line_error, run
from tests.test_accounts_service import PASSWORD, fast_passwords
from tests.test_accounts_store import running

pytestmark = pytest.mark.subprocess


def service(store: AccountStore) -> AccountService:
    return AccountService(store, AccountPolicy(registration="invite"), fast_passwords())


def passkey(credential_id: str, account_id: int) -> Passkey:
    return Passkey(credential_id, account_id, b"\xa5\x01\x02\x00cose", 7, ("usb", "nfc"),
                   "aGFuZGxl", f"key {credential_id}", 1_700_000_000_000, None)


async def populate(db: str) -> tuple[str, str]:
    """Accounts in `db`: root (admin, with a passkey), ann (disabled), bob (member, signed
    in), one of them registered with an invite; an open invite; dan, an embedding
    application's user; root adopted an old name; a ceremony begun. (The open invite's code,
    bob's token.)"""
    async with running(store := open_accounts(db)):
        accounts = service(store)
        root = await accounts.create("root", PASSWORD)
        ann = await accounts.register("ann", PASSWORD, invite=await accounts.create_invite(root))
        await accounts.set_disabled(ann, True)
        await accounts.create("bob", "Otter-Granite-Violin-4")
        token, _, _ = await accounts.login("bob", "Otter-Granite-Violin-4", "127.0.0.1")
        await store.add_passkey(passkey("cred-root", root.id))
        await store.create_external("app-user-9", "dan", "dan", 1_700_000_000_000)
        await store.adopt_dms(root.id, "Rooty", 1_700_000_000_000)
        await store.create_challenge(Challenge("begun", "signin", None, "{}", 2**62, "10.0.0.1"),
                                     1_700_000_000_000, max_per_address=5)
        rooms, ts = RoomStore(store), 1_700_000_000_000
        await rooms.create("den", "private", "quiet", root.id, ts,
                           AuditEntry(ts, root.id, "root", "create", "den"))
        await rooms.add_member("den", 3, ts)
        await rooms.sanction("den", "ban", ["a:2"], "ann", FOREVER,
                             audit=AuditEntry(ts, root.id, "root", "ban", "den", "a:2", "ann"))
        await rooms.remove_message("den", 5, AuditEntry(ts, root.id, "root", "remove", "den"))
        hooks = HookStore(store)
        await hooks.create_incoming("den", "Alerts", root.id, ts)
        await hooks.create_outgoing("den", "Pinger", "https://example.org/x", ("!ping",), None,
                                    ts)
        await hooks.revoke((await hooks.create_incoming("den", "Old", None, ts))[0].id, ts + 1)
        # A file's record, carried by a message of den (chat/files/store.py).
        files = FileStore(store)
        await files.add(FileRecord("F" * 24, root.id, "a.png", 10, "image/png", "a" * 64, 4, 3,
                                   None, None, ts), 0)
        await files.link("den", 1, ["F" * 24])
        await store.server_secret("passkey-decoys")
        return await accounts.create_invite(root), token


async def rooms_of(db: str) -> tuple[object, ...]:
    """What the copy must keep of the rooms: den as bob and as ann see it (ban included),
    bob's memberships, the removed message, the audit log, its webhooks (secrets' hashes and
    the revoked one too); a file and its message; the server's secrets (the decoy passkey
    ids a name without passkeys is shown stay the same)."""
    async with running(store := open_accounts(db)):
        rooms = RoomStore(store)
        return (await rooms.access("den", 3, ["a:3"], 1), await rooms.access("den", 2, ["a:2"], 1),
                await rooms.memberships(3), await rooms.removed_between("den", 0, 99),
                await rooms.audit_log(None, 10), await HookStore(store).of_room("den"),
                await store.sql_rows("SELECT id, secret_hash, revoked_ts FROM webhooks"
                                     " ORDER BY id", ()),
                await FileStore(store).get("F" * 24), await FileStore(store).links("F" * 24),
                await store.sql_rows("SELECT name, value FROM server_secrets", ()))


Snapshot = tuple[list[tuple[Account, str | None, list[Passkey]]], list[Invite], int]


async def snapshot(db: str) -> Snapshot:
    """What the copy must keep: accounts (with password hashes and passkeys) and invites; and
    the number of sessions."""
    async with running(store := open_accounts(db)):
        accounts = [(account, await store.password_hash(account.id),
                     await store.passkeys_of(account.id))
                    for account, _ in await store.list_accounts()]
        sessions = sum(count for _, count in await store.list_accounts())
        return accounts, sorted(await store.list_invites(), key=lambda i: i.id), sessions


async def check_account_tables(db: str) -> None:
    """The external id and the adopted old name came along; the ceremony's challenge did not."""
    async with running(store := open_accounts(db)):
        dan = await store.account_by_external("app-user-9")
        assert dan is not None and dan.name == "dan"
        with pytest.raises(AccountError, match="given to another account"):
            await store.adopt_dms(2, "rooty", 1_700_000_000_000)  # root's already
        assert await store.take_challenge("begun") is None


def copied(source: str, target: str) -> str:
    result = run("copy-history", source, target)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.postgres
@pytest.mark.gen_test(timeout=120)
async def test_accounts_move_from_sqlite_to_postgresql_and_back(
        tmp_path: Path, postgres_url: str) -> None:
    """copy-history FILE postgresql:// keeps every account (id, name, role, disabled,
    password hash) and invite, copies no session; the password logs in there, the open
    invite registers there, a new account gets the next id; and back into a new file."""
    db = str(tmp_path / "chat.db")
    code, token = await populate(db)
    accounts, invites, sessions = await snapshot(db)
    assert sessions == 1 and accounts[0][2] == [passkey("cred-root", 1)]
    out = copied(db, postgres_url)
    assert "4 accounts and 2 invites (sessions are not copied" in out
    assert await snapshot(postgres_url) == (accounts, invites, 0)
    await check_account_tables(postgres_url)
    assert await rooms_of(postgres_url) == await rooms_of(db)
    async with running(store := open_accounts(postgres_url)):
        # The audit's sequence follows the copied entries, as the accounts' does.
        await RoomStore(store).record(AuditEntry(1, 1, "root", "update", "den"))
        moved = service(store)
        assert await moved.authenticate(token) is None  # sessions stayed behind
        _, _, bob = await moved.login("bob", "Otter-Granite-Violin-4", "127.0.0.1")
        assert bob.id == 3
        cat = await moved.register("cat", PASSWORD, invite=code)
        assert cat.id == 5 and cat.role == "member"  # the sequence follows the copied ids
    back = str(tmp_path / "back.db")
    copied(postgres_url, back)
    assert (await snapshot(back))[:2] == (await snapshot(postgres_url))[:2]
    assert (await snapshot(back))[2] == 0
    await check_account_tables(back)
    async with running(store := open_accounts(back)):
        assert (await service(store).create("eve", PASSWORD)).id == 6


@pytest.mark.postgres
@pytest.mark.gen_test(timeout=120)
async def test_a_rerun_brings_changed_accounts_and_other_accounts_are_refused(
        tmp_path: Path, postgres_url: str) -> None:
    """A rerun after a password reset, a promotion, a passkey added and one deleted, a room
    member removed and a ban lifted on the source brings them all; a target holding an
    account the source lacks is refused in one line before anything is written."""
    db = str(tmp_path / "chat.db")
    await populate(db)
    copied(db, postgres_url)
    async with running(store := open_accounts(db)):
        accounts = service(store)
        await accounts.reset_password(await accounts.find("bob"), "Heron-Basalt-Cello-7")
        await accounts.set_role(await accounts.find("bob"), "admin")
        await store.add_passkey(passkey("cred-bob", 3))
        assert await store.delete_passkey("cred-root", 1)  # root's lost key: root has a password
        await RoomStore(store).remove_member("den", 3)
        assert await RoomStore(store).lift("den", "ban", "a:2", "ann") == 1
    copied(db, postgres_url)
    assert await rooms_of(postgres_url) == await rooms_of(db)  # bob out, ann's ban lifted
    assert await snapshot(postgres_url) == (*(await snapshot(db))[:2], 0)
    async with running(store := open_accounts(postgres_url)):
        assert await store.passkey_by_id("cred-root") is None  # deleted there: gone here too
        assert [p.id for p in await store.passkeys_of(3)] == ["cred-bob"]
    other = str(tmp_path / "other.db")
    async with running(store := open_accounts(other)):
        await service(store).create("zoe", PASSWORD)
    refused = run("copy-history", other, postgres_url)
    assert refused.returncode == 1
    assert "holds other accounts" in assert_one_line_error(refused)
    assert [a.name for a, _, _ in (await snapshot(postgres_url))[0]] == ["root", "ann", "bob",
                                                                          "dan"]


@pytest.mark.gen_test(timeout=60)
async def test_a_backup_holds_the_accounts(tmp_path: Path) -> None:
    """A backup of a SQLite file holds its accounts, password hashes, invites and sessions
    (a snapshot of the same server, restored as it was)."""
    db, copy = str(tmp_path / "chat.db"), str(tmp_path / "copy.db")
    _, token = await populate(db)
    result = await asyncio.get_running_loop().run_in_executor(
        None, lambda: run("backup", db, copy))
    assert result.returncode == 0, result.stderr
    assert await snapshot(copy) == await snapshot(db)
    async with running(store := open_accounts(copy)):
        assert (await service(store).authenticate(token)) is not None

"""The room store (chat/rooms/store.py), one text for both databases, on SQLite and PostgreSQL:
rooms, memberships, sanctions and the audit log, and that they outlive a restart."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chat.accounts.base import AccountStore
from chat.rooms.store import FOREVER, AuditEntry, RoomStore
from tests.test_accounts_store import HASH, SHARED, T0, _factory, running


@pytest.fixture(params=SHARED)
def make(request: pytest.FixtureRequest, tmp_path: object) -> Callable[[], AccountStore]:
    """Account stores of one backend sharing one database (a file, or a PostgreSQL schema)."""
    return _factory(request, tmp_path)  # type: ignore[arg-type]


async def account(store: AccountStore, name: str) -> int:
    return (await store.create_account(name, name, None, HASH, T0)).id


@pytest.mark.gen_test(timeout=60)
async def test_rooms_and_memberships_outlive_a_restart(
        make: Callable[[], AccountStore]) -> None:
    """general exists from the start; a room, its owner and a member are there after the
    store is closed and opened again (another node, or a restart)."""
    first = make()
    async with running(first):
        rooms = RoomStore(first)
        general = await rooms.access("general", None, [], T0)
        assert general.room is not None
        assert general.room.visibility == "public"
        ann, bob = await account(first, "ann"), await account(first, "bob")
        assert await rooms.create("ops", "private", "deploys", ann, T0,
                                  AuditEntry(T0, ann, "ann", "create", "ops"))
        assert not await rooms.create("ops", "public", "", bob, T0)  # taken: bob owns nothing
        assert await rooms.add_member("ops", bob, T0 + 1)
        assert not await rooms.add_member("ops", ann, T0 + 2)  # already the owner
    again = make()
    async with running(again):
        rooms = RoomStore(again)
        assert await rooms.memberships(ann) == [("ops", "owner")]
        assert await rooms.memberships(bob) == [("ops", "member")]
        seen = await rooms.access("ops", bob, ["a:2"], T0)
        assert seen.room is not None
        assert (seen.room.topic, seen.room.visibility, seen.role) == ("deploys", "private",
                                                                      "member")
        assert await rooms.remove_member("ops", bob)
        assert await rooms.memberships(bob) == []


@pytest.mark.gen_test(timeout=60)
async def test_directory_lists_public_rooms_by_prefix_in_pages(
        make: Callable[[], AccountStore]) -> None:
    """Only public rooms, by name, filtered by a prefix (room names hold `_`: no LIKE)."""
    store = make()
    async with running(store):
        rooms = RoomStore(store)
        ann = await account(store, "ann")
        for name, visibility in (("team_a", "public"), ("teamxb", "public"),
                                 ("team_c", "private"), ("zoo", "public")):
            assert await rooms.create(name, visibility, f"about {name}", ann,  # type: ignore[arg-type]
                                      T0)
        assert await rooms.directory("team_", "", 10) == [("team_a", "about team_a", 1)]
        assert [r[0] for r in await rooms.directory("", "", 2)] == ["general", "team_a"]
        assert [r[0] for r in await rooms.directory("", "team_a", 10)] == ["teamxb", "zoo"]


@pytest.mark.gen_test(timeout=60)
async def test_bans_and_mutes_hold_until_they_end_or_are_lifted(
        make: Callable[[], AccountStore]) -> None:
    """A ban covers any of its targets (a guest's session or address) until its end; a lift
    by name reaches a guest who has left; a ban ends the account's membership."""
    store = make()
    async with running(store):
        rooms = RoomStore(store)
        ann = await account(store, "ann")
        await rooms.create("ops", "public", "", None, T0)
        await rooms.add_member("ops", ann, T0)
        await rooms.sanction("ops", "ban", ["a:1"], "ann", T0 + 60_000, remove_account=ann)
        await rooms.sanction("ops", "ban", ["ip:10.0.0.1"], "gus", FOREVER)
        await rooms.sanction("ops", "mute", ["g:x"], "gus", T0 + 5)
        assert (await rooms.access("ops", ann, ["a:1"], T0)).banned_until == T0 + 60_000
        assert (await rooms.access("ops", ann, ["a:1"], T0 + 60_000)).banned_until is None
        assert (await rooms.access("ops", ann, ["a:1"], T0)).role is None
        guest = await rooms.access("ops", None, ["g:new", "ip:10.0.0.1"], T0)
        assert guest.banned_until == FOREVER
        assert (await rooms.access("ops", None, ["g:x"], T0)).muted_until == T0 + 5
        assert await rooms.lift("ops", "ban", "", "gus") == 1
        assert (await rooms.access("ops", None, ["ip:10.0.0.1"], T0)).banned_until is None


@pytest.mark.gen_test(timeout=60)
async def test_the_audit_log_is_written_with_its_change_and_read_newest_first(
        make: Callable[[], AccountStore]) -> None:
    """Each change's entry is there, with its details, per room or all, newest first."""
    store = make()
    async with running(store):
        rooms = RoomStore(store)
        ann = await account(store, "ann")
        await rooms.create("ops", "public", "", ann, T0, AuditEntry(T0, ann, "ann", "create",
                                                                     "ops"))
        await rooms.set_role("ops", ann, "moderator", T0 + 1, AuditEntry(
            T0 + 1, ann, "ann", "role", "ops", "a:1", "ann", {"role": "moderator"}))
        await rooms.record(AuditEntry(T0 + 2, None, "root", "kick", "lobby", "g:x", "gus"))
        log = await rooms.audit_log("ops", 10)
        assert [(e.action, e.details) for e in log] == [("role", {"role": "moderator"}),
                                                        ("create", {})]
        assert [e.room for e in await rooms.audit_log(None, 2)] == ["lobby", "ops"]
        assert (await rooms.audit_log(None, 1))[0].as_json()["target_name"] == "gus"

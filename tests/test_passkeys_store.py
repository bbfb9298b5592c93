"""The account store's passkey contract, on SQLite (memory and file) and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from chat.accounts.base import AccountStore, NameTaken, PasskeyTaken
from chat.accounts.model import Challenge, Passkey
from chat.people.names import name_key
from tests.test_accounts_store import HASH, T0, _factory, add, running

BACKENDS = ["sqlite-memory", "sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]
SHARED = ["sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AccountStore]:
    return _factory(request, tmp_path)


@pytest.fixture(params=SHARED)
def make_shared(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AccountStore]:
    return _factory(request, tmp_path)


def passkey(cid: str, account_id: int = 0, count: int = 0) -> Passkey:
    return Passkey(cid, account_id, b"\xa5\x01\x02\x03\x26" + bytes(70), count, ("usb", "nfc"),
                   "aGFuZGxl", "laptop", T0, None)


@pytest.mark.gen_test
async def test_passkeys_are_added_listed_used_and_unique(make: Callable[[], AccountStore]) -> None:
    """A passkey reads back as stored; its credential id is registered once across accounts."""
    store = make()
    async with running(store):
        ann, bob = await add(store, "ann"), await add(store, "bob")
        await store.add_passkey(passkey("k1", ann.id))
        assert await store.passkey_by_id("k1") == passkey("k1", ann.id)
        with pytest.raises(PasskeyTaken):
            await store.add_passkey(passkey("k1", bob.id))
        assert await store.passkeys_of(bob.id) == []
        assert await store.use_passkey("k1", 0, 5, T0 + 1)
        used = await store.passkey_by_id("k1")
        assert used is not None and (used.sign_count, used.last_used_ts) == (5, T0 + 1)


@pytest.mark.gen_test(timeout=30)
async def test_one_sign_count_value_is_used_once(make_shared: Callable[[], AccountStore]) -> None:
    """Six uses moving the counter from the same value at once, on six connections: one wins."""
    stores = [make_shared() for _ in range(6)]
    async with running(*stores):
        ann = await add(stores[0], "ann")
        await stores[0].add_passkey(passkey("k1", ann.id, count=3))
        won = await asyncio.gather(*(s.use_passkey("k1", 3, 4, T0) for s in stores))
        assert sorted(won) == [False] * 5 + [True]


@pytest.mark.gen_test
async def test_an_account_made_with_a_passkey_has_it_or_is_not_made(
        make: Callable[[], AccountStore]) -> None:
    """create_account with a passkey stores both; a taken name or credential stores neither."""
    store = make()
    async with running(store):
        ann = await store.create_account("ann", name_key("ann"), None, "", T0,
                                          passkey=passkey("k1"))
        assert [p.id for p in await store.passkeys_of(ann.id)] == ["k1"]
        assert await store.password_hash(ann.id) == ""
        with pytest.raises(NameTaken):
            await store.create_account("ANN", name_key("ANN"), None, "", T0,
                                       passkey=passkey("k2"))
        assert await store.passkey_by_id("k2") is None
        with pytest.raises(PasskeyTaken):
            await store.create_account("bob", name_key("bob"), None, "", T0,
                                       passkey=passkey("k1"))
        assert await store.account_by_name_key(name_key("bob")) is None


@pytest.mark.gen_test
async def test_the_last_way_in_is_never_deleted(make: Callable[[], AccountStore]) -> None:
    """Without a password an account keeps its last passkey; with one, any passkey goes."""
    store = make()
    async with running(store):
        ann = await store.create_account("ann", name_key("ann"), None, "", T0,
                                         passkey=passkey("k1"))
        await store.add_passkey(passkey("k2", ann.id))
        assert await store.delete_passkey("k1", ann.id)
        assert not await store.delete_passkey("k2", ann.id)
        bob = await store.create_account("bob", name_key("bob"), None, HASH, T0)
        await store.add_passkey(passkey("k3", bob.id))
        assert not await store.delete_passkey("k3", ann.id)  # not ann's
        assert await store.delete_passkey("k3", bob.id)


@pytest.mark.gen_test(timeout=30)
async def test_a_challenge_is_taken_once_from_any_connection(
        make_shared: Callable[[], AccountStore]) -> None:
    """A challenge stored by one node is taken by exactly one of six takers; expired ones are
    forgotten when the next is stored."""
    stores = [make_shared() for _ in range(6)]
    async with running(*stores):
        h1 = Challenge("h1", "signin", None, "{}", T0 + 10, "10.0.0.1")
        assert await stores[0].create_challenge(h1, T0, max_per_address=5)
        taken = await asyncio.gather(*(s.take_challenge("h1") for s in stores))
        assert [t for t in taken if t is not None] == [h1]
        old = Challenge("old", "add", 7, "{}", T0 + 10, "10.0.0.1")
        assert await stores[0].create_challenge(old, T0, max_per_address=5)
        new = Challenge("new", "add", 7, "{}", T0 + 99, "10.0.0.1")
        assert await stores[1].create_challenge(new, T0 + 11, max_per_address=5)
        assert await stores[2].take_challenge("old") is None
        assert await stores[2].take_challenge("new") == new


@pytest.mark.gen_test
async def test_an_address_has_a_bounded_number_of_open_challenges(
        make: Callable[[], AccountStore]) -> None:
    """Past max_per_address live challenges an address is refused; others are not, and an
    expired one frees its place."""
    store = make()
    async with running(store):
        def made(n: int, address: str, expires: int = T0 + 100) -> Challenge:
            return Challenge(f"h{n}{address}", "signin", None, "{}", expires, address)
        assert await store.create_challenge(made(0, "a", T0 + 5), T0, max_per_address=3)
        for n in (1, 2):
            assert await store.create_challenge(made(n, "a"), T0, max_per_address=3)
        assert not await store.create_challenge(made(3, "a"), T0, max_per_address=3)
        assert await store.create_challenge(made(3, "b"), T0, max_per_address=3)
        assert await store.create_challenge(made(4, "a"), T0 + 6, max_per_address=3)


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_deletes_leave_a_password_less_account_a_passkey(
        make_shared: Callable[[], AccountStore]) -> None:
    """Two passkeys deleted at once on two connections, no password: exactly one goes."""
    for attempt in range(5):  # each round a fresh account: the race has several chances
        stores = [make_shared() for _ in range(2)]
        async with running(*stores):
            name = f"ann{attempt}"
            ann = await stores[0].create_account(name, name_key(name), None, "", T0,
                                                 passkey=passkey(f"a{attempt}"))
            await stores[0].add_passkey(passkey(f"b{attempt}", ann.id))
            done = await asyncio.gather(stores[0].delete_passkey(f"a{attempt}", ann.id),
                                        stores[1].delete_passkey(f"b{attempt}", ann.id))
            assert sorted(done) == [False, True]
            assert len(await stores[0].passkeys_of(ann.id)) == 1


@pytest.mark.gen_test(timeout=30)
async def test_a_server_secret_is_made_once_for_every_connection(
        make_shared: Callable[[], AccountStore]) -> None:
    """Asked at once on four connections, then after a restart: one secret, per name."""
    stores = [make_shared() for _ in range(4)]
    async with running(*stores):
        made = await asyncio.gather(*(s.server_secret("decoys") for s in stores))
        assert len(set(made)) == 1 and len(made[0]) == 32
        assert await stores[0].server_secret("other") != made[0]
    again = make_shared()
    async with running(again):
        assert await again.server_secret("decoys") == made[0]

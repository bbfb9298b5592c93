"""Account housekeeping on SQLite and PostgreSQL: the last admin kept atomically, invite
expiry, and the sweep of expired sessions, old login failures and old revocations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from chat.accounts import AccountError, AccountService
from chat.accounts.base import AccountStore
from tests.test_accounts_service import PASSWORD, fast_passwords
from tests.test_accounts_store import SHARED, _factory, running


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

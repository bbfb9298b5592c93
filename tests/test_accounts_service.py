"""The account service: password rules, registration modes, login throttling, sessions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import argon2
import pytest

from chat.accounts import AccountError, AccountPolicy, AccountService
from chat.accounts.passwords import (
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    Passwords,
    check_new_password,
    common_passwords,
)
from chat.accounts.policy import DAY_MS, FAILURES_FORGOTTEN_AFTER_MS
from chat.accounts.sqlite_store import SQLiteAccounts
from chat.config import ConfigError, Settings

PASSWORD = "Zebra-Quartz-Lantern-9"


def fast_passwords(time_cost: int = 1) -> Passwords:
    """argon2id with the least memory and time (the tests hash hundreds of times)."""
    return Passwords(argon2.PasswordHasher(time_cost=time_cost, memory_cost=8, parallelism=1))


class Clock:
    """A clock the test moves (s)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class CountingPasswords(Passwords):
    """Real argon2id, counting the verifies it runs."""

    verifies = 0

    async def verify(self, encoded: str, password: str) -> bool:
        self.verifies += 1
        return await super().verify(encoded, password)


@contextlib.asynccontextmanager
async def service(policy: AccountPolicy | None = None, *, db: str = ":memory:",
                  passwords: Passwords | None = None, clock: Clock | None = None,
                  ) -> AsyncIterator[AccountService]:
    store = SQLiteAccounts(db)
    await store.start()
    try:
        yield AccountService(store, policy, passwords or fast_passwords(), clock or Clock())
    finally:
        await store.close()


async def code_of(call: object) -> AccountError:
    with pytest.raises(AccountError) as caught:
        await call  # type: ignore[misc]
    return caught.value


def test_password_length_limits_name_the_length_and_the_limit() -> None:
    """7 characters and 1,025 are refused with the length and the limit; 8 and 1,024 pass."""
    short = "Xq7!kf" + "z"
    with pytest.raises(AccountError) as caught:
        check_new_password(short)
    assert caught.value.code == "password_too_short"
    assert f"at least {MIN_PASSWORD_CHARS}" in caught.value.reason
    assert "has 7" in caught.value.reason
    with pytest.raises(AccountError) as caught:
        check_new_password("Xq7!" * 256 + "z")
    assert caught.value.code == "password_too_long"
    assert "1,024" in caught.value.reason and "1,025" in caught.value.reason
    check_new_password("Xq7!kfzw")
    check_new_password("Xq7!" * (MAX_PASSWORD_CHARS // 4))


@pytest.mark.parametrize("password", ["password", "PASSWORD", "iloveyou1", "Baseball1"])
def test_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    """A password on the vendored list of the most common ones is refused, in any case."""
    assert len(common_passwords()) > 1000
    with pytest.raises(AccountError) as caught:
        check_new_password(password)
    assert caught.value.code == "weak_password"


@pytest.mark.gen_test
async def test_registration_honours_open_invite_and_closed(tmp_path: Path) -> None:
    """open registers anyone; invite needs an unused code; closed refuses (the admin command
    still creates)."""
    async with service(AccountPolicy(registration="closed")) as accounts:
        assert (await code_of(accounts.register("ann", PASSWORD))).code == "registration_closed"
        assert (await accounts.create("ann", PASSWORD)).role == "admin"
    async with service(AccountPolicy(registration="invite")) as accounts:
        await accounts.create("root", PASSWORD)
        assert (await code_of(accounts.register("ann", PASSWORD))).code == "invite_required"
        assert (await code_of(accounts.register("ann", PASSWORD, invite="nope"))).code == (
            "invalid_invite")
        code = await accounts.create_invite()
        assert (await accounts.register("ann", PASSWORD, invite=code)).role == "member"
        assert (await code_of(accounts.register("bob", PASSWORD, invite=code))).code == (
            "invalid_invite")
    async with service() as accounts:
        ann = await accounts.register("ann", PASSWORD, email=" ann@example.org ")
        assert (ann.role, ann.email) == ("admin", "ann@example.org")
        assert (await code_of(accounts.register("ANN", PASSWORD))).code == "name_taken"
        assert (await code_of(accounts.register("server", PASSWORD))).code == "invalid_username"
        assert (await code_of(accounts.register("x" * 33, PASSWORD))).code == "invalid_username"
        assert (await code_of(accounts.register("bob", "password1"))).code == "weak_password"
        assert (await code_of(accounts.register("bob", PASSWORD, email="nope"))).code == (
            "invalid_email")


@pytest.mark.gen_test
async def test_login_errors_are_identical_for_an_unknown_name_and_a_wrong_password() -> None:
    """An unknown name and a wrong password get the same code and reason, and each runs one
    argon2 verify."""
    passwords = CountingPasswords(argon2.PasswordHasher(time_cost=1, memory_cost=8,
                                                        parallelism=1))
    async with service(passwords=passwords) as accounts:
        await accounts.register("ann", PASSWORD)
        before = passwords.verifies
        wrong = await code_of(accounts.login("ann", "Not-The-Password-1", "10.0.0.1"))
        assert passwords.verifies == before + 1
        unknown = await code_of(accounts.login("nobody", PASSWORD, "10.0.0.2"))
        assert passwords.verifies == before + 2
        assert wrong.as_dict() == unknown.as_dict() == {
            "code": "invalid_login", "reason": "the username or the password is wrong"}
        huge = await code_of(accounts.login("ann", "x" * 100_000, "10.0.0.3"))
        assert huge.as_dict() == wrong.as_dict() and passwords.verifies == before + 3


@pytest.mark.gen_test(timeout=30)
async def test_login_throttling_grows_then_lets_the_owner_back_in() -> None:
    """After 5 failures each attempt waits 1, 2, 4 ... s up to the cap (retry_after says how
    long); once it has passed, the right password logs in and clears the counter."""
    clock = Clock()
    policy = AccountPolicy(throttle_after=5, throttle_first_s=1, throttle_max_s=8)
    async with service(policy, clock=clock) as accounts:
        await accounts.register("ann", PASSWORD)
        for n in range(5):
            assert (await code_of(accounts.login("ann", f"Wrong-{n}-pass", f"10.0.0.{n}"))).code \
                == "invalid_login"
        waits = []
        for n in range(5):
            throttled = await code_of(accounts.login("ann", PASSWORD, "10.0.1.1"))
            assert throttled.code == "login_throttled"
            waits.append(throttled.retry_after)
            clock.now += throttled.retry_after or 0
            assert (await code_of(accounts.login("ann", "Wrong-again", f"10.0.2.{n}"))).code == (
                "invalid_login")
        assert waits == [1, 2, 4, 8, 8]  # doubling, then capped
        clock.now += 8
        token, session, account = await accounts.login("ann", PASSWORD, "10.0.3.1")
        assert account.name == "ann" and session.account_id == account.id and token
        assert await accounts.store.failures("name:ann") is None


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_guesses_are_throttled_as_if_one_by_one() -> None:
    """Twenty wrong passwords sent at once: only the first three are checked, the rest are
    throttled; the owner's next login waits like anyone's."""
    passwords = CountingPasswords(argon2.PasswordHasher(time_cost=1, memory_cost=8,
                                                        parallelism=1))
    async with service(AccountPolicy(throttle_after=3), passwords=passwords) as accounts:
        await accounts.register("ann", PASSWORD)
        outcomes = await asyncio.gather(*(accounts.login("ann", f"Guess-{n}-wrong", f"10.1.0.{n}")
                                          for n in range(20)), return_exceptions=True)
        codes = sorted(o.code for o in outcomes if isinstance(o, AccountError))
        assert codes == ["invalid_login"] * 3 + ["login_throttled"] * 17
        assert passwords.verifies == 3


@pytest.mark.gen_test(timeout=30)
async def test_login_is_throttled_per_address_across_names() -> None:
    """One address failing against many names is throttled even for a name it never tried;
    a day later the counter is forgotten."""
    clock = Clock()
    async with service(AccountPolicy(throttle_after=3), clock=clock) as accounts:
        await accounts.register("ann", PASSWORD)
        for n in range(3):
            await code_of(accounts.login(f"user{n}", PASSWORD, "10.9.9.9"))
        throttled = await code_of(accounts.login("ann", PASSWORD, "10.9.9.9"))
        assert throttled.code == "login_throttled" and throttled.retry_after == 1
        assert (await accounts.login("ann", PASSWORD, "10.0.0.1"))[2].name == "ann"
        clock.now += FAILURES_FORGOTTEN_AFTER_MS / 1000 + 1
        await code_of(accounts.login("user9", PASSWORD, "10.9.9.9"))  # counts from 1 again
        assert (await accounts.login("ann", PASSWORD, "10.9.9.9"))[2].name == "ann"


@pytest.mark.gen_test
async def test_a_hash_with_old_parameters_is_replaced_at_login(tmp_path: Path) -> None:
    """A password hashed with other argon2 parameters still logs in, and is rehashed with
    today's."""
    db = str(tmp_path / "chat.db")
    async with service(db=db, passwords=fast_passwords(time_cost=1)) as accounts:
        ann = await accounts.register("ann", PASSWORD)
        old = await accounts.store.password_hash(ann.id)
    today = fast_passwords(time_cost=2)
    async with service(db=db, passwords=today) as accounts:
        assert old is not None and today.needs_rehash(old)
        await accounts.login("ann", PASSWORD, "127.0.0.1")
        new = await accounts.store.password_hash(ann.id)
        assert new != old and new is not None and not today.needs_rehash(new)
        await accounts.login("ann", PASSWORD, "127.0.0.1")
        assert await accounts.store.password_hash(ann.id) == new


@pytest.mark.gen_test
async def test_sessions_end_after_the_idle_time_and_the_maximum_age() -> None:
    """A session unused for session-idle-days ends; one in use ends at session-max-days."""
    clock = Clock()
    policy = AccountPolicy(session_idle_days=2, session_max_days=5)
    async with service(policy, clock=clock) as accounts:
        await accounts.register("ann", PASSWORD)
        idle_token, _, _ = await accounts.login("ann", PASSWORD, "127.0.0.1")
        used_token, _, _ = await accounts.login("ann", PASSWORD, "127.0.0.1")
        for _ in range(3):  # the used one every 1.5 days: never idle for 2
            clock.now += 1.5 * DAY_MS / 1000
            assert await accounts.authenticate(used_token) is not None
        assert await accounts.authenticate(idle_token) is None
        clock.now += 1.0 * DAY_MS / 1000  # 5.5 days after the login: past the maximum
        assert await accounts.authenticate(used_token) is None
        assert await accounts.sessions_of(await accounts.find("ann")) == []


@pytest.mark.gen_test
async def test_logout_revoke_and_disable_end_what_they_should() -> None:
    """Logout ends the token's session; revoke ends only one's own (any, for an admin);
    a disabled account authenticates nothing and cannot log in."""
    async with service() as accounts:
        admin = await accounts.register("root", PASSWORD)
        ann = await accounts.register("ann", PASSWORD)
        token, first, _ = await accounts.login("ann", PASSWORD, "127.0.0.1", "Firefox")
        other, second, _ = await accounts.login("ann", PASSWORD, "127.0.0.2")
        root_token, root_session, _ = await accounts.login("root", PASSWORD, "127.0.0.3")
        assert {s.id for s in await accounts.sessions_of(ann)} == {first.id, second.id}
        assert not await accounts.revoke(root_session.id, ann)
        assert await accounts.revoke(second.id, ann)
        assert await accounts.authenticate(other) is None
        assert await accounts.logout(token) and not await accounts.logout(token)
        assert await accounts.authenticate(token) is None
        token, _, _ = await accounts.login("ann", PASSWORD, "127.0.0.1")
        await accounts.set_disabled(ann, True)
        assert await accounts.authenticate(token) is None
        assert (await code_of(accounts.login("ann", PASSWORD, "127.0.0.1"))).code == (
            "account_disabled")
        assert (await code_of(accounts.set_disabled(admin, True))).code == "last_admin"
        assert await accounts.authenticate(root_token) == admin


def test_account_settings_are_validated_with_their_limits() -> None:
    """Bad account settings are refused naming the value and the limit."""
    with pytest.raises(ConfigError, match="--registration is maybe; it must be open, invite"):
        Settings(registration="maybe")
    with pytest.raises(ConfigError, match=r"--session-max-days is 1.0; it must be at least "
                                          r"--session-idle-days \(30.0\)"):
        Settings(session_max_days=1.0)
    with pytest.raises(ConfigError, match=r"--login-throttle-max is 0\.5"):
        Settings(login_throttle_max=0.5)
    with pytest.raises(ConfigError, match="--revocation-poll is 0"):
        Settings(revocation_poll=0)
    policy = Settings(registration="invite", login_throttle_after=3).account_policy
    assert (policy.registration, policy.throttle_after) == ("invite", 3)

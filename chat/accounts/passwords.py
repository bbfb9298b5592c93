"""Passwords: the rules a new one must meet, and argon2id hashes (argon2-cffi)."""

from __future__ import annotations

import asyncio
import functools
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import argon2

from chat.accounts.model import AccountError

# Shorter passwords fall to offline guessing within hours (NIST SP 800-63B's floor) (characters).
MIN_PASSWORD_CHARS = 8
# A longer one buys nothing and makes every hash cost more input to read (characters).
MAX_PASSWORD_CHARS = 1_024
# Hashes and verifies that run at once: each takes 64 MiB and ~200 ms of a core with the default
# parameters (measured: 190-205 ms on the 2-core test machine), so a burst of logins queues
# here instead of taking every core and 64 MiB per thread of the default executor.
HASH_THREADS = 2
# The most common passwords of 8+ characters, one a line (its header says where it is from).
COMMON_PASSWORDS = Path(__file__).parent.parent / "data" / "common-passwords.txt"


@functools.cache
def common_passwords() -> frozenset[str]:
    """The refused list, lower case."""
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines
                     if line.strip() and not line.startswith("#"))


def check_new_password(password: str) -> None:
    """AccountError (password_too_short, password_too_long, weak_password) unless `password`
    may be set."""
    length = len(password)
    if length < MIN_PASSWORD_CHARS:
        raise AccountError("password_too_short", f"a password is at least {MIN_PASSWORD_CHARS} "
                           f"characters; this one has {length}")
    if length > MAX_PASSWORD_CHARS:
        raise AccountError("password_too_long", f"a password is at most {MAX_PASSWORD_CHARS:,} "
                           f"characters; this one has {length:,}")
    if password.casefold() in common_passwords():
        raise AccountError("weak_password", "this password is on the list of the "
                           f"{len(common_passwords()):,} most common ones; choose another")


class Passwords:
    """argon2id hashing off the event loop: each hash or verify runs on one of HASH_THREADS
    worker threads (it takes ~200 ms and 64 MiB by default, by design).

    `hasher` sets the parameters (argon2-cffi's default is RFC 9106's low-memory profile); a
    stored hash made with others `needs_rehash`, and is replaced at the next login.
    """

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self._hasher = hasher or argon2.PasswordHasher()
        self._dummy: str | None = None
        self._threads = ThreadPoolExecutor(max_workers=HASH_THREADS,
                                           thread_name_prefix="passwords")

    async def hash(self, password: str) -> str:
        """The encoded hash (salt and parameters in it) of `password`."""
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, self._hasher.hash, password)

    async def verify(self, encoded: str, password: str) -> bool:
        """Whether `password` matches the hash; False for a hash this cannot read."""
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, self._verify, encoded, password)

    async def verify_nobody(self, password: str) -> None:
        """The work of a verify for a name without an account, so a wrong name takes as long
        to refuse as a wrong password."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(16))
        await self.verify(self._dummy, password)

    def needs_rehash(self, encoded: str) -> bool:
        """Whether the hash was made with other parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(encoded)
        except argon2.exceptions.InvalidHashError:
            return True

    def _verify(self, encoded: str, password: str) -> bool:
        try:
            return self._hasher.verify(encoded, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

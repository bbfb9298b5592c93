"""Who a user is to others: the avatar URL (never the email) and the token that proves a name."""

from __future__ import annotations

import hashlib
import hmac
import secrets

GRAVATAR_URL = "https://www.gravatar.com/avatar/{digest}?d=identicon&s=80"
TOKEN_BYTES = 18  # 144 random bits: not guessable while the name is online


def avatar_url(email: str | None, username: str) -> str:
    """Gravatar for the trimmed, lower-cased email; without one, an identicon of the name."""
    source = email.strip().lower() if email and email.strip() else username.casefold()
    # MD5 is what Gravatar keys on; it is not used for any security purpose here.
    digest = hashlib.md5(source.encode(), usedforsecurity=False).hexdigest()
    return GRAVATAR_URL.format(digest=digest)


def new_token() -> str:
    """A fresh secret for a user who has just taken a name."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_matches(given: str | None, expected: str) -> bool:
    """Compare tokens in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())

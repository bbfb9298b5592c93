"""Who a user is to others: the avatar (never the email) and the token that proves a name.

An avatar is one of two kinds, by `--avatars`. `initials` (the default): a `data:` URL of an
SVG the server draws, the name's initials on a colour of the name, so that no browser asks
another host for a picture and no hash of an email leaves the server. `gravatar`: a Gravatar
URL keyed by the MD5 of the email (or of the name), which every browser that shows it sends to
Gravatar.
"""

from __future__ import annotations

import colorsys
import dataclasses
import hashlib
import hmac
import secrets
from urllib.parse import quote

from chat.record import StoredMessage

AVATAR_KINDS = ("initials", "gravatar")  # --avatars
GRAVATAR_URL = "https://www.gravatar.com/avatar/{digest}?d=identicon&s=80"
TOKEN_BYTES = 18  # 144 random bits: not guessable while the name is online
# The picture static/js/avatar.js draws when it has none: 80 px, 34 px letters on
# hsl(FNV-1a of the lower-cased name mod 360, 45%, 42%); the same here, so both look alike.
# Single quotes keep JSON from escaping it; 246 bytes with two ASCII initials (a Gravatar URL:
# 81), 262 with two CJK ones.
INITIALS_SVG = ("<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 80 80'>"
                "<rect width='80' height='80' fill='{colour}'/><text x='40' y='52' fill='white' "
                "style='font:600 34px sans-serif;text-anchor:middle'>{letters}</text></svg>")


def avatar_url(email: str | None, username: str) -> str:
    """Gravatar for the trimmed, lower-cased email; without one, an identicon of the name."""
    source = email.strip().lower() if email and email.strip() else username.casefold()
    # MD5 is what Gravatar keys on; it is not used for any security purpose here.
    digest = hashlib.md5(source.encode(), usedforsecurity=False).hexdigest()
    return GRAVATAR_URL.format(digest=digest)


def _hue(name: str) -> int:
    """FNV-1a over the UTF-16 code units of the lower-cased name, as avatar.js computes it."""
    units = name.lower().encode("utf-16-le")
    h = 0x811C9DC5
    for i in range(0, len(units), 2):
        h ^= units[i] | units[i + 1] << 8
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h % 360


def initials(username: str) -> str:
    """The first letter or digit of the name's first two words, upper-cased; else `?`."""
    # Letters and digits only (str.isalnum): nothing of a name can be markup in the SVG.
    firsts = (word[0].upper()[0] for word in username.split()[:2])
    return "".join(c for c in firsts if c.isalnum()) or "?"


def initials_avatar(username: str) -> str:
    """A self-contained `data:image/svg+xml` URL of the name's initials on the name's colour."""
    red, green, blue = colorsys.hls_to_rgb(_hue(username or "?") / 360, 0.42, 0.45)
    colour = "%23{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in (red, green, blue)))
    svg = INITIALS_SVG.format(colour=colour, letters=quote(initials(username), safe=""))
    return "data:image/svg+xml," + svg.replace("<", "%3C").replace(">", "%3E")


def avatar_for(kind: str, email: str | None, username: str) -> str:
    """A new user's avatar: the initials picture, or with `gravatar` the Gravatar URL."""
    return avatar_url(email, username) if kind == "gravatar" else initials_avatar(username)


def shown(stored: StoredMessage, kind: str) -> StoredMessage:
    """A message read from the history, its avatar as this server shows avatars now.

    With `initials` a stored avatar from another host (a Gravatar URL kept from before the
    switch) is replaced by the initials picture, so old messages send no browser elsewhere.
    """
    if kind == "gravatar" or not stored.avatar or stored.avatar.startswith("data:"):
        return stored
    return dataclasses.replace(stored, avatar=initials_avatar(stored.username))


def new_token() -> str:
    """A fresh secret for a user who has just taken a name."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_matches(given: str | None, expected: str) -> bool:
    """Compare tokens in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


# The roster's token of an account's name: what every connection of the account presents, on
# any node. Guessable, so never accepted from a client: a guest can neither take a registered
# name (people/directory.py) nor present a token of this form.
ACCOUNT_TOKEN = "account:{id}"


def account_token(account_id: int) -> str:
    """The token by which every connection of one account is the same user, on every node."""
    return ACCOUNT_TOKEN.format(id=account_id)


EMBEDDED_TOKEN = "jwt:{sub}"  # the same for a user another application vouches for
RESERVED_TOKENS = (ACCOUNT_TOKEN.format(id=""), EMBEDDED_TOKEN.format(sub=""))


def embedded_token(sub: str) -> str:
    """The token of a user an embedding application vouches for (`sub`: its id there)."""
    return EMBEDDED_TOKEN.format(sub=sub)


ACCOUNT_PARTY = "a:"  # what an account's party id starts with


def account_party(account_id: int) -> str:
    """An account's id in direct conversations (record.dm_key)."""
    return f"{ACCOUNT_PARTY}{account_id}"


def is_account_party(party: str) -> bool:
    """Whether a party id is an account's (which receives direct messages while offline)."""
    return party.startswith(ACCOUNT_PARTY)


def legacy_party(name: str) -> str:
    """A name's id in conversations from before accounts, once its other side was given to an
    account (accounts/adopt.py): no user online or signed in ever has it."""
    return "n:" + name.casefold()


def guest_party(token_hash: str) -> str:
    """A guest's id in direct conversations, from its token's digest (roster.token_digest).

    Every connection presenting the guest's token, on any node, has it; whoever takes the name
    after the guest left gets a new token, so a new id, and none of the guest's conversations.
    Hashed again so that the id (stored in conversation keys) is not what the roster keeps.
    """
    return "g:" + hashlib.sha256(b"guest\x1f" + token_hash.encode()).hexdigest()[:32]

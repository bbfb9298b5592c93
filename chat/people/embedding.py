"""Connection tokens another application signs for its users (`--jwt-key`), as Centrifugo's.

The key is an HS256 secret (at least HS256_MIN_KEY_BYTES), or the path of a PEM public key:
RSA for RS256, EC P-256 for ES256. The algorithm follows from the key and is the only one
accepted: `none`, and an HS256 token made with the public key as its secret (the classic
confusion), are refused. A token must carry `sub` (the application's id of the user), `name`
(the username it chats as) and `exp`; it is refused once expired.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

# RFC 7518 section 3.2: an HS256 key must be at least as long as the hash (256 bits).
HS256_MIN_KEY_BYTES = 32
# How far a token's `exp` may lie behind this server's clock (s): clocks of two hosts differ.
LEEWAY_S = 5
SUB_MAX_CHARS = 128  # the party id is kept in direct conversations' keys


class Embedded(NamedTuple):
    """A user another application vouches for: its id there, its name, when that ends."""

    sub: str
    name: str
    expires: float  # Unix time (s)


class JwtError(ValueError):
    """A --jwt-key that cannot be used (the message names it)."""


class Verifier:
    """Checks connection tokens with one key and its one algorithm."""

    def __init__(self, key: Any, algorithm: str) -> None:
        self.key = key
        self.algorithm = algorithm

    @classmethod
    def from_setting(cls, value: str) -> Verifier:
        """The verifier of a --jwt-key value: a PEM public key file, else an HS256 secret."""
        path = Path(value)
        if path.is_file():
            try:
                key = load_pem_public_key(path.read_bytes())
            except (ValueError, TypeError, OSError) as exc:
                raise JwtError(f"--jwt-key {value!r} is not a PEM public key: {exc}") from None
            if isinstance(key, rsa.RSAPublicKey):
                return cls(key, "RS256")
            if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
                return cls(key, "ES256")
            raise JwtError(f"--jwt-key {value!r} must be an RSA (RS256) or EC P-256 (ES256) "
                           "public key")
        if len(value.encode()) < HS256_MIN_KEY_BYTES:
            raise JwtError(f"--jwt-key is neither a file nor an HS256 secret of at least "
                           f"{HS256_MIN_KEY_BYTES} bytes (it has {len(value.encode())})")
        return cls(value.encode(), "HS256")

    def check(self, token: str) -> Embedded | None:
        """The user a valid, unexpired token names; None for any other token."""
        try:
            claims = jwt.decode(token, self.key, algorithms=[self.algorithm], leeway=LEEWAY_S,
                                options={"require": ["sub", "name", "exp"]})
        except jwt.PyJWTError:
            return None
        sub, name, exp = claims.get("sub"), claims.get("name"), claims.get("exp")
        if not (isinstance(sub, str) and 0 < len(sub) <= SUB_MAX_CHARS
                and sub.isprintable()  # no separator of a conversation's key
                and isinstance(name, str) and isinstance(exp, int | float)):
            return None
        return Embedded(sub, name, float(exp))


def looks_like_jwt(token: str) -> bool:
    """A JWS compact token has two dots; a session token (URL-safe base64) has none."""
    return token.count(".") == 2


def remaining(embedded: Embedded) -> float:
    """Seconds until the token expires (at least 0)."""
    return max(0.0, embedded.expires - time.time())

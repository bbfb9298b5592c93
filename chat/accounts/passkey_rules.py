"""What a passkey ceremony may be: the Relying Party, the limits, labels, descriptors and the
refusals (chat/accounts/passkeys.py runs the ceremonies with them)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from webauthn import base64url_to_bytes
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor

from chat.accounts.model import AccountError, Passkey

# How long a begun ceremony may be finished (ms): the browser's prompt gives up after
# CEREMONY_TIMEOUT_MS; the rest is room for a slow network. Past it the challenge is dead.
CHALLENGE_TTL_MS = 5 * 60 * 1000
# What the browser is told to wait for the person at the authenticator (ms).
CEREMONY_TIMEOUT_MS = 2 * 60 * 1000
CHALLENGE_BYTES = 32  # 256 random bits: no one guesses a challenge another was given
USER_HANDLE_BYTES = 16  # WebAuthn's user.id: random, so it tells nothing about the person
# Ceremonies one client address may have begun and not finished (within CHALLENGE_TTL_MS): a
# person needs one or two; a flood of begins cannot fill the database.
MAX_CHALLENGES_PER_ADDRESS = 20
# Passkeys one account may hold: a list someone can read at a glance, and a bound on rows.
MAX_PASSKEYS_PER_ACCOUNT = 20
LABEL_MAX_CHARS = 64  # a name to tell passkeys apart, shown in a list
KNOWN_TRANSPORTS = frozenset(t.value for t in AuthenticatorTransport)

# The decoy list a named sign-in shows for a name without passkeys (or no account), so that
# it reads as a name with some: one or two ids, each as long as a common authenticator's
# (bytes: Google Password Manager 16, iCloud Keychain 20, Windows Hello 32, a security key 64)
# with the transports browsers report for those. Derived by HMAC from a stored secret and the
# name's key: the same answer at every ask, on every node.
DECOY_SECRET = "passkey-decoys"
DECOY_ID_BYTES = (16, 20, 32, 64)
DECOY_TRANSPORTS = (("hybrid", "internal"), ("internal",), ("usb",), ("nfc", "usb"))

REFUSED = AccountError("invalid_passkey", "this passkey does not sign in here")
NO_CEREMONY = AccountError("invalid_challenge", "this passkey request is unknown, used or "
                           "expired; start again")


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """Who passkeys are made for: the RP ID (a host name), its name, the accepted origins."""

    id: str
    name: str
    origins: tuple[str, ...]


def challenge_hash(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def new_challenge() -> bytes:
    return secrets.token_bytes(CHALLENGE_BYTES)


def new_handle() -> str:
    return bytes_to_base64url(secrets.token_bytes(USER_HANDLE_BYTES))


def unb64(text: str) -> bytes:
    return base64url_to_bytes(text)


def descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    transports = [AuthenticatorTransport(t) for t in passkey.transports
                  if t in KNOWN_TRANSPORTS]
    return PublicKeyCredentialDescriptor(id=unb64(passkey.id), transports=transports or None)


def decoys(secret: bytes, name_key: str) -> list[PublicKeyCredentialDescriptor]:
    """The decoy allowCredentials of `name_key` (see DECOY_ID_BYTES): stable per secret."""

    def draw(label: str) -> bytes:
        return hmac.new(secret, f"{label}\0{name_key}".encode(), hashlib.sha512).digest()

    count = 1 + draw("count")[0] % 2
    made = []
    for index in range(count):
        drawn = draw(f"id {index}")
        kind = drawn[0] % len(DECOY_ID_BYTES)
        made.append(PublicKeyCredentialDescriptor(
            id=drawn[:DECOY_ID_BYTES[kind]],
            transports=[AuthenticatorTransport(t) for t in DECOY_TRANSPORTS[kind]]))
    return made


def check_label(label: str | None) -> str:
    text = " ".join((label or "").split())
    if len(text) > LABEL_MAX_CHARS:
        raise AccountError("invalid_label", f"a passkey's label is at most {LABEL_MAX_CHARS} "
                           f"characters; this one is {len(text)}")
    return text or "Passkey"


def malformed() -> AccountError:
    return AccountError("bad_request", "the credential is not a WebAuthn public key "
                        "credential in JSON (base64url fields)")


def too_many() -> AccountError:
    return AccountError("too_many_passkeys", f"an account holds at most "
                        f"{MAX_PASSKEYS_PER_ACCOUNT} passkeys; delete one first")


def taken() -> AccountError:
    return AccountError("passkey_taken", "this passkey is registered already")

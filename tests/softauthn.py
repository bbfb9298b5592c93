"""A software WebAuthn authenticator for API tests: a P-256 key per credential, attestation
'none', real ES256 assertion signatures (cryptography) over what a browser would send."""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

UP, UV, AT = 0x01, 0x04, 0x40  # authenticator data flags: user present, verified, attested


@dataclass
class SoftCredential:
    """One credential the authenticator holds."""

    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    @property
    def b64id(self) -> str:
        return bytes_to_base64url(self.id)


@dataclass
class SoftAuthenticator:
    """Makes credentials for creation options and assertions for request options, as a
    browser at `origin` would hand them to the page (PublicKeyCredential JSON)."""

    origin: str
    credentials: list[SoftCredential] = field(default_factory=list)

    def create(self, options: dict[str, Any], *, origin: str | None = None,
               rp_id: str | None = None, credential_id: bytes | None = None) -> dict[str, Any]:
        """A registration credential for `options` (what navigator.credentials.create gives);
        `credential_id` to make one with an id chosen by the test."""
        rp = rp_id or options["rp"]["id"]
        cred = SoftCredential(credential_id or secrets.token_bytes(32),
                              ec.generate_private_key(ec.SECP256R1()),
                              rp, base64url_to_bytes(options["user"]["id"]))
        self.credentials.append(cred)
        numbers = cred.key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})
        attested = bytes(16) + struct.pack(">H", len(cred.id)) + cred.id + cose
        auth_data = (hashlib.sha256(rp.encode()).digest() + bytes([UP | UV | AT])
                     + struct.pack(">I", cred.sign_count) + attested)
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": cred.b64id, "rawId": cred.b64id, "type": "public-key",
            "response": {"clientDataJSON": bytes_to_base64url(client_data),
                         "attestationObject": bytes_to_base64url(attestation),
                         "transports": ["internal"]},
            "clientExtensionResults": {}, "authenticatorAttachment": "platform",
        }

    def get(self, options: dict[str, Any], *, credential: SoftCredential | None = None,
            origin: str | None = None, sign_count: int | None = None) -> dict[str, Any]:
        """An assertion for `options` by `credential` (else the first allowed or held)."""
        if credential is None:
            allowed = {c["id"] for c in options.get("allowCredentials", [])}
            credential = next(c for c in self.credentials if not allowed or c.b64id in allowed)
        credential.sign_count = (credential.sign_count + 1 if sign_count is None
                                 else sign_count)
        auth_data = (hashlib.sha256(credential.rp_id.encode()).digest() + bytes([UP | UV])
                     + struct.pack(">I", credential.sign_count))
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = credential.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                        ec.ECDSA(hashes.SHA256()))
        return {
            "id": credential.b64id, "rawId": credential.b64id, "type": "public-key",
            "response": {"clientDataJSON": bytes_to_base64url(client_data),
                         "authenticatorData": bytes_to_base64url(auth_data),
                         "signature": bytes_to_base64url(signature),
                         "userHandle": bytes_to_base64url(credential.user_handle)},
            "clientExtensionResults": {}, "authenticatorAttachment": "platform",
        }

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge,
                           "origin": origin or self.origin, "crossOrigin": False}).encode()

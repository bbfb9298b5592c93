"""Connection tokens signed by an embedding application (--jwt-key): only valid ones open."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from tornado.httpclient import HTTPClientError

from chat.config import ConfigError, Settings
from chat.people.embedding import Verifier
from chat_server import ChatApplication
from tests.helpers import ChatClient, Connect
from tests.test_auth_socket import REVOKED, error_of, in_two_calls, signed_up

SECRET = "an HS256 secret of more than 32 bytes, for tests"


def claims(**changes: Any) -> dict[str, Any]:
    """A valid payload for user `u-1` named `Zoe`, expiring in a minute, with `changes`."""
    payload = {"sub": "u-1", "name": "Zoe", "exp": int(time.time()) + 60, **changes}
    return {key: value for key, value in payload.items() if value is not None}


def unsigned(payload: dict[str, Any], alg: str = "none", key: bytes = b"") -> str:
    """A token built by hand: `alg` in its header, signed with HMAC-SHA256 over `key` if any."""
    header = jwt.utils.base64url_encode(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = jwt.utils.base64url_encode(json.dumps(payload).encode())
    mac = hmac.new(key, header + b"." + body, hashlib.sha256).digest() if key else b""
    return b".".join((header, body, jwt.utils.base64url_encode(mac))).decode()


def public_pem(private: Any, path: Path) -> str:
    path.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(path)


def test_each_key_kind_accepts_its_own_tokens_and_nothing_else(tmp_path: Path) -> None:
    """HS256, RS256 and ES256 keys take their valid tokens; `none`, another key, another
    algorithm (HS256 keyed with the public key), expired or incomplete tokens are refused."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_pem = public_pem(rsa_key, tmp_path / "rsa.pem")
    cases: list[tuple[Verifier, Any, str]] = [(Verifier.from_setting(SECRET), SECRET, "HS256"),
             (Verifier.from_setting(rsa_pem), rsa_key, "RS256"),
             (Verifier.from_setting(public_pem(ec_key, tmp_path / "ec.pem")), ec_key, "ES256")]
    for verifier, key, algorithm in cases:
        assert verifier.algorithm == algorithm
        good = verifier.check(jwt.encode(claims(), key, algorithm=algorithm))
        assert good is not None and (good.sub, good.name) == ("u-1", "Zoe")
        for bad in (claims(exp=int(time.time()) - 60), claims(sub=None), claims(name=None),
                    claims(exp=None)):
            assert verifier.check(jwt.encode(bad, key, algorithm=algorithm)) is None, bad
        assert verifier.check(unsigned(claims())) is None
    other = "another HS256 secret, also longer than 32 bytes"
    assert cases[0][0].check(jwt.encode(claims(), other, algorithm="HS256")) is None
    # The classic confusion: an HS256 token whose secret is the server's public key.
    forged = unsigned(claims(), "HS256", Path(rsa_pem).read_bytes())
    assert cases[1][0].check(forged) is None


def test_a_short_secret_or_a_file_that_is_no_public_key_is_a_config_error(tmp_path: Path) -> None:
    """--jwt-key names its problem in one line, never the secret itself."""
    with pytest.raises(ConfigError, match="at least 32 bytes") as caught:
        Settings(jwt_key="short secret")
    assert "short secret" not in str(caught.value)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(ConfigError, match="not a PEM public key"):
        Settings(jwt_key=str(junk))
    assert "jwt_key" not in repr(Settings(jwt_key=SECRET))


@pytest.mark.settings(jwt_key=SECRET)
@pytest.mark.gen_test(timeout=30)
async def test_a_signed_token_joins_as_its_user_and_a_bad_one_is_refused(
    app: ChatApplication, connect: Connect, ws_url: str,
) -> None:
    """A valid token joins under its `name`, not as a guest; forged, expired and `none`
    tokens get 401; a registered account's name is refused; at `exp` the socket closes."""
    zoe = await connect(Authorization=f"Bearer {jwt.encode(claims(), SECRET)}")
    welcome = await zoe.join("zoe")
    assert (welcome["username"], welcome["embedded"]) == ("Zoe", {"sub": "u-1"})
    assert "guest" not in welcome and "token" not in welcome
    assert (await error_of(zoe, {"type": "join", "username": "bob", "room": "x"}))["code"] == \
        "username_mismatch"
    for forged in (jwt.encode(claims(), "another HS256 secret, also longer than 32 bytes"),
                   jwt.encode(claims(exp=int(time.time()) - 60), SECRET),
                   unsigned(claims())):
        with pytest.raises(HTTPClientError) as caught:
            await ChatClient.connect(ws_url, Authorization=f"Bearer {forged}")
        assert caught.value.code == 401
    await signed_up(app, "alice")
    vouched = await connect(Authorization=f"Bearer {jwt.encode(claims(name='ALICE'), SECRET)}")
    assert (await error_of(vouched, {"type": "join"}))["code"] == "name_registered"
    guest = await connect()  # a guest cannot present the vouched user's roster token
    assert (await error_of(guest, {"type": "join", "username": "Zoe",
                                   "token": "jwt:u-1"}))["code"] == "username_taken"
    short = await connect(Authorization="Bearer " + jwt.encode(
        claims(sub="u-2", name="Yan", exp=time.time() + 1.5), SECRET))
    await short.join("Yan")
    assert await short.closed(10) == REVOKED
    await asyncio.sleep(0)


@pytest.mark.settings(jwt_key=SECRET)
@pytest.mark.gen_test(timeout=30)
async def test_tokens_upgraded_together_each_join_as_their_own_user(
    app: ChatApplication, ws_url: str,
) -> None:
    """Bound and unbound users' tokens checked together (their subs looked up in one call):
    each socket is its own user, a bound one its own account."""
    assert app.accounts is not None
    bound = {f"u-{i}": f"Bound{i}" for i in range(4)}
    for sub, name in bound.items():
        await app.accounts.external(sub, name)
    free = {f"f-{i}": f"Free{i}" for i in range(3)}
    users = {**bound, **free}
    opened = await in_two_calls(app, app.accounts.external_lookups, [
        ChatClient.connect(ws_url, Authorization="Bearer " + jwt.encode(
            claims(sub=sub, name=name), SECRET)) for sub, name in users.items()])
    for (sub, name), client in zip(users.items(), opened, strict=True):
        assert isinstance(client, ChatClient), client
        await client.send({"type": "join"})
        welcome = await client.recv_type("welcome")
        assert welcome["username"] == name
        if sub in bound:
            assert welcome["account"]["username"] == name and "embedded" not in welcome
        else:
            assert welcome["embedded"] == {"sub": sub} and "account" not in welcome
        client.close()

"""The HTTP API in a real chat_server.py with a database file: what reaches the disk and stderr."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest

from tests.apiclient import STRONG_PASSWORD
from tests.serverproc import Spawn, assert_clean, free_port

pytestmark = pytest.mark.subprocess


def call(port: int, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One request to the child; (status, JSON body or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        sent = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, None if body is None else json.dumps(body), sent)
        response = conn.getresponse()
        text = response.read()
    finally:
        conn.close()
    return response.status, json.loads(text) if text else None


def test_the_database_and_the_log_never_hold_a_password_or_a_token(
        spawn: Spawn, tmp_path: Path) -> None:
    """Register, sign in, fail, sign out: no password or raw token in the SQLite files or stderr."""
    port = free_port()
    db = tmp_path / "chat.db"
    child = spawn("--port", str(port), "--db", str(db), "--logging", "debug", ready_port=port)
    wrong = "a wrong passphrase here"
    assert call(port, "POST", "/api/v1/accounts",
                {"username": "alice", "password": STRONG_PASSWORD})[0] == 201
    assert call(port, "POST", "/api/v1/sessions", {"username": "alice", "password": wrong}
                )[0] == 401
    status, signed = call(port, "POST", "/api/v1/sessions",
                          {"username": "alice", "password": STRONG_PASSWORD})
    assert status == 200
    token = signed["token"]
    _, kept = call(port, "POST", "/api/v1/sessions",
                   {"username": "alice", "password": STRONG_PASSWORD})  # stays in the store
    assert call(port, "GET", "/api/v1/me", headers={"Authorization": f"Bearer {token}"}
                )[0] == 200
    assert call(port, "DELETE", "/api/v1/sessions/current",
                headers={"Cookie": f"chat_session={token}"})[0] == 204
    assert child.stop() == 0
    files = [path for path in tmp_path.iterdir() if path.name.startswith("chat.db")]
    stored = b"".join(path.read_bytes() for path in files)
    assert b"alice" in stored  # the account is in the file read
    assert kept["session"]["id"].encode() in stored  # and the live session
    for secret in (STRONG_PASSWORD, wrong, token, kept["token"]):
        assert secret.encode() not in stored
        assert secret not in child.stderr
    assert "signed in" in child.stderr
    assert_clean(child.stderr)

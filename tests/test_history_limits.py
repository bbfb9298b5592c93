"""History bounded in bytes: what a newcomer, a resume or a page is sent, and how fast pages go."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import ChatClient


async def recv_raw(client: ChatClient) -> tuple[dict[str, Any], int]:
    """The next frame and its size in bytes, as it came over the wire."""
    text = await client.conn.read_message()
    assert isinstance(text, str), "the connection closed"
    return json.loads(text), len(text.encode())


async def join_measured(client: ChatClient, **join: Any) -> tuple[int, dict[str, Any], int]:
    """Join; bytes of the `message` events read before the reply, the history and its size."""
    await client.send({"type": "join", **join})
    fed = 0
    while True:
        event, size = await recv_raw(client)
        if event["type"] == "message":
            fed += size
        elif event["type"] == "history":
            return fed, event, size


@pytest.mark.settings(rate_limit=0)
@pytest.mark.gen_test(timeout=60)
async def test_text_with_nul_characters_is_refused_and_newcomers_get_in(connect) -> None:
    """The lock-out attack: 50 texts of 4,000 NULs are refused; a newcomer joins as usual."""
    mallory = await connect()
    await mallory.join("mallory")
    for n in range(50):
        await mallory.send({"type": "message", "text": "\x00" * 4000, "cid": f"n{n}"})
        error = await mallory.recv_type("error")
        assert (error["code"], error["cid"]) == ("invalid_text", f"n{n}")
        assert "U+0000" in error["reason"]
    newcomer = await connect()
    fed, history, _ = await join_measured(newcomer, username="newcomer", room="dev")
    assert (fed, history["messages"]) == (0, [])

"""/metrics: Prometheus text with the counters the hub keeps."""

from __future__ import annotations

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.helpers import Connect


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.mark.gen_test
async def test_metrics_count_messages_deliveries_and_bytes(
    connect: Connect, http_port: int,
) -> None:
    """After one message to two members, /metrics shows it, its deliveries and the bytes."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")
    await bob.join("bob")
    await alice.send({"type": "message", "text": "counted"})
    await bob.recv_type("message")
    await bob.send("not json")
    await bob.recv_type("error")
    response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{http_port}/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.body.decode()
    assert sample(text, "chat_connections") == 2
    assert sample(text, "chat_users") == 2
    assert sample(text, "chat_rooms") == 1
    assert sample(text, "chat_messages_received_total") == 1
    assert sample(text, "chat_deliveries_total") == 2
    assert sample(text, "chat_errors_sent_total") == 1
    assert sample(text, "chat_threaded_flushes_total") == 0  # --send-threads 1: none
    # At least the message to each, the error to bob; at most one write per frame sent.
    assert 3 <= sample(text, "chat_socket_writes_total") <= sample(text, "chat_sent_bytes_total")
    assert sample(text, "chat_sent_bytes_total") > 200
    assert sample(text, "chat_store_write_seconds_count") == 1
    assert "chat_event_loop_lag_seconds_bucket" in text
    assert sample(text, "chat_evicted_slow_readers_total") == 0
    assert sample(text, "chat_broker_up") == 1
    assert sample(text, "chat_gap_fills_total") == 0

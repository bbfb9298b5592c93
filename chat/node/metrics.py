"""Prometheus metrics: read from the hub's status when scraped; the hot path only adds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chat.node.status import Status

# Seconds; a group commit takes ~1 ms on a local disk, a stalled loop shows up above 0.1 s.
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class SentBytes(Protocol):
    """What counts the bytes and writes to connections, and the flushes writer threads shared
    (handlers/outbox.py's Flusher)."""

    bytes_sent: int
    writes: int
    threaded_flushes: int


class StatusCollector(Collector):
    """Gauges and counters taken from the node's status at scrape time."""

    def __init__(self, status: Callable[[], Status], sent: SentBytes) -> None:
        self.status = status
        self.sent = sent

    def collect(self) -> Iterator[Metric]:
        status = self.status()
        gauges = (
            ("chat_connections", "Open WebSocket connections", status.connections),
            ("chat_users", "Joined users online", status.users),
            ("chat_rooms", "Rooms held", status.rooms),
            ("chat_broker_up", "1 while the broker reaches the other nodes (always, memory://)",
             int(status.broker_up)),
        )
        for name, doc, value in gauges:
            yield GaugeMetricFamily(name, doc, value=value)
        counters = (
            ("chat_messages_received", "Room and direct messages stored and sent",
             status.messages),
            ("chat_deliveries", "Message frames handed to connections", status.deliveries),
            ("chat_sent_bytes", "Bytes written to WebSocket connections", self.sent.bytes_sent),
            ("chat_socket_writes", "Writes to WebSocket connections (each carries every frame "
             "one connection was sent in one event-loop iteration)", self.sent.writes),
            ("chat_threaded_flushes", "Writes to many connections shared by --send-threads "
             "writer threads", self.sent.threaded_flushes),
            ("chat_evicted_slow_readers", "Connections dropped for not reading",
             status.evicted),
            ("chat_rate_limited_frames", "Frames refused by the rate limit",
             status.rate_limited),
            ("chat_errors_sent", "Error events sent to clients", status.errors),
            ("chat_store_failures", "Messages the store could not keep", status.store_failures),
            ("chat_gap_fills", "Rooms caught up from the store after the broker lost messages",
             status.gap_fills),
            ("chat_token_sockets", "WebSocket connections opened with an API token",
             status.token_sockets),
            ("chat_token_scope_refused_frames", "Frames refused on an API token's connection "
             "for a scope its token lacks", status.scope_refused),
        )
        for name, doc, value in counters:
            yield CounterMetricFamily(name, doc, value=value)


class Metrics:
    """One registry per application, so that tests can run several side by side.

    Made before the hub (which records store latency into it); report() then adds what the hub
    counts, read at each scrape.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.store_latency = Histogram(
            "chat_store_write_seconds", "Time from append to durable, per message",
            buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.loop_lag = Histogram(
            "chat_event_loop_lag_seconds", "How late a periodic loop callback ran",
            buckets=LATENCY_BUCKETS_S, registry=self.registry)

    def report(self, status: Callable[[], Status], sent: SentBytes) -> None:
        """Export the node's status and the bytes its connections were sent."""
        self.registry.register(StatusCollector(status, sent))

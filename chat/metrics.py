"""Prometheus metrics: read from the hub when scraped, so the hot path only bumps integers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chat.hub import Hub

# Seconds; a group commit takes ~1 ms on a local disk, a stalled loop shows up above 0.1 s.
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class HubCollector(Collector):
    """Gauges and counters taken from the hub at scrape time."""

    def __init__(self, hub: Hub, bytes_sent: Callable[[], int]) -> None:
        self.hub = hub
        self.bytes_sent = bytes_sent

    def collect(self) -> Iterator[Metric]:
        hub, stats = self.hub, self.hub.stats
        gauges = (
            ("chat_connections", "Open WebSocket connections", len(hub.clients)),
            ("chat_users", "Joined users online", len(hub.users)),
            ("chat_rooms", "Rooms held", len(hub.rooms)),
            ("chat_broker_up", "1 while the broker reaches the other nodes (always, memory://)",
             int(hub.broker.healthy)),
        )
        for name, doc, value in gauges:
            yield GaugeMetricFamily(name, doc, value=value)
        counters = (
            ("chat_messages_received", "Room and direct messages stored and sent",
             stats.messages),
            ("chat_deliveries", "Message frames handed to connections", stats.deliveries),
            ("chat_sent_bytes", "Bytes written to WebSocket connections", self.bytes_sent()),
            ("chat_evicted_slow_readers", "Connections dropped for not reading",
             stats.evicted),
            ("chat_rate_limited_frames", "Frames refused by the rate limit", stats.rate_limited),
            ("chat_errors_sent", "Error events sent to clients", stats.errors),
            ("chat_store_failures", "Messages the store could not keep", stats.store_failures),
            ("chat_gap_fills", "Rooms caught up from the store after the broker lost messages",
             stats.gap_fills),
        )
        for name, doc, value in counters:
            yield CounterMetricFamily(name, doc, value=value)


class Metrics:
    """One registry per application, so that tests can run several side by side."""

    def __init__(self, hub: Hub, bytes_sent: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(HubCollector(hub, bytes_sent))
        self.store_latency = Histogram(
            "chat_store_write_seconds", "Time from append to durable, per message",
            buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.loop_lag = Histogram(
            "chat_event_loop_lag_seconds", "How late a periodic loop callback ran",
            buckets=LATENCY_BUCKETS_S, registry=self.registry)
        hub.messages.observe_store_latency = self.store_latency.observe

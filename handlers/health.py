"""GET /healthz (is it serving, and how many) and GET /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado.web import RequestHandler

from chat.node.metrics import Metrics
from chat.node.status import Status

LOOP_LAG_INTERVAL_S = 0.5  # often enough to see a stall, rare enough to cost nothing


class HealthHandler(RequestHandler):
    """200 with counts while the server serves; 503 while the broker is down or appends fail."""

    def initialize(self, status: Callable[[], Status]) -> None:
        self.status = status

    def get(self) -> None:
        status = self.status()
        self.set_header("Cache-Control", "no-store")
        if not status.healthy:
            self.set_status(503)
        self.write({
            "status": "ok" if status.healthy else "unavailable",
            "broker": "up" if status.broker_up else "down",
            "store": "ok" if status.store_ok else "failing",
            "connections": status.connections,
            "users": status.users,
            "rooms": status.rooms,
            "uptime_s": round(status.uptime_s, 3),
        })


class MetricsHandler(RequestHandler):
    """GET /metrics in the Prometheus text format."""

    def initialize(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.write(generate_latest(self.metrics.registry))


class LoopLagMonitor:
    """Schedules a callback every `interval_s` and records how late it runs."""

    def __init__(self, metrics: Metrics, interval_s: float = LOOP_LAG_INTERVAL_S) -> None:
        self.metrics = metrics
        self.interval_s = interval_s
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(self.interval_s, self._tick, loop.time() + self.interval_s)

    def _tick(self, due: float) -> None:
        loop = asyncio.get_running_loop()
        self.metrics.loop_lag.observe(max(0.0, loop.time() - due))
        self._handle = loop.call_later(self.interval_s, self._tick, loop.time() + self.interval_s)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

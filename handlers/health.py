"""GET /healthz (is it serving, and how many) and GET /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado.web import RequestHandler

from chat.hub import Hub
from chat.metrics import Metrics

LOOP_LAG_INTERVAL_S = 0.5  # often enough to see a stall, rare enough to cost nothing


class HealthHandler(RequestHandler):
    """200 with counts while the server serves; 503 while the broker is down or appends fail."""

    def initialize(self, hub: Hub) -> None:
        self.hub = hub

    def get(self) -> None:
        hub = self.hub
        broker_up = hub.broker.healthy
        store_ok = not hub.stats.store_failing
        healthy = broker_up and store_ok
        self.set_header("Cache-Control", "no-store")
        if not healthy:
            self.set_status(503)
        self.write({
            "status": "ok" if healthy else "unavailable",
            "broker": "up" if broker_up else "down",
            "store": "ok" if store_ok else "failing",
            "connections": len(hub.clients),
            "users": len(hub.users),
            "rooms": len(hub.rooms),
            "uptime_s": round(time.monotonic() - hub.started, 3),
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

"""GET /healthz: is the process serving, and how many it serves."""

from __future__ import annotations

import time

from tornado.web import RequestHandler

from chat.hub import Hub


class HealthHandler(RequestHandler):
    """200 with counts while the server serves."""

    def initialize(self, hub: Hub) -> None:
        self.hub = hub

    def get(self) -> None:
        hub = self.hub
        self.set_header("Cache-Control", "no-store")
        self.write({
            "status": "ok",
            "connections": len(hub.clients),
            "users": len(hub.users),
            "rooms": len(hub.rooms),
            "uptime_s": round(time.monotonic() - hub.started, 3),
        })

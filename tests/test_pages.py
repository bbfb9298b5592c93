"""GET / and /healthz through Tornado's AsyncHTTPTestCase: content and security headers."""

from __future__ import annotations

import json
import logging

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.testing import AsyncHTTPTestCase, gen_test
from tornado.websocket import websocket_connect

from chat.config import Settings
from chat.store import SQLiteStore
from chat_server import ChatApplication, make_app
from handlers.pages import SECURITY_HEADERS
from tests.helpers import UPGRADE, Connect, raw_response

# What browsers accept for a module script (the HTML standard's JavaScript MIME types, in part).
JAVASCRIPT_TYPES = {"text/javascript", "application/javascript", "application/x-javascript"}


class PageTest(AsyncHTTPTestCase):
    def get_app(self) -> ChatApplication:
        self.store = SQLiteStore(":memory:")
        self.io_loop.run_sync(self.store.start)
        return make_app(Settings(ping_interval=0), self.store)

    def tearDown(self) -> None:
        self.http_server.stop()  # as super().tearDown() does (again, harmlessly), before the store
        self.io_loop.run_sync(self.http_server.close_all_connections)
        self.io_loop.run_sync(self.store.close)
        super().tearDown()

    def test_page_is_served_with_a_strict_content_security_policy(self) -> None:
        """The page allows only its own scripts and styles, and no framing."""
        response = self.fetch("/")
        assert response.code == 200
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp
        assert "'unsafe-inline'" not in csp
        assert "'unsafe-eval'" not in csp
        assert "frame-ancestors 'none'" in csp
        assert "img-src 'self' data:;" in csp  # no other host: avatars are drawn (--avatars)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"

    def test_head_of_the_page_has_its_headers_and_no_body(self) -> None:
        """HEAD / answers like GET / without the body."""
        response = self.fetch("/", method="HEAD")
        assert response.code == 200
        assert response.body == b""
        assert "Content-Security-Policy" in response.headers

    def test_static_files_carry_the_same_headers(self) -> None:
        """Static files are served with nosniff and the policy too."""
        response = self.fetch("/static/style.css")
        assert response.code == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" in response.headers

    def test_page_modules_are_served_as_javascript(self) -> None:
        """The page's ES modules come with a JavaScript MIME type, which browsers require."""
        page = self.fetch("/").body.decode()
        assert '<script type="module" src="/static/js/main.js?v=' in page
        for path in ("/static/js/main.js", "/static/js/state/index.js", "/static/js/vue.js"):
            response = self.fetch(path)
            assert response.code == 200, path
            assert response.headers["Content-Type"].split(";")[0] in JAVASCRIPT_TYPES, path

    def test_plain_static_urls_are_revalidated_and_versioned_ones_cached(self) -> None:
        """A module imported by its plain URL is asked for again; a ?v= URL is kept long."""
        plain = self.fetch("/static/js/main.js")
        assert plain.headers["Cache-Control"] == "no-cache"
        unchanged = self.fetch("/static/js/main.js",
                               headers={"If-None-Match": plain.headers["Etag"]})
        assert unchanged.code == 304
        versioned = self.fetch("/static/js/main.js?v=1")
        assert versioned.headers["Cache-Control"].startswith("max-age=")

    def test_healthz_reports_counts(self) -> None:
        """/healthz answers 200 with connections, users, rooms, uptime and the broker's state."""
        body = json.loads(self.fetch("/healthz").body)
        assert (body["status"], body["broker"]) == ("ok", "up")
        # No room yet: the hub starts (and opens `general`) with the first connection.
        assert (body["connections"], body["users"], body["rooms"]) == (0, 0, 0)
        assert body["uptime_s"] >= 0

    @gen_test
    async def test_healthz_counts_a_joined_user(self) -> None:
        """A joined connection shows in /healthz."""
        conn = await websocket_connect(self.get_url("/ws").replace("http", "ws"))
        await conn.write_message(json.dumps({"type": "join", "username": "hc", "room": "x"}))
        assert json.loads(await conn.read_message() or "")["type"] == "welcome"
        response = await self.http_client.fetch(self.get_url("/healthz"))
        body = json.loads(response.body)
        assert (body["connections"], body["users"], body["rooms"]) == (1, 1, 2)
        conn.close()

    def test_unknown_path_is_404(self) -> None:
        """Paths outside the route table are 404."""
        assert self.fetch("/nope").code == 404


@pytest.mark.gen_test
async def test_upgrades_are_logged_only_at_debug(
    connect: Connect, http_port: int, caplog: pytest.LogCaptureFixture,
) -> None:
    """A WebSocket upgrade writes no access-log line at INFO; a 404 still does."""
    caplog.set_level(logging.INFO, logger="tornado.access")
    await connect()
    with pytest.raises(HTTPClientError):
        await AsyncHTTPClient().fetch(f"http://127.0.0.1:{http_port}/missing")
    lines = [r.getMessage() for r in caplog.records if r.name == "tornado.access"]
    assert not [line for line in lines if line.startswith("101 ")]
    assert [line for line in lines if line.startswith("404 GET /missing")]


@pytest.mark.gen_test
@pytest.mark.parametrize(("request_text", "status"), [
    ("GET /healthz HTTP/1.1\nHost: 127.0.0.1\n", 200),
    ("GET /metrics HTTP/1.1\nHost: 127.0.0.1\n", 200),
    ("GET /nowhere HTTP/1.1\nHost: 127.0.0.1\n", 404),
    ("GET /ws HTTP/1.1\nHost: 127.0.0.1\n", 400),
    ("GET /ws HTTP/1.1\nHost: 127.0.0.1\nOrigin: https://evil.example\n" + UPGRADE, 403),
    ("GET /ws HTTP/1.1\nHost: evil.example\n", 400),
])
async def test_every_response_carries_the_security_headers(
        http_server: HTTPServer, http_port: int, request_text: str, status: int) -> None:
    """Health, metrics, 404s and /ws refusals carry the page's security headers too."""
    code, headers = await raw_response(http_port, request_text)
    assert code == status
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name.lower()) == value, name


@pytest.mark.gen_test
@pytest.mark.parametrize("request_text", [
    "GET / HTTP/1.1\nHost: 127.0.0.1\n",
    "GET /nowhere HTTP/1.1\nHost: 127.0.0.1\n",
    "GET /ws HTTP/1.1\nHost: 127.0.0.1\n" + UPGRADE,
])
async def test_no_response_names_the_server_software(http_server: HTTPServer, http_port: int,
                                                     request_text: str) -> None:
    """No response, WebSocket upgrades included, has a Server header naming Tornado."""
    code, headers = await raw_response(http_port, request_text)
    assert code in (200, 404, 101)
    assert "server" not in headers

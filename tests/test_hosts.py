"""The Host check: names the server does not serve get 400 on every path, /ws included."""

from __future__ import annotations

import pytest
from tornado.httpserver import HTTPServer

from handlers.hosts import HostCheck, host_name
from tests.helpers import UPGRADE, raw_response


@pytest.mark.parametrize(("header", "name"), [
    ("LocalHost:8000", "localhost"), ("[::1]:8000", "::1"), ("[::1]", "::1"),
    ("127.0.0.1:80", "127.0.0.1"), ("chat.example.org.", "chat.example.org"), ("::1", "::1"),
])
def test_host_name(header: str, name: str) -> None:
    """A Host header's name, without port, brackets, case or final dot."""
    assert host_name(header) == name


def test_host_check_allows_addresses_localhost_and_listed_names() -> None:
    """IP addresses and localhost always pass; names only when listed; * lets all pass."""
    check = HostCheck(["chat.example.org"])
    assert all(check.allows(h) for h in ("10.1.2.3:8000", "[2001:db8::1]", "localhost",
                                         "chat.example.org:443"))
    assert not any(check.allows(h) for h in ("evil.example", "127.0.0.1.evil.example",
                                             "localhost.evil.example", "example.org"))
    assert HostCheck(["*"]).allows("anything.example")


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/", "/healthz", "/metrics", "/static/style.css", "/nowhere"])
async def test_a_request_for_another_host_gets_400_on_every_route(
        http_server: HTTPServer, http_port: int, path: str) -> None:
    """A Host the server does not serve (a DNS-rebinding page) gets 400 on any path."""
    request = f"GET {path} HTTP/1.1\nHost: {{}}:{http_port}\n"
    code, _ = await raw_response(http_port, request.format("evil.example"))
    assert code == 400
    code, _ = await raw_response(http_port, request.format("localhost"))
    assert code in (200, 404)


@pytest.mark.gen_test
async def test_a_dns_rebinding_page_cannot_open_the_websocket(
    http_server: HTTPServer, http_port: int,
) -> None:
    """An upgrade whose Origin matches its Host passes only if the Host is served."""
    rebound = f"evil.example:{http_port}"
    code, _ = await raw_response(
        http_port, f"GET /ws HTTP/1.1\nHost: {rebound}\nOrigin: http://{rebound}\n" + UPGRADE)
    assert code == 400
    for host in (f"127.0.0.1:{http_port}", f"localhost:{http_port}", f"[::1]:{http_port}",
                 "127.0.0.1", "localhost"):
        code, _ = await raw_response(
            http_port, f"GET /ws HTTP/1.1\nHost: {host}\nOrigin: http://{host}\n" + UPGRADE)
        assert code == 101, host


@pytest.mark.settings(allowed_hosts=["chat.example.org"])
@pytest.mark.gen_test
async def test_allowed_hosts_names_the_public_name(http_server: HTTPServer, http_port: int) -> None:
    """A name in --allowed-hosts is served, with or without a port, in any case."""
    for host in ("chat.example.org", "CHAT.example.org:443", "chat.example.org."):
        code, _ = await raw_response(http_port, f"GET /healthz HTTP/1.1\nHost: {host}\n")
        assert code == 200, host
    code, _ = await raw_response(http_port, "GET /healthz HTTP/1.1\nHost: example.org\n")
    assert code == 400

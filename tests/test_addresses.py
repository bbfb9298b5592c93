"""Per-address limits count IPv6 by /64 and IPv4-mapped IPv6 as IPv4, over real sockets too."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from tornado.httpclient import HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets

from chat.addresses import address_group
from chat.config import Settings
from chat.store import SQLiteStore
from chat_server import make_app
from handlers.httpserver import chat_http_server
from tests.helpers import ChatClient


@pytest.mark.parametrize(("address", "group"), [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8::1", "2001:db8::/64"),
    ("2001:db8::ffff:1234:5678:9abc", "2001:db8::/64"),
    ("2001:DB8:0:0:1::1", "2001:db8::/64"),
    ("2001:db8:0:1::1", "2001:db8:0:1::/64"),
    ("::1", "::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("fe80::1%eth0", "fe80::/64"),
    ("", ""),
    ("not:an:address", "not:an:address"),
])
def test_address_group(address: str, group: str) -> None:
    """IPv4 counts alone, IPv6 by /64, IPv4-mapped IPv6 as its IPv4 address."""
    assert address_group(address) == group


@pytest.mark.settings(xheaders=True, max_connections_per_ip=1)
@pytest.mark.gen_test
async def test_one_ipv6_64_counts_as_one_address(http_server: HTTPServer, ws_url: str) -> None:
    """Two addresses of one /64 share the per-address limit; another /64 has its own."""
    first = await ChatClient.connect(ws_url, **{"X-Real-IP": "2001:db8::1"})
    with pytest.raises(HTTPClientError) as caught:
        await ChatClient.connect(ws_url, **{"X-Real-IP": "2001:db8::2:3:4:5"})
    assert caught.value.code == 429
    assert caught.value.response is not None
    assert b"2001:db8::/64 already has 1 connections" in caught.value.response.body
    other = await ChatClient.connect(ws_url, **{"X-Real-IP": "2001:db8:0:1::1"})
    first.close()
    other.close()


@pytest.mark.settings(xheaders=True, max_connections_per_ip=1)
@pytest.mark.gen_test
async def test_an_ipv4_mapped_address_counts_as_its_ipv4_address(
    http_server: HTTPServer, ws_url: str,
) -> None:
    """::ffff:198.51.100.7 and 198.51.100.7 are one address for the limit."""
    first = await ChatClient.connect(ws_url, **{"X-Real-IP": "198.51.100.7"})
    with pytest.raises(HTTPClientError) as caught:
        await ChatClient.connect(ws_url, **{"X-Real-IP": "::ffff:198.51.100.7"})
    assert caught.value.code == 429
    first.close()


def ipv6_loopback() -> bool:
    """Whether this machine can bind a socket to ::1."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
def ipv6_port(io_loop: IOLoop) -> Iterator[int]:
    """The app (max-connections-per-ip 1) served on [::1]; skips without IPv6 loopback."""
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) on this machine")
    settings = Settings(ping_interval=0, max_connections_per_ip=1)
    store = SQLiteStore(":memory:")
    io_loop.run_sync(store.start)
    server = chat_http_server(make_app(settings, store), settings)
    sockets = bind_sockets(0, "::1", family=socket.AF_INET6)
    server.add_sockets(sockets)
    yield sockets[0].getsockname()[1]
    server.stop()
    io_loop.run_sync(server.close_all_connections)
    io_loop.run_sync(store.close)


@pytest.mark.gen_test
async def test_the_limit_counts_ipv6_loopback_by_64(ipv6_port: int) -> None:
    """Over a real IPv6 socket the limit counts the peer's /64 (::/64 for ::1)."""
    url = f"ws://[::1]:{ipv6_port}/ws"
    first = await ChatClient.connect(url)
    with pytest.raises(HTTPClientError) as caught:
        await ChatClient.connect(url)
    assert caught.value.code == 429
    assert caught.value.response is not None
    assert b"::/64 already has 1 connections" in caught.value.response.body
    first.close()

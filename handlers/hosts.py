"""The Host check: a request naming a host the server does not serve gets 400, on every route.

A DNS-rebinding page (http://evil.example:8000/, its name re-pointed at 127.0.0.1) is, to the
browser, same-origin with itself: its Origin matches its Host and it passes the WebSocket
origin check. Only the Host header gives it away. A Host that is an IP address cannot be
rebound, nor can `localhost`; any other name must be listed in --allowed-hosts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from tornado.web import RequestHandler

ALWAYS_ALLOWED = frozenset({"localhost"})


def host_name(host: str) -> str:
    """The name in a Host header: lower case, without port, brackets or final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        name = host.partition(":")[0]
    else:
        name = host  # a name, an IPv4 address, or a bare IPv6 address
    return name.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostCheck:
    """Which Host headers the server answers: localhost, IP addresses, and the names given."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(host_name(name) for name in names) | ALWAYS_ALLOWED
        self.any = "*" in self.names

    def allows(self, host: str) -> bool:
        name = host_name(host)
        return self.any or name in self.names or _is_ip(name)


class WrongHostHandler(RequestHandler):
    """400 to any method: the request names a host this server does not serve."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def prepare(self) -> None:
        self.set_status(400)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(f"this server does not answer to the host {host_name(self.request.host)!r};"
                    " its operator lists the names it serves in --allowed-hosts\n")

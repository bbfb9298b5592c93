"""Outgoing webhooks call only public addresses: every address a host resolves to is checked
at each call, and the call connects only to the addresses checked (no DNS rebinding between
the check and the connection), unless --webhook-allow-private."""

from __future__ import annotations

import ipaddress
import socket

from tornado.netutil import DefaultLoopResolver, Resolver


class RefusedAddress(OSError):
    """The host resolves to an address outgoing webhooks may not call; str() names it."""


def refusal(address: str) -> str | None:
    """Why an outgoing call may not go to `address`, or None for a public address."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return "it is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for kind, hit in (("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
                      ("private", ip.is_private), ("multicast", ip.is_multicast),
                      ("reserved", ip.is_reserved), ("unspecified", ip.is_unspecified)):
        if hit:
            return f"{address} is a {kind} address"
    if not ip.is_global:  # shared (100.64/10), documentation and other non-public ranges
        return f"{address} is not a public address"
    return None


class GuardedResolver(Resolver):
    """The default resolver, refusing a host any of whose addresses is not public."""

    def initialize(self, allow_private: bool = False) -> None:
        self.resolver = DefaultLoopResolver()
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC,
    ) -> list[tuple[int, object]]:
        found = await self.resolver.resolve(host, port, family)
        if not self.allow_private:
            for _, address in found:
                why = refusal(str(address[0]))
                if why is not None:
                    raise RefusedAddress(f"{host} resolves to {why} (--webhook-allow-private "
                                         "is off)")
        return list(found)

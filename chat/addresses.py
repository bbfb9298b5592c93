"""Client addresses as the per-address limits count them: IPv4 alone, IPv6 by /64."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

# One subscriber, one household or one host is usually given a whole IPv6 /64 (RFC 6177), so
# counting each address alone would give a single party 2^64 separate allowances.
IPV6_GROUP_PREFIX = 64


def address_group(address: str) -> str:
    """The key a per-address limit counts `address` under.

    An IPv4 address is its own key; an IPv6 address counts under its /64 ("2001:db8::/64"),
    an IPv4-mapped one (::ffff:192.0.2.1) under its IPv4 address. Anything that is not an IP
    address (a Unix socket's empty name) is its own key.
    """
    if ":" not in address:
        return address  # IPv4 (or no address): the common case, without parsing
    return _ipv6_group(address)


@lru_cache(maxsize=4096)  # parsing costs ~10 us; one address opens and closes many connections
def _ipv6_group(address: str) -> str:
    try:
        ip = ipaddress.IPv6Address(address.partition("%")[0])  # without a zone (fe80::1%eth0)
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    host_bits = 128 - IPV6_GROUP_PREFIX
    prefix = ipaddress.IPv6Address(int(ip) >> host_bits << host_bits)
    return f"{prefix}/{IPV6_GROUP_PREFIX}"

"""Where a request comes from, as the rate limits and the login throttle count it.

Behind a load balancer every connection comes from the balancer. With TRUSTED_PROXIES set (IP
addresses or networks of the proxies in front of ragsite), a connection from one of them is
attributed to the address its X-Forwarded-For names: read right to left (each proxy appends
the address it received the request from), skipping trusted hops, the first address that is not
a trusted proxy is the client. Entries to its left were written by the client itself and are
never believed. A connection from anywhere else is its own address, whatever it claims.
"""

import functools
import ipaddress
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.cache
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def trusted_networks() -> tuple[Network, ...]:
    return _networks(tuple(settings.TRUSTED_PROXIES))


def _ip(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def _trusted(address: Address | None, networks: tuple[Network, ...]) -> bool:
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def client_address(peer: str | None, forwarded_for: str | None) -> str | None:
    """The client's address: `peer` (the connection's), or what trusted proxies report."""
    networks = trusted_networks()
    if not networks or not forwarded_for or not _trusted(_ip(peer or ""), networks):
        return peer
    client = peer
    for entry in reversed(forwarded_for.split(",")):
        address = _ip(entry)
        if address is None:  # not an address: nothing further left can be trusted
            break
        client = str(address)
        if not _trusted(address, networks):
            break
    return client


def scope_client_address(scope: Mapping[str, Any]) -> str | None:
    """client_address() of an ASGI scope (the websocket's handshake)."""
    peer = (scope.get("client") or (None, None))[0]
    forwarded = [
        value.decode("latin1")
        for name, value in scope.get("headers", ())
        if name.lower() == b"x-forwarded-for"
    ]
    return client_address(peer, ",".join(forwarded) or None)


def request_client_address(request: HttpRequest) -> str | None:
    return client_address(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))

"""Who is on the other end: the client's address behind trusted proxies, and address lists.

Behind a reverse proxy every request comes from the proxy's address, so the login rate limit
and the metrics allow-list need the address the proxy saw. `X-Forwarded-For` is believed only
when the peer is a trusted proxy (`CASESCOPE_TRUSTED_PROXIES`); the client is then the
right-most address in it that is not itself a trusted proxy (each proxy appends the address
it saw, so everything left of that one may be forged by the client).
"""

from __future__ import annotations

import re
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from starlette.requests import HTTPConnection

from casescope.config import Settings
from casescope.errors import CasescopeError

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address
#: Longest client key kept from a forwarded header (a key of the rate limit, never a path).
MAX_CLIENT_CHARS = 64
FORWARD_HEADERS = ("x-forwarded-for", "forwarded")


@lru_cache(maxsize=64)
def parse_networks(text: str, setting: str) -> tuple[Network, ...]:
    """Comma- or space-separated addresses and CIDRs; a bad entry names its setting."""
    networks = []
    for item in re.split(r"[,\s]+", text.strip()):
        if not item:
            continue
        try:
            networks.append(ip_network(item.strip("[]"), strict=False))
        except ValueError:
            raise CasescopeError(
                f"CASESCOPE_{setting.upper()}: {item!r} is not an IP address or CIDR"
            ) from None
    return tuple(networks)


def check_address_settings(settings: Settings) -> None:
    """Refuse bad address lists at start (serve), not at the first request."""
    parse_networks(settings.trusted_proxies, "trusted_proxies")
    parse_networks(settings.metrics_allow, "metrics_allow")


def _address(text: str) -> Address | None:
    """An address from a header hop or peer: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ip_address(text)
    except ValueError:
        return None


def in_networks(text: str, networks: tuple[Network, ...]) -> bool:
    address = _address(text)
    return address is not None and any(address in network for network in networks)


def _hops(connection: HTTPConnection) -> list[str]:
    values = connection.headers.getlist("x-forwarded-for")
    return [hop.strip() for value in values for hop in value.split(",") if hop.strip()]


def _peer(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else ""


def client_address(connection: HTTPConnection, settings: Settings) -> str:
    """The client's address: the peer, or behind trusted proxies the right-most untrusted hop
    of `X-Forwarded-For` (the left-most hop when every one is trusted)."""
    peer = _peer(connection)
    trusted = parse_networks(settings.trusted_proxies, "trusted_proxies")
    if not trusted or not in_networks(peer, trusted):
        return peer or "?"
    hops = _hops(connection)
    for hop in reversed(hops):
        if not in_networks(hop, trusted):
            address = _address(hop)
            return str(address) if address else hop[:MAX_CLIENT_CHARS]
    return hops[0][:MAX_CLIENT_CHARS] if hops else peer


def in_metrics_allow_list(connection: HTTPConnection, settings: Settings) -> bool:
    """Whether the client may read `/metrics` and the details of `/health` without a login.

    A request carrying forwarding headers from a peer that is not a trusted proxy is refused:
    that peer is most likely a proxy nobody configured, on loopback, speaking for anyone.
    """
    peer = _peer(connection)
    trusted = parse_networks(settings.trusted_proxies, "trusted_proxies")
    forwarded = any(name in connection.headers for name in FORWARD_HEADERS)
    if forwarded and not in_networks(peer, trusted):
        return False
    allowed = parse_networks(settings.metrics_allow, "metrics_allow")
    return in_networks(client_address(connection, settings), allowed)

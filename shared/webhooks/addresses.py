"""Where a receiver may be: http(s) URLs whose host resolves only to public addresses, unless
WEBHOOK_ALLOW_PRIVATE_ADDRESSES says otherwise (a receiver on a private network of one's own).
Checked when a subscription is made and again, by address, at every delivery, which then connects
to the address it checked: a name that resolves to a public address when asked and to a private
one a moment later (DNS rebinding) cannot send the request inside."""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000


class RefusedAddress(ValueError):
    """The URL is malformed or leads to an address receivers may not have."""


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # as written in the URL: for TLS
    netloc: str  # host and port as written in the URL: the Host header
    port: int
    path: str  # with the query, as the request line has it
    address: str  # the checked address to connect to


def check(url: str, *, allow_private: bool) -> Target:
    parts = urlsplit(url)
    if len(url) > MAX_URL_LENGTH or parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedAddress("a receiver URL is http:// or https:// with a host, at most 2000 characters")
    if parts.username or parts.password:
        raise RefusedAddress("a receiver URL carries no user or password")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        # An IPv4 or IPv6 socket address starts with the address as text (typeshed allows an int).
        found = {str(info[4][0])
                 for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError) as exc:
        raise RefusedAddress(f"the host {parts.hostname!r} does not resolve") from exc
    addresses = sorted(found)
    if not allow_private:
        refused = [a for a in addresses if not _public(a)]
        if refused:
            raise RefusedAddress(f"the host {parts.hostname!r} resolves to a private, loopback or "
                                 f"link-local address ({refused[0]})")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, parts.scheme, parts.hostname, parts.netloc, port, path, addresses[0])


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast

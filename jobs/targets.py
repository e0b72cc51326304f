"""Webhook targets: a URL checked against SSRF, and the one address it resolved to.

The API vets a `Webhook-Url` when it accepts a job, and the worker vets it again before each
attempt, then connects to the address it checked, never to a second lookup's answer (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_CHARS = 2_048
Resolver = Callable[[str, int], Sequence[str]]


class RefusedError(ValueError):
    """A webhook URL that may not be called, with the reason."""


@dataclass(frozen=True)
class Target:
    """A vetted webhook URL: where to connect (`address`), and what to say to it (Host, path)."""

    scheme: str
    host: str
    port: int
    netloc: str
    path: str
    address: str


def resolve(host: str, port: int) -> list[str]:
    """Return every address a host name resolves to for a TCP connection."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def vet(url: str, allow_private: bool, allowed_hosts: Sequence[str] = (), resolver: Resolver = resolve) -> Target:
    """Return the target of a webhook URL, or raise Refused saying why it may not be called.

    Only http(s); no user:password@; plain http and loopback, private, link-local (the cloud metadata
    address too) or reserved addresses only with `allow_private`; never an unspecified or multicast
    one. Every address the name resolves to must pass, so a name cannot smuggle one in beside a public one.
    """
    if len(url) > MAX_URL_CHARS or not url.isascii() or not url.isprintable() or " " in url:
        raise RefusedError(f"not a URL of at most {MAX_URL_CHARS} printable ASCII characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedError(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise RefusedError(f"the scheme must be https, not {scheme or 'none'!r}")
    if scheme == "http" and not allow_private:
        raise RefusedError("plain http is not allowed here; use https")
    if parts.username is not None or parts.password is not None:
        raise RefusedError("credentials in the URL are not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise RefusedError("the URL names no host")
    if allowed_hosts and not any(host == name or (name.startswith(".") and host.endswith(name))
                                 for name in allowed_hosts):  # fmt: skip
        raise RefusedError(f"host {host!r} is not in WEBHOOK_ALLOWED_HOSTS")
    port = port or (443 if scheme == "https" else 80)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = list(resolver(host, port))
        except (OSError, UnicodeError) as exc:
            raise RefusedError(f"host {host!r} does not resolve: {exc}") from None
    if not addresses:
        raise RefusedError(f"host {host!r} resolves to no address")
    for address in addresses:
        _check_address(host, address, allow_private)
    path = parts.path or "/"
    return Target(scheme, host, port, parts.netloc, f"{path}?{parts.query}" if parts.query else path, addresses[0])


def _check_address(host: str, address: str, allow_private: bool) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        raise RefusedError(f"host {host!r} is at {ip}, which is not a destination")
    if not allow_private and not ip.is_global:
        kind = "loopback" if ip.is_loopback else "link-local" if ip.is_link_local else "private or reserved"
        raise RefusedError(f"host {host!r} is at {ip}, a {kind} address")

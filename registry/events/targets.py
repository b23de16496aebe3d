"""Where a webhook may be sent: URL checks and the SSRF guard.

A target is refused when its host is, or resolves to, any address that is not globally
routable (private, loopback, link-local such as 169.254.169.254, multicast, reserved,
unspecified, shared address space), unless the operator's allow-list
(``REGISTRY_WEBHOOKS__ALLOW_PRIVATE_TARGETS``: CIDRs or exact host names) permits it.

The check runs when a subscription is created *and* before every connection: the name is
resolved again, every address is checked, and the request is sent to one of the checked
addresses (the original host goes in the ``Host`` header and the TLS server name), so a DNS
answer that changes between check and connect (rebinding) cannot redirect the request.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from registry.errors import InvalidWebhookUrl, WebhookTargetBlocked

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
MAX_URL = 2048


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed webhook URL."""

    url: str
    scheme: str
    host: str  # lower-cased, without IPv6 brackets
    port: int


@dataclass(frozen=True, slots=True)
class AllowList:
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Sequence[str]) -> AllowList:
        networks, hosts = [], set()
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                hosts.add(entry.strip().lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def permits(self, host: str, address: IPAddress) -> bool:
        return host in self.hosts or any(address in net for net in self.networks)


def parse_url(url: str) -> Target:
    """An absolute http(s) URL with a host, no credentials and no fragment."""
    if not url or len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidWebhookUrl("not a usable URL", context={"url": url[:200]})
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhookUrl(f"not a usable URL: {exc}", context={"url": url[:200]}) from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidWebhookUrl("webhook URLs must be http or https", context={"url": url})
    if not parts.hostname:
        raise InvalidWebhookUrl("webhook URL has no host", context={"url": url})
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidWebhookUrl("webhook URLs may not carry credentials", context={"url": url})
    if parts.fragment or url.endswith("#"):
        raise InvalidWebhookUrl("webhook URLs may not carry a fragment", context={"url": url})
    host = parts.hostname.lower().rstrip(".")
    return Target(url, scheme, host, port or (443 if scheme == "https" else 80))


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def blocked(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def checked_addresses(
    target: Target, allow: AllowList, resolver: Resolver = system_resolver
) -> list[str]:
    """Resolve ``target``'s host and check every address; the addresses (all of them allowed),
    or ``webhook_target_blocked``. An IP literal is checked as it is."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        names = [str(literal)]
    else:
        try:
            names = resolver(target.host, target.port)
        except (OSError, UnicodeError) as exc:
            raise WebhookTargetBlocked(
                "webhook host does not resolve", context={"host": target.host}
            ) from exc
        if not names:
            raise WebhookTargetBlocked(
                "webhook host does not resolve", context={"host": target.host}
            )
    for name in names:
        address = ipaddress.ip_address(name.split("%", 1)[0])
        if blocked(address) and not allow.permits(target.host, address):
            raise WebhookTargetBlocked(
                "webhook target is not a public address",
                context={"host": target.host, "address": str(address)},
            )
    return names

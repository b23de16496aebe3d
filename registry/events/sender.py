"""One HTTP attempt of a claimed delivery, to a checked address (no database here).

The host is resolved and checked again right before connecting (:mod:`registry.events.targets`)
and the request goes to the first checked address, with the original host in ``Host`` and as
the TLS server name (certificates are still verified against it). Redirects are not followed
(a 3xx is a failed attempt): following one would reach an unchecked target.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from registry import __version__
from registry.errors import RegistryError
from registry.events import signing
from registry.events.outbox import Claim
from registry.events.targets import (
    AllowList,
    Resolver,
    checked_addresses,
    parse_url,
    system_resolver,
)

MAX_ERROR_BYTES = 200


@dataclass(frozen=True, slots=True)
class Attempt:
    status_code: int | None
    error: str | None


def send(
    claim: Claim,
    *,
    allow: AllowList,
    timeout_s: float,
    resolver: Resolver = system_resolver,
    timestamp: int | None = None,
) -> Attempt:
    """POST the claim's body, signed; never raises for the receiver's or the network's sake."""
    try:
        target = parse_url(claim.url)
        address = checked_addresses(target, allow, resolver)[0]
    except RegistryError as exc:
        return Attempt(None, f"{exc.code}: {exc}")
    url = httpx.URL(claim.url)
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {
        **signing.headers(claim.secrets, claim.webhook_id, ts, claim.body),
        "content-type": "application/json",
        "user-agent": f"adapter-registry-webhooks/{__version__}",
        "host": url.netloc.decode("ascii"),
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        with (
            httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client,
            client.stream(
                "POST",
                url.copy_with(host=address),
                content=claim.body,
                headers=headers,
                extensions=extensions,
            ) as response,
        ):
            # Only the start of the answer is read: a receiver cannot make the worker buffer
            # an endless body.
            head = b""
            if not response.is_success:
                for chunk in response.iter_raw():
                    head += chunk
                    if len(head) >= MAX_ERROR_BYTES:
                        break
    except httpx.HTTPError as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}"[:512])
    error = None if response.is_success else head[:MAX_ERROR_BYTES].decode("utf-8", "replace")
    return Attempt(response.status_code, error)

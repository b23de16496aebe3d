"""Token attenuation: a minted token never holds more than the credential that minted it.

The rule (issue 11, point 11): what a caller sends can never widen what its calling credential
has. For ``POST /api/v1/tokens`` (for yourself, or as an admin for another principal):

- **scopes**: the new token's scopes are a subset of the calling token's scopes. An unscoped
  caller (``scopes`` null: whatever policy allows its principal) may ask for any scopes or none.
  *Omitted* scopes inherit the caller's; an explicit list that names an action the caller's
  token does not hold is refused, and so is an explicit ``null`` (unscoped) from a scoped caller.
- **lifetime**: the new token expires no later than the calling token. A caller whose token never
  expires may ask for anything up to the maximum. An *omitted* ``ttl_days`` means the default
  (90 days) clamped to the caller's expiry; an explicit ``ttl_days`` or ``null`` (never) that
  would outlive the caller is refused.
- **CI identity**: a token minted by a credential that carries a verified CI identity (an OIDC
  bearer token or a token exchanged for one) carries the same identity, so four-eyes and the
  publisher's namespace binding still apply to it; such a credential may not mint for another
  principal.

Refusals are ``403 token_exceeds_parent`` with ``context.reason`` = ``scopes`` | ``lifetime`` |
``ci_identity``: refusing an explicit request (rather than silently clamping it) is what lets a
CI script see that it did not get what it asked for. Only the defaults are clamped.

The OIDC exchange (``POST /api/v1/oidc/token``) takes nothing from the caller but the OIDC token:
its lifetime is the server's ``REGISTRY_OIDC__TOKEN_TTL_S`` and its scopes the CI scopes
intersected with the credential's (see :func:`registry.oidc.service.mint_token`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from registry.auth.principal import AuthenticatedPrincipal
from registry.errors import TokenExceedsParent
from registry.policy.types import ACTIONS

ATTENUATION_POLICY = "token-attenuation"
"""The policy id a refusal names (in ``authz.denied`` audit events), like ``token-scope``."""


class Unset(enum.Enum):
    """Marks a request field the caller did not send (it gets the attenuated default)."""

    UNSET = "unset"


UNSET: Final = Unset.UNSET

Reason = Literal["scopes", "lifetime", "ci_identity"]


@dataclass(frozen=True, slots=True)
class Grant:
    """What the new token gets: scopes (None = every action), expiry (None = never) and the CI
    identity it inherits."""

    scopes: list[str] | None
    expires_at: datetime | None
    ci_identity: dict[str, Any] | None


def _refuse(reason: Reason, detail: str, **context: object) -> TokenExceedsParent:
    return TokenExceedsParent(detail, context={"reason": reason, **context})


def child_scopes(
    held: frozenset[str] | None, requested: list[str] | Unset | None
) -> list[str] | None:
    """The new token's scopes: the caller's when omitted, else ``requested`` if the caller holds
    every one of them (``None`` requested = every action)."""
    if requested is UNSET:
        return sorted(held) if held is not None else None
    if held is not None:
        # An unscoped token (null) would also get every action added later: never from a
        # scoped one, even one that holds every action there is today.
        wanted = set(ACTIONS) if requested is None else set(requested)
        beyond = sorted(wanted - held)
        if beyond or requested is None:
            raise _refuse(
                "scopes",
                "a token may not have scopes the calling token does not hold",
                not_held=beyond,
                held=sorted(held),
            )
    return sorted(set(requested)) if requested is not None else None


def child_expiry(
    limit: datetime | None,
    ttl_days: int | Unset | None,
    *,
    now: datetime,
    default_days: int,
) -> datetime | None:
    """The new token's expiry: ``now + default_days`` clamped to ``limit`` (the caller's expiry)
    when omitted, else ``now + ttl_days`` (None: never) if that is not past ``limit``."""
    if ttl_days is UNSET:
        default = now + timedelta(days=default_days)
        return default if limit is None else min(default, limit)
    expires = None if ttl_days is None else now + timedelta(days=ttl_days)
    if limit is not None and (expires is None or expires > limit):
        raise _refuse(
            "lifetime",
            "a token may not outlive the calling token",
            parent_expires_at=limit.isoformat(),
            requested_expires_at=expires.isoformat() if expires is not None else None,
        )
    return expires


def attenuate(
    parent: AuthenticatedPrincipal,
    *,
    for_self: bool,
    scopes: list[str] | Unset | None,
    ttl_days: int | Unset | None,
    now: datetime,
    default_days: int,
) -> Grant:
    """What a token minted by ``parent``'s credential may have; raises ``token_exceeds_parent``.

    Pure: no database, no policy (the caller has already been authorized for ``manage_tokens``
    on the target principal).
    """
    ci: Mapping[str, Any] | None = parent.ci_identity
    if ci is not None and not for_self:
        raise _refuse("ci_identity", "a CI credential may only mint tokens for its own principal")
    return Grant(
        scopes=child_scopes(parent.scopes, scopes),
        expires_at=child_expiry(
            parent.token_expires_at, ttl_days, now=now, default_days=default_days
        ),
        ci_identity=dict(ci) if ci is not None else None,
    )

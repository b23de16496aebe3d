"""CI identity from OIDC tokens (trusted publishing), pure: no database, no FastAPI.

- ``jwks.JwksCache``: per-issuer signing keys, rate-limited refresh, never poisoned by a
  broken response.
- ``verifier.OidcVerifier``: RS256 signature, issuer, audience, times.
- ``claims.match``: verified claims against a ``PublisherSpec`` → ``CiIdentity``.

Refusals are ``registry.errors.OidcTokenInvalid`` with a stable ``context["reason"]``
(see ``REASONS``); an unreachable issuer without cached keys is ``OidcProviderUnavailable``.
``jti`` single use is the service layer's job (a database unique constraint).
"""

from registry.oidc.claims import CiIdentity, PublisherKind, PublisherSpec, match
from registry.oidc.jwks import JwksCache, is_allowed_issuer_url
from registry.oidc.verifier import OidcVerifier

REASONS: frozenset[str] = frozenset(
    {
        # token / signature (verifier)
        "malformed",
        "bad_algorithm",
        "missing_kid",
        "unknown_kid",
        "insecure_issuer",
        "bad_signature",
        "wrong_issuer",
        "wrong_audience",
        "missing_claim",
        "expired",
        "not_yet_valid",
        "iat_in_future",
        "too_old",
        "no_publisher",
        # claims against the publisher (claims.match)
        "repository_mismatch",
        "owner_id_mismatch",
        "workflow_mismatch",
        "ref_mismatch",
        "environment_mismatch",
        "unprotected_ref",
        "pull_request_event",
    }
)
"""Every ``context["reason"]`` an ``OidcTokenInvalid`` from this package can carry."""

__all__ = [
    "REASONS",
    "CiIdentity",
    "JwksCache",
    "OidcVerifier",
    "PublisherKind",
    "PublisherSpec",
    "is_allowed_issuer_url",
    "match",
]

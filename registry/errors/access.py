"""Errors of authentication, principals, tokens, trusted publishers (CI OIDC) and policies."""

from __future__ import annotations

from registry.errors.base import Conflict, NotFound, RegistryError

# --- auth ----------------------------------------------------------------------------------


class Unauthenticated(RegistryError):
    code = "unauthenticated"
    status_code = 401


class PermissionDenied(RegistryError):
    code = "permission_denied"
    status_code = 403


class AdminExists(RegistryError):
    code = "admin_exists"
    status_code = 409


class PolicyDenied(PermissionDenied):
    """An authorization decision denied the call; ``context`` names the deciding policies."""

    code = "policy_denied"
    status_code = 403


class TokenExceedsParent(PermissionDenied):
    """A minted token would have more than the credential minting it: a scope the calling token
    does not hold, a lifetime past its expiry, or (from a CI credential) no CI identity.
    ``context["reason"]`` is ``scopes``, ``lifetime`` or ``ci_identity``."""

    code = "token_exceeds_parent"
    status_code = 403


class SeparationOfDuties(PermissionDenied):
    """Four-eyes: the approver requested the promotion, registered the version or owns its CI
    identity (enforced by the service, by policy and by a database constraint)."""

    code = "separation_of_duties"
    status_code = 403


class PrincipalNotFound(NotFound):
    code = "principal_not_found"


class PrincipalExists(Conflict):
    code = "principal_exists"


class TokenNotFound(NotFound):
    code = "token_not_found"


class PublisherNotFound(NotFound):
    code = "publisher_not_found"


class PublisherExists(Conflict):
    code = "publisher_exists"


class OidcTokenInvalid(Unauthenticated):
    """A CI OIDC token failed verification (signature, claims, audience, expiry, publisher)."""

    code = "oidc_token_invalid"
    status_code = 401


class OidcTokenReused(Unauthenticated):
    """The OIDC token's ``jti`` was used before (single use)."""

    code = "oidc_token_reused"
    status_code = 401


class OidcProviderUnavailable(RegistryError):
    code = "oidc_provider_unavailable"
    status_code = 503


class InvalidPolicy(RegistryError):
    """A policy set (Cedar policies, schema or gates.yaml) does not parse or validate."""

    code = "invalid_policy"
    status_code = 422

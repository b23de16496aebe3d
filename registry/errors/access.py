"""Errors of authentication, principals, tokens, trusted publishers (CI OIDC) and policies."""

from __future__ import annotations

from registry.errors.base import Conflict, NotFound, RegistryError

# --- auth ----------------------------------------------------------------------------------


class Unauthenticated(RegistryError):
    """No valid credential: a bearer token missing, unknown, revoked or expired, or its principal
    disabled (one error for all, so that tokens cannot be probed)."""

    code = "unauthenticated"
    status_code = 401


class PermissionDenied(RegistryError):
    """The family of 403 refusals: the caller is known but may not do this (subclasses say why)."""

    code = "permission_denied"
    status_code = 403


class CsrfFailed(PermissionDenied):
    """A web console form without its session's CSRF token, or posted from another origin."""

    code = "csrf_failed"
    status_code = 403


class AdminExists(RegistryError):
    """``bootstrap`` refused: an admin principal exists already (it runs once)."""

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
    """No principal of that name (``context["principal"]``), or one the caller may not see."""

    code = "principal_not_found"


class PrincipalExists(Conflict):
    """Creating a principal whose name is taken (``context["principal"]``)."""

    code = "principal_exists"


class LastAdmin(Conflict):
    """Disabling, or taking the admin role from, the last enabled admin (``context["principal"]``):
    the registry would be left with nobody who can manage principals."""

    code = "last_admin"


class TokenNotFound(NotFound):
    """Revoking a token id that does not exist, or whose principal the caller may not manage."""

    code = "token_not_found"


class PublisherNotFound(NotFound):
    """Reserved for a trusted publisher that does not exist; no call raises it yet."""

    code = "publisher_not_found"


class PublisherExists(Conflict):
    """Adding a publisher whose name, or whose issuer, repository and workflow, is taken."""

    code = "publisher_exists"


class ConsoleLoginExists(Conflict):
    """Linking an OIDC login (issuer + subject) that is linked already (to any principal)."""

    code = "console_login_exists"


class ConsoleLoginNotFound(NotFound):
    """Unlinking an OIDC login the principal does not have."""

    code = "console_login_not_found"


class OidcSignInFailed(Unauthenticated):
    """A console sign-in through the OpenID Connect issuer did not end in a session; the stable
    ``context["reason"]`` says why (``not_configured``, ``no_login_state``, ``state_mismatch``,
    ``provider_error``, ``code_refused``, ``nonce_mismatch``, ``missing_claim``,
    ``email_not_verified``, ``not_linked``)."""

    code = "oidc_sign_in_failed"
    status_code = 401


class OidcTokenInvalid(Unauthenticated):
    """A CI OIDC token failed verification (signature, claims, audience, expiry, publisher)."""

    code = "oidc_token_invalid"
    status_code = 401


class OidcTokenReused(Unauthenticated):
    """The OIDC token's ``jti`` was used before (single use)."""

    code = "oidc_token_reused"
    status_code = 401


class OidcProviderUnavailable(RegistryError):
    """A CI issuer's JWKS could not be fetched and no keys of it are cached."""

    code = "oidc_provider_unavailable"
    status_code = 503


class InvalidPolicy(RegistryError):
    """A policy set (Cedar policies, schema or gates.yaml) does not parse or validate."""

    code = "invalid_policy"
    status_code = 422

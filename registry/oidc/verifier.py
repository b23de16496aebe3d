"""Verify CI OIDC tokens (RS256 JWTs from GitHub Actions / GitLab) the way PyPI's warehouse does.

``jwt.decode`` with ``algorithms=["RS256"]`` hard-coded (never taken from the token header,
RFC 8725 §2.1), the key chosen by ``kid`` from the issuer's JWKS, ``strict_aud`` (exactly one
audience), and ``iss``/``sub``/``aud``/``exp``/``iat``/``jti`` required. The time claims are
checked here against the injected clock rather than inside PyJWT (which always reads the wall
clock), with the same leeway semantics, plus two checks PyJWT lacks: ``iat`` in the future and
``iat`` older than ``max_token_age_s``.

Single use of ``jti`` is **not** enforced here: that is a database unique constraint in the
service layer. Every refusal is ``OidcTokenInvalid`` with a stable ``context["reason"]``;
an unreachable issuer without cached keys is ``OidcProviderUnavailable``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jwt

from registry.errors import OidcProviderUnavailable, OidcTokenInvalid
from registry.oidc.claims import CiIdentity, PublisherSpec, match
from registry.oidc.jwks import JwksCache

ALGORITHM = "RS256"
MAX_TOKEN_BYTES = 16 * 1024
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti")
ID_TOKEN_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "nonce")
"""An OpenID Connect ID token (Core §2, with ``nonce`` since the console always sends one)."""

# Most specific first: InvalidSignatureError is a DecodeError, the rest are siblings.
_PYJWT_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.InvalidAlgorithmError, "bad_algorithm"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.InvalidIssuerError, "wrong_issuer"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
)


def _invalid(reason: str, detail: str, **context: Any) -> OidcTokenInvalid:
    return OidcTokenInvalid(detail, context={"reason": reason, **context})


def _from_pyjwt(exc: jwt.PyJWTError) -> OidcTokenInvalid:
    reason = next((r for cls, r in _PYJWT_REASONS if isinstance(exc, cls)), "malformed")
    context: dict[str, Any] = {}
    if isinstance(exc, jwt.MissingRequiredClaimError):
        context["claim"] = exc.claim
    return _invalid(reason, f"The OIDC token was rejected: {exc}", **context)


class OidcVerifier:
    """Verifies tokens against one JWKS cache. ``clock`` returns Unix seconds."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        leeway_s: float,
        max_token_age_s: float,
        clock: Callable[[], float] = time.time,
        max_token_bytes: int = MAX_TOKEN_BYTES,
    ) -> None:
        self._jwks = jwks
        self._leeway_s = float(leeway_s)
        self._max_token_age_s = float(max_token_age_s)
        self._clock = clock
        self._max_token_bytes = max_token_bytes

    def unverified_issuer(self, token: str) -> str:
        """Read ``iss`` **without verifying anything**: only to choose candidate publishers and
        keys, never to trust. Raises ``OidcTokenInvalid`` (``malformed``, ``missing_claim``)."""
        self._check_size(token)
        try:
            payload = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _invalid("malformed", "The OIDC token is not a well-formed JWT.") from exc
        iss = payload.get("iss")
        if iss is None:
            raise _invalid("missing_claim", "The OIDC token has no 'iss' claim.", claim="iss")
        if not isinstance(iss, str) or not iss:
            raise _invalid("malformed", "The OIDC token's 'iss' claim is not a string.")
        return iss

    def verify(
        self,
        token: str,
        *,
        issuer: str,
        audience: str,
        id_token: bool = False,
    ) -> dict[str, Any]:
        """Verify signature, issuer, audience and times; return the claims.

        ``id_token``: a person's OpenID Connect ID token (Core §2, §3.1.3.7) rather than a CI
        token: ``ID_TOKEN_CLAIMS`` instead of ``REQUIRED_CLAIMS`` (single use is the nonce's job,
        not ``jti``'s); ``aud`` may be a list that contains ``audience``, with ``azp`` equal to
        it when there are several; a header without ``kid`` uses the issuer's only key (§10.1).

        ``issuer`` and ``audience`` come from the trusted configuration, never from the token;
        the key is fetched from ``issuer``'s JWKS. Raises ``OidcTokenInvalid`` (reasons
        ``malformed``, ``bad_algorithm``, ``missing_kid``, ``unknown_kid``, ``bad_signature``,
        ``wrong_issuer``, ``wrong_audience``, ``missing_claim``, ``expired``, ``not_yet_valid``,
        ``iat_in_future``, ``too_old``, ``insecure_issuer``) or ``OidcProviderUnavailable``.
        """
        self._check_size(token)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _invalid("malformed", "The OIDC token is not a well-formed JWT.") from exc
        alg = header.get("alg")
        if alg != ALGORITHM:
            # Decided before any key lookup: "none" and HS256-with-the-public-key never get
            # near a key, and never trigger a JWKS refresh.
            raise _invalid(
                "bad_algorithm", "The OIDC token must be signed with RS256.", alg=str(alg)
            )
        kid = header.get("kid")
        if kid is None and id_token:
            key = self._jwks.sole_key(issuer)
        elif not isinstance(kid, str) or not kid:
            raise _invalid("missing_kid", "The OIDC token header has no key id ('kid').")
        else:
            key = self._jwks.get_key(issuer, kid)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                options={
                    "require": list(ID_TOKEN_CLAIMS if id_token else REQUIRED_CLAIMS),
                    "strict_aud": not id_token,
                    "verify_signature": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    "verify_sub": True,
                    "verify_jti": True,
                    # Checked by _check_times against self._clock (PyJWT reads the wall clock).
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "enforce_minimum_key_length": True,
                },
                audience=audience,
                issuer=issuer,
                leeway=self._leeway_s,
            )
        except jwt.PyJWTError as exc:
            raise _from_pyjwt(exc) from exc
        self._check_times(claims)
        if id_token:
            _check_azp(claims, audience)
        return claims

    def verify_for(
        self, token: str, specs: Sequence[PublisherSpec]
    ) -> tuple[PublisherSpec, CiIdentity]:
        """Verify ``token`` for the first of ``specs`` whose claims it matches.

        Only specs whose issuer equals the token's (unverified) ``iss`` are candidates; the
        token is verified once per (issuer, audience) and then matched in ``specs`` order. When
        none matches, the error of the first candidate whose signature verified (a claim
        mismatch) wins over verification failures; otherwise the first candidate's error.
        Raises ``OidcTokenInvalid`` (``no_publisher`` when ``specs`` is empty, ``wrong_issuer``
        when no spec trusts the token's issuer, or any reason of ``verify`` / ``match``) or
        ``OidcProviderUnavailable``.
        """
        if not specs:
            raise _invalid("no_publisher", "No trusted publisher is configured for this token.")
        iss = self.unverified_issuer(token)
        candidates = [s for s in specs if s.issuer == iss]
        if not candidates:
            raise _invalid(
                "wrong_issuer", "No trusted publisher accepts this token's issuer.", issuer=iss
            )
        verified: dict[tuple[str, str], dict[str, Any] | OidcTokenInvalid] = {}
        claim_error: OidcTokenInvalid | None = None
        first_error: OidcTokenInvalid | None = None
        for spec in candidates:
            pair = (spec.issuer, spec.audience)
            if pair not in verified:
                try:
                    verified[pair] = self.verify(token, issuer=spec.issuer, audience=spec.audience)
                except OidcProviderUnavailable:
                    # Same issuer for every candidate, hence same keys: no point going on.
                    raise
                except OidcTokenInvalid as exc:
                    verified[pair] = exc
            result = verified[pair]
            if isinstance(result, OidcTokenInvalid):
                first_error = first_error or result
                continue
            try:
                return spec, match(spec, result)
            except OidcTokenInvalid as exc:
                claim_error = claim_error or exc
        error = claim_error or first_error
        assert error is not None  # at least one candidate, each one failed
        raise error

    # --- checks --------------------------------------------------------------------------

    def _check_size(self, token: str) -> None:
        if not isinstance(token, str) or not token:
            raise _invalid("malformed", "The OIDC token is empty.")
        if len(token) > self._max_token_bytes:
            raise _invalid(
                "malformed",
                "The OIDC token is too large.",
                limit_bytes=self._max_token_bytes,
            )
        if not token.isascii():
            raise _invalid("malformed", "The OIDC token is not a well-formed JWT.")

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        """PyJWT's exp/nbf semantics with ``leeway``, plus ``iat`` bounds, on ``self._clock``."""
        now = self._clock()
        leeway = self._leeway_s
        exp = _timestamp(claims, "exp")
        iat = _timestamp(claims, "iat")
        nbf = _timestamp(claims, "nbf") if "nbf" in claims else None
        if exp <= now - leeway:
            raise _invalid("expired", "The OIDC token has expired.")
        if nbf is not None and nbf > now + leeway:
            raise _invalid("not_yet_valid", "The OIDC token is not valid yet (nbf).")
        if iat > now + leeway:
            raise _invalid("iat_in_future", "The OIDC token was issued in the future (iat).")
        if now - iat > self._max_token_age_s + leeway:
            raise _invalid(
                "too_old",
                "The OIDC token was issued too long ago.",
                max_token_age_s=self._max_token_age_s,
            )


def _check_azp(claims: Mapping[str, Any], audience: str) -> None:
    """An ID token for several audiences must name us as its authorized party (Core §3.1.3.7)."""
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != audience:
        raise _invalid("wrong_audience", "The ID token is for several audiences, not for us.")


def _timestamp(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or abs(value) > 1e11
    ):
        raise _invalid("malformed", f"The OIDC token's {name!r} claim is not a timestamp.")
    return float(value)

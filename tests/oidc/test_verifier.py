"""OidcVerifier: signature, algorithm, key, issuer, audience and time checks (security.md §2.3)."""

from __future__ import annotations

from dataclasses import replace

import jwt
import pytest

from registry.errors import OidcProviderUnavailable
from registry.oidc import JwksCache, OidcVerifier, PublisherSpec
from tests.oidc.conftest import LEEWAY_S, MAX_TOKEN_AGE_S
from tests.oidc.local_issuer import (
    AUDIENCE,
    NOW,
    FakeClock,
    LocalIssuer,
    SigningKey,
    b64url,
    github_claims,
    hand_made_token,
    raw_rs256,
    rejected,
    sign,
    tamper,
    without,
)


def verify(verifier: OidcVerifier, issuer: LocalIssuer, token: str) -> dict[str, object]:
    return verifier.verify(token, issuer=issuer.url, audience=AUDIENCE)


class TestAccepted:
    def test_valid_token_returns_claims(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        claims = github_claims(issuer.url)

        assert verify(verifier, issuer, sign(claims, key_a)) == claims

    def test_clock_is_injected_not_read_from_wall(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, clock: FakeClock
    ) -> None:
        """NOW is 2025: every check runs on the fake clock (PyJWT alone would say expired)."""
        clock.now = NOW + 100
        token = sign(github_claims(issuer.url), key_a)

        assert verify(verifier, issuer, token)["iss"] == issuer.url


class TestAlgorithm:
    def test_alg_none_is_rejected_before_key_lookup(
        self, verifier: OidcVerifier, issuer: LocalIssuer
    ) -> None:
        token = hand_made_token({"alg": "none", "kid": "key-a"}, github_claims(issuer.url), None)

        with rejected("bad_algorithm"):
            verify(verifier, issuer, token)
        assert issuer.jwks_fetches == 0

    def test_pyjwt_alg_none_token_is_rejected(
        self, verifier: OidcVerifier, issuer: LocalIssuer
    ) -> None:
        token = jwt.encode(github_claims(issuer.url), "", algorithm="none")

        with rejected("bad_algorithm"):
            verify(verifier, issuer, token)

    def test_hs256_with_public_key_pem_as_secret_is_rejected(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        claims = github_claims(issuer.url)
        with pytest.raises(jwt.InvalidKeyError):  # PyJWT refuses to even sign it...
            jwt.encode(claims, key_a.public_pem(), algorithm="HS256")
        # ...so craft it by hand: the classic RS/HS key-confusion token.
        token = hand_made_token({"alg": "HS256", "kid": "key-a"}, claims, key_a.public_pem())

        with rejected("bad_algorithm"):
            verify(verifier, issuer, token)
        assert issuer.jwks_fetches == 0

    def test_rs512_with_the_right_key_is_rejected(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        token = jwt.encode(
            github_claims(issuer.url), key_a.private, algorithm="RS512", headers={"kid": "key-a"}
        )

        with rejected("bad_algorithm"):
            verify(verifier, issuer, token)

    def test_unsupported_critical_header_is_rejected(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        token = sign(github_claims(issuer.url), key_a, headers={"crit": ["exp-ext"]})

        with rejected("malformed"):
            verify(verifier, issuer, token)


class TestSignatureAndKey:
    def test_tampered_payload_is_rejected(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        token = tamper(sign(github_claims(issuer.url), key_a), repository="acme/other")

        with rejected("bad_signature"):
            verify(verifier, issuer, token)

    def test_other_key_with_same_kid_is_rejected(
        self, verifier: OidcVerifier, issuer: LocalIssuer, evil_key_a: SigningKey
    ) -> None:
        token = sign(github_claims(issuer.url), evil_key_a)

        with rejected("bad_signature"):
            verify(verifier, issuer, token)

    def test_unknown_kid_is_rejected(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_b: SigningKey
    ) -> None:
        with rejected("unknown_kid"):
            verify(verifier, issuer, sign(github_claims(issuer.url), key_b))

    @pytest.mark.parametrize(
        ("kid", "reason"), [(None, "missing_kid"), ("", "missing_kid"), (7, "malformed")]
    )
    def test_missing_kid_is_rejected(
        self,
        verifier: OidcVerifier,
        issuer: LocalIssuer,
        key_a: SigningKey,
        kid: object,
        reason: str,
    ) -> None:
        header = {"alg": "RS256", "typ": "JWT"} | ({} if kid is None else {"kid": kid})
        token = raw_rs256(header, github_claims(issuer.url), key_a)

        with rejected(reason):
            verify(verifier, issuer, token)

    def test_issuer_down_without_cached_keys_is_unavailable(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        token = sign(github_claims(issuer.url), key_a)
        issuer.stop()

        with pytest.raises(OidcProviderUnavailable):
            verify(verifier, issuer, token)


class TestIssuerAndAudience:
    def test_wrong_issuer_is_rejected(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        token = sign(github_claims(issuer.url, iss="https://evil.example"), key_a)

        with rejected("wrong_issuer"):
            verify(verifier, issuer, token)

    def test_wrong_audience_is_rejected(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        token = sign(github_claims(issuer.url, aud="https://github.com/acme"), key_a)

        with rejected("wrong_audience"):
            verify(verifier, issuer, token)

    def test_two_audiences_are_rejected_even_if_one_matches(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        token = sign(github_claims(issuer.url, aud=[AUDIENCE, "pypi"]), key_a)

        with rejected("wrong_audience"):
            verify(verifier, issuer, token)


class TestClaimsPresence:
    @pytest.mark.parametrize("claim", ["iss", "sub", "aud", "exp", "iat", "jti"])
    def test_missing_required_claim_is_rejected(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, claim: str
    ) -> None:
        token = sign(without(github_claims(issuer.url), claim), key_a)

        with rejected("missing_claim"):
            verify(verifier, issuer, token)

    @pytest.mark.parametrize(
        ("claim", "value"),
        [
            ("jti", 12),
            ("sub", 12),
            ("exp", "tomorrow"),
            ("iat", "now"),
            ("nbf", [1]),
            ("exp", 1e300),
        ],
    )
    def test_claim_of_wrong_type_is_malformed(
        self,
        verifier: OidcVerifier,
        issuer: LocalIssuer,
        key_a: SigningKey,
        claim: str,
        value: object,
    ) -> None:
        token = sign({**github_claims(issuer.url), claim: value}, key_a)

        with rejected("malformed"):
            verify(verifier, issuer, token)


class TestTimes:
    def test_expired_token_is_rejected(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, clock: FakeClock
    ) -> None:
        token = sign(github_claims(issuer.url), key_a)
        clock.advance(300 + LEEWAY_S)

        with rejected("expired"):
            verify(verifier, issuer, token)

    def test_expired_within_leeway_is_accepted(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, clock: FakeClock
    ) -> None:
        token = sign(github_claims(issuer.url), key_a)
        clock.advance(300 + LEEWAY_S - 1)

        assert verify(verifier, issuer, token)["exp"] == int(NOW) + 300

    def test_nbf_in_future_is_rejected(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        token = sign(github_claims(issuer.url, nbf=int(NOW) + 120), key_a)

        with rejected("not_yet_valid"):
            verify(verifier, issuer, token)

    def test_nbf_within_leeway_is_accepted(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        token = sign(github_claims(issuer.url, nbf=int(NOW) + LEEWAY_S), key_a)

        assert verify(verifier, issuer, token)

    def test_iat_far_in_future_is_rejected(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        future = int(NOW) + 3600
        token = sign(github_claims(issuer.url, now=future, nbf=int(NOW)), key_a)

        with rejected("iat_in_future"):
            verify(verifier, issuer, token)

    def test_iat_older_than_max_age_is_rejected(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        old = NOW - MAX_TOKEN_AGE_S - LEEWAY_S - 1
        token = sign(github_claims(issuer.url, now=old, exp=int(NOW) + 60), key_a)

        with rejected("too_old"):
            verify(verifier, issuer, token)


class TestMalformed:
    @pytest.mark.parametrize(
        "token", ["", "garbage", "a.b.c", "a.b", f"{b64url(b'[]')}.{b64url(b'{}')}.", "é.é.é"]
    )
    def test_garbage_is_malformed(
        self, verifier: OidcVerifier, issuer: LocalIssuer, token: str
    ) -> None:
        with rejected("malformed"):
            verify(verifier, issuer, token)
        with rejected("malformed"):
            verifier.unverified_issuer(token)

    def test_oversized_token_is_rejected_unparsed(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        token = sign(github_claims(issuer.url, padding="x" * 16_384), key_a)

        with rejected("malformed"):
            verify(verifier, issuer, token)
        with rejected("malformed"):
            verifier.unverified_issuer(token)
        assert issuer.jwks_fetches == 0


class TestUnverifiedIssuer:
    def test_returns_iss_without_any_verification(
        self, verifier: OidcVerifier, evil_key_a: SigningKey
    ) -> None:
        token = sign(github_claims("https://token.actions.githubusercontent.com"), evil_key_a)

        assert verifier.unverified_issuer(token) == "https://token.actions.githubusercontent.com"

    def test_missing_iss(self, verifier: OidcVerifier, key_a: SigningKey) -> None:
        with rejected("missing_claim"):
            verifier.unverified_issuer(sign(without(github_claims("x"), "iss"), key_a))

    def test_non_string_iss(self, verifier: OidcVerifier, key_a: SigningKey) -> None:
        with rejected("malformed"):
            verifier.unverified_issuer(
                raw_rs256({"alg": "RS256", "kid": "key-a"}, github_claims("x", iss=["a"]), key_a)
            )


class TestVerifyFor:
    def test_returns_first_matching_spec(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        other = replace(spec, repository="acme/other")
        token = sign(github_claims(issuer.url), key_a)

        matched, identity = verifier.verify_for(token, [other, spec])

        assert matched is spec
        assert identity.repository == "acme/trainer"

    def test_verifies_once_per_issuer_and_audience(
        self,
        jwks: JwksCache,
        clock: FakeClock,
        issuer: LocalIssuer,
        key_a: SigningKey,
        spec: PublisherSpec,
    ) -> None:
        calls: list[str] = []

        class Counting(OidcVerifier):
            def verify(
                self, token: str, *, issuer: str, audience: str, id_token: bool = False
            ) -> dict[str, object]:
                calls.append(audience)
                return super().verify(token, issuer=issuer, audience=audience, id_token=id_token)

        counting = Counting(jwks, leeway_s=LEEWAY_S, max_token_age_s=MAX_TOKEN_AGE_S, clock=clock)
        others = [replace(spec, environment=e) for e in ("a", "b")]

        counting.verify_for(sign(github_claims(issuer.url), key_a), [*others, spec])

        assert calls == [AUDIENCE]

    def test_claim_mismatch_beats_verification_error(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        other_aud = replace(spec, audience="someone-else")
        token = sign(github_claims(issuer.url, environment="staging"), key_a)

        with rejected("environment_mismatch"):
            verifier.verify_for(token, [other_aud, spec])

    def test_no_match_raises_first_candidates_reason(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        second = replace(spec, repository_owner_id="999")
        token = sign(github_claims(issuer.url, ref_protected="false"), key_a)

        with rejected("unprotected_ref"):
            verifier.verify_for(token, [spec, second])

    def test_specs_of_other_issuers_are_not_candidates(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        gitlab = replace(spec, issuer="https://gitlab.com")
        token = sign(github_claims(issuer.url), key_a)

        with rejected("wrong_issuer"):
            verifier.verify_for(token, [gitlab])
        assert issuer.discovery_fetches == 0

    def test_no_specs(self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey) -> None:
        with rejected("no_publisher"):
            verifier.verify_for(sign(github_claims(issuer.url), key_a), [])

    def test_bad_signature_is_reported(
        self,
        verifier: OidcVerifier,
        issuer: LocalIssuer,
        evil_key_a: SigningKey,
        spec: PublisherSpec,
    ) -> None:
        with rejected("bad_signature"):
            verifier.verify_for(sign(github_claims(issuer.url), evil_key_a), [spec])

    def test_unavailable_issuer_propagates(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        token = sign(github_claims(issuer.url), key_a)
        issuer.stop()

        with pytest.raises(OidcProviderUnavailable):
            verifier.verify_for(token, [spec])


class TestIdTokens:
    """A person's ID token (the console's sign-in): nonce instead of jti, a list audience with
    ``azp``, and a header without ``kid`` when the issuer has a single key."""

    @staticmethod
    def _id_claims(issuer: LocalIssuer, **extra: object) -> dict[str, object]:
        claims = without(github_claims(issuer.url), "jti")
        return {**claims, "nonce": "n-1", **extra}

    def test_an_id_token_without_jti_or_kid_verifies_with_the_sole_key(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        claims = self._id_claims(issuer)
        token = raw_rs256({"alg": "RS256", "typ": "JWT"}, claims, key_a)
        found = verifier.verify(token, issuer=issuer.url, audience=AUDIENCE, id_token=True)
        assert found["nonce"] == "n-1"
        with rejected("missing_kid"):  # a CI token must name its key
            verify(verifier, issuer, token)

    def test_without_kid_several_keys_are_ambiguous(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, key_b: SigningKey
    ) -> None:
        issuer.keys = [key_a, key_b]
        token = raw_rs256({"alg": "RS256"}, self._id_claims(issuer), key_a)
        with rejected("missing_kid"):
            verifier.verify(token, issuer=issuer.url, audience=AUDIENCE, id_token=True)

    def test_a_list_audience_needs_us_as_the_authorized_party(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        ok = sign(self._id_claims(issuer, aud=[AUDIENCE, "other"], azp=AUDIENCE), key_a)
        assert verifier.verify(ok, issuer=issuer.url, audience=AUDIENCE, id_token=True)
        for claims in (
            self._id_claims(issuer, aud=[AUDIENCE, "other"]),
            self._id_claims(issuer, aud=[AUDIENCE, "other"], azp="other"),
            self._id_claims(issuer, aud=["other"]),
        ):
            with rejected("wrong_audience"):
                verifier.verify(
                    sign(claims, key_a), issuer=issuer.url, audience=AUDIENCE, id_token=True
                )

    def test_an_id_token_must_carry_a_nonce(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey
    ) -> None:
        token = sign(without(self._id_claims(issuer), "nonce"), key_a)
        with rejected("missing_claim"):
            verifier.verify(token, issuer=issuer.url, audience=AUDIENCE, id_token=True)

"""Publisher matching: signed tokens through ``verify_for``, plus ``match`` on bare claims."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from registry.oidc import CiIdentity, OidcVerifier, PublisherSpec, match
from tests.oidc.local_issuer import (
    NOW,
    LocalIssuer,
    SigningKey,
    github_claims,
    gitlab_claims,
    rejected,
    sign,
    without,
)

SHA = "0123456789abcdef0123456789abcdef01234567"
WORKFLOW = "acme/trainer/.github/workflows/train.yml"


def check(
    verifier: OidcVerifier, spec: PublisherSpec, key: SigningKey, claims: dict[str, Any]
) -> CiIdentity:
    matched, identity = verifier.verify_for(sign(claims, key), [spec])
    assert matched is spec
    return identity


class TestGithubAccepted:
    def test_identity_records_the_run(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        claims = github_claims(issuer.url)

        identity = check(verifier, spec, key_a, claims)

        assert identity == CiIdentity(
            issuer=issuer.url,
            subject="repo:acme/trainer:environment:prod",
            repository="acme/trainer",
            repository_owner_id="1001",
            workflow_ref=f"{WORKFLOW}@refs/heads/main",
            ref="refs/heads/main",
            sha="a" * 40,
            run_id="123456",
            run_attempt="1",
            actor="alice",
            actor_id="42",
            environment="prod",
            event_name="push",
            jti=claims["jti"],
            expires_at=datetime.fromtimestamp(NOW + 300, UTC),
        )

    def test_to_dict_is_json_safe(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        identity = check(verifier, spec, key_a, github_claims(issuer.url))

        data = json.loads(json.dumps(identity.to_dict()))

        assert data["expires_at"] == "2025-06-15T15:11:40+00:00"
        assert data["workflow_ref"] == f"{WORKFLOW}@refs/heads/main"
        assert set(data) == set(CiIdentity.__dataclass_fields__)

    def test_repository_and_owner_match_case_insensitively(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        claims = github_claims(
            issuer.url,
            repository="ACME/Trainer",
            sub="repo:ACME/Trainer:environment:prod",
            job_workflow_ref="Acme/TRAINER/.github/workflows/train.yml@refs/heads/main",
        )

        assert check(verifier, spec, key_a, claims).repository == "ACME/Trainer"

    def test_workflow_pinned_to_commit_sha(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        claims = github_claims(issuer.url, job_workflow_ref=f"{WORKFLOW}@{SHA}")

        assert check(verifier, spec, key_a, claims).workflow_ref.endswith(SHA)

    def test_workflow_ref_is_the_fallback_for_job_workflow_ref(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        claims = without(github_claims(issuer.url), "job_workflow_ref")

        assert check(verifier, spec, key_a, claims).workflow_ref == f"{WORKFLOW}@refs/heads/main"

    def test_reusable_workflow_in_another_repository(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        shared = "acme/ci-templates/.github/workflows/publish.yml"
        claims = github_claims(issuer.url, job_workflow_ref=f"{shared}@refs/heads/main")

        identity = check(verifier, replace(spec, workflow_ref=shared), key_a, claims)

        assert identity.repository == "acme/trainer"

    def test_unpinned_ref_and_environment_accept_any(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        loose = replace(spec, ref=None, environment=None)
        claims = without(
            github_claims(
                issuer.url,
                ref="refs/tags/v1.2.0",
                job_workflow_ref=f"{WORKFLOW}@refs/tags/v1.2.0",
            ),
            "environment",
        )

        identity = check(verifier, loose, key_a, claims)

        assert (identity.ref, identity.environment) == ("refs/tags/v1.2.0", None)

    def test_unprotected_ref_allowed_when_not_required(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        claims = github_claims(issuer.url, ref_protected="false")

        assert check(verifier, replace(spec, require_protected_ref=False), key_a, claims)

    def test_boolean_ref_protected_and_integer_ids(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        claims = github_claims(issuer.url, ref_protected=True, repository_owner_id=1001, run_id=9)

        identity = check(verifier, spec, key_a, claims)

        assert (identity.repository_owner_id, identity.run_id) == ("1001", "9")


GITHUB_REJECTIONS: list[tuple[str, dict[str, Any], str]] = [
    (
        "other repository",
        {"repository": "acme/other", "sub": "repo:acme/other:environment:prod"},
        "repository_mismatch",
    ),
    (
        "subject names other repository",
        {"sub": "repo:evil/trainer:ref:main"},
        "repository_mismatch",
    ),
    ("recreated owner, same name", {"repository_owner_id": "6666"}, "owner_id_mismatch"),
    (
        "other workflow file in same repo",
        {"job_workflow_ref": "acme/trainer/.github/workflows/evil.yml@refs/heads/main"},
        "workflow_mismatch",
    ),
    (
        "workflow path with a suffix",
        {"job_workflow_ref": f"{WORKFLOW}.evil.yml@refs/heads/main"},
        "workflow_mismatch",
    ),
    (
        "workflow file name case differs",
        {"job_workflow_ref": "acme/trainer/.github/workflows/Train.yml@refs/heads/main"},
        "workflow_mismatch",
    ),
    ("workflow without @ref", {"job_workflow_ref": WORKFLOW}, "workflow_mismatch"),
    ("workflow with empty ref", {"job_workflow_ref": f"{WORKFLOW}@"}, "workflow_mismatch"),
    (
        "feature branch",
        {"ref": "refs/heads/feature", "job_workflow_ref": f"{WORKFLOW}@refs/heads/feature"},
        "ref_mismatch",
    ),
    (
        "main ref, workflow file from a feature branch",
        {"job_workflow_ref": f"{WORKFLOW}@refs/heads/feature"},
        "ref_mismatch",
    ),
    ("ref_protected false", {"ref_protected": "false"}, "unprotected_ref"),
    ("ref_protected False", {"ref_protected": False}, "unprotected_ref"),
    ("ref_protected 'True'", {"ref_protected": "True"}, "unprotected_ref"),
    ("pull_request event", {"event_name": "pull_request"}, "pull_request_event"),
    ("pull_request_target event", {"event_name": "pull_request_target"}, "pull_request_event"),
    ("other environment", {"environment": "staging"}, "environment_mismatch"),
    ("environment case differs", {"environment": "Prod"}, "environment_mismatch"),
    ("repository_owner_id of wrong type", {"repository_owner_id": True}, "malformed"),
]


class TestGithubRejected:
    @pytest.mark.parametrize(
        ("overrides", "reason"),
        [(o, r) for _, o, r in GITHUB_REJECTIONS],
        ids=[name for name, _, _ in GITHUB_REJECTIONS],
    )
    def test_rejected(
        self,
        verifier: OidcVerifier,
        issuer: LocalIssuer,
        key_a: SigningKey,
        spec: PublisherSpec,
        overrides: dict[str, Any],
        reason: str,
    ) -> None:
        with rejected(reason):
            check(verifier, spec, key_a, github_claims(issuer.url, **overrides))

    @pytest.mark.parametrize("event", ["pull_request", "pull_request_target"])
    def test_pull_request_rejected_even_by_the_loosest_publisher(
        self,
        verifier: OidcVerifier,
        issuer: LocalIssuer,
        key_a: SigningKey,
        spec: PublisherSpec,
        event: str,
    ) -> None:
        loose = replace(spec, ref=None, environment=None, require_protected_ref=False)

        with rejected("pull_request_event"):
            check(verifier, loose, key_a, github_claims(issuer.url, event_name=event))

    @pytest.mark.parametrize(
        "claim",
        ["repository", "repository_owner_id", "job_workflow_ref", "event_name", "ref"],
    )
    def test_missing_claim(
        self,
        verifier: OidcVerifier,
        issuer: LocalIssuer,
        key_a: SigningKey,
        spec: PublisherSpec,
        claim: str,
    ) -> None:
        names = (claim, "workflow_ref") if claim == "job_workflow_ref" else (claim,)

        with rejected("missing_claim"):
            check(verifier, spec, key_a, without(github_claims(issuer.url), *names))

    def test_missing_environment_when_required(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        with rejected("environment_mismatch"):
            check(verifier, spec, key_a, without(github_claims(issuer.url), "environment"))

    def test_missing_ref_protected_when_required(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        with rejected("unprotected_ref"):
            check(verifier, spec, key_a, without(github_claims(issuer.url), "ref_protected"))


class TestGitlab:
    def test_gitlab_token_accepted(
        self,
        verifier: OidcVerifier,
        issuer: LocalIssuer,
        key_a: SigningKey,
        gitlab_spec: PublisherSpec,
    ) -> None:
        claims = gitlab_claims(issuer.url)

        identity = check(verifier, gitlab_spec, key_a, claims)

        assert identity.repository == "acme/trainer"
        assert identity.repository_owner_id == "77"
        assert identity.workflow_ref == claims["ci_config_ref_uri"]
        assert identity.ref == "refs/heads/main"
        assert (identity.run_id, identity.run_attempt) == ("9001", None)
        assert (identity.actor, identity.actor_id) == ("bob", "5")
        assert identity.event_name == "push"

    def test_gitlab_config_pinned_to_sha_and_group_case(
        self,
        verifier: OidcVerifier,
        issuer: LocalIssuer,
        key_a: SigningKey,
        gitlab_spec: PublisherSpec,
    ) -> None:
        uri = f"GitLab.example.com/Acme/Trainer//.gitlab-ci.yml@{SHA}"

        assert check(verifier, gitlab_spec, key_a, gitlab_claims(issuer.url, ci_config_ref_uri=uri))

    @pytest.mark.parametrize(
        ("overrides", "reason"),
        [
            (
                {"project_path": "acme/other", "sub": "project_path:acme/other:ref:main"},
                "repository_mismatch",
            ),
            ({"namespace_id": "78"}, "owner_id_mismatch"),
            (
                {"ci_config_ref_uri": "gitlab.example.com/acme/trainer//evil.yml@refs/heads/main"},
                "workflow_mismatch",
            ),
            (
                {
                    "ref_path": "refs/heads/feature",
                    "ci_config_ref_uri": (
                        "gitlab.example.com/acme/trainer//.gitlab-ci.yml@refs/heads/feature"
                    ),
                },
                "ref_mismatch",
            ),
            ({"ref_protected": "false"}, "unprotected_ref"),
            ({"pipeline_source": "merge_request_event"}, "pull_request_event"),
            ({"environment": "staging"}, "environment_mismatch"),
        ],
        ids=["project", "namespace", "config file", "ref", "unprotected", "mr", "environment"],
    )
    def test_gitlab_token_rejected(
        self,
        verifier: OidcVerifier,
        issuer: LocalIssuer,
        key_a: SigningKey,
        gitlab_spec: PublisherSpec,
        overrides: dict[str, Any],
        reason: str,
    ) -> None:
        with rejected(reason):
            check(verifier, gitlab_spec, key_a, gitlab_claims(issuer.url, **overrides))

    def test_github_token_for_gitlab_publisher_is_missing_claims(
        self,
        verifier: OidcVerifier,
        issuer: LocalIssuer,
        key_a: SigningKey,
        gitlab_spec: PublisherSpec,
    ) -> None:
        with rejected("missing_claim"):
            check(verifier, gitlab_spec, key_a, github_claims(issuer.url))

    def test_gitlab_token_for_github_publisher_is_rejected(
        self, verifier: OidcVerifier, issuer: LocalIssuer, key_a: SigningKey, spec: PublisherSpec
    ) -> None:
        with rejected("missing_claim"):
            check(verifier, spec, key_a, gitlab_claims(issuer.url))


class TestMatchOnClaims:
    """``match`` alone, for inputs a signed token would not normally carry."""

    def test_exp_out_of_range_is_malformed(self, spec: PublisherSpec) -> None:
        with rejected("malformed"):
            match(spec, github_claims(spec.issuer, exp=10**20))

    def test_exp_missing_is_missing_claim(self, spec: PublisherSpec) -> None:
        with rejected("missing_claim"):
            match(spec, without(github_claims(spec.issuer), "exp"))

    def test_repository_checked_before_everything_else(self, spec: PublisherSpec) -> None:
        claims = github_claims(
            spec.issuer,
            repository="evil/x",
            repository_owner_id="1",
            event_name="pull_request",
            ref_protected="false",
        )

        with rejected("repository_mismatch"):
            match(spec, claims)

"""Match verified CI OIDC claims against a trusted-publisher spec (GitHub Actions or GitLab CI).

The checks follow PyPI's warehouse publishers (``warehouse/oidc/models/``), stricter in two
places: the numeric owner id is always compared (GitLab's ``namespace_id`` too, which warehouse
leaves unchecked), so a deleted-and-recreated org or project name cannot inherit the publisher;
and pull-request / merge-request pipelines are always refused.

Pure: the claims must already be signature-, audience-, issuer- and time-verified
(``registry.oidc.verifier``). Every refusal is ``OidcTokenInvalid`` with a stable
``context["reason"]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from registry.errors import OidcTokenInvalid

PublisherKind = Literal["github", "gitlab"]

PULL_REQUEST_EVENTS = frozenset({"pull_request", "pull_request_target"})
GITLAB_MERGE_REQUEST_SOURCES = frozenset({"merge_request_event"})
_COMMIT_SHA = re.compile(r"(?:[0-9a-f]{40}|[0-9a-f]{64})")


@dataclass(frozen=True)
class PublisherSpec:
    """A trusted publisher: which CI workflow may act for a registry identity.

    ``workflow_ref`` is the workflow path *without* ``@ref``: for GitHub
    ``OWNER/REPO/.github/workflows/FILE.yml`` (matched against ``job_workflow_ref``, so a
    reusable workflow is named by its own repository), for GitLab
    ``gitlab.com/GROUP/PROJECT//path/.gitlab-ci.yml`` (matched against ``ci_config_ref_uri``).
    """

    issuer: str
    audience: str
    repository: str
    repository_owner_id: str
    workflow_ref: str
    ref: str | None = None
    environment: str | None = None
    require_protected_ref: bool = True
    kind: PublisherKind = "github"


@dataclass(frozen=True)
class CiIdentity:
    """Who acted: the verified CI run, recorded on what it registers (security.md §2.4)."""

    issuer: str
    subject: str
    repository: str
    repository_owner_id: str
    workflow_ref: str
    ref: str | None
    sha: str | None
    run_id: str | None
    run_attempt: str | None
    actor: str | None
    actor_id: str | None
    environment: str | None
    event_name: str | None
    jti: str
    expires_at: datetime

    def to_dict(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {k: v for k, v in asdict(self).items() if k != "expires_at"}
        out["expires_at"] = self.expires_at.isoformat()
        return out


@dataclass(frozen=True)
class _ClaimNames:
    """Where each identity field lives in one CI system's token."""

    repository: str
    owner_id: str
    workflow: tuple[str, ...]
    ref: str
    event: str
    refused_events: frozenset[str]
    subject_prefix: str
    run_id: str
    run_attempt: str | None
    actor: str
    actor_id: str
    workflow_split: str
    """Separator between the case-insensitive location part and the case-sensitive file path."""


_GITHUB = _ClaimNames(
    repository="repository",
    owner_id="repository_owner_id",
    workflow=("job_workflow_ref", "workflow_ref"),
    ref="ref",
    event="event_name",
    refused_events=PULL_REQUEST_EVENTS,
    subject_prefix="repo:",
    run_id="run_id",
    run_attempt="run_attempt",
    actor="actor",
    actor_id="actor_id",
    workflow_split="/.github/",
)
_GITLAB = _ClaimNames(
    repository="project_path",
    owner_id="namespace_id",
    workflow=("ci_config_ref_uri",),
    ref="ref_path",
    event="pipeline_source",
    refused_events=PULL_REQUEST_EVENTS | GITLAB_MERGE_REQUEST_SOURCES,
    subject_prefix="project_path:",
    run_id="pipeline_id",
    run_attempt=None,
    actor="user_login",
    actor_id="user_id",
    workflow_split="//",
)


def _reject(reason: str, detail: str, **context: Any) -> OidcTokenInvalid:
    return OidcTokenInvalid(detail, context={"reason": reason, **context})


def _optional_str(claims: Mapping[str, Any], name: str) -> str | None:
    """A claim as a string: GitHub sends ids as strings, some issuers as integers."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _reject("malformed", f"The token's {name!r} claim has the wrong type.", claim=name)
    return str(value)


def _required_str(claims: Mapping[str, Any], name: str) -> str:
    value = _optional_str(claims, name)
    if not value:
        raise _reject("missing_claim", f"The token has no {name!r} claim.", claim=name)
    return value


def _same_workflow_path(expected: str, actual: str, split: str) -> bool:
    """Owner/repository (GitHub) or host/group/project (GitLab) compare case-insensitively,
    like the platforms themselves; the file path below them compares exactly."""
    exp_loc, exp_sep, exp_path = expected.partition(split)
    act_loc, act_sep, act_path = actual.partition(split)
    if not exp_sep or not act_sep:
        return expected == actual
    return exp_loc.lower() == act_loc.lower() and exp_path == act_path


def _is_protected(value: object) -> bool:
    return value is True or value == "true"


def _check_repository(
    spec: PublisherSpec, names: _ClaimNames, claims: Mapping[str, Any]
) -> tuple[str, str]:
    """The ``sub`` and repository claims, both naming the publisher's repository."""
    subject = _required_str(claims, "sub")
    repository = _required_str(claims, names.repository)
    if repository.lower() != spec.repository.lower():
        raise _reject(
            "repository_mismatch",
            "The token was issued for another repository.",
            expected=spec.repository,
            actual=repository,
        )
    if not subject.lower().startswith(f"{names.subject_prefix}{spec.repository.lower()}:"):
        raise _reject(
            "repository_mismatch", "The token's subject names another repository.", actual=subject
        )
    return subject, repository


def _check_owner_id(spec: PublisherSpec, names: _ClaimNames, claims: Mapping[str, Any]) -> str:
    owner_id = _required_str(claims, names.owner_id)
    if owner_id != spec.repository_owner_id:
        # Same name, different owner: the org or project was deleted and its name re-registered.
        raise _reject(
            "owner_id_mismatch",
            "The token's repository owner id does not match the publisher.",
            claim=names.owner_id,
        )
    return owner_id


def _check_workflow(
    spec: PublisherSpec, names: _ClaimNames, claims: Mapping[str, Any]
) -> tuple[str, str]:
    """The workflow claim and the ref it ran from (the part after the expected path's ``@``)."""
    workflow_ref = next((v for v in (_optional_str(claims, n) for n in names.workflow) if v), None)
    if workflow_ref is None:
        raise _reject(
            "missing_claim",
            f"The token has no {names.workflow[0]!r} claim.",
            claim=names.workflow[0],
        )
    # Split at the end of the expected path rather than at an "@": file names and ref names
    # may both contain one.
    cut = len(spec.workflow_ref)
    workflow_suffix = workflow_ref[cut + 1 :]
    if (
        workflow_ref[cut : cut + 1] != "@"
        or not workflow_suffix
        or not _same_workflow_path(spec.workflow_ref, workflow_ref[:cut], names.workflow_split)
    ):
        raise _reject(
            "workflow_mismatch",
            "The token was issued to another workflow.",
            expected=spec.workflow_ref,
            actual=workflow_ref,
        )
    return workflow_ref, workflow_suffix


def _check_event(spec: PublisherSpec, names: _ClaimNames, claims: Mapping[str, Any]) -> str | None:
    event = _optional_str(claims, names.event)
    if spec.kind == "github" and event is None:
        raise _reject("missing_claim", "The token has no 'event_name' claim.", claim="event_name")
    if event in names.refused_events:
        raise _reject(
            "pull_request_event",
            "Tokens from pull-request pipelines are never trusted.",
            event=event,
        )
    return event


def _check_ref(
    spec: PublisherSpec, names: _ClaimNames, claims: Mapping[str, Any], workflow_suffix: str
) -> str | None:
    """The ref claim; when the publisher pins a ref, the claim and the workflow's ref match it."""
    ref = _optional_str(claims, names.ref)
    if spec.ref is None:
        return ref
    if ref is None:
        raise _reject("missing_claim", f"The token has no {names.ref!r} claim.", claim=names.ref)
    if ref != spec.ref:
        raise _reject(
            "ref_mismatch",
            "The token was issued for another ref.",
            expected=spec.ref,
            actual=ref,
        )
    if workflow_suffix != spec.ref and not _COMMIT_SHA.fullmatch(workflow_suffix):
        raise _reject(
            "ref_mismatch",
            "The workflow ran from another ref.",
            expected=spec.ref,
            actual=workflow_suffix,
        )
    return ref


def _check_environment(spec: PublisherSpec, claims: Mapping[str, Any]) -> str | None:
    environment = _optional_str(claims, "environment")
    if spec.environment is not None and environment != spec.environment:
        raise _reject(
            "environment_mismatch",
            "The token was issued for another deployment environment.",
            expected=spec.environment,
            actual=environment,
        )
    return environment


def _token_id_and_expiry(claims: Mapping[str, Any]) -> tuple[str, datetime]:
    jti = _required_str(claims, "jti")
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise _reject("missing_claim", "The token has no 'exp' claim.", claim="exp")
    try:
        expires_at = datetime.fromtimestamp(exp, UTC)
    except (OverflowError, OSError, ValueError):
        raise _reject(
            "malformed", "The token's 'exp' claim is out of range.", claim="exp"
        ) from None
    return jti, expires_at


def match(spec: PublisherSpec, claims: Mapping[str, Any]) -> CiIdentity:
    """Check verified ``claims`` against ``spec`` and return the CI identity they prove.

    Checked in order, first failure wins: repository (and the ``sub`` prefix), owner id,
    workflow file, pull-request event, ref (claim and workflow suffix), protected ref,
    environment. Raises ``OidcTokenInvalid`` with reason ``repository_mismatch``,
    ``owner_id_mismatch``, ``workflow_mismatch``, ``pull_request_event``, ``ref_mismatch``,
    ``unprotected_ref``, ``environment_mismatch``, ``missing_claim`` or ``malformed``.
    """
    names = _GITLAB if spec.kind == "gitlab" else _GITHUB
    subject, repository = _check_repository(spec, names, claims)
    owner_id = _check_owner_id(spec, names, claims)
    workflow_ref, workflow_suffix = _check_workflow(spec, names, claims)
    event = _check_event(spec, names, claims)
    ref = _check_ref(spec, names, claims, workflow_suffix)
    if spec.require_protected_ref and not _is_protected(claims.get("ref_protected")):
        raise _reject("unprotected_ref", "The token was issued for an unprotected ref.")
    environment = _check_environment(spec, claims)
    jti, expires_at = _token_id_and_expiry(claims)
    return CiIdentity(
        issuer=_required_str(claims, "iss"),
        subject=subject,
        repository=repository,
        repository_owner_id=owner_id,
        workflow_ref=workflow_ref,
        ref=ref,
        sha=_optional_str(claims, "sha"),
        run_id=_optional_str(claims, names.run_id),
        run_attempt=_optional_str(claims, names.run_attempt) if names.run_attempt else None,
        actor=_optional_str(claims, names.actor),
        actor_id=_optional_str(claims, names.actor_id),
        environment=environment,
        event_name=event,
        jti=jti,
        expires_at=expires_at,
    )

"""Trusted publishing: CI OIDC tokens → the service principal a publisher is bound to.

A CI job presents its OIDC token as ``Authorization: Bearer <jwt>`` (on any call, e.g. a push)
or exchanges it at ``POST /api/v1/oidc/token`` for a short-lived registry token. Either way the
token is verified (RS256, one audience, JWKS by ``kid``), matched against the publishers bound to
its issuer, and its ``jti`` is recorded under a unique constraint, so each token is accepted
once, however many requests race with it. The verified identity travels with the principal and
is stored on every version it registers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor, registry_resource
from registry.audit.service import AuditEntry, append
from registry.auth.models import ApiToken, Principal
from registry.auth.principal import AuthenticatedPrincipal
from registry.auth.service import current_attributes
from registry.auth.tokens import hash_token, new_token
from registry.errors import BadRequest, OidcTokenInvalid, OidcTokenReused, PublisherExists
from registry.oidc.claims import CiIdentity, PublisherSpec
from registry.oidc.jwks import is_allowed_issuer_url
from registry.oidc.models import TrustedPublisher, UsedOidcToken
from registry.oidc.verifier import OidcVerifier
from registry.principals.service import ensure_service_principal

#: What a CI identity may do (never approve, never manage anything).
CI_SCOPES = frozenset({"read", "upload", "register_version", "edit_metadata"})


#: The fields that say which CI workflow a publisher trusts (a :class:`PublisherSpec` but its
#: ``kind``): taken from the input, stored, summarised and handed to the verifier alike.
_RULE_FIELDS = (
    "issuer",
    "audience",
    "repository",
    "repository_owner_id",
    "workflow_ref",
    "ref",
    "environment",
    "require_protected_ref",
)


@dataclass(frozen=True)
class PublisherInput:
    name: str
    issuer: str
    audience: str
    repository: str
    repository_owner_id: str
    workflow_ref: str
    principal: str
    namespaces: list[str]
    kind: str = "github"
    ref: str | None = None
    environment: str | None = None
    require_protected_ref: bool = True


def _rule(source: PublisherInput | TrustedPublisher) -> dict[str, Any]:
    return {name: getattr(source, name) for name in _RULE_FIELDS}


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


def add_publisher(
    session: Session, *, actor: Actor, data: PublisherInput, allow_insecure_loopback: bool
) -> TrustedPublisher:
    """Bind an issuer + audience + claim constraints to a service principal (created with role
    ``developer`` if missing) and namespaces (memberships added)."""
    refs.publisher_name(data.name)
    refs.principal_name(data.principal)
    actor.require("manage_principals", registry_resource())
    if data.kind not in ("github", "gitlab"):
        raise BadRequest("kind must be github or gitlab", context={"kind": data.kind[:20]})
    if not is_allowed_issuer_url(data.issuer, allow_insecure_loopback=allow_insecure_loopback):
        raise BadRequest(
            "the issuer must be an https:// URL", context={"issuer": data.issuer[:200]}
        )
    for field, value in (
        ("audience", data.audience),
        ("repository", data.repository),
        ("repository_owner_id", data.repository_owner_id),
        ("workflow_ref", data.workflow_ref),
    ):
        if not value.strip() or not value.isprintable():
            raise BadRequest(
                f"{field} must be a non-empty printable string", context={"field": field}
            )
    if not data.namespaces:
        raise BadRequest("a publisher needs at least one namespace")
    if session.scalar(select(TrustedPublisher.id).where(TrustedPublisher.name == data.name)):
        raise PublisherExists("publisher exists", context={"publisher": data.name})
    same = session.scalar(
        select(TrustedPublisher.name).where(
            TrustedPublisher.issuer == data.issuer,
            TrustedPublisher.audience == data.audience,
            func.lower(TrustedPublisher.repository) == data.repository.lower(),
            TrustedPublisher.repository_owner_id == data.repository_owner_id,
            func.lower(TrustedPublisher.workflow_ref) == data.workflow_ref.lower(),
        )
    )
    if same is not None:
        # One CI workflow identity maps to one publisher (and so one principal and namespace
        # set); two publishers for the same workflow would make the match order decide.
        raise PublisherExists(
            "a publisher for this issuer, repository and workflow exists",
            context={"publisher": same},
        )
    principal = ensure_service_principal(session, name=data.principal, namespaces=data.namespaces)
    row = TrustedPublisher(
        name=data.name,
        kind=data.kind,
        **_rule(data),
        principal_id=principal.id,
        namespaces=sorted(set(data.namespaces)),
        created_by_id=actor.id,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise PublisherExists("publisher exists", context={"publisher": data.name}) from exc
    actor.audit(
        session,
        "publisher.add",
        f"publisher:{data.name}",
        after={**publisher_summary(row), "principal": principal.name},
    )
    return row


def list_publishers(
    session: Session, *, actor: Actor, after: str | None, limit: int
) -> list[tuple[TrustedPublisher, str]]:
    """A page of trusted publishers by name (keyset: ``after`` is the previous page's last
    name), each with its principal's name."""
    actor.require("manage_principals", registry_resource())
    stmt = (
        select(TrustedPublisher, Principal.name)
        .join(Principal, Principal.id == TrustedPublisher.principal_id)
        .order_by(TrustedPublisher.name)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(TrustedPublisher.name > after)
    return [(r[0], r[1]) for r in session.execute(stmt).all()]


def publisher_summary(row: TrustedPublisher) -> dict[str, Any]:
    return {"name": row.name, "kind": row.kind, **_rule(row), "namespaces": list(row.namespaces)}


def authenticate_oidc(
    open_read: Callable[[], AbstractContextManager[Session]],
    open_write: Callable[[], AbstractContextManager[Session]],
    *,
    verifier: OidcVerifier,
    token: str,
) -> AuthenticatedPrincipal:
    """Verify a CI OIDC token, consume its ``jti`` and return the publisher's principal.

    The signature check (and a JWKS fetch, if one is due) runs outside any write transaction;
    the ``jti`` row then commits in a short write transaction of its own, even if the request
    that carried the token fails later: a token is single use, not single success."""
    issuer = verifier.unverified_issuer(token)
    with open_read() as session:
        rows = list(
            session.scalars(
                select(TrustedPublisher)
                .where(TrustedPublisher.issuer == issuer)
                .order_by(TrustedPublisher.name)
            )
        )
    if not rows:
        raise OidcTokenInvalid(
            "no trusted publisher for this issuer", context={"reason": "no_publisher"}
        )
    rows.sort(key=lambda r: _closeness(r, token))
    specs = [_spec(r) for r in rows]
    spec, identity = verifier.verify_for(token, specs)
    publisher = rows[specs.index(spec)]
    ci = {
        **identity.to_dict(),
        "publisher": publisher.name,
        "namespaces": list(publisher.namespaces),
    }
    with open_write() as session:
        _consume(session, identity)
        found = current_attributes(session, publisher.principal_id)
        if found is None:
            raise OidcTokenInvalid(
                "the publisher's principal is disabled", context={"reason": "disabled"}
            )
        append(
            session,
            AuditEntry(
                action="oidc.authenticate",
                resource=f"publisher:{publisher.name}",
                actor=found.name,
                actor_id=publisher.principal_id,
                after={
                    k: ci.get(k) for k in ("repository", "workflow_ref", "sha", "run_id", "actor")
                },
            ),
        )
    return AuthenticatedPrincipal(
        id=publisher.principal_id,
        name=found.name,
        kind=found.kind,
        role=found.role,
        token_id=None,
        token_expires_at=identity.expires_at,
        scopes=CI_SCOPES,
        ci_identity=ci,
    )


def mint_token(
    session: Session, *, principal: AuthenticatedPrincipal, ttl_s: int
) -> tuple[str, ApiToken]:
    """A short-lived registry token for a principal authenticated by a CI OIDC token.

    Nothing the caller sends shapes the token (attenuation, issue 11): its lifetime is the
    server's ``ttl_s`` and its scopes are the CI scopes intersected with the credential's (an
    empty intersection stays empty, never "all"); it carries the verified CI identity, so it
    acts only in the publisher's namespaces and four-eyes sees its actor.
    """
    if principal.ci_identity is None or principal.token_id is not None:
        raise BadRequest("exchange needs a CI OIDC token as the bearer token")
    held = CI_SCOPES if principal.scopes is None else principal.scopes & CI_SCOPES
    token = new_token()
    row = ApiToken(
        principal_id=principal.id,
        token_hash=hash_token(token),
        name=f"oidc:{principal.ci_identity.get('publisher', '')}"[:128],
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl_s),
        scopes=sorted(held),
        ci_identity=dict(principal.ci_identity),
    )
    session.add(row)
    session.flush()
    append(
        session,
        AuditEntry(
            action="token.create",
            resource=f"token:{row.id}",
            actor=principal.name,
            actor_id=principal.id,
            after={
                "oidc": True,
                "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            },
        ),
    )
    return token, row


def _consume(session: Session, identity: CiIdentity) -> None:
    try:
        with session.begin_nested():
            session.add(
                UsedOidcToken(
                    id=uuid.uuid4(),
                    issuer=identity.issuer[:512],
                    jti=identity.jti[:256],
                    expires_at=identity.expires_at,
                    used_at=datetime.now(UTC),
                )
            )
            session.flush()
    except IntegrityError as exc:
        raise OidcTokenReused(
            "this OIDC token was used already", context={"reason": "jti_reused"}
        ) from exc


def _closeness(row: TrustedPublisher, token: str) -> int:
    """Order candidates so that a refusal names the reason of the publisher this token was
    meant for (same repository and workflow first). Unverified claims only order the list;
    the verifier decides."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return 2
    workflow = str(claims.get("job_workflow_ref") or claims.get("ci_config_ref_uri") or "")
    repository = str(claims.get("repository") or claims.get("project_path") or "")
    same_repo = repository.lower() == row.repository.lower()
    same_workflow = workflow.lower().startswith(row.workflow_ref.lower() + "@")
    return 0 if same_repo and same_workflow else 1 if same_repo or same_workflow else 2


def _spec(row: TrustedPublisher) -> PublisherSpec:
    return PublisherSpec(**_rule(row), kind="gitlab" if row.kind == "gitlab" else "github")

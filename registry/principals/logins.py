"""OpenID Connect logins linked to principals: who may sign in to the console through the
issuer, and as whom. Linking and unlinking are admin actions (``manage_principals``), audited;
a sign-in only looks a link up, so an issuer's users get no access they were not given."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.access.actor import Actor, registry_resource
from registry.errors import BadRequest, ConsoleLoginExists, ConsoleLoginNotFound
from registry.principals.models import ConsoleLogin
from registry.principals.service import get_principal

MAX_SUBJECT = 256
MAX_ISSUER = 512


@dataclass(frozen=True, slots=True)
class Login:
    principal: str
    issuer: str
    subject: str


def _subject(value: str) -> str:
    if not value or len(value) > MAX_SUBJECT or not value.isprintable() or value != value.strip():
        raise BadRequest(
            "subject must be 1-256 printable characters without surrounding spaces",
            context={"field": "subject"},
        )
    return value


def _issuer(value: str | None) -> str:
    if not value:
        raise BadRequest(
            "no issuer: name one, or configure REGISTRY_CONSOLE_OIDC__ISSUER",
            context={"field": "issuer"},
        )
    if len(value) > MAX_ISSUER or not value.isprintable() or "://" not in value:
        raise BadRequest("issuer must be an issuer URL", context={"field": "issuer"})
    return value


def link(
    session: Session,
    *,
    actor: Actor,
    principal: str,
    subject: str,
    issuer: str | None,
) -> Login:
    """Let the person ``subject`` at ``issuer`` sign in to the console as ``principal``."""
    actor.require("manage_principals", registry_resource())
    row = get_principal(session, name=principal)
    iss, sub = _issuer(issuer), _subject(subject)
    taken = session.scalar(
        select(ConsoleLogin.id).where(ConsoleLogin.issuer == iss, ConsoleLogin.subject == sub)
    )
    if taken is not None:
        raise ConsoleLoginExists("this login is linked already", context={"subject": sub})
    try:
        with session.begin_nested():
            session.add(ConsoleLogin(id=uuid.uuid4(), principal_id=row.id, issuer=iss, subject=sub))
            session.flush()
    except IntegrityError as exc:  # a concurrent link of the same login won
        raise ConsoleLoginExists("this login is linked already", context={"subject": sub}) from exc
    actor.audit(
        session,
        "principal.login_link",
        f"principal:{principal}",
        after={"issuer": iss, "subject": sub},
    )
    return Login(principal, iss, sub)


def unlink(
    session: Session, *, actor: Actor, principal: str, subject: str, issuer: str | None
) -> None:
    actor.require("manage_principals", registry_resource())
    row = get_principal(session, name=principal)
    iss, sub = _issuer(issuer), _subject(subject)
    gone = session.execute(
        delete(ConsoleLogin).where(
            ConsoleLogin.principal_id == row.id,
            ConsoleLogin.issuer == iss,
            ConsoleLogin.subject == sub,
        )
    )
    if not getattr(gone, "rowcount", 0):
        raise ConsoleLoginNotFound("no such login on this principal", context={"subject": sub})
    actor.audit(
        session,
        "principal.login_unlink",
        f"principal:{principal}",
        before={"issuer": iss, "subject": sub},
    )


def list_logins(session: Session, *, actor: Actor, principal: str) -> list[Login]:
    actor.require("manage_principals", registry_resource())
    row = get_principal(session, name=principal)
    found = session.scalars(
        select(ConsoleLogin)
        .where(ConsoleLogin.principal_id == row.id)
        .order_by(ConsoleLogin.issuer, ConsoleLogin.subject)
    )
    return [Login(principal, r.issuer, r.subject) for r in found]


def principal_of_login(session: Session, *, issuer: str, subject: str) -> uuid.UUID | None:
    """The principal a verified (issuer, subject) signs in as, if an admin linked one."""
    return session.scalar(
        select(ConsoleLogin.principal_id).where(
            ConsoleLogin.issuer == issuer, ConsoleLogin.subject == subject
        )
    )

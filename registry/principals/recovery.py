"""Recovering admin access when every admin token is lost: ``bootstrap --recover``.

Server-side only (it needs the database, not a token): whoever can run commands with the
server's ``REGISTRY_DATABASE__URL`` can already change every row, so minting an admin token
from there gives nothing away; what it must not do is pass unseen. Hence:

- the new token belongs to the named admin principal (created as an admin if no principal has
  that name; a principal of another role is refused: recovery does not promote anyone);
- an audit event ``principal.recover`` by actor ``system:recover`` names the operator (OS user
  and host), whether the principal was created and how many tokens were revoked; it is chained
  and checkpointed like any other event;
- the principal's other tokens keep working unless ``revoke_existing`` (a lost token is not
  necessarily a leaked one; a leaked one is revoked in the same transaction);
- a disabled admin is enabled again (its new token would be refused otherwise); the event's
  ``enabled`` says so.

Runs inside the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.audit.service import AuditEntry, append
from registry.auth.models import ApiToken, Principal, PrincipalKind, Role
from registry.errors import BadRequest
from registry.principals.repository import PrincipalRepository
from registry.principals.service import issue_token

RECOVERY_ACTOR = "system:recover"
RECOVERY_ACTION = "principal.recover"


@dataclass(frozen=True, slots=True)
class Recovery:
    token: str
    principal: str
    created: bool
    enabled: bool
    revoked_tokens: int


def recover_admin(
    session: Session, *, name: str, operator: str, revoke_existing: bool = False
) -> Recovery:
    """A new token for admin principal ``name`` (created if missing), audited."""
    principals = PrincipalRepository(session)
    principal = principals.get_by_name(name)
    created = principal is None
    if principal is None:
        principal = principals.add(Principal(name=name, kind=PrincipalKind.human, role=Role.admin))
    elif principal.role != Role.admin:
        raise BadRequest(
            "recovery mints tokens for admin principals only; name an admin (or a new name)",
            context={"principal": name, "role": str(principal.role)},
        )
    # A disabled admin's new token would be refused: recovery enables it (and says so).
    enabled = principal.disabled_at is not None
    principal.disabled_at = None
    revoked = 0
    if revoke_existing:
        now = datetime.now(UTC)
        active = session.scalars(
            select(ApiToken).where(
                ApiToken.principal_id == principal.id, ApiToken.revoked_at.is_(None)
            )
        ).all()
        for row in active:
            row.revoked_at = now
        revoked = len(active)
        session.flush()
    token = issue_token(session, principal_id=principal.id, name="recovery")
    append(
        session,
        AuditEntry(
            action=RECOVERY_ACTION,
            resource=f"principal:{name}",
            actor=RECOVERY_ACTOR,
            after={
                "recovery": True,
                "operator": operator[:200],
                "created": created,
                "enabled": enabled,
                "role": Role.admin,
                "revoked_tokens": revoked,
            },
        ),
    )
    return Recovery(
        token=token, principal=name, created=created, enabled=enabled, revoked_tokens=revoked
    )

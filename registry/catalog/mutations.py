"""The few things that may change on an immutable version: tags, description, state."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor
from registry.catalog.models import VersionState
from registry.catalog.queries import VersionContext, resolve_version
from registry.catalog.repository import VersionRepository
from registry.errors import BadRequest, InvalidTransition

MAX_TAGS_PER_VERSION = 50

# Allowed state moves; anything else is ``invalid_transition``.
_TRANSITIONS: dict[str, frozenset[str]] = {
    # Only the direct-upload verification job leaves ``verifying`` (catalog/verification.py).
    VersionState.verifying: frozenset({VersionState.validated, VersionState.quarantined}),
    VersionState.registered: frozenset(
        {VersionState.validated, VersionState.quarantined, VersionState.archived}
    ),
    VersionState.validated: frozenset({VersionState.quarantined, VersionState.archived}),
    VersionState.quarantined: frozenset({VersionState.archived}),
    VersionState.archived: frozenset(),
}


def update_tags(
    session: Session, *, actor: Actor, ref: str, add: list[str], remove: list[str]
) -> VersionContext:
    """Add and remove tags of a version. Errors: ``invalid_name``, ``version_not_found``,
    ``bad_request`` (same tag added and removed, too many tags). Flushes."""
    for tag in [*add, *remove]:
        refs.tag_name(tag)
    if set(add) & set(remove):
        raise BadRequest("a tag cannot be added and removed at once")
    ctx = resolve_version(session, ref=ref, actor=actor, action="edit_metadata")
    repo = VersionRepository(session)
    current: set[str] = set(repo.tags([ctx.version.id])[ctx.version.id])
    if len((current | set(add)) - set(remove)) > MAX_TAGS_PER_VERSION:
        raise BadRequest("too many tags", context={"limit": MAX_TAGS_PER_VERSION})
    repo.remove_tags(ctx.version.id, sorted(set(remove)))
    repo.add_tags(ctx.version, sorted(set(add) - current))
    after = sorted((current | set(add)) - set(remove))
    if after != sorted(current):
        actor.audit(
            session,
            "adapter.version.tags",
            f"adapter:{ctx.ref}",
            before={"tags": sorted(current)},
            after={"tags": after},
        )
    return ctx


def transition(session: Session, *, ctx: VersionContext, to: VersionState) -> None:
    """Move a version's state if the rules allow it, else ``invalid_transition``. Flushes."""
    current = ctx.version.state
    if to not in _TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(
            f"cannot move a version from {current} to {to}",
            context={"from": current, "to": str(to)},
        )
    ctx.version.state = to
    if to == VersionState.archived:
        ctx.version.archived_at = datetime.now(UTC)
    session.flush()


def archive_version(session: Session, *, actor: Actor, ref: str) -> VersionContext:
    """Archive a version (its bytes stay; it can no longer be promoted). Flushes; audited."""
    ctx = resolve_version(session, ref=ref, actor=actor, action="archive")
    before = ctx.version.state
    transition(session, ctx=ctx, to=VersionState.archived)
    actor.audit(
        session,
        "adapter.version.archive",
        f"adapter:{ctx.ref}",
        before={"state": before},
        after={"state": ctx.version.state},
    )
    return ctx

"""What a job worker runs with (the server's database, store, caches and policies), who a job
acts as (its creator), and how a running job is stopped early."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.access.policy_sets import PolicyHolder
from registry.access.subjects import load_actor
from registry.auth.principal import AuthenticatedPrincipal
from registry.auth.service import current_attributes
from registry.catalog.base_models import ManifestCache
from registry.db.session import Sessions
from registry.errors import Unauthenticated
from registry.jobs.lifecycle import Claimed
from registry.settings import Settings
from registry.storage.base import ArtifactStore


@dataclass(frozen=True)
class WorkerEnv:
    sessions: Sessions
    store: ArtifactStore
    manifests: ManifestCache
    policies: PolicyHolder
    settings: Settings


class Creator:
    """The job's creator as an ``Actor`` in a session (``creator(session)``): role and
    memberships read fresh, no more than the creating token allowed (its scopes, its CI
    identity). ``unauthenticated`` once the creator is disabled."""

    def __init__(self, env: WorkerEnv, claimed: Claimed) -> None:
        self._env, self._claimed = env, claimed

    def principal(self, session: Session) -> AuthenticatedPrincipal:
        claimed = self._claimed
        row = current_attributes(session, claimed.created_by_id)
        if row is None:
            raise Unauthenticated("the job's creator is disabled or gone")
        return AuthenticatedPrincipal(
            id=claimed.created_by_id,
            name=row.name,
            kind=row.kind,
            role=row.role,
            scopes=claimed.scopes,
            ci_identity=claimed.ci_identity,
        )

    def __call__(self, session: Session) -> Actor:
        authorizer = self._env.policies.current(session).authorizer
        return load_actor(session, self.principal(session), authorizer)


class Stopped(Exception):
    """Raised from a job's progress callback to stop its maths (nothing is written then)."""


class Cancelled(Stopped):
    """Its creator (or an admin) cancelled the job: it ends ``cancelled``."""


class Interrupted(Stopped):
    """The worker is stopping (the server shuts down): the job is queued again for another."""

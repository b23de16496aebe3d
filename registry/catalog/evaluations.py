"""Evaluation scores bound to (version, base version, suite, metric, dataset digest)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor
from registry.catalog.models import Evaluation
from registry.catalog.queries import VersionContext, resolve_version
from registry.catalog.repository_provenance import EvaluationRepository


@dataclass(frozen=True, slots=True)
class EvaluationInput:
    suite: str
    metric: str
    value: float
    higher_is_better: bool = True
    dataset_digest: str | None = None
    harness_version: str | None = None
    source: str | None = None
    evaluated_on: str | None = None


def record_evaluation(
    session: Session, *, actor: Actor, ref: str, data: EvaluationInput
) -> tuple[VersionContext, Evaluation]:
    """Record a score for a version on its own base version. Flushes.

    Errors: ``invalid_name`` (suite/metric), ``invalid_reference`` (dataset digest),
    ``version_not_found``.
    """
    refs.suite_name(data.suite, "suite")
    refs.suite_name(data.metric, "metric")
    if data.dataset_digest is not None:
        refs.content_digest(data.dataset_digest)
    ctx = resolve_version(session, ref=ref, actor=actor, action="edit_metadata")
    evaluation = EvaluationRepository(session).add(
        Evaluation(
            adapter_version_id=ctx.version.id,
            base_model_version_id=ctx.version.base_model_version_id,
            suite=data.suite,
            metric=data.metric,
            value=data.value,
            higher_is_better=data.higher_is_better,
            dataset_digest=data.dataset_digest,
            harness_version=data.harness_version,
            source=data.source,
            evaluated_on=data.evaluated_on,
            recorded_by_id=actor.id,
        )
    )
    actor.audit(
        session,
        "evaluation.record",
        f"adapter:{ctx.ref}",
        after={
            "suite": data.suite,
            "metric": data.metric,
            "value": data.value,
            "dataset_digest": data.dataset_digest,
        },
    )
    return ctx, evaluation


def list_evaluations(
    session: Session,
    *,
    actor: Actor,
    ref: str,
    suite: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> tuple[VersionContext, list[Evaluation]]:
    """Scores of a version, oldest first (keyset on ``(created_at, id)``)."""
    if suite is not None:
        refs.suite_name(suite, "suite")
    ctx = resolve_version(session, ref=ref, actor=actor)
    rows = EvaluationRepository(session).list_page(
        ctx.version.id, after=after, limit=limit, suite=suite
    )
    return ctx, rows


def evaluations_on_base(
    session: Session, *, version_id: uuid.UUID, base_version_id: uuid.UUID
) -> list[Evaluation]:
    """Every score of ``version_id`` recorded on ``base_version_id`` (what promotion gates
    judge). No authorization: for services that authorized their caller already."""
    return EvaluationRepository(session).on_base(version_id, base_version_id)


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    suite: str
    metric: str
    dataset_digest: str | None
    higher_is_better: bool
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def better(self) -> str | None:
        if self.a is None or self.b is None:
            return None
        if self.a == self.b:
            return "same"
        b_wins = (self.b > self.a) == self.higher_is_better
        return "b" if b_wins else "a"


def compare_versions(
    session: Session, *, actor: Actor, ref_a: str, ref_b: str
) -> tuple[VersionContext, VersionContext, list[ComparisonRow]]:
    """Side by side scores of two versions on the same (suite, metric, dataset digest).

    The newest score per key counts. Keys only one side has appear with the other side null.
    """
    a = resolve_version(session, ref=ref_a, actor=actor)
    b = resolve_version(session, ref=ref_b, actor=actor)
    repo = EvaluationRepository(session)
    latest_a = _latest_by_key(repo.all_for(a.version.id))
    latest_b = _latest_by_key(repo.all_for(b.version.id))
    rows = []
    for key in sorted(set(latest_a) | set(latest_b), key=lambda k: (k[0], k[1], k[2] or "")):
        ea, eb = latest_a.get(key), latest_b.get(key)
        direction = ea or eb
        assert direction is not None
        rows.append(
            ComparisonRow(
                suite=key[0],
                metric=key[1],
                dataset_digest=key[2],
                higher_is_better=direction.higher_is_better,
                a=ea.value if ea else None,
                b=eb.value if eb else None,
            )
        )
    return a, b, rows


def _latest_by_key(rows: list[Evaluation]) -> dict[tuple[str, str, str | None], Evaluation]:
    out: dict[tuple[str, str, str | None], Evaluation] = {}
    for e in rows:  # ordered oldest first, so later rows overwrite
        out[(e.suite, e.metric, e.dataset_digest)] = e
    return out

"""Evaluation scores: record, list, compare two versions."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import status

from registry.api.deps import ActorDep, SessionDep, WriteDep
from registry.api.pagination import Page, decode_token, make_page
from registry.api.params import AdapterPath, AdapterRefQ, NamespacePath, SelectorPath, SuiteQ
from registry.api.routes._common import (
    VERSION_NOT_FOUND,
    PageDep,
    authenticated_router,
    responses,
    version_ref,
)
from registry.catalog import evaluations
from registry.catalog.schemas import ComparisonRead, EvaluationCreate, EvaluationRead
from registry.catalog.views import comparison_read, evaluation_reads
from registry.errors import InvalidPageToken

router = authenticated_router(prefix="/api/v1", tags=["evaluations"])

_EVALS = "/adapters/{namespace}/{name}/versions/{selector}/evaluations"


@router.post(
    _EVALS,
    status_code=status.HTTP_201_CREATED,
    response_model=EvaluationRead,
    responses=responses(*VERSION_NOT_FOUND),
)
def record_evaluation(
    namespace: NamespacePath,
    name: AdapterPath,
    selector: SelectorPath,
    body: EvaluationCreate,
    ctx: WriteDep,
) -> object:
    """Record a score for a version (bound to its base version, suite, metric, dataset)."""
    ref = version_ref(namespace, name, selector)

    def produce() -> EvaluationRead:
        vctx, row = evaluations.record_evaluation(
            ctx.session,
            actor=ctx.actor,
            ref=ref,
            data=evaluations.EvaluationInput(**body.model_dump()),
        )
        return evaluation_reads(ctx.session, vctx.ref, [row])[0]

    return ctx.idempotent(body, produce, status_code=201)


@router.get(
    _EVALS,
    response_model=Page[EvaluationRead],
    responses=responses(*VERSION_NOT_FOUND, InvalidPageToken),
)
def list_evaluations(
    namespace: NamespacePath,
    name: AdapterPath,
    selector: SelectorPath,
    actor: ActorDep,
    session: SessionDep,
    page: PageDep,
    suite: SuiteQ = None,
) -> Page[EvaluationRead]:
    """Scores of a version, oldest first."""
    cursor = decode_token(page.token, arity=2, types=(str, str))
    after = None
    if cursor:
        try:
            after = (datetime.fromisoformat(cursor[0]), uuid.UUID(cursor[1]))
        except ValueError as exc:
            raise InvalidPageToken("malformed page token") from exc
    vctx, rows = evaluations.list_evaluations(
        session,
        actor=actor,
        ref=version_ref(namespace, name, selector),
        suite=suite,
        after=after,
        limit=page.fetch,
    )
    items = evaluation_reads(session, vctx.ref, rows[: page.limit])
    return make_page(
        items, more=len(rows) > page.limit, key=lambda e: [e.created_at.isoformat(), str(e.id)]
    )


@router.get(
    "/evaluations/compare", response_model=ComparisonRead, responses=responses(*VERSION_NOT_FOUND)
)
def compare(
    actor: ActorDep,
    session: SessionDep,
    a: AdapterRefQ,
    b: AdapterRefQ,
) -> ComparisonRead:
    """Scores of two versions side by side on the same suite, metric and dataset digest."""
    va, vb, rows = evaluations.compare_versions(session, actor=actor, ref_a=a, ref_b=b)
    return comparison_read(
        va.ref,
        vb.ref,
        rows,
    )

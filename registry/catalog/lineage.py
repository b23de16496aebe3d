"""Lineage declared by a registration: parents resolved (and read-authorized), the edges they
become, and the governance of derived versions.

A version (adapter or base) registered with a ``merged_from`` / ``composed_from`` /
``aggregated_from`` parent is, as the server sees it, a merge / composition / aggregation: it is
authorized as that action (:data:`COMBINE_ACTIONS`) where the result is registered, on top of
reading every parent, and audited with the digests of its inputs and of its output. The result
is an ordinary version (validated, gated, promotable).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor, base_model_resource
from registry.catalog.models import LineageEdge, LineageRelation
from registry.catalog.queries import resolve_version
from registry.catalog.repository import BaseModelRepository
from registry.catalog.repository_provenance import LineageRepository
from registry.errors import BadRequest, BaseModelNotFound
from registry.policy.types import Decision

ADAPTER_VERSION = "adapter_version"
BASE_MODEL_VERSION = "base_model_version"
PARENT_KINDS = (ADAPTER_VERSION, BASE_MODEL_VERSION)

#: Relations that record an operation on adapters, and the action that authorizes it.
COMBINE_ACTIONS: Mapping[str, str] = {
    LineageRelation.merged_from: "merge_adapter",
    LineageRelation.composed_from: "compose_adapters",
    LineageRelation.aggregated_from: "aggregate_adapters",
}
#: The audit event of each of them.
COMBINE_EVENTS: Mapping[str, str] = {
    LineageRelation.merged_from: "adapter.merge",
    LineageRelation.composed_from: "adapter.compose",
    LineageRelation.aggregated_from: "adapter.aggregate",
}
#: What a base model version can be made from: merging an adapter into a base, quantizing one.
BASE_CHILD_RELATIONS = frozenset({LineageRelation.merged_from, LineageRelation.quantized_from})


@dataclass(frozen=True, slots=True)
class ParentSpec:
    """A declared parent: ``ref`` (``NS/NAME@vN`` or ``BASE@REV``), its relation, the recipe
    that made the child from it, and what ``ref`` names (default: a base model version for
    ``trained_on``, an adapter version otherwise)."""

    ref: str
    relation: str
    recipe: dict[str, Any] | None = None
    kind: str | None = None

    @property
    def parent_kind(self) -> str:
        if self.kind is not None:
            return self.kind
        trained_on = self.relation == LineageRelation.trained_on
        return BASE_MODEL_VERSION if trained_on else ADAPTER_VERSION


@dataclass(frozen=True, slots=True)
class ResolvedParent:
    """A parent found: its row id (one of the two), canonical reference and digest (an adapter
    version's digest; a base model version's manifest digest)."""

    spec: ParentSpec
    version_id: uuid.UUID | None
    base_version_id: uuid.UUID | None
    ref: str
    digest: str

    def audit(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "kind": self.spec.parent_kind,
            "relation": self.spec.relation,
            "digest": self.digest,
        }


def check_relations(parents: Sequence[ParentSpec], *, base_child: bool = False) -> None:
    """Known relations and kinds (``bad_request``); a base child accepts only
    :data:`BASE_CHILD_RELATIONS` (``context.reason`` ``relation_not_for_base``)."""
    valid = {r.value for r in LineageRelation}
    for p in parents:
        if p.relation not in valid:
            raise BadRequest(
                "unknown lineage relation",
                context={"relation": p.relation[:50], "allowed": sorted(valid)},
            )
        if p.kind is not None and p.kind not in PARENT_KINDS:
            raise BadRequest(
                "unknown parent kind", context={"kind": p.kind[:50], "allowed": list(PARENT_KINDS)}
            )
        if p.relation == LineageRelation.trained_on and p.parent_kind != BASE_MODEL_VERSION:
            raise BadRequest(
                "trained_on names a base model version",
                context={"relation": p.relation, "reason": "trained_on_needs_base"},
            )
        if base_child and p.relation not in BASE_CHILD_RELATIONS:
            raise BadRequest(
                "a base model version cannot have this lineage relation",
                context={
                    "relation": p.relation,
                    "allowed": sorted(BASE_CHILD_RELATIONS),
                    "reason": "relation_not_for_base",
                },
            )


def resolve_parents(
    session: Session, actor: Actor, parents: Sequence[ParentSpec]
) -> list[ResolvedParent]:
    """Every parent found and readable by ``actor``; 404 (``version_not_found``,
    ``base_model_not_found``, ...) when missing or hidden."""
    out: list[ResolvedParent] = []
    bases = BaseModelRepository(session)
    for p in parents:
        if p.parent_kind == BASE_MODEL_VERSION:
            ref = refs.parse_base_ref(p.ref)
            missing = BaseModelNotFound("no such base model revision", context={"base": p.ref})
            actor.require("read", base_model_resource(ref.name), hidden=missing)
            found = bases.get_version(ref.name, ref.revision)
            if found is None:
                raise missing
            out.append(ResolvedParent(p, None, found.id, str(ref), found.manifest_digest))
        else:
            ctx = resolve_version(session, ref=p.ref, actor=actor)
            out.append(ResolvedParent(p, ctx.version.id, None, ctx.ref, ctx.version.digest))
    return out


def check_trained_on(
    session: Session, base_version_id: uuid.UUID, parents: Sequence[ResolvedParent]
) -> None:
    """A declared ``trained_on`` parent (``--trained-on``: QLoRA trained on a quantized
    checkpoint) must be a base revision ``quantized_from`` the version's own base, which the
    adapter is validated against, served on and merged into. Errors: ``bad_request`` with
    ``context.reason`` ``trained_on_is_base`` (the version's base is ``trained_on`` already) or
    ``trained_on_not_quantized_from_base``."""
    declared = [p for p in parents if p.spec.relation == LineageRelation.trained_on]
    for parent in declared:
        if parent.base_version_id == base_version_id:
            raise BadRequest(
                "the version's base is already what it was trained on",
                context={"trained_on": parent.ref, "reason": "trained_on_is_base"},
            )
        assert parent.base_version_id is not None
        edges = LineageRepository(session).parents_of((), (parent.base_version_id,))
        if not any(
            e.relation == LineageRelation.quantized_from
            and e.parent_base_version_id == base_version_id
            for e in edges
        ):
            raise BadRequest(
                "trained_on names a base revision not quantized from the version's base",
                context={"trained_on": parent.ref, "reason": "trained_on_not_quantized_from_base"},
            )


def require_combine(
    parents: Sequence[ParentSpec], require: Callable[[str], Decision]
) -> dict[str, Decision]:
    """Authorize, with ``require(action)`` (where the result is registered), the operation each
    combining relation among ``parents`` records; ``{relation: decision}``."""
    relations = {p.relation for p in parents}
    return {rel: require(action) for rel, action in COMBINE_ACTIONS.items() if rel in relations}


def audit_combine(
    session: Session,
    actor: Actor,
    decisions: Mapping[str, Decision],
    *,
    target: str,
    parents: Sequence[ResolvedParent],
    output: Mapping[str, Any],
) -> None:
    """One audit event per operation (``adapter.merge``, ``adapter.compose``,
    ``adapter.aggregate``) with the inputs' and the output's digests."""
    inputs = [p.audit() for p in parents]
    for relation, decision in decisions.items():
        actor.audit(
            session,
            COMBINE_EVENTS[relation],
            target,
            after={"relation": relation, "inputs": inputs, "output": dict(output)},
            decision=decision.to_audit(),
        )


def edges_for(
    parents: Sequence[ResolvedParent],
    *,
    child_version_id: uuid.UUID | None = None,
    child_base_version_id: uuid.UUID | None = None,
) -> list[LineageEdge]:
    """One edge per parent, to the child (an adapter version or a base model version)."""
    return [
        LineageEdge(
            child_version_id=child_version_id,
            child_base_version_id=child_base_version_id,
            relation=p.spec.relation,
            parent_version_id=p.version_id,
            parent_base_version_id=p.base_version_id,
            recipe=p.spec.recipe,
        )
        for p in parents
    ]

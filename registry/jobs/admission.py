"""What a job request must pass before it is queued: its inputs resolved to stored versions the
caller may read, the caller allowed to run the operation and to register its result, the maths
available here, and the inputs combinable as far as the catalog can tell.

Everything is checked at create time so that a request that cannot succeed is refused with its
stable code at once, instead of being queued to fail later. The worker checks again (the
maths itself, the registration as the creator) when it runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor, registry_resource
from registry.catalog import base_models
from registry.catalog.files import StoredVersion, stored_version
from registry.catalog.namespaces import require_in_namespace
from registry.errors import (
    BadRequest,
    BaseModelNotFound,
    BaseModelVersionExists,
    IncompatibleAdapters,
    MathsUnavailable,
)
from registry.jobs.models import JobKind
from registry.jobs.schemas import AggregateJob, ComposeJob, MergeJob
from registry.maths import require_torch

JobBody = ComposeJob | AggregateJob | MergeJob

#: The Cedar action each kind of job is authorized with (on the target namespace; a merge, on
#: the namespace of the adapter it merges).
ACTIONS = {
    JobKind.merge: "merge_adapter",
    JobKind.compose: "compose_adapters",
    JobKind.aggregate: "aggregate_adapters",
}
#: The maths module and function that run each kind (``registry.maths.<module>.<function>``).
OPERATIONS = {
    JobKind.merge: ("registry.maths.merge", "merge"),
    JobKind.compose: ("registry.maths.compose", "compose"),
    JobKind.aggregate: ("registry.maths.aggregate", "aggregate"),
}


@dataclass(frozen=True, slots=True)
class Admitted:
    """A request that may be queued: its target and its parameters, inputs resolved."""

    kind: JobKind
    target: str
    params: dict[str, Any]
    inputs: list[StoredVersion]


def maths_module(kind: JobKind) -> ModuleType:
    """The maths module of ``kind`` (``maths_unavailable`` when torch or the module is not
    installed here)."""
    require_torch()
    name = OPERATIONS[kind][0]
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise MathsUnavailable(
            f"this server cannot run {kind} jobs", context={"missing": name}
        ) from exc


def _check_method(kind: JobKind, method: str) -> None:
    known = getattr(maths_module(kind), "METHODS", None)
    if known is not None and method not in known:
        raise IncompatibleAdapters(
            f"unknown {kind} method {method!r}",
            context={"reason": "unknown_method", "method": method, "methods": list(known)},
        )


def _resolve(session: Session, actor: Actor, body: JobBody) -> list[StoredVersion]:
    """Each input's stored version (404 for what the caller may not read)."""
    return [stored_version(session, actor=actor, ref=i.ref) for i in body.inputs]


def _check_combinable(inputs: list[StoredVersion]) -> None:
    """LoRA adapters of one base: what the catalog knows already refuses the rest."""
    for version in inputs:
        if version.peft_type != "LORA":
            raise IncompatibleAdapters(
                f"{version.ref} is a {version.peft_type} adapter, not LoRA",
                context={"reason": "not_lora", "ref": version.ref, "peft_type": version.peft_type},
            )
    bases = sorted({v.base for v in inputs})
    if len(bases) > 1:
        raise IncompatibleAdapters(
            f"inputs were trained on different bases: {bases}",
            context={"reason": "different_bases", "bases": bases},
        )


def _inputs_param(body: JobBody, inputs: list[StoredVersion]) -> list[dict[str, Any]]:
    return [
        {"ref": v.ref, "digest": v.digest, "weight": i.weight}
        for i, v in zip(body.inputs, inputs, strict=True)
    ]


def admit_combination(session: Session, actor: Actor, body: ComposeJob | AggregateJob) -> Admitted:
    """A compose or aggregate request: the caller reads every input, may run the operation
    and register versions in the target's namespace; the inputs are LoRA adapters of one base.

    Errors: ``invalid_name``, ``namespace_not_found`` / ``adapter_not_found`` /
    ``version_not_found`` (an input, or a target namespace the caller may not read),
    ``policy_denied``, ``incompatible_adapters``, ``maths_unavailable``."""
    kind = JobKind(body.kind)
    namespace, _, name = body.target.partition("/")
    refs.namespace_name(namespace)
    refs.adapter_name(name)
    inputs = _resolve(session, actor, body)
    require_in_namespace(actor, ACTIONS[kind], namespace)
    require_in_namespace(actor, "register_version", namespace)
    _check_combinable(inputs)
    _check_method(kind, body.method)
    params = body.model_dump(mode="json", exclude={"kind", "target", "inputs"})
    params["inputs"] = _inputs_param(body, inputs)
    return Admitted(kind, body.target, params, inputs)


def admit_merge(session: Session, actor: Actor, body: MergeJob) -> Admitted:
    """A merge request: the caller reads the adapter and may merge it (in its namespace) and
    register base models; the new base revision is free; the adapter's base has its weights
    stored (``base-models register --upload-weights``).

    Errors: as :func:`admit_combination`, ``base_model_version_exists``, and ``bad_request``
    (``context.reason`` ``base_weights_not_stored``)."""
    refs.base_model_name(body.register_as)
    refs.revision_name(body.revision)
    (adapter,) = _resolve(session, actor, body)
    require_in_namespace(actor, ACTIONS[JobKind.merge], adapter.ctx.namespace.name)
    actor.require("register_base_model", registry_resource())
    target = f"{body.register_as}@{body.revision}"
    try:
        base_models.get_base_version(
            session, actor=actor, name=body.register_as, revision=body.revision
        )
    except BaseModelNotFound:
        pass
    else:
        raise BaseModelVersionExists("base model revision exists", context={"base": target})
    base = refs.parse_base_ref(adapter.base)
    stored = base_models.get_base_version(
        session, actor=actor, name=base.name, revision=base.revision
    )
    if not any(f.name.endswith(".safetensors") for f in stored.files):
        raise BadRequest(
            f"the base {adapter.base} has no stored weights to merge into: register it with "
            "`base-models register --upload-weights`",
            context={"reason": "base_weights_not_stored", "base": adapter.base},
        )
    maths_module(JobKind.merge)
    params = body.model_dump(mode="json", exclude={"kind", "inputs"})
    params["inputs"] = _inputs_param(body, [adapter])
    params["base"] = adapter.base
    return Admitted(JobKind.merge, target, params, [adapter])

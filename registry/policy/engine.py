"""Cedar (``cedarpy``) implementation of the ``Authorizer`` protocol.

Per request the engine passes Cedar only the entity slice it needs: the calling ``Principal`` and
the resource entity (no entity store). What can be parsed once is: the policy set into a
``cedarpy.PolicySet`` handle, and each principal into a ``cedarpy.Entities`` handle cached per
(immutable, value-compared) ``Subject``, to which a request adds its resource entity; a changed
role or membership is a different ``Subject``, so it takes effect on the next request.

No schema is passed at request time: the policies were validated against the schema (strictly)
when the bundle was loaded. With entity handles a request-time ``Schema`` handle would be cheap
(~1 µs, ``bench/authz.py``) but it would refuse every context key the schema does not declare;
instead the engine checks action and resource type itself and relies on fail closed below.

Fail closed: any evaluation error (a missing attribute, a malformed request, an exception from the
engine) denies, even when some permit matched, and the errors are listed on the ``Decision``.
That matters because Cedar itself *skips* a policy whose condition errors, forbids included.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import cedarpy

from registry.errors import InvalidPolicy
from registry.policy.loader import PolicyBundle, policy_ids, validate
from registry.policy.types import ACTIONS, RESOURCE_TYPES, Decision, Resource, Subject

PRINCIPAL_TYPE = "Principal"

# Resource attributes that name a principal: passed to Cedar as entity references, so policies
# compare them with `principal` directly (`resource.requested_by == principal`).
PRINCIPAL_REF_ATTRS = frozenset({"requested_by", "registered_by"})
# Resource attributes compared case-insensitively with lower-cased identities.
LOWERCASE_ATTRS = frozenset({"ci_actor"})

_ACTION_SET = frozenset(ACTIONS)
_RESOURCE_TYPE_SET = frozenset(RESOURCE_TYPES)
_ACTION_UIDS = {a: {"type": "Action", "id": a} for a in ACTIONS}


def _uid(type_: str, id_: str) -> dict[str, str]:
    return {"type": type_, "id": id_}


@lru_cache(maxsize=4096)
def _principal_entity_json(subject: Subject) -> str:
    """The principal's Cedar entity as JSON; cached per (immutable, hashable) ``Subject``."""
    entity = {
        "uid": _uid(PRINCIPAL_TYPE, subject.id),
        "attrs": {
            "name": subject.name,
            "kind": subject.kind,
            "role": subject.role,
            "namespaces": sorted(subject.namespaces),
            "ci_identities": sorted({c.lower() for c in subject.ci_identities}),
        },
        "parents": [],
    }
    return json.dumps(entity, separators=(",", ":"))


def _resource_entity(resource: Resource) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for key, value in resource.attrs.items():
        if key in PRINCIPAL_REF_ATTRS:
            attrs[key] = {"__entity": _uid(PRINCIPAL_TYPE, value)}
        elif key in LOWERCASE_ATTRS:
            attrs[key] = value.lower()
        else:
            attrs[key] = value
    if resource.namespace is not None:
        attrs["namespace"] = resource.namespace
    else:
        attrs.pop("namespace", None)  # only the typed field says where a resource lives
    return {"uid": _uid(resource.type, resource.id), "attrs": attrs, "parents": []}


@lru_cache(maxsize=4096)
def _principal_entities(subject: Subject) -> cedarpy.Entities:
    """The principal parsed once into a Cedar entity handle; each request adds its resource to
    a clone (parsing a principal with many memberships dominated the decision otherwise)."""
    return cedarpy.Entities.from_json_str(f"[{_principal_entity_json(subject)}]")


def _is_self(subject: Subject, resource: Resource) -> bool:
    # a principal acting on its own record: one entity, not two with the same uid
    return resource.type == PRINCIPAL_TYPE and resource.id == subject.id


def entities_json(subject: Subject, resource: Resource) -> str:
    """The entity slice of one request as Cedar JSON: the principal, plus the resource unless it
    *is* the principal (used by tests and the benchmark; the engine uses cached handles)."""
    principal = _principal_entity_json(subject)
    if _is_self(subject, resource):
        return f"[{principal}]"
    resource_json = json.dumps(_resource_entity(resource), separators=(",", ":"))
    return f"[{principal},{resource_json}]"


def entities(subject: Subject, resource: Resource) -> cedarpy.Entities:
    """The entity slice of one request as a Cedar handle (same content as ``entities_json``)."""
    base = _principal_entities(subject)
    if _is_self(subject, resource):
        return base
    delta = json.dumps([_resource_entity(resource)], separators=(",", ":"))
    return base.with_added_json_str(delta)


def _deny(action: str, error: str) -> Decision:
    return Decision(allowed=False, action=action, policies=(), errors=(error,))


class CedarAuthorizer:
    """``Authorizer`` over a validated ``PolicyBundle`` (validation failure → ``InvalidPolicy``).

    Thread-safe: the parsed policy set is immutable and each call builds its own request.
    """

    def __init__(self, bundle: PolicyBundle, *, stored: bool = False) -> None:
        # ``stored``: a set applied earlier, validated under the rules it was applied with
        # where newer rollout-plan rules would refuse it (``registry.canary.plans``).
        validate(bundle, stored=stored)
        try:
            self._policies = cedarpy.PolicySet.from_str(bundle.policies_text)
        except ValueError as exc:  # validated above; kept for the fail-closed contract
            raise InvalidPolicy(
                "Cedar policies do not parse", context={"errors": [str(exc)]}
            ) from exc
        ids = policy_ids(bundle.policies_text)
        self._names: dict[str, str] = ids
        self._order: dict[str, int] = {pid: i for i, pid in enumerate(ids)}
        self.bundle = bundle
        self.digest = bundle.digest
        self.policy_ids: tuple[str, ...] = tuple(ids.values())

    # ------------------------------------------------------------------ single decisions

    def authorize(
        self,
        subject: Subject,
        action: str,
        resource: Resource,
        context: Mapping[str, str | bool | int] | None = None,
    ) -> Decision:
        """Decide whether ``subject`` may perform ``action`` on ``resource``; never raises."""
        if action not in _ACTION_SET:
            return _deny(action, f"unknown action {action!r}")
        if resource.type not in _RESOURCE_TYPE_SET:
            return _deny(action, f"unknown resource type {resource.type!r}")
        request = {
            "principal": _uid(PRINCIPAL_TYPE, subject.id),
            "action": _ACTION_UIDS[action],
            "resource": _uid(resource.type, resource.id),
            "context": dict(context) if context else {},
        }
        try:
            result = cedarpy.is_authorized(request, self._policies, entities(subject, resource))
        except Exception as exc:  # fail closed on anything the engine throws
            return _deny(action, f"authorization engine error: {exc}")
        return self._decision(action, result)

    def _decision(self, action: str, result: cedarpy.AuthzResult) -> Decision:
        errors = tuple(str(e) for e in result.diagnostics.errors)
        if errors or result.decision is not cedarpy.Decision.Allow:
            # An Allow reached despite an error is not trusted: the policy that errored may have
            # been a forbid. Deny, naming only forbids that did determine the outcome.
            determining = () if result.allowed else self._policy_names(result)
            return Decision(allowed=False, action=action, policies=determining, errors=errors)
        return Decision(allowed=True, action=action, policies=self._policy_names(result))

    def _policy_names(self, result: cedarpy.AuthzResult) -> tuple[str, ...]:
        reasons = sorted(result.diagnostics.reasons, key=lambda r: self._order.get(r, 1 << 30))
        return tuple(self._names.get(r) or r for r in reasons)

    # ------------------------------------------------------------------ batch

    def allowed_namespaces(
        self, subject: Subject, action: str, namespaces: Iterable[str]
    ) -> set[str]:
        """The namespaces among ``namespaces`` where ``subject`` may ``action``, asked about each
        ``Namespace`` resource in one batch. Actions that need a specific resource's attributes
        (``approve``, ``cancel_promotion``) fail closed here and return nothing."""
        names = sorted(set(namespaces))
        if not names or action not in _ACTION_SET:
            return set()
        resources = ",".join(
            json.dumps(
                {"uid": _uid("Namespace", n), "attrs": {"namespace": n}, "parents": []},
                separators=(",", ":"),
            )
            for n in names
        )
        principal_uid = _uid(PRINCIPAL_TYPE, subject.id)
        action_uid = _ACTION_UIDS[action]
        requests = [
            {
                "principal": principal_uid,
                "action": action_uid,
                "resource": _uid("Namespace", n),
            }
            for n in names
        ]
        try:
            slice_ = _principal_entities(subject).with_added_json_str(f"[{resources}]")
            results = cedarpy.is_authorized_batch(requests, self._policies, slice_)
        except Exception:  # fail closed
            return set()
        return {
            n
            for n, r in zip(names, results, strict=True)
            if r.decision is cedarpy.Decision.Allow and not r.diagnostics.errors
        }

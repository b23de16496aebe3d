"""Read a policy directory (Cedar schema + policies, gates.yaml) and validate it, failing closed.

A policy directory holds:

- ``*.cedarschema``: the Cedar schema (human-readable syntax), concatenated in sorted file order;
- ``*.cedar``: the access policies, concatenated in sorted file order; every policy has a unique
  ``@id("...")`` (that id is what decisions and audit events name);
- ``gates.yaml``: the promotion gates (``registry.policy.gates``).

``validate`` checks all of it and raises ``InvalidPolicy`` with every problem in
``context["errors"]``; ``CedarAuthorizer`` validates the bundle it is given, so an invalid set never
becomes active.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cedarpy

from registry.errors import InvalidPolicy
from registry.policy.gates_config import GatesFile, parse_gates
from registry.policy.types import ACTIONS, RESOURCE_TYPES

SCHEMA_SUFFIX = ".cedarschema"
POLICY_SUFFIX = ".cedar"
GATES_FILE = "gates.yaml"
ROLLOUT_FILE = "rollout.yaml"  # optional: rollout plans
_DIGEST_VERSION = "adapter-registry-policy-v1"


@dataclass(frozen=True, slots=True)
class PolicyBundle:
    """The texts of one policy set and its digest (not validated by construction)."""

    schema_text: str
    policies_text: str
    gates_text: str
    digest: str  # "sha256:<hex>" over a canonical encoding of the texts
    rollout_text: str = ""  # rollout plans (rollout.yaml); "" = the shipped default plans

    def gates(self) -> GatesFile:
        """The parsed promotion gates (raises ``InvalidPolicy``)."""
        return parse_gates(self.gates_text)


def default_policy_dir() -> Path:
    """``registry/policies/``, the default policy set shipped inside the package (package data:
    found by an editable install and by an installed wheel alike)."""
    return Path(__file__).resolve().parents[1] / "policies"


@functools.cache
def default_rollout_text() -> str:
    """The shipped ``rollout.yaml``: the rollout plans of a policy set that carries none."""
    return _read(default_policy_dir() / ROLLOUT_FILE)


def bundle_digest(
    schema_text: str, policies_text: str, gates_text: str, rollout_text: str = ""
) -> str:
    """``sha256:<hex>`` of the texts, unambiguous (JSON-encoded, versioned); a set without
    rollout plans keeps the digest it had before plans existed."""
    parts = [_DIGEST_VERSION, schema_text, policies_text, gates_text]
    if rollout_text:
        parts.append(rollout_text)
    canonical = json.dumps(
        parts,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def from_texts(
    schema_text: str, policies_text: str, gates_text: str, rollout_text: str = ""
) -> PolicyBundle:
    """A bundle from in-memory texts (e.g. a policy set stored in the database)."""
    return PolicyBundle(
        schema_text=schema_text,
        policies_text=policies_text,
        gates_text=gates_text,
        digest=bundle_digest(schema_text, policies_text, gates_text, rollout_text),
        rollout_text=rollout_text,
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPolicy(
            f"cannot read policy file {path.name}", context={"errors": [str(exc)]}
        ) from exc


def _concat(files: list[Path]) -> str:
    # The file name is kept as a Cedar comment so the concatenation stays readable.
    return "".join(f"// ---- {p.name}\n{_read(p).rstrip()}\n" for p in files)


def load_dir(path: Path | str) -> PolicyBundle:
    """Read ``*.cedarschema``, ``*.cedar`` and ``gates.yaml`` from ``path`` (no validation).

    Raises ``InvalidPolicy`` when the directory or one of the required files is missing.
    """
    root = Path(path)
    if not root.is_dir():
        raise InvalidPolicy(
            f"policy directory {root} does not exist",
            context={"errors": [f"not a directory: {root}"]},
        )
    schemas = sorted(p for p in root.glob(f"*{SCHEMA_SUFFIX}") if p.is_file())
    policies = sorted(p for p in root.glob(f"*{POLICY_SUFFIX}") if p.is_file())
    gates = root / GATES_FILE
    missing = []
    if not schemas:
        missing.append(f"no *{SCHEMA_SUFFIX} file")
    if not policies:
        missing.append(f"no *{POLICY_SUFFIX} file")
    if not gates.is_file():
        missing.append(f"no {GATES_FILE}")
    if missing:
        raise InvalidPolicy(f"incomplete policy directory {root}", context={"errors": missing})
    rollout = root / ROLLOUT_FILE
    rollout_text = _read(rollout) if rollout.is_file() else ""
    return from_texts(_concat(schemas), _concat(policies), _read(gates), rollout_text)


def load_default() -> PolicyBundle:
    """The shipped default policy set."""
    return load_dir(default_policy_dir())


# --------------------------------------------------------------------------- validation


def _contract_probes() -> list[tuple[str, str]]:
    """(what is required, probe policy): the engine builds requests and entities this way, so
    an edited schema must keep declaring them. Each probe must validate against the schema."""
    probes = [
        (
            f"action {a!r} applying to Principal",
            f'permit(principal, action == Action::"{a}", resource);',
        )
        for a in ACTIONS
    ]
    probes += [
        (
            f"entity type {t} readable",
            f'permit(principal, action == Action::"read", resource is {t});',
        )
        for t in RESOURCE_TYPES
    ]
    probes.append(
        (
            "Principal attributes name, kind, role: String; namespaces, ci_identities: Set<String>",
            'permit(principal is Principal, action == Action::"read", resource) when {'
            ' principal.name == "" && principal.kind == "" && principal.role == "" &&'
            ' principal.namespaces.contains("") && principal.ci_identities.contains("") };',
        )
    )
    probes.append(
        (
            "Promotion attributes requested_by, registered_by: Principal; ci_actor: String",
            'permit(principal, action == Action::"approve", resource is Promotion) when {'
            " resource.requested_by == principal && resource.registered_by == principal &&"
            ' resource.ci_actor == "" };',
        )
    )
    return probes


def _static_policies(policies_text: str) -> dict[str, Any]:
    """Policy id (``policyN``) -> EST of every static policy; templates are refused."""
    try:
        est = json.loads(cedarpy.policies_to_json_str(policies_text))
    except ValueError as exc:
        raise InvalidPolicy("Cedar policies do not parse", context={"errors": [str(exc)]}) from exc
    if est.get("templates"):
        raise InvalidPolicy(
            "Cedar policy templates are not supported",
            context={"errors": [f"template {t}" for t in sorted(est["templates"])]},
        )
    static: dict[str, Any] = est.get("staticPolicies", {})
    return static


def _position(pid: str) -> tuple[int, str]:
    suffix = pid.removeprefix("policy")
    return (int(suffix), pid) if suffix.isdigit() else (1 << 30, pid)


def policy_ids(policies_text: str) -> dict[str, str]:
    """Cedar's positional policy id (``policyN``) -> the policy's ``@id`` (empty when absent),
    in source order."""
    static = _static_policies(policies_text)
    return {
        pid: str((static[pid].get("annotations") or {}).get("id") or "")
        for pid in sorted(static, key=_position)
    }


def validate(bundle: PolicyBundle, *, stored: bool = False) -> tuple[str, ...]:
    """Validate a bundle; return its policy ``@id`` values in policy order.

    Checks: the schema parses and declares what the engine relies on; the policies parse, are
    static (no templates), each has a non-empty ``@id`` that no other policy uses, and they
    validate against the schema (strict); ``gates.yaml`` parses; ``rollout.yaml`` parses and
    its plans meet its floor (``stored=True``, for a set applied before the floor existed: the
    rollout rules of ``registry.canary.plans``' stored mode). Raises ``InvalidPolicy`` whose
    ``context["errors"]`` lists every problem found.
    """
    try:
        schema = cedarpy.Schema.from_str(bundle.schema_text)
    except ValueError as exc:
        raise InvalidPolicy("Cedar schema does not parse", context={"errors": [str(exc)]}) from exc

    errors: list[str] = []
    probes = _contract_probes()
    probe_result = cedarpy.validate_policies("\n".join(p for _, p in probes), schema)
    failed_probes = sorted({e.policy_id for e in probe_result.errors})
    for pid in failed_probes:
        index = int(pid.removeprefix("policy")) if pid.startswith("policy") else -1
        need = probes[index][0] if 0 <= index < len(probes) else pid
        errors.append(f"schema: must declare {need}")

    ids = policy_ids(bundle.policies_text)  # raises on a parse error or templates
    if not ids:
        errors.append("no policies")
    seen: dict[str, str] = {}
    for pid, annotation in ids.items():
        if not annotation:
            errors.append(f'{pid}: missing @id("...") annotation')
        elif annotation in seen:
            errors.append(f"{pid}: duplicate @id {annotation!r} (also {seen[annotation]})")
        else:
            seen[annotation] = pid

    result = cedarpy.validate_policies(bundle.policies_text, schema)
    for err in result.errors:
        label = ids.get(err.policy_id) or err.policy_id or "policies"
        errors.append(f"{label}: {err.error}")

    try:
        bundle.gates()
    except InvalidPolicy as exc:
        errors.extend(f"{GATES_FILE}: {e}" for e in exc.context.get("errors", [exc.detail]))

    if bundle.rollout_text:
        from registry.canary.plans import parse_plans

        try:
            parse_plans(bundle.rollout_text, stored=stored)
        except InvalidPolicy as exc:
            errors.extend(f"{ROLLOUT_FILE}: {e}" for e in exc.context.get("errors", [exc.detail]))

    if errors:
        raise InvalidPolicy("policy set is invalid", context={"errors": errors})
    return tuple(ids.values())

"""Authorization (Cedar via ``cedarpy``) and promotion gates.

- ``types``: ``Subject``, ``Resource``, ``Decision``, the ``Authorizer`` protocol, ``ACTIONS``.
- ``loader``: read and validate a policy directory (``registry/policies/``) into a ``PolicyBundle``.
- ``engine``: ``CedarAuthorizer``, the default ``Authorizer``.
- ``gates``: promotion gate configuration (``gates.yaml``) and evaluation, pure.

No FastAPI, no SQLAlchemy: services call into this package, never the other way round.
"""

from registry.policy.engine import CedarAuthorizer
from registry.policy.gates import GATE_NAMES, EvalPoint, GateResult, evaluate_gates, gates_passed
from registry.policy.gates_config import GateConfig, GatesFile, parse_gates
from registry.policy.loader import (
    PolicyBundle,
    default_policy_dir,
    from_texts,
    load_default,
    load_dir,
    validate,
)
from registry.policy.types import (
    ACTIONS,
    MUTATING_ACTIONS,
    RESOURCE_TYPES,
    ROLES,
    Authorizer,
    Decision,
    Resource,
    Subject,
)

__all__ = [
    "ACTIONS",
    "GATE_NAMES",
    "MUTATING_ACTIONS",
    "RESOURCE_TYPES",
    "ROLES",
    "Authorizer",
    "CedarAuthorizer",
    "Decision",
    "EvalPoint",
    "GateConfig",
    "GateResult",
    "GatesFile",
    "PolicyBundle",
    "Resource",
    "Subject",
    "default_policy_dir",
    "evaluate_gates",
    "from_texts",
    "gates_passed",
    "load_default",
    "load_dir",
    "parse_gates",
    "validate",
]

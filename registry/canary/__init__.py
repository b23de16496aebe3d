"""Canary rollouts, the pure core: the sticky traffic split (``hashing``), rollout plans parsed
from ``rollout.yaml`` (``plans``, with the ``floor`` every plan must meet) and the analysis of
serving reports that decides whether a canary step holds, advances, completes or rolls back
(``analysis``).

No database, no HTTP: ``registry.deployments``, ``registry.promotions`` and ``registry.traffic``
call these with what they loaded. The format of the split is documented for gateway
implementers in ``docs/serving.md``.
"""

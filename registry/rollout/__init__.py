"""Rollouts, the pure core: the sticky traffic split (``hashing``), rollout plans parsed from
``policies/rollout.yaml`` (``plans``) and the analysis of serving reports that decides whether a
canary step holds, advances, completes or rolls back (``analysis``).

No database, no HTTP: the deployments service and the controller call these with what they
loaded. The format of the split is documented for gateway implementers in ``docs/serving.md``.
"""

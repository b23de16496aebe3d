"""Moving a deployment's traffic and what it served, above ``registry.deployments`` and
``registry.promotions`` (which imports the first, never this package; the first imports
neither): manual steps and rollbacks and the controller's moves (``moves``), the rollout
controller (``controller``), and "what served at T, who approved it" (``served``). Each move
appends a revision and, in the same transaction, expires the promotion requests it overtakes
and keeps the promotion behind a rollout in step with it.
"""

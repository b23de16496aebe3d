"""Moving a deployment's traffic: manual steps and rollbacks and the controller's moves
(``moves``), and the rollout controller (``controller``)."""

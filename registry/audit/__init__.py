"""Tamper-evident audit log: hash-chained, append-only events plus signed checkpoints.

- :mod:`registry.audit.canonical`: canonical JSON and the event hash (what exactly is hashed).
- :mod:`registry.audit.service`: ``append`` (in the caller's transaction), ``log``, ``head``.
- :mod:`registry.audit.checkpoints`: Ed25519 signing key, checkpoint export, ``Checkpointer``.
- :mod:`registry.audit.verify`: walk the chain and check it against every stored checkpoint.

The database enforces append-only (triggers, and on PostgreSQL the ``registry_app`` role's
privileges; see the ``c3a1f0e2b4d5`` migration). Nothing in the database protects the history
against its owner or a superuser: only the chain anchored by checkpoints outside it does
(security.md §4).
"""

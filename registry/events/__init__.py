"""Signed webhooks fed from the audit log (the audit log is the outbox)."""

"""Deployments: named serving targets and their immutable, numbered revisions."""

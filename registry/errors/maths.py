"""Adapter maths (merge, compose, aggregate) and the server-side jobs that run it."""

from __future__ import annotations

from registry.errors.base import Conflict, NotFound, RegistryError


class NotMergeable(RegistryError):
    """The adapter's method has no weight delta to fold into the base (prompt tuning, prefix
    tuning, p-tuning, ...); ``context["peft_type"]`` names it."""

    code = "not_mergeable"
    status_code = 422


class IncompatibleAdapters(RegistryError):
    """Inputs of a compose or aggregate that cannot be combined as asked: different bases or
    targets, unequal ranks where the method needs equal ones, DoRA magnitudes, a method that
    does not apply to their type. ``context["reason"]`` is the stable sub-reason."""

    code = "incompatible_adapters"
    status_code = 422


class MathsUnavailable(RegistryError):
    """This installation has no torch (``pip install adapter-registry[maths]``)."""

    code = "maths_unavailable"
    status_code = 501


class JobNotFound(NotFound):
    code = "job_not_found"


class JobStateConflict(Conflict):
    """Cancel of a job that has already finished, failed or been cancelled."""

    code = "job_state_conflict"

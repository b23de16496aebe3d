"""Errors of imports from an MLflow tracking server (``adapters import --from-mlflow``)."""

from __future__ import annotations

from registry.errors.base import NotFound, RegistryError, Unavailable, UriNotAllowed


class MlflowServerNotAllowed(UriNotAllowed):
    """The tracking server is not in ``mlflow.allowed_servers`` (``context["server"]``), or
    no server was named and none is configured."""

    code = "mlflow_server_not_allowed"
    status_code = 403


class MlflowSourceNotFound(NotFound):
    """The run, registered model version, alias or logged model (or the artifact path in it)
    does not exist on the tracking server (``context["source_uri"]``)."""

    code = "mlflow_source_not_found"


class MlflowNoAdapter(RegistryError):
    """The MLflow source holds no PEFT adapter (no ``adapter_config.json`` with safetensors
    weights in it, its ``peft/`` folder or a ``checkpoint-N/`` folder)."""

    code = "mlflow_no_adapter"
    status_code = 422


class MlflowUnavailable(Unavailable):
    """The tracking server could not be reached, timed out, answered an error or an answer
    over the configured bounds (``context["reason"]``). 502: the gateway's upstream failed."""

    code = "mlflow_unavailable"
    status_code = 502


class MlflowMirrorNotFound(NotFound):
    """The deployment has no MLflow mirror binding (``GET`` / ``DELETE`` of
    ``/deployments/{name}/mlflow-mirror`` before a ``PUT``)."""

    code = "mlflow_mirror_not_found"

"""The JSON calls of a deployment's MLflow mirror (``/deployments/{name}/mlflow-mirror``)."""

from __future__ import annotations

from registry.client._errors import JSON
from registry.client._refs import seg
from registry.client._transport import _Transport


class _Mirror(_Transport):
    def set_mlflow_mirror(
        self,
        deployment: str,
        *,
        model: str,
        tracking_server: str | None = None,
        stable_alias: str | None = None,
        candidate_alias: str | None = None,
        enabled: bool = True,
    ) -> JSON:
        """``PUT .../mlflow-mirror`` → MirrorRead: bind (or re-bind) the deployment to
        registered model ``model`` on an allow-listed MLflow server (None: its default)."""
        body: JSON = {"model": model, "enabled": enabled}
        for key, value in (
            ("tracking_server", tracking_server),
            ("stable_alias", stable_alias),
            ("candidate_alias", candidate_alias),
        ):
            if value is not None:
                body[key] = value
        result: JSON = self._json(
            "PUT", f"/api/v1/deployments/{seg(deployment)}/mlflow-mirror", json_body=body
        )
        return result

    def get_mlflow_mirror(self, deployment: str) -> JSON:
        """``GET .../mlflow-mirror`` → MirrorRead (``mlflow_mirror_not_found`` if unbound)."""
        result: JSON = self._json("GET", f"/api/v1/deployments/{seg(deployment)}/mlflow-mirror")
        return result

    def remove_mlflow_mirror(self, deployment: str) -> None:
        """``DELETE .../mlflow-mirror``: stop mirroring (MLflow's aliases stay)."""
        self._request("DELETE", f"/api/v1/deployments/{seg(deployment)}/mlflow-mirror")

"""The MLflow calls of the mirror: read, set and delete a registered model's alias, and tag a
model version. The bounded client of :mod:`registry.mlflow_import.rest` (timeouts, answer
size cap, no redirects), with the writes the import never needs."""

from __future__ import annotations

from typing import Any

import httpx

from registry.errors import MlflowSourceNotFound
from registry.mlflow_import.rest import API, MlflowRest, _parse, _unavailable


class MirrorRest(MlflowRest):
    def __enter__(self) -> MirrorRest:
        return self

    def send_json(self, method: str, path: str, body: dict[str, str], *, what: str) -> Any:
        """``method {API}{path}`` with a JSON body; the parsed answer (404: not found)."""
        try:
            with self._http.stream(method, API + path, json=body) as response:
                raw = self._read_capped(response, self.limits.max_json_bytes)
                status = response.status_code
        except httpx.HTTPError as exc:
            raise _unavailable(type(exc).__name__, path) from exc
        data = _parse(raw)
        if status >= 400:
            code = data.get("error_code") if isinstance(data, dict) else None
            if status == 404 or code == "RESOURCE_DOES_NOT_EXIST":
                raise MlflowSourceNotFound(f"MLflow has no such {what}", context={"what": what})
            raise _unavailable(f"http_{status}", path)
        return data

    def get_alias(self, model: str, alias: str) -> str | None:
        """The version ``alias`` points to, or None when it is not set."""
        try:
            data = self.get_json(
                "/registered-models/alias", {"name": model, "alias": alias}, what="model alias"
            )
        except MlflowSourceNotFound:
            return None
        mv = data.get("model_version")
        version = mv.get("version") if isinstance(mv, dict) else None
        return str(version) if version is not None else None

    def set_alias(self, model: str, alias: str, version: str) -> None:
        body = {"name": model, "alias": alias, "version": version}
        self.send_json("POST", "/registered-models/alias", body, what="model version")

    def delete_alias(self, model: str, alias: str) -> None:
        try:
            body = {"name": model, "alias": alias}
            self.send_json("DELETE", "/registered-models/alias", body, what="model alias")
        except MlflowSourceNotFound:
            pass  # already gone

    def set_tag(self, model: str, version: str, key: str, value: str) -> None:
        body = {"name": model, "version": version, "key": key, "value": value}
        self.send_json("POST", "/model-versions/set-tag", body, what="model version")

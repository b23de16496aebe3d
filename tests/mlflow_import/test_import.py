"""Imports from a real MLflow 3 tracking server, every URI form, through the HTTP API."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.factories.catalog import create_namespace, error_of
from tests.mlflow_import.conftest import MlflowServer


def _import(
    client: TestClient, server: MlflowServer, target: str, uri: str, base: str, **extra: Any
) -> httpx.Response:
    body = {"source_uri": uri, "tracking_server": server.url, "base": base, **extra}
    response: httpx.Response = client.post(f"/api/v1/adapters/{target}/mlflow-imports", json=body)
    return response


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.name: "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.iterdir()
        if p.is_file()
    }


def _files(body: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["digest"] for f in body["version"]["files"]}


def _run_folder(server: MlflowServer, run_id: str, path: str) -> Path:
    return next(server.artifacts.glob(f"*/{run_id}/artifacts/{path}"))


def _model_folder(server: MlflowServer, model_id: str, path: str) -> Path:
    return next(server.artifacts.glob(f"*/models/{model_id}/artifacts/{path}"))


def test_run_artifacts_are_imported_with_metrics_and_provenance(
    mlflow_client: TestClient, mlflow_server: MlflowServer, gpt2: str
) -> None:
    run_id = mlflow_server.sources["plain"]
    target = f"{create_namespace(mlflow_client)}/plain"
    r = _import(mlflow_client, mlflow_server, target, f"runs:/{run_id}/adapter", gpt2)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] is True
    source_files = _digests(_run_folder(mlflow_server, run_id, "adapter"))
    del source_files["training_args.bin"]  # the pickle decoy is never fetched
    assert _files(body) == source_files
    version = body["version"]
    assert version["source_uri"] == f"runs:/{run_id}/adapter"
    assert version["mlflow_run_id"] == run_id
    source = body["source"]
    assert source["tracking_server"] == mlflow_server.url
    assert (source["run_id"], source["model_id"], source["artifact_path"]) == (
        run_id,
        None,
        "adapter",
    )
    [metric] = source["metrics"]
    assert metric["key"] == "train_loss"
    assert metric["step"] == 20
    assert metric["recorded"]
    evals = mlflow_client.get(
        f"/api/v1/adapters/{target}/versions/v1/evaluations", params={"suite": "mlflow"}
    ).json()["items"]
    assert [(e["metric"], e["value"], e["higher_is_better"]) for e in evals] == [
        ("train_loss", 0.5, False)
    ]
    assert evals[0]["source"] == f"mlflow:runs/{run_id}/metrics/train_loss@20"

    sources = mlflow_client.get(f"/api/v1/adapters/{target}/versions/v1/mlflow-imports").json()
    assert sources == [source]

    again = _import(mlflow_client, mlflow_server, target, f"runs:/{run_id}/adapter/", gpt2)
    assert again.status_code == 200, again.text
    assert again.json()["created"] is False
    assert again.json()["version"]["ref"] == version["ref"]
    assert (
        mlflow_client.get(f"/api/v1/adapters/{target}/versions").json()["items"][0]["version"] == 1
    )


def test_trainer_checkpoint_with_the_highest_step_is_picked(
    mlflow_client: TestClient, mlflow_server: MlflowServer, gpt2: str
) -> None:
    run_id = mlflow_server.sources["plain"]
    target = f"{create_namespace(mlflow_client)}/ckpt"
    r = _import(mlflow_client, mlflow_server, target, f"runs:/{run_id}/trainer", gpt2)
    assert r.status_code == 201, r.text
    assert r.json()["source"]["artifact_path"] == "trainer/checkpoint-20"
    expected = _digests(_run_folder(mlflow_server, run_id, "trainer/checkpoint-20"))
    assert _files(r.json()) == {
        k: v for k, v in expected.items() if k not in ("optimizer.pt", "training_args.bin")
    }
    assert r.json()["version"]["r"] == 8


def test_logged_model_registered_version_and_alias(
    mlflow_client: TestClient, mlflow_server: MlflowServer, gpt2: str
) -> None:
    peft_source = mlflow_server.sources["peft"]
    model_id, name = peft_source["model_id"], peft_source["name"]
    target = f"{create_namespace(mlflow_client)}/logged"
    r = _import(mlflow_client, mlflow_server, target, f"models:/{model_id}", gpt2)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["source"]["artifact_path"] == "peft"
    assert body["source"]["model_id"] == model_id
    assert body["source"]["run_id"] == peft_source["run_id"]
    assert _files(body) == _digests(_model_folder(mlflow_server, model_id, "peft"))
    metrics = {m["key"]: m for m in body["source"]["metrics"]}
    assert metrics["eval_loss"]["value"] == 1.25
    assert metrics["eval_loss"]["step"] == 10
    assert metrics["eval loss"]["recorded"] is False
    evals = mlflow_client.get(f"/api/v1/adapters/{target}/versions/v1/evaluations").json()
    assert sorted(e["metric"] for e in evals["items"]) == ["accuracy", "eval_loss"]

    # The registered version and its alias resolve to the same logged model: same version.
    for uri in (f"models:/{name}/1", f"models:/{name}@champion"):
        again = _import(mlflow_client, mlflow_server, target, uri, gpt2)
        assert again.status_code == 200, again.text
        assert again.json()["version"]["ref"] == body["version"]["ref"]

    fresh = f"{create_namespace(mlflow_client)}/registered"
    r = _import(mlflow_client, mlflow_server, fresh, f"models:/{name}@champion", gpt2)
    assert r.status_code == 201, r.text
    assert r.json()["source"]["model_version"] == f"{name}/1"
    assert r.json()["version"]["digest"] == body["version"]["digest"]


@pytest.mark.parametrize(
    ("source", "path", "status", "code"),
    [
        ("truncated", "adapter", 400, "corrupt_safetensors"),
        ("llama", "adapter", 400, "incompatible_base"),
        ("empty", "", 422, "mlflow_no_adapter"),
        ("empty", "nothing/here", 404, "mlflow_source_not_found"),
    ],
)
def test_bad_sources_are_refused_with_stable_codes(
    mlflow_client: TestClient,
    mlflow_server: MlflowServer,
    gpt2: str,
    source: str,
    path: str,
    status: int,
    code: str,
) -> None:
    target = f"{create_namespace(mlflow_client)}/bad"
    uri = f"runs:/{mlflow_server.sources[source]}/{path}"
    r = _import(mlflow_client, mlflow_server, target, uri, gpt2)
    assert (r.status_code, error_of(r)[0]) == (status, code), r.text
    assert mlflow_client.get(f"/api/v1/adapters/{target}").status_code == 404


def test_unknown_run_is_not_found(
    mlflow_client: TestClient, mlflow_server: MlflowServer, gpt2: str
) -> None:
    target = f"{create_namespace(mlflow_client)}/x"
    for uri in ("runs:/0123456789abcdef0123456789abcdef/adapter", "models:/no-such-model/3"):
        r = _import(mlflow_client, mlflow_server, target, uri, gpt2)
        assert (r.status_code, error_of(r)[0]) == (404, "mlflow_source_not_found"), r.text


def test_server_not_allow_listed_down_and_bad_uri(
    mlflow_client: TestClient, mlflow_server: MlflowServer, gpt2: str
) -> None:
    target = f"{create_namespace(mlflow_client)}/x"
    uri = f"runs:/{mlflow_server.sources['plain']}/adapter"
    body = {"source_uri": uri, "base": gpt2}
    path = f"/api/v1/adapters/{target}/mlflow-imports"
    r = mlflow_client.post(path, json={**body, "tracking_server": "http://mlflow.example:5000"})
    assert (r.status_code, error_of(r)[0]) == (403, "mlflow_server_not_allowed")
    r = mlflow_client.post(path, json=body)  # no server named, none configured
    assert (r.status_code, error_of(r)[0]) == (403, "mlflow_server_not_allowed")
    down = mlflow_client.app.state.settings.mlflow.allowed_servers[1]  # type: ignore[attr-defined]
    r = mlflow_client.post(path, json={**body, "tracking_server": down})
    assert (r.status_code, error_of(r)[0]) == (502, "mlflow_unavailable"), r.text
    for bad in ("runs:/../x", "s3://bucket/x/", "models:/a/b/c", "runs:/abc/a%2e%2e/x"):
        r = mlflow_client.post(path, json={**body, "source_uri": bad, "tracking_server": down})
        assert (r.status_code, error_of(r)[0]) == (400, "invalid_uri"), bad


def test_no_pickle_was_ever_requested(
    mlflow_client: TestClient, mlflow_server: MlflowServer, gpt2: str
) -> None:
    run_id = mlflow_server.sources["plain"]
    target = f"{create_namespace(mlflow_client)}/pickles"
    assert _import(mlflow_client, mlflow_server, target, f"runs:/{run_id}/", gpt2).status_code in (
        200,
        201,
    )
    lines = [unquote(line) for line in mlflow_server.requested_paths()]
    downloads = [line for line in lines if "get-artifact" in line or "artifacts/files" in line]
    assert downloads, "the access log shows no artifact download"
    assert not [line for line in downloads if re.search(r"\.(bin|pt|pth|pkl|ckpt)\b", line)]

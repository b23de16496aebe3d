"""Render and lint deploy/helm/adapter-registry offline, with Helm's own Go code.

Helm comes from the ``helm-python-sdk`` wheel (import name ``helm_python``): it ships no ``helm``
executable but ``libhelm_c.so`` (a C ABI over Helm v4's Go SDK) bound with ctypes, so
``Chart.render`` is ``helm template`` and ``lint`` is ``helm lint``, with no cluster contacted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "adapter-registry"
RELEASE = "reg"
NAMESPACE = "registry"
# A Kubernetes version kubernetes-validate bundles schemas for (and the chart's kubeVersion allows).
KUBE_VERSION = "1.30.0"

# Everything optional switched on (the defaults leave HPA and ServiceMonitor off).
ALL_ON: dict[str, Any] = {
    "autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
    "serviceMonitor": {"enabled": True, "bearerTokenSecret": {"name": "registry-metrics"}},
    "podDisruptionBudget": {"enabled": True},
    "storage": {
        "endpointUrl": "http://minio.minio.svc:9000",
        "prefix": "prod/",
        "credentials": {"existingSecret": "registry-s3"},
    },
    "audit": {"signingKey": {"existingSecret": "registry-audit-key"}},
    "settings": {"oidc.leeway_s": 60, "server.max_concurrency": 500, "webhooks.batch": 50},
    "secretSettings": [
        {"setting": "oidc.max_token_age_s", "secretName": "registry-oidc", "key": "max-age"}
    ],
}


def render(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path -> rendered text (``helm template``; NOTES.txt included)."""
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def manifests(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rendered Kubernetes objects (templates that render to nothing are left out)."""
    docs: list[dict[str, Any]] = []
    for path, text in sorted(render(values).items()):
        if not path.endswith(".yaml"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def lint(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """``helm lint --strict --kube-version`` (findings as data: severity 1 info ... 3 error)."""
    report: dict[str, Any] = helm.lint(
        CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}"
    )
    return report


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]

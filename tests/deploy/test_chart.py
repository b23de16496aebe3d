"""deploy/helm/adapter-registry: rendered by Helm, linted strictly, validated against the
Kubernetes 1.30 OpenAPI schemas (kubernetes-validate, bundled, offline), and checked for what
the registry needs: real settings only, the migration hook, a locked-down pod."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
from pydantic import BaseModel

from registry.settings import Settings
from tests.deploy.chart import (
    ALL_ON,
    CHART,
    KUBE_VERSION,
    ROOT,
    containers,
    lint,
    manifests,
    one,
    render,
)

VARIANTS = {"defaults": None, "all-on": ALL_ON}
# Custom resources: kubernetes-validate bundles only the core API's schemas, so these kinds are
# skipped (ServiceMonitor is the Prometheus Operator's CRD, monitoring.coreos.com/v1).
CRD_KINDS = frozenset({"ServiceMonitor"})


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return manifests(VARIANTS[request.param])


@pytest.fixture(scope="module")
def all_on() -> list[dict[str, Any]]:
    return manifests(ALL_ON)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_lint_is_clean_in_strict_mode(variant: str) -> None:
    report = lint(VARIANTS[variant])
    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    # Severity 1 (info, "icon is recommended") is all that may remain.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_manifests_validate_strictly_against_the_kubernetes_schemas(
    rendered: list[dict[str, Any]],
) -> None:
    validated = []
    for doc in rendered:
        if doc["kind"] in CRD_KINDS:
            continue
        # strict: additionalProperties false, so a misspelt or misplaced field fails.
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        validated.append(doc["kind"])
    assert {"Deployment", "Job", "Service", "ConfigMap", "PodDisruptionBudget"} <= set(validated)


def test_the_validator_catches_a_misplaced_field(all_on: list[dict[str, Any]]) -> None:
    deployment = one(all_on, "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def test_optional_objects_are_off_by_default() -> None:
    kinds = {doc["kind"] for doc in manifests()}
    assert "HorizontalPodAutoscaler" not in kinds
    assert "ServiceMonitor" not in kinds
    assert "PodDisruptionBudget" in kinds


def test_optional_objects_render_when_enabled(all_on: list[dict[str, Any]]) -> None:
    hpa = one(all_on, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == one(all_on, "Deployment")["metadata"]["name"]
    # The HPA owns the replica count.
    assert "replicas" not in one(all_on, "Deployment")["spec"]
    monitor = one(all_on, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["bearerTokenSecret"] == {"name": "registry-metrics", "key": "token"}


# Several workers per pod: the `serve` parent answers on the metrics port for all of them.
METRICS_PORT: dict[str, Any] = {
    **ALL_ON,
    "metricsPort": 9100,
    "workers": 2,
    "serviceMonitor": {"enabled": True},
}


def test_the_metrics_port_is_served_and_scraped_without_a_token() -> None:
    docs = manifests(METRICS_PORT)
    for doc in docs:
        if doc["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    (api,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in api["ports"]
    assert api["args"][api["args"].index("--workers") + 1] == "2"
    env = {e["name"]: e.get("value") for e in api["env"]}
    assert env["REGISTRY_METRICS__PORT"] == "9100"
    assert env["REGISTRY_METRICS__HOST"] == "0.0.0.0"
    assert {n for n in env if n.startswith("REGISTRY_")} <= setting_env_names()
    service_ports = one(docs, "Service")["spec"]["ports"]
    assert {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"} in (
        service_ports
    )
    (endpoint,) = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["path"] == "/metrics"
    assert "bearerTokenSecret" not in endpoint
    report = lint(METRICS_PORT)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_without_a_metrics_port_nothing_listens_for_metrics(
    rendered: list[dict[str, Any]],
) -> None:
    (api,) = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [p["name"] for p in api["ports"]] == ["http"]
    assert not any(e["name"].startswith("REGISTRY_METRICS__") for e in api["env"])
    assert [p["name"] for p in one(rendered, "Service")["spec"]["ports"]] == ["http"]


# --- Settings: every REGISTRY_* the chart sets is a field of registry/settings.py ------------


def setting_env_names(model: type[BaseModel] = Settings, prefix: str = "REGISTRY_") -> set[str]:
    """REGISTRY_<GROUP>__<FIELD> for every leaf field of the settings model, nested groups
    walked (env_nested_delimiter "__")."""
    names: set[str] = set()
    for field_name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= setting_env_names(annotation, f"{prefix}{field_name.upper()}__")
        else:
            names.add(f"{prefix}{field_name.upper()}")
    return names


def chart_env(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        entry
        for doc in docs
        if doc["kind"] in {"Deployment", "Job"}
        for container in containers(doc)
        for entry in container.get("env", [])
    ]


def unknown_settings(docs: list[dict[str, Any]]) -> set[str]:
    names = {entry["name"] for entry in chart_env(docs)}
    return {n for n in names if n.startswith("REGISTRY_")} - setting_env_names()


def test_the_settings_walk_sees_nested_groups() -> None:
    names = setting_env_names()
    assert {"REGISTRY_DATABASE__URL", "REGISTRY_STORAGE__BUCKET", "REGISTRY_OIDC__LEEWAY_S"} <= (
        names
    )
    assert "REGISTRY_WEBHOOKS__ENABLED" in names  # a group defined outside settings.py
    assert not any(n in names for n in ("REGISTRY_DATABASE", "REGISTRY_STORAGE"))


def test_every_registry_env_var_is_a_real_setting(rendered: list[dict[str, Any]]) -> None:
    assert unknown_settings(rendered) == set()


def test_a_made_up_setting_is_caught() -> None:
    docs = manifests({"settings": {"server.hots": "0.0.0.0"}})
    assert unknown_settings(docs) == {"REGISTRY_SERVER__HOTS"}


def test_the_values_set_parse_as_settings(
    all_on: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The plain values the chart renders load into Settings (types, s3 needs a bucket ...)."""
    import os

    for name in list(os.environ):
        if name.startswith("REGISTRY_"):
            monkeypatch.delenv(name)
    deployment = one(all_on, "Deployment")
    (api,) = containers(deployment)
    for entry in api["env"]:
        if "value" in entry:
            monkeypatch.setenv(entry["name"], entry["value"])
    monkeypatch.setenv("REGISTRY_DATABASE__URL", "postgresql+psycopg://u@db/registry")
    settings = Settings()
    assert settings.database.auto_migrate is False
    assert settings.storage.backend == "s3"
    assert settings.storage.bucket == "adapter-registry"
    assert settings.storage.endpoint_url == "http://minio.minio.svc:9000"
    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == 8000
    assert settings.oidc.leeway_s == 60
    assert settings.server.max_concurrency == 500
    assert str(settings.policy.directory) == "/etc/adapter-registry/policies"
    assert str(settings.audit.signing_key_path).startswith("/etc/adapter-registry/audit/")


def test_secrets_come_from_secret_key_refs(all_on: list[dict[str, Any]]) -> None:
    refs = {
        entry["name"]: entry["valueFrom"]["secretKeyRef"]
        for entry in chart_env(all_on)
        if "valueFrom" in entry
    }
    assert refs["REGISTRY_DATABASE__URL"] == {"name": "adapter-registry-database", "key": "url"}
    assert refs["REGISTRY_STORAGE__ACCESS_KEY_ID"]["name"] == "registry-s3"
    assert refs["REGISTRY_STORAGE__SECRET_ACCESS_KEY"]["name"] == "registry-s3"
    assert refs["REGISTRY_OIDC__MAX_TOKEN_AGE_S"] == {"name": "registry-oidc", "key": "max-age"}
    # No secret is ever a plain value.
    plain = {e["name"] for e in chart_env(all_on) if "value" in e}
    assert not plain & {
        "REGISTRY_DATABASE__URL",
        "REGISTRY_STORAGE__ACCESS_KEY_ID",
        "REGISTRY_STORAGE__SECRET_ACCESS_KEY",
    }


# --- The migration Job and the Deployment ---------------------------------------------------


def test_migration_job_is_a_pre_install_pre_upgrade_hook(rendered: list[dict[str, Any]]) -> None:
    job = one(rendered, "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    (migrate,) = containers(job)
    assert [*migrate["command"], *migrate["args"]] == ["adapter-registry", "db", "upgrade"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    env = {e["name"] for e in migrate["env"]}
    assert "REGISTRY_DATABASE__URL" in env


def test_the_deployment_never_migrates_by_itself(rendered: list[dict[str, Any]]) -> None:
    (api,) = containers(one(rendered, "Deployment"))
    values = {e["name"]: e.get("value") for e in api["env"]}
    assert values["REGISTRY_DATABASE__AUTO_MIGRATE"] == "false"
    assert values["REGISTRY_STORAGE__BACKEND"] == "s3"
    assert api["command"] == ["adapter-registry"]
    assert api["args"][:3] == ["serve", "--host", "0.0.0.0"]


def test_probes_use_the_health_endpoints(rendered: list[dict[str, Any]]) -> None:
    (api,) = containers(one(rendered, "Deployment"))
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["resources"]["requests"]
    assert api["resources"]["limits"]


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_are_locked_down(rendered: list[dict[str, Any]], kind: str) -> None:
    doc = one(rendered, kind)
    pod = doc["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in containers(doc):
        ctx = container["securityContext"]
        assert ctx["runAsNonRoot"] is True
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert "add" not in ctx["capabilities"]
        assert ctx.get("privileged", False) is False
        # The root filesystem is read-only: /tmp is a writable emptyDir.
        (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert "emptyDir" in volumes[tmp["name"]]


# --- Policies, images, refusals ---------------------------------------------------------------


def test_policy_configmap_ships_the_packaged_policy_directory(
    rendered: list[dict[str, Any]],
) -> None:
    """files/policies/ is a copy of registry/policies/: they must not drift apart."""
    shipped = {p.name: p.read_text() for p in sorted((ROOT / "registry" / "policies").iterdir())}
    copied = {p.name: p.read_text() for p in sorted((CHART / "files" / "policies").iterdir())}
    assert copied == shipped, "copy registry/policies/* to deploy/helm/.../files/policies/"
    configmap = one(rendered, "ConfigMap")
    assert configmap["data"] == shipped
    deployment = one(rendered, "Deployment")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "policies", "configMap": {"name": configmap["metadata"]["name"]}} in volumes


def test_policies_may_come_from_values() -> None:
    files = {"schema.cedarschema": "entity X;\n", "p.cedar": "permit(principal,action,resource);\n"}
    configmap = one(manifests({"policies": {"files": files}}), "ConfigMap")
    assert configmap["data"] == files


def test_images_are_pinned(rendered: list[dict[str, Any]]) -> None:
    for doc in rendered:
        if doc["kind"] in {"Deployment", "Job"}:
            for container in containers(doc):
                image = container["image"]
                assert ":" in image, image
                assert not image.endswith(":latest"), image


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"image": {"tag": "latest"}}, "pin a version"),
        ({"storage": {"bucket": ""}}, "storage.bucket is required"),
        ({"database": {"existingSecret": ""}}, "database.existingSecret is required"),
        ({"serviceMonitor": {"enabled": True}}, "bearerTokenSecret.name is required"),
        ({"metricsPort": 8000}, "metricsPort must differ from containerPort"),
    ],
)
def test_the_chart_refuses_unsafe_values(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        render(values)


def test_notes_render() -> None:
    notes = render()["adapter-registry/templates/NOTES.txt"]
    assert "adapter-registry bootstrap" in notes
    assert "audit.signingKey.existingSecret is empty" in notes

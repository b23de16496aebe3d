"""``publishers exchange`` end to end: a local OIDC issuer, a trusted publisher added with the
CLI, the CI token exchanged (from ``REGISTRY_OIDC_TOKEN`` or ``--oidc-token``) and used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.factories.catalog import unique
from tests.fixtures.app import bootstrap
from tests.fixtures.server import LiveServer, server_env, start_server, stop_server
from tests.oidc.local_issuer import AUDIENCE, LocalIssuer, SigningKey, github_claims, sign

_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    return SigningKey.generate("cli-ci-key")


@pytest.fixture(scope="module")
def issuer(signing_key: SigningKey) -> Iterator[LocalIssuer]:
    local = LocalIssuer([signing_key]).start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="module")
def oidc_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server that accepts the loopback (plain http) issuer."""
    tmp = tmp_path_factory.mktemp("oidc-cli")
    env = server_env(database_url, tmp / "artifacts", REGISTRY_OIDC__ALLOW_INSECURE_LOOPBACK="true")
    for name in _PROXIES:
        env.pop(name, None)
    proc, url = start_server(env, tmp / "server.log")
    try:
        yield LiveServer(url=url, token=bootstrap(database_url, unique("oidc-cli")), env=env)
    finally:
        stop_server(proc)


def run(server: LiveServer, *args: str, **env_extra: str) -> tuple[int, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update({"REGISTRY_URL": server.url, "REGISTRY_TOKEN": server.token, **env_extra})
    done = subprocess.run(
        [sys.executable, "-m", "registry", *args, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None


def ci_token(issuer: LocalIssuer, key: SigningKey, workflow: str) -> str:
    ref = f"acme/trainer/.github/workflows/{workflow}.yml@refs/heads/main"
    claims = {"job_workflow_ref": ref, "workflow_ref": ref}
    return sign(github_claims(issuer.url, now=time.time(), **claims), key)


def test_exchange_then_use_the_registry_token(
    oidc_server: LiveServer, issuer: LocalIssuer, signing_key: SigningKey
) -> None:
    ns, principal, workflow = unique("ci-ns"), unique("ci"), unique("wf")
    assert run(oidc_server, "namespaces", "create", ns)[0] == 0
    code, publisher = run(
        oidc_server,
        "publishers",
        "add",
        unique("pub"),
        "--issuer",
        issuer.url,
        "--audience",
        AUDIENCE,
        "--repository",
        "acme/trainer",
        "--owner-id",
        "1001",
        "--workflow",
        f"acme/trainer/.github/workflows/{workflow}.yml",
        "--principal",
        principal,
        "--namespace",
        ns,
        "--ref",
        "refs/heads/main",
    )
    assert code == 0, publisher
    assert publisher["principal"] == principal

    jwt = ci_token(issuer, signing_key, workflow)
    code, minted = run(oidc_server, "publishers", "exchange", REGISTRY_OIDC_TOKEN=jwt)
    assert code == 0, minted
    assert set(minted) == {"token", "expires_at", "principal", "identity"}
    assert minted["principal"] == principal  # not the admin of --token
    assert minted["identity"]

    code, listing = run(oidc_server, "namespaces", "list", REGISTRY_TOKEN=minted["token"])
    assert code == 0, listing
    assert [n["name"] for n in listing["items"]] == [ns]

    code, body = run(oidc_server, "publishers", "exchange", "--oidc-token", jwt)
    assert (code, body["error"]) == (3, "oidc_token_reused")
    code, body = run(oidc_server, "publishers", "exchange")
    assert (code, body["error"]) == (2, "usage")

"""A local OIDC issuer on loopback, RSA keys and token builders for the verifier tests.

The issuer serves ``/.well-known/openid-configuration`` and ``/jwks`` from a thread
(``http.server``); a test switches what ``/jwks`` returns (``mode``), rotates ``keys``, stops the
server, and reads how often each document was fetched.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwt.algorithms import RSAAlgorithm

from registry.errors import OidcTokenInvalid

AUDIENCE = "adapter-registry"
NOW = 1_750_000_000.0
"""Fake Unix time of the tests (June 2025): far from the wall clock on purpose, so any check
that read the real clock instead of the injected one would fail."""

JwksMode = Literal["ok", "error", "html", "empty", "invalid_json", "non_rsa", "slow", "drip"]


class FakeClock:
    """Stands in for both ``time.monotonic`` (JWKS cache) and ``time.time`` (verifier)."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, kid: str, bits: int = 2048) -> SigningKey:
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=bits))

    def public_jwk(self, **extra: Any) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        assert isinstance(jwk, dict)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256", **extra}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class LocalIssuer:
    """An OIDC issuer at ``http://127.0.0.1:<port>`` (loopback, so plain http is allowed)."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys = list(keys)
        self.mode: JwksMode = "ok"
        self.discovery_override: dict[str, Any] | None = None
        self.slow_s = 5.0
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._running = False

    def start(self) -> LocalIssuer:
        self._thread.start()
        self._running = True
        return self

    def stop(self) -> None:
        """Stop serving: the port refuses connections from now on."""
        self._stopping.set()
        if self._running:
            self._server.shutdown()
            self._running = False
        self._server.server_close()

    def discovery(self) -> dict[str, Any]:
        if self.discovery_override is not None:
            return self.discovery_override
        return {"issuer": self.url, "jwks_uri": f"{self.url}/jwks"}

    def jwks_body(self) -> tuple[int, str, bytes]:
        keys = {"keys": [k.public_jwk() for k in self.keys]}
        match self.mode:
            case "error":
                return 500, "application/json", b'{"error": "boom"}'
            case "html":
                return 200, "text/html", b"<html><body>Service Unavailable</body></html>"
            case "empty":
                return 200, "application/json", b'{"keys": []}'
            case "invalid_json":
                return 200, "application/json", b'{"keys": [ {"kty": '
            case "non_rsa":
                ec = {"kty": "EC", "crv": "P-256", "kid": "ec-1", "x": "AA", "y": "AA"}
                oct_ = {"kty": "oct", "kid": "hmac-1", "k": "c2VjcmV0"}
                return 200, "application/json", json.dumps({"keys": [ec, oct_]}).encode()
            case _:
                return 200, "application/json", json.dumps(keys).encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                # The client gave up (timeout): expected in the slow tests.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._get()

            def _get(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    with issuer._lock:
                        issuer.discovery_fetches += 1
                    self._send(200, "application/json", json.dumps(issuer.discovery()).encode())
                    return
                if self.path != "/jwks":
                    self._send(404, "text/plain", b"not found")
                    return
                with issuer._lock:
                    issuer.jwks_fetches += 1
                status, ctype, body = issuer.jwks_body()
                if issuer.mode == "slow":
                    issuer._stopping.wait(issuer.slow_s)
                if issuer.mode == "drip":
                    self._drip(body)
                    return
                self._send(status, ctype, body)

            def _drip(self, body: bytes) -> None:
                """Headers at once, then a byte at a time: each read is quick, the whole is not."""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for i in range(len(body)):
                    if issuer._stopping.wait(0.05):
                        return
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()

            def _send(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


# --- tokens ------------------------------------------------------------------------------


def github_claims(issuer: str, now: float = NOW, **overrides: Any) -> dict[str, Any]:
    """A GitHub Actions token for ``acme/trainer``'s ``train.yml`` on protected ``main``."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "repo:acme/trainer:environment:prod",
        "jti": str(uuid.uuid4()),
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now) + 300,
        "repository": "acme/trainer",
        "repository_owner": "acme",
        "repository_owner_id": "1001",
        "repository_id": "2002",
        "ref": "refs/heads/main",
        "ref_type": "branch",
        "ref_protected": "true",
        "sha": "a" * 40,
        "workflow_ref": "acme/trainer/.github/workflows/train.yml@refs/heads/main",
        "job_workflow_ref": "acme/trainer/.github/workflows/train.yml@refs/heads/main",
        "event_name": "push",
        "run_id": "123456",
        "run_number": "7",
        "run_attempt": "1",
        "actor": "alice",
        "actor_id": "42",
        "environment": "prod",
        "runner_environment": "github-hosted",
    }
    claims.update(overrides)
    return claims


def gitlab_claims(issuer: str, now: float = NOW, **overrides: Any) -> dict[str, Any]:
    """A GitLab CI ``id_tokens`` token for ``acme/trainer`` on protected ``main``."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "project_path:acme/trainer:ref_type:branch:ref:main",
        "jti": str(uuid.uuid4()),
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now) + 300,
        "project_id": "555",
        "project_path": "acme/trainer",
        "namespace_id": "77",
        "namespace_path": "acme",
        "user_id": "5",
        "user_login": "bob",
        "pipeline_id": "9001",
        "pipeline_source": "push",
        "job_id": "31337",
        "ref": "main",
        "ref_type": "branch",
        "ref_path": "refs/heads/main",
        "ref_protected": "true",
        "sha": "b" * 40,
        "ci_config_ref_uri": "gitlab.example.com/acme/trainer//.gitlab-ci.yml@refs/heads/main",
        "ci_config_sha": "b" * 40,
        "environment": "prod",
    }
    claims.update(overrides)
    return claims


def without(claims: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k not in names}


def sign(
    claims: dict[str, Any],
    key: SigningKey,
    *,
    kid: str | None = None,
    headers: dict[str, Any] | None = None,
) -> str:
    """RS256-sign ``claims``; the header names ``kid`` (default: the key's own)."""
    return jwt.encode(
        claims,
        key.private,
        algorithm="RS256",
        headers={"kid": kid if kid is not None else key.kid, **(headers or {})},
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """Build a JWS without PyJWT: HS256 over ``secret`` when given, else an empty signature."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    if secret is None:
        return f"{signing_input}."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def raw_rs256(header: dict[str, Any], claims: dict[str, Any], key: SigningKey) -> str:
    """RS256-sign arbitrary JSON without PyJWT's encode-time checks (odd ``kid`` / ``iss``)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = key.private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def tamper(token: str, **changes: Any) -> str:
    """Replace claims in the payload and keep the original signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


@contextmanager
def rejected(reason: str) -> Iterator[None]:
    """Expect ``OidcTokenInvalid`` with ``context["reason"] == reason`` (codes, not messages)."""
    with pytest.raises(OidcTokenInvalid) as info:
        yield
    assert info.value.context["reason"] == reason, info.value.context


@contextmanager
def elapsed_under(seconds: float) -> Iterator[None]:
    """A generous latency bound: the call returned, and did not hang."""
    start = time.monotonic()
    yield
    assert time.monotonic() - start < seconds

"""Files refused on their way into an upload session (real HTTP app): a wrong or malformed digest
claim, forbidden content or names, an oversized safetensors header, someone else's session."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from registry.settings import Settings
from tests.factories.catalog import (
    error_of,
    open_upload,
    push,
    put_file,
    sha256_hex,
    staging_files,
    unique,
)
from tests.fixtures.peft import PEFT_FIXTURES


class TestUploadRefusals:
    def test_wrong_digest_claim_is_refused(self, client: TestClient, settings: Settings) -> None:
        upload_id = open_upload(client)
        r = put_file(client, upload_id, "README.md", b"hello\n", digest="sha256:" + "0" * 64)
        assert r.status_code == 400
        assert error_of(r) == ("digest_mismatch", "upload")
        assert client.get(f"/api/v1/uploads/{upload_id}").json()["files"] == []
        assert not [p for p in staging_files(settings) if upload_id in str(p)]

    @pytest.mark.parametrize(
        "digest",
        [
            "sha256:" + "0" * 63,
            "sha256:" + "A" * 64,
            "sha512:" + "0" * 128,
            "md5:abc",
            "sha256:../../x",
            "",
            "sha256:" + "0" * 10_000,
        ],
    )
    def test_malformed_digest_is_refused(self, client: TestClient, digest: str) -> None:
        upload_id = open_upload(client)
        r = put_file(client, upload_id, "README.md", b"x", digest=digest)
        assert 400 <= r.status_code < 500
        assert r.json()["error"] in ("invalid_digest", "invalid_request")

    @pytest.mark.parametrize(
        ("name", "data", "reason"),
        [
            ("adapter_model.bin", b"\x80\x04\x95" + b"\x00" * 600, "pickle"),
            ("adapter_model.safetensors", b"\x80\x02cos\nsystem\n" + b"\x00" * 600, "pickle"),
            ("adapter_model.safetensors", b"PK\x03\x04" + b"\x00" * 600, "archive"),
            ("README.md", b"cos\nsystem\n(S'echo hi'\ntR." + b" " * 600, "pickle"),
            ("weights.dat", b"x" * 10, "forbidden_name"),
            ("model.gz", b"\x1f\x8b" + b"\x00" * 600, "forbidden_name"),
        ],
    )
    def test_forbidden_file_is_refused(
        self, client: TestClient, name: str, data: bytes, reason: str
    ) -> None:
        upload_id = open_upload(client)
        r = put_file(client, upload_id, name, data)
        assert r.status_code == 400, r.text
        assert error_of(r) == ("forbidden_file", reason)
        assert client.get(f"/api/v1/uploads/{upload_id}").json()["files"] == []

    @pytest.mark.parametrize("name", ["..%2Fx", "%2e%2e%2fx", "%252e%252e%252f", "a%00b", ".."])
    def test_path_like_file_name_is_refused(self, client: TestClient, name: str) -> None:
        upload_id = open_upload(client)
        r = put_file(client, upload_id, name, b"x")
        # Refused by name, or never routed to a file (the client normalised "..").
        assert r.status_code in (400, 404, 405), r.text
        assert r.json()["error"] in ("forbidden_file", "not_found", "method_not_allowed")
        assert client.get(f"/api/v1/uploads/{upload_id}").json()["files"] == []

    def test_missing_digest_claim_is_refused(self, client: TestClient) -> None:
        upload_id = open_upload(client)
        r = client.put(f"/api/v1/uploads/{upload_id}/files/README.md", content=b"x")
        assert r.status_code == 422
        assert r.json()["error"] == "invalid_request"
        assert client.get(f"/api/v1/uploads/{upload_id}").json()["files"] == []

    def test_oversized_safetensors_header_is_refused(
        self, client: TestClient, namespace: str, gpt2_base: str, tmp_path: Path
    ) -> None:
        src = PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"
        (tmp_path / "adapter_config.json").write_bytes((src / "adapter_config.json").read_bytes())
        (tmp_path / "adapter_model.safetensors").write_bytes(
            struct.pack("<Q", 100_000_001) + b"{" + b" " * 64
        )
        r = push(client, namespace, "big", tmp_path, gpt2_base)
        assert r.status_code == 400
        assert error_of(r) == ("corrupt_safetensors", "header_too_large")

    def test_someone_elses_upload_is_not_found(
        self, client: TestClient, anon_client: TestClient, database_url: str
    ) -> None:
        from tests.fixtures.app import bootstrap

        upload_id = open_upload(client)
        other = bootstrap(database_url, unique("other"))
        r = anon_client.put(
            f"/api/v1/uploads/{upload_id}/files/README.md",
            content=b"x",
            headers={
                "Authorization": f"Bearer {other}",
                "X-Content-Digest": f"sha256:{sha256_hex(b'x')}",
            },
        )
        assert r.status_code == 404
        assert r.json()["error"] == "upload_not_found"

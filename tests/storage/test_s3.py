"""S3-backend specifics against each S3 server over HTTP (moto, SeaweedFS): multipart, presign,
imports, conditional requests, error mapping."""

from __future__ import annotations

import hashlib
import socket
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError

from registry.errors import (
    BlobNotFound,
    IntegrityFailure,
    InvalidUri,
    StorageUnavailable,
    UriNotAllowed,
)
from registry.settings import StorageSettings
from registry.storage.s3 import S3ArtifactStore
from registry.storage.s3_io import build_client, translate, unchanged
from tests.fixtures.s3 import S3Server
from tests.storage.conftest import IMPORT_PREFIX, MIB, PART

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CopySourceTypeDef

pytestmark = pytest.mark.s3


def client_error(code: str, status: int) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestMultipart:
    def test_large_file_uses_multipart_upload(
        self, s3_store: S3ArtifactStore, s3_client: S3Client
    ) -> None:
        data = bytes(range(256)) * (12 * MIB // 256)
        with s3_store.open_staging(uuid.uuid4()) as writer:
            for start in range(0, len(data), MIB):
                writer.write(data[start : start + MIB])
            staged = writer.finish()

        head = s3_client.head_object(Bucket=s3_store.bucket, Key=staged.key)
        assert head["ETag"].endswith('-3"')  # 5 + 5 + 2 MiB parts: not an MD5, never trusted
        assert staged.sha256_hex == hashlib.sha256(data).hexdigest()
        s3_store.commit_staged(staged)
        s3_store.verify_blob(staged.sha256_hex)

    def test_small_file_uses_single_put(
        self, s3_store: S3ArtifactStore, s3_client: S3Client
    ) -> None:
        with s3_store.open_staging(uuid.uuid4()) as writer:
            writer.write(b"x" * (PART - 1))
            staged = writer.finish()
        head = s3_client.head_object(Bucket=s3_store.bucket, Key=staged.key)
        assert "-" not in head["ETag"]

    def test_checksum_mode_when_supported_round_trips(self, s3_settings: StorageSettings) -> None:
        store = S3ArtifactStore(s3_settings.model_copy(update={"checksum_mode": "when_supported"}))
        data = bytes(7) * (PART + 3 * MIB)
        with store.open_staging(uuid.uuid4()) as writer:
            writer.write(data)
            staged = writer.finish()
        store.commit_staged(staged)
        store.verify_blob(staged.sha256_hex)
        assert store.put_small(b"small") == hashlib.sha256(b"small").hexdigest()


class TestReads:
    def test_presign_blob_url_is_fetchable_with_httpx(self, s3_store: S3ArtifactStore) -> None:
        data = b"presigned adapter bytes" * 100
        url = s3_store.presign_blob(s3_store.put_small(data), 60)
        assert url is not None
        response = httpx.get(url, timeout=10)
        assert response.status_code == 200
        assert response.content == data

    def test_presign_blob_missing_raises_blob_not_found(self, s3_store: S3ArtifactStore) -> None:
        with pytest.raises(BlobNotFound):
            s3_store.presign_blob("0" * 64, 60)

    def test_ranged_read_after_out_of_band_replace_raises_integrity_failure(
        self, s3_store: S3ArtifactStore, s3_client: S3Client
    ) -> None:
        hex_digest = s3_store.put_small(b"original bytes")
        source = s3_store.open_blob(hex_digest)
        s3_client.put_object(
            Bucket=s3_store.bucket, Key=s3_store.blob_key(hex_digest), Body=b"swapped bytes!"
        )
        with pytest.raises(IntegrityFailure):
            source.read_at(0, 4)


class TestImports:
    def test_list_import_returns_direct_children_only(
        self, s3_store: S3ArtifactStore, s3_client: S3Client
    ) -> None:
        base = f"{IMPORT_PREFIX}lora-1/"
        for name in ("adapter_model.safetensors", "adapter_config.json", "sub/nested.bin", ""):
            s3_client.put_object(Bucket=s3_store.bucket, Key=base + name, Body=b"{}")
        s3_client.put_object(Bucket=s3_store.bucket, Key=base + "we ird.bin", Body=b"x")

        found = s3_store.list_import(f"s3://{s3_store.bucket}/{base}")

        assert [o.name for o in found] == ["adapter_config.json", "adapter_model.safetensors"]
        assert all(o.bucket == s3_store.bucket and o.key == base + o.name for o in found)
        assert found[0].size == 2

    def test_open_import_stream_yields_object_bytes(
        self, s3_store: S3ArtifactStore, s3_client: S3Client
    ) -> None:
        key = f"{IMPORT_PREFIX}lora-1/adapter_model.safetensors"
        s3_client.put_object(Bucket=s3_store.bucket, Key=key, Body=b"weights" * 1000)
        assert b"".join(s3_store.open_import_stream(s3_store.bucket, key)) == b"weights" * 1000

    def test_list_import_outside_allowlist_raises_uri_not_allowed(
        self, s3_store: S3ArtifactStore
    ) -> None:
        for uri in (f"s3://{s3_store.bucket}/imports/team-ab/", "s3://other-bucket/imports/"):
            with pytest.raises(UriNotAllowed) as exc_info:
                s3_store.list_import(uri)
            assert exc_info.value.code == "uri_not_allowed"

    def test_list_import_traversal_raises_invalid_uri(self, s3_store: S3ArtifactStore) -> None:
        with pytest.raises(InvalidUri):
            s3_store.list_import(f"s3://{s3_store.bucket}/{IMPORT_PREFIX}../../registry/")

    @pytest.mark.parametrize(
        "key",
        [
            "registry/blobs/sha256/00/" + "0" * 64,  # our own blobs are not an import source
            "imports/team-ab/x",
        ],
    )
    def test_open_import_stream_outside_allowlist_raises(
        self, s3_store: S3ArtifactStore, key: str
    ) -> None:
        with pytest.raises(UriNotAllowed):
            s3_store.open_import_stream(s3_store.bucket, key)

    def test_open_import_stream_missing_object_raises_blob_not_found(
        self, s3_store: S3ArtifactStore
    ) -> None:
        with pytest.raises(BlobNotFound):
            s3_store.open_import_stream(s3_store.bucket, f"{IMPORT_PREFIX}missing.bin")

    def test_store_malformed_allowlist_refuses_to_start(self, s3_settings: StorageSettings) -> None:
        bad = s3_settings.model_copy(update={"import_allowlist": ["s3://b/../"]})
        with pytest.raises(ValueError, match="import_allowlist"):
            S3ArtifactStore(bad)


class TestConditionalRequests:
    """commit_staged's guarantee (the bytes copied are the version just hashed) rests on the
    server honouring If-Match and x-amz-copy-source-if-match; a server that ignored them would
    pass every other test."""

    def test_stale_if_match_is_refused_by_the_server(
        self, s3_store: S3ArtifactStore, s3_client: S3Client
    ) -> None:
        bucket, key = s3_store.bucket, "registry/staging/x/adapter.safetensors"
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"version 1")
        stale = s3_client.head_object(Bucket=bucket, Key=key)["ETag"]
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"version 2")
        with pytest.raises(IntegrityFailure), unchanged("replaced"):
            s3_client.get_object(Bucket=bucket, Key=key, IfMatch=stale)

    def test_stale_copy_source_if_match_is_refused_by_the_server(
        self, s3_server: S3Server, s3_store: S3ArtifactStore, s3_client: S3Client
    ) -> None:
        if s3_server.name == "moto":
            # moto 5.2's CopyObject/UploadPartCopy check x-amz-copy-source-if-none-match only
            # (moto/s3/responses.py) and copy a replaced source anyway; AWS and SeaweedFS: 412.
            pytest.skip("moto ignores x-amz-copy-source-if-match")
        bucket, key = s3_store.bucket, "registry/staging/x/adapter.safetensors"
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"version 1")
        stale = s3_client.head_object(Bucket=bucket, Key=key)["ETag"]
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"version 2")
        source: CopySourceTypeDef = {"Bucket": bucket, "Key": key}
        with pytest.raises(IntegrityFailure), unchanged("replaced"):
            s3_client.copy_object(
                Bucket=bucket, Key="copy", CopySource=source, CopySourceIfMatch=stale
            )
        # Blobs above one part are copied part by part (boto3's managed copy).
        upload = s3_client.create_multipart_upload(Bucket=bucket, Key="copy")
        with pytest.raises(IntegrityFailure), unchanged("replaced"):
            s3_client.upload_part_copy(
                Bucket=bucket,
                Key="copy",
                UploadId=upload["UploadId"],
                PartNumber=1,
                CopySource=source,
                CopySourceIfMatch=stale,
            )


class TestAvailability:
    def test_wrong_credentials_raise_storage_unavailable(
        self, s3_server: S3Server, s3_settings: StorageSettings
    ) -> None:
        if s3_server.name == "moto":
            pytest.skip("moto's server accepts any signature; SeaweedFS checks it like AWS")
        store = S3ArtifactStore(s3_settings.model_copy(update={"secret_access_key": "wrong"}))
        with pytest.raises(StorageUnavailable):
            store.check()  # HEAD: a bare 403
        with pytest.raises(StorageUnavailable):
            store.get_object("audit/x")  # GET: SignatureDoesNotMatch

    def test_check_missing_bucket_raises_storage_unavailable(
        self, s3_settings: StorageSettings
    ) -> None:
        store = S3ArtifactStore(s3_settings.model_copy(update={"bucket": "no-such-bucket-here"}))
        with pytest.raises(StorageUnavailable) as exc_info:
            store.check()
        assert exc_info.value.code == "storage_unavailable"

    def test_unreachable_endpoint_raises_storage_unavailable(
        self, s3_settings: StorageSettings
    ) -> None:
        settings = s3_settings.model_copy(
            update={
                "endpoint_url": f"http://127.0.0.1:{free_port()}",
                "max_attempts": 1,
                "connect_timeout_s": 0.5,
            }
        )
        store = S3ArtifactStore(settings)
        with pytest.raises(StorageUnavailable):
            store.check()
        with pytest.raises(StorageUnavailable):
            store.stat_blob("0" * 64)
        writer = store.open_staging(uuid.uuid4())
        writer.write(b"x")  # buffered: a small file reaches S3 only at finish()
        with pytest.raises(StorageUnavailable):
            writer.finish()

    def test_build_client_applies_settings(self, s3_settings: StorageSettings) -> None:
        client = build_client(s3_settings.model_copy(update={"checksum_mode": "when_supported"}))
        config: Any = client.meta.config  # botocore-stubs omit Config's attributes
        assert config.connect_timeout == s3_settings.connect_timeout_s
        assert config.read_timeout == s3_settings.read_timeout_s
        assert config.retries == {
            "total_max_attempts": s3_settings.max_attempts,
            "mode": "standard",
        }
        assert config.request_checksum_calculation == "when_supported"
        assert config.response_checksum_validation == "when_supported"
        assert config.s3 == {"addressing_style": "path"}
        assert client.meta.endpoint_url == s3_settings.endpoint_url


class TestTranslate:
    @pytest.mark.parametrize(
        ("code", "status"), [("NoSuchKey", 404), ("404", 404), ("NoSuchUpload", 404)]
    )
    def test_translate_not_found_maps_to_blob_not_found(self, code: str, status: int) -> None:
        assert isinstance(translate(client_error(code, status)), BlobNotFound)

    @pytest.mark.parametrize(
        ("code", "status"),
        [
            ("InternalError", 500),
            ("ServiceUnavailable", 503),
            ("SlowDown", 503),
            ("NoSuchBucket", 404),
            ("AccessDenied", 403),
            ("InvalidAccessKeyId", 403),
        ],
    )
    def test_translate_outage_maps_to_storage_unavailable(self, code: str, status: int) -> None:
        assert isinstance(translate(client_error(code, status)), StorageUnavailable)

    def test_translate_connection_error_maps_to_storage_unavailable(self) -> None:
        exc = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        assert isinstance(translate(exc), StorageUnavailable)

    def test_translate_programming_errors_pass_through(self) -> None:
        param = ParamValidationError(report="bad")
        assert translate(param) is param
        other = client_error("InvalidArgument", 400)
        assert translate(other) is other

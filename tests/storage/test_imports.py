"""``s3://`` import URIs: hostile inputs from security.md §6 items 1-2 are all refused."""

from __future__ import annotations

import pytest

from registry.errors import InvalidUri, UriNotAllowed
from registry.storage.imports import check_import_object, parse_import_uri, validate_allowlist

ALLOW = ["s3://models/team-a/", "s3://shared/"]


class TestParseImportUri:
    @pytest.mark.parametrize(
        ("uri", "expected"),
        [
            ("s3://models/team-a/", ("models", "team-a/")),
            ("s3://models/team-a/lora-1/", ("models", "team-a/lora-1/")),
            ("s3://models/team-a/v1.2/run_3/", ("models", "team-a/v1.2/run_3/")),
            ("s3://shared/", ("shared", "")),
            ("s3://shared/x/y/", ("shared", "x/y/")),
        ],
    )
    def test_parse_import_uri_allowed_returns_bucket_and_prefix(
        self, uri: str, expected: tuple[str, str]
    ) -> None:
        assert parse_import_uri(uri, ALLOW) == expected

    @pytest.mark.parametrize(
        "uri",
        [
            pytest.param("", id="empty"),
            pytest.param("file:///etc/passwd", id="file-scheme"),
            pytest.param("file:/etc/", id="file-scheme-short"),
            pytest.param("/etc/passwd/", id="absolute-path"),
            pytest.param("models/team-a/", id="empty-scheme"),
            pytest.param("//models/team-a/", id="scheme-relative"),
            pytest.param("http://models/team-a/", id="http"),
            pytest.param("https://169.254.169.254/latest/meta-data/", id="https-metadata"),
            pytest.param("mlflow-artifacts:/team-a/", id="mlflow-artifacts"),
            pytest.param("S3://models/team-a/", id="uppercase-scheme"),
            pytest.param("s3:/models/team-a/", id="one-slash"),
            pytest.param("s3:///team-a/", id="no-bucket"),
            pytest.param("s3://models", id="bucket-only"),
            pytest.param("s3://models/team-a", id="no-trailing-slash"),
            pytest.param("s3://models/team-a/x", id="object-not-prefix"),
            pytest.param("s3://models/team-a/../", id="dotdot"),
            pytest.param("s3://models/team-a/../team-b/", id="dotdot-escape"),
            pytest.param("s3://models/team-a/./", id="dot"),
            pytest.param("s3://models/team-a/x/./../y/", id="dot-dotdot"),
            pytest.param("s3://models/team-a/.../", id="all-dots"),
            pytest.param("s3://models/team-a//", id="empty-segment"),
            pytest.param("s3://models//team-a/", id="leading-empty-segment"),
            pytest.param("s3://models/team-a/%2e%2e/", id="percent-encoded"),
            pytest.param("s3://models/team-a/%2e%2e%2f", id="percent-encoded-slash"),
            pytest.param("s3://models/team-a/%252e%252e%252f/", id="double-encoded"),
            pytest.param("s3://models/team-a/..%c0%af/", id="overlong-utf8"),
            pytest.param("s3://models/team-a/..\\x/", id="backslash"),
            pytest.param("s3://models/team-a\\..\\team-b/", id="backslash-traversal"),
            pytest.param("s3://models/C:\\x/", id="windows-drive"),
            pytest.param("s3://models/team-a/?x=../../", id="query"),
            pytest.param("s3://models/team-a/#/../../etc/", id="fragment"),
            pytest.param("s3://models/team-a/x;/../y/", id="path-params"),
            pytest.param("s3://user@models/team-a/", id="userinfo"),
            pytest.param("s3://user:pw@models/team-a/", id="userinfo-password"),
            pytest.param("s3://models:443/team-a/", id="port"),
            pytest.param("s3://[::1]/team-a/", id="ipv6"),
            pytest.param("s3://169.254.169.254/latest/", id="ipv4-bucket"),
            pytest.param("s3://2852039166/x/", id="decimal-ip-bucket"),
            pytest.param("s3://Models/team-a/", id="uppercase-bucket"),
            pytest.param("s3://mo..dels/team-a/", id="bucket-double-dot"),
            pytest.param("s3://models/team-a/\x00/", id="nul"),
            pytest.param("s3://models/team-a/x\n/", id="newline"),
            pytest.param("s3://models/team-a/x\x7f/", id="del"),
            pytest.param("s3://models/team-a/a b/", id="space"),
            pytest.param("s3://models/team-a/x. /", id="trailing-dot-space"),
            pytest.param("s3://models/team-a/\uff0e\uff0e\uff0f", id="fullwidth-dots"),
            pytest.param("s3://models/team-a/\u2024\u2024/", id="one-dot-leader"),
            pytest.param("s3://models/team-a/" + "a" * 4096 + "/", id="4kb"),
        ],
    )
    def test_parse_import_uri_malformed_raises_invalid_uri(self, uri: str) -> None:
        with pytest.raises(InvalidUri) as exc_info:
            parse_import_uri(uri, ALLOW)
        assert exc_info.value.code == "invalid_uri"
        assert exc_info.value.status_code == 400

    @pytest.mark.parametrize(
        "uri",
        [
            pytest.param("s3://other-bucket/team-a/", id="other-bucket"),
            pytest.param("s3://models/", id="bucket-root"),
            pytest.param("s3://models/team-ab/", id="prefix-boundary"),
            pytest.param("s3://models/team-b/", id="sibling-prefix"),
            pytest.param("s3://models/TEAM-A/", id="case"),
            pytest.param("s3://models/x/team-a/", id="nested-elsewhere"),
            pytest.param("s3://shared-2/", id="bucket-name-prefix"),
        ],
    )
    def test_parse_import_uri_outside_allowlist_raises_uri_not_allowed(self, uri: str) -> None:
        with pytest.raises(UriNotAllowed) as exc_info:
            parse_import_uri(uri, ALLOW)
        assert exc_info.value.code == "uri_not_allowed"
        assert exc_info.value.status_code == 403

    def test_parse_import_uri_empty_allowlist_allows_nothing(self) -> None:
        with pytest.raises(UriNotAllowed):
            parse_import_uri("s3://models/team-a/", [])

    def test_parse_import_uri_malformed_allowlist_entry_fails_closed(self) -> None:
        with pytest.raises(UriNotAllowed):
            parse_import_uri("s3://models/team-a/", ["s3://models/team-a"])

    def test_validate_allowlist_malformed_entry_raises(self) -> None:
        validate_allowlist(ALLOW)
        with pytest.raises(ValueError, match="import_allowlist"):
            validate_allowlist(["s3://models/../"])


class TestCheckImportObject:
    def test_check_import_object_direct_child_returns_name(self) -> None:
        assert check_import_object("models", "team-a/lora/adapter.safetensors", ALLOW) == (
            "adapter.safetensors"
        )

    @pytest.mark.parametrize(
        "key",
        ["team-a/lora/..", "team-a/../team-b/x", "team-a/lora/", "team-a/a\\..\\b", "team-a/x%2f"],
    )
    def test_check_import_object_malformed_key_raises_invalid_uri(self, key: str) -> None:
        with pytest.raises(InvalidUri):
            check_import_object("models", key, ALLOW)

    @pytest.mark.parametrize(
        ("bucket", "key"),
        [("models", "team-ab/x"), ("other", "team-a/x"), ("models", "x")],
    )
    def test_check_import_object_outside_allowlist_raises(self, bucket: str, key: str) -> None:
        with pytest.raises(UriNotAllowed):
            check_import_object(bucket, key, ALLOW)

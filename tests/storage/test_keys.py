"""Digest parsing and key layout: keys come only from validated digests and UUIDs."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from registry.errors import InvalidDigest
from registry.storage import keys

HEX = hashlib.sha256(b"adapter").hexdigest()
SESSION = uuid.UUID("a2345678-1234-5678-9abc-def812345678")
TOKEN = "0123456789abcdef0123456789abcdef"


class TestParseDigest:
    def test_parse_digest_valid_returns_hex(self) -> None:
        assert keys.parse_digest(f"sha256:{HEX}") == HEX

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param("", id="empty"),
            pytest.param("sha256:", id="prefix-only"),
            pytest.param(HEX, id="bare-hex"),
            pytest.param(f"sha256:{HEX[:63]}", id="63-hex"),
            pytest.param(f"sha256:{HEX}0", id="65-hex"),
            pytest.param(f"sha256:{HEX.upper()}", id="uppercase-hex"),
            pytest.param(f"SHA256:{HEX}", id="uppercase-algorithm"),
            pytest.param(f"sha512:{hashlib.sha512(b'x').hexdigest()}", id="sha512"),
            pytest.param(f"md5:{hashlib.md5(b'x').hexdigest()}", id="md5"),
            pytest.param("sha256:../../x", id="traversal"),
            pytest.param("sha256:" + "../" * 21 + "x", id="traversal-64-chars"),
            pytest.param(f"sha256:{'g' * 64}", id="non-hex"),
            pytest.param(f"sha256:{HEX[:63]}\n", id="trailing-newline"),
            pytest.param(f" sha256:{HEX[:63]}", id="leading-space"),
            pytest.param(f"sha256:{HEX[:63]}\x00", id="nul"),
            pytest.param(f"sha256:{HEX[:62]}\uff410", id="fullwidth"),
            pytest.param("sha256:" + "a" * 10_240, id="10kb"),
            pytest.param("x" * 10_240, id="10kb-garbage"),
        ],
    )
    def test_parse_digest_bad_input_raises_invalid_digest(self, value: str) -> None:
        with pytest.raises(InvalidDigest) as exc_info:
            keys.parse_digest(value)
        assert exc_info.value.code == "invalid_digest"
        assert exc_info.value.status_code == 400

    def test_parse_digest_non_string_raises_invalid_digest(self) -> None:
        with pytest.raises(InvalidDigest):
            keys.parse_digest(None)  # type: ignore[arg-type]

    def test_format_digest_round_trips(self) -> None:
        assert keys.parse_digest(keys.format_digest(HEX)) == HEX


class TestKeyLayout:
    def test_blob_key_with_prefix_fans_out_by_first_two_hex(self) -> None:
        assert keys.blob_key("reg", HEX) == f"reg/blobs/sha256/{HEX[:2]}/{HEX}"

    def test_blob_key_without_prefix_has_no_leading_slash(self) -> None:
        assert keys.blob_key("", HEX) == f"blobs/sha256/{HEX[:2]}/{HEX}"

    def test_blob_key_invalid_hex_raises_invalid_digest(self) -> None:
        with pytest.raises(InvalidDigest):
            keys.blob_key("", "../../etc/passwd")

    def test_staging_key_uses_uuid_and_token(self) -> None:
        assert keys.staging_key("reg", SESSION, TOKEN) == f"reg/staging/{SESSION}/{TOKEN}"
        assert keys.staging_key("", SESSION, TOKEN) == f"staging/{SESSION}/{TOKEN}"

    def test_new_staging_key_is_never_the_same_twice(self) -> None:
        drawn = {keys.new_staging_key("reg", SESSION) for _ in range(1000)}
        assert len(drawn) == 1000
        assert all(keys.parse_staging_key("reg", k) == SESSION for k in drawn)

    @pytest.mark.parametrize("session_id", [str(SESSION), "../x", None])
    def test_staging_key_non_uuid_session_raises(self, session_id: object) -> None:
        with pytest.raises(ValueError, match="uuid"):
            keys.staging_key("", session_id, TOKEN)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "token", [0, "0", TOKEN[:31], TOKEN + "0", TOKEN.upper(), "../x", None, "g" * 32]
    )
    def test_staging_key_bad_token_raises(self, token: object) -> None:
        with pytest.raises(ValueError, match="token"):
            keys.staging_key("", SESSION, token)  # type: ignore[arg-type]

    def test_parse_blob_key_round_trips(self) -> None:
        assert keys.parse_blob_key("reg", keys.blob_key("reg", HEX)) == HEX

    @pytest.mark.parametrize(
        "key",
        [
            f"other/blobs/sha256/{HEX[:2]}/{HEX}",
            f"reg/blobs/sha256/zz/{HEX}",
            f"reg/blobs/sha256/{HEX[:2]}/{HEX}/x",
            f"reg/blobs/sha256/{HEX[:2]}/{HEX.upper()}",
            "reg/blobs/sha256/",
        ],
    )
    def test_parse_blob_key_foreign_key_returns_none(self, key: str) -> None:
        assert keys.parse_blob_key("reg", key) is None

    def test_parse_staging_key_round_trips(self) -> None:
        assert keys.parse_staging_key("reg", keys.staging_key("reg", SESSION, TOKEN)) == SESSION

    def test_parse_staging_key_accepts_part_keys_of_older_releases(self) -> None:
        # Staging objects written before tokens (``<session>/<part>``) must stay collectable.
        assert keys.parse_staging_key("reg", f"reg/staging/{SESSION}/7") == SESSION

    @pytest.mark.parametrize("name", [TOKEN, "3"])
    def test_parse_staging_key_temp_file_only_when_included(self, name: str) -> None:
        temp = f"staging/{SESSION}/.{name}.0123456789abcdef.tmp"
        assert keys.parse_staging_key("", temp) is None
        assert keys.parse_staging_key("", temp, include_temp=True) == SESSION

    @pytest.mark.parametrize(
        "key",
        [
            f"reg/staging/{str(SESSION).upper()}/0",
            f"reg/staging/{SESSION.hex}/0",
            f"reg/staging/{SESSION}/../../blobs/x",
            f"reg/staging/{SESSION}/a/0",
            f"reg/staging/{SESSION}/adapter.safetensors",
            f"reg/staging/{SESSION}/01",
            f"reg/staging/{SESSION}/{TOKEN.upper()}",
            f"reg/staging/{SESSION}/{TOKEN}0",
            f"reg/staging/{SESSION}",
            "reg/staging/not-a-uuid/0",
            f"staging/{SESSION}/0",
        ],
    )
    def test_parse_staging_key_foreign_key_returns_none(self, key: str) -> None:
        assert keys.parse_staging_key("reg", key) is None

    def test_normalise_prefix_strips_slashes(self) -> None:
        assert keys.normalise_prefix("/a/b/") == "a/b"
        assert keys.normalise_prefix("") == ""

    @pytest.mark.parametrize("prefix", ["../x", "a//b", "a/./b", "a b", "a\\b"])
    def test_normalise_prefix_bad_prefix_raises(self, prefix: str) -> None:
        with pytest.raises(ValueError, match="prefix"):
            keys.normalise_prefix(prefix)

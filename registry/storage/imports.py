"""Parsing and allow-listing of ``s3://bucket/prefix/`` import locations.

``adapters register --from s3://bucket/prefix/`` makes the server read objects it did not
write. That is the SSRF / traversal surface of MLflow's artifact CVEs (security.md §6), so the
rules here are deliberately narrow:

- Only the literal scheme ``s3://``; everything else (``file:``, ``http:``, empty scheme,
  ``mlflow-artifacts:``) is refused.
- The URI must be printable ASCII with no ``%`` at all: refusing percent-encoding outright
  closes single-, double- and overlong-encoded traversal (``%2e%2e``, ``%252e``, ``%c0%af``)
  without any decoding step whose order could be got wrong. Likewise ``\\``, ``?``, ``#``,
  ``@``, ``;``, ``:`` after the scheme, whitespace, NUL and other control characters.
- Bucket names follow S3 naming rules and may not look like an IP address.
- Path segments are non-empty, never ``.``/``..`` (or any all-dots name) and use a small
  character set; the prefix ends with ``/``.
- Allow-list matching is prefix-boundary aware: both sides end with ``/``, so
  ``s3://b/team-a/`` does not allow ``s3://b/team-ab/``.

Malformed input raises InvalidUri (400); well-formed but not allow-listed raises
UriNotAllowed (403). Reads re-check the exact bucket and key (:func:`check_import_object`),
so a value validated once is never trusted later without re-validation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from registry.errors import InvalidUri, UriNotAllowed

SCHEME = "s3://"
MAX_URI_LENGTH = 1024
MAX_NAME_LENGTH = 255

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_IPV4_LIKE_RE = re.compile(r"[0-9.]+")
_SEGMENT_RE = re.compile(r"[A-Za-z0-9._\-+=,]+")
# Characters that carry URL structure (query, fragment, userinfo, params, port, encoding,
# Windows separators). None of them has a legitimate place in our import URIs.
_FORBIDDEN_CHARS = frozenset("\\%?#@;:")


def _invalid(reason: str) -> InvalidUri:
    # The URI itself is not echoed back: it may hold control characters or secrets.
    return InvalidUri("invalid import URI", context={"reason": reason})


def is_safe_name(name: str) -> bool:
    """True for a plain file name usable as a single path segment."""
    return (
        0 < len(name) <= MAX_NAME_LENGTH
        and _SEGMENT_RE.fullmatch(name) is not None
        and set(name) != {"."}
    )


def _parse_syntax(uri: str) -> tuple[str, str]:
    """Split a syntactically valid ``s3://bucket/prefix/`` into (bucket, prefix)."""
    if not isinstance(uri, str) or not uri:
        raise _invalid("empty")
    if len(uri) > MAX_URI_LENGTH:
        raise _invalid("too_long")
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in uri):
        raise _invalid("character")
    if not uri.startswith(SCHEME):
        raise _invalid("scheme")
    rest = uri[len(SCHEME) :]
    if any(ch in _FORBIDDEN_CHARS for ch in rest):
        raise _invalid("character")
    bucket, sep, prefix = rest.partition("/")
    if not sep:
        raise _invalid("trailing_slash")
    if (
        _BUCKET_RE.fullmatch(bucket) is None
        or ".." in bucket
        or _IPV4_LIKE_RE.fullmatch(bucket) is not None
    ):
        raise _invalid("bucket")
    if prefix:
        if not prefix.endswith("/"):
            raise _invalid("trailing_slash")
        for segment in prefix[:-1].split("/"):
            if not is_safe_name(segment):
                raise _invalid("path_segment")
    return bucket, prefix


def _allowed_locations(allowlist: Iterable[str]) -> list[tuple[str, str]]:
    locations: list[tuple[str, str]] = []
    for entry in allowlist:
        try:
            locations.append(_parse_syntax(entry))
        except InvalidUri:
            # Fail closed: a malformed entry allows nothing (validate_allowlist reports it
            # at start-up).
            continue
    return locations


def validate_allowlist(allowlist: Iterable[str]) -> None:
    """Raise ValueError naming the first malformed allow-list entry (start-up check)."""
    for entry in allowlist:
        try:
            _parse_syntax(entry)
        except InvalidUri as exc:
            raise ValueError(
                f"storage.import_allowlist entry {entry!r} is not a valid s3://bucket/prefix/ "
                f"({exc.context.get('reason')})"
            ) from exc


def parse_import_uri(uri: str, allowlist: Iterable[str]) -> tuple[str, str]:
    """Validate ``uri`` and return ``(bucket, prefix)``; prefix is ``""`` or ends with ``/``.

    Raises InvalidUri (malformed) or UriNotAllowed (outside every allow-list entry; an empty
    allow-list allows nothing).
    """
    bucket, prefix = _parse_syntax(uri)
    for allowed_bucket, allowed_prefix in _allowed_locations(allowlist):
        # Both prefixes end with "/" (or are empty), so startswith respects segment bounds.
        if bucket == allowed_bucket and prefix.startswith(allowed_prefix):
            return bucket, prefix
    raise UriNotAllowed(
        "import location is not in the allow-list", context={"bucket": bucket, "prefix": prefix}
    )


def check_import_object(bucket: str, key: str, allowlist: Iterable[str]) -> str:
    """Re-validate an import object at read time and return its file name.

    The key must be ``<allowed prefix>/<name>`` where name is a single safe segment.
    """
    if not isinstance(key, str) or not isinstance(bucket, str):
        raise _invalid("key")
    prefix, _, name = key.rpartition("/")
    prefix = f"{prefix}/" if prefix else ""
    if not is_safe_name(name):
        raise _invalid("name")
    parse_import_uri(f"{SCHEME}{bucket}/{prefix}", allowlist)
    return name

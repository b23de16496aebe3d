"""Object key layout of the artifact store.

Invariants:
- Every key is derived from a validated sha256 hex digest or from a validated UUID plus a
  random staging token we generate. No client-supplied string (file name, URI, digest text)
  ever becomes a key or a path component without passing through :func:`parse_digest` /
  :func:`check_hex` / :func:`check_token` first.
- Layout (``<prefix>/`` omitted when the prefix is empty)::

      <prefix>/blobs/sha256/<hh>/<hex>           content-addressed blobs (hh = hex[:2])
      <prefix>/staging/<session-uuid>/<token>    one staging object per PUT
      <prefix>/staging/<session-uuid>/d<token>   one direct (presigned multipart) upload

  The two-character fan-out keeps local directories and S3 listings small.
- A staging key is never reused: every PUT draws a fresh 128-bit token
  (:func:`new_staging_key`), so two concurrent PUTs into one session can never write to the
  same object (they once shared ``max(part)+1``, and one file's bytes overwrote the other's).
  Keys of the old ``<session>/<part>`` form are still recognised so that gc and registration
  handle staging objects written before the change.
"""

from __future__ import annotations

import re
import secrets
import uuid

from registry.errors import InvalidDigest

DIGEST_ALGORITHM = "sha256"
DIGEST_PREFIX = "sha256:"
TOKEN_BYTES = 16

_HEX_RE = re.compile(r"[0-9a-f]{64}")
_TOKEN_RE = re.compile(r"[0-9a-f]{32}")
# Staging objects are named by a 32-hex token (older ones by a decimal part index); local temp
# files are ".<name>.<random>.tmp".
_STAGED_NAME_RE = re.compile(r"d?[0-9a-f]{32}|0|[1-9][0-9]{0,4}")
_TEMP_NAME_RE = re.compile(r"\.(?:[0-9a-f]{32}|0|[1-9][0-9]{0,4})\.[0-9a-f]{16}\.tmp")
_PREFIX_SEGMENT_RE = re.compile(r"[A-Za-z0-9._\-]+")


def parse_digest(value: str) -> str:
    """Validate ``sha256:<64 lowercase hex>`` and return the hex part.

    Anything else (other algorithms, uppercase, wrong length, traversal text, huge strings,
    non-``str``) raises :class:`InvalidDigest` (400) — never a 500.
    """
    # The length check comes first so a 10 KB string is rejected without regex work.
    if (
        not isinstance(value, str)
        or len(value) != len(DIGEST_PREFIX) + 64
        or not value.startswith(DIGEST_PREFIX)
    ):
        raise InvalidDigest(
            "digest must be 'sha256:' followed by 64 lowercase hex characters",
            context={"expected": "sha256:<64 lowercase hex>"},
        )
    return check_hex(value[len(DIGEST_PREFIX) :])


def check_hex(hex_digest: str) -> str:
    """Validate a bare 64-character lowercase sha256 hex string and return it unchanged."""
    # fullmatch, not match: "$" would accept a trailing newline.
    if not isinstance(hex_digest, str) or _HEX_RE.fullmatch(hex_digest) is None:
        raise InvalidDigest(
            "sha256 hex digest must be 64 lowercase hex characters",
            context={"expected": "<64 lowercase hex>"},
        )
    return hex_digest


def format_digest(hex_digest: str) -> str:
    """Return the wire form ``sha256:<hex>`` of a validated hex digest."""
    return DIGEST_PREFIX + check_hex(hex_digest)


def check_token(token: str) -> str:
    """Validate a staging token (32 lowercase hex characters we generated) and return it."""
    if not isinstance(token, str) or _TOKEN_RE.fullmatch(token) is None:
        raise ValueError("staging token must be 32 lowercase hex characters")
    return token


def check_session_id(session_id: uuid.UUID) -> uuid.UUID:
    """Validate that ``session_id`` is a real :class:`uuid.UUID` (its str form is then safe)."""
    if not isinstance(session_id, uuid.UUID):
        raise ValueError("staging session id must be a uuid.UUID")
    return session_id


def normalise_prefix(prefix: str) -> str:
    """Strip surrounding slashes from an operator-configured prefix and validate its segments.

    The prefix comes from settings, not from clients, but a typo such as ``a//b`` or ``../x``
    would silently scatter or escape the key space, so it is refused loudly at start-up.
    """
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    for segment in stripped.split("/"):
        if segment in {".", ".."} or _PREFIX_SEGMENT_RE.fullmatch(segment) is None:
            raise ValueError(f"invalid storage prefix {prefix!r}")
    return stripped


def _join(prefix: str, *parts: str) -> str:
    return "/".join((prefix, *parts)) if prefix else "/".join(parts)


def blobs_root(prefix: str) -> str:
    """Key prefix (with trailing slash) under which every blob lives."""
    return _join(prefix, "blobs", DIGEST_ALGORITHM) + "/"


def blob_key(prefix: str, hex_digest: str) -> str:
    """Content-addressed key of a blob: ``<prefix>/blobs/sha256/<hh>/<hex>``."""
    check_hex(hex_digest)
    return _join(prefix, "blobs", DIGEST_ALGORITHM, hex_digest[:2], hex_digest)


def staging_root(prefix: str) -> str:
    """Key prefix (with trailing slash) under which every staging object lives."""
    return _join(prefix, "staging") + "/"


def staging_session_prefix(prefix: str, session_id: uuid.UUID) -> str:
    """Key prefix (with trailing slash) of one upload session's staging objects."""
    return _join(prefix, "staging", str(check_session_id(session_id))) + "/"


def staging_key(prefix: str, session_id: uuid.UUID, token: str) -> str:
    """Staging key of one PUT: ``<prefix>/staging/<session-uuid>/<token>``."""
    return staging_session_prefix(prefix, session_id) + check_token(token)


def new_staging_key(prefix: str, session_id: uuid.UUID) -> str:
    """A staging key no other writer has ever been given (a fresh 128-bit random token).

    This is what makes staging race-free without a lock: concurrent PUTs into one session get
    distinct objects, and a finished staging object is never written again.
    """
    return staging_key(prefix, session_id, secrets.token_hex(TOKEN_BYTES))


def new_direct_staging_key(prefix: str, session_id: uuid.UUID) -> str:
    """A fresh staging key for a direct upload (the client sends the bytes to the store itself
    through presigned part URLs): ``d<token>``. The server draws it, so the ``d`` marks bytes
    whose sha256 no server has computed yet: registration leaves their version ``verifying``.
    """
    return staging_session_prefix(prefix, session_id) + "d" + secrets.token_hex(TOKEN_BYTES)


def is_direct_staging_key(key: str) -> bool:
    """Whether ``key`` was drawn by :func:`new_direct_staging_key` (its bytes are unverified)."""
    return re.fullmatch(r"d[0-9a-f]{32}", key.rpartition("/")[2]) is not None


def parse_blob_key(prefix: str, key: str) -> str | None:
    """Return the hex digest if ``key`` is a well-formed blob key under ``prefix``, else None."""
    root = blobs_root(prefix)
    if not key.startswith(root):
        return None
    rest = key[len(root) :]
    fan, _, hex_digest = rest.partition("/")
    if _HEX_RE.fullmatch(hex_digest) is None or fan != hex_digest[:2]:
        return None
    return hex_digest


def parse_staging_key(prefix: str, key: str, *, include_temp: bool = False) -> uuid.UUID | None:
    """Return the session id if ``key`` is a well-formed staging key under ``prefix``.

    Accepts finished staging objects (token names, and the decimal part names of older
    releases) and, with ``include_temp``, the local backend's in-progress temp files, which gc
    must be able to list and delete; anything else is None. Used to refuse any key that did
    not come out of :func:`staging_key` before touching it.
    """
    root = staging_root(prefix)
    if not key.startswith(root):
        return None
    session_text, sep, name = key[len(root) :].partition("/")
    valid_name = _STAGED_NAME_RE.fullmatch(name) is not None or (
        include_temp and _TEMP_NAME_RE.fullmatch(name) is not None
    )
    if not sep or not valid_name:
        return None
    try:
        session_id = uuid.UUID(session_text)
    except ValueError:
        return None
    # Only the canonical lowercase hyphenated form round-trips; other spellings are foreign.
    return session_id if str(session_id) == session_text else None

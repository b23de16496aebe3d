"""API token format and hashing.

Tokens are ``ar_`` + 43 url-safe base64 characters (256 random bits). Only the sha256 of the
token is stored: with that much entropy a slow KDF adds nothing, and lookups stay one index
probe per request.
"""

from __future__ import annotations

import hashlib
import re
import secrets

TOKEN_PREFIX = "ar_"
_TOKEN_RE = re.compile(r"^ar_[A-Za-z0-9_-]{43}$")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def is_well_formed(token: str) -> bool:
    return bool(_TOKEN_RE.fullmatch(token))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()

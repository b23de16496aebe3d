"""Secrets inside stored idempotent answers, sealed to the caller's own credential.

A retried ``POST /api/v1/tokens`` must get the first answer back, secret included (else a lost
response leaves a live token nobody has, and the retry mints a second one). But the database
keeps only hashes of tokens, and the idempotency store must not become the one table that
holds usable secrets. So a secret field of a stored answer is encrypted (AES-256-GCM) under a
key derived (HKDF-SHA256) from the bearer credential of the request that made it, salted with
the request fingerprint. Only a caller presenting that same credential again can read the
replay; the database alone (which has only the credential's sha256, never the credential)
cannot. A replay with another credential cannot be opened and is refused like a reused key.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"adapter-registry idempotent replay v1"
_PREFIX = "sealed:v1:"
_NONCE_BYTES = 12


def _key(credential: str, salt: str) -> bytes:
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt.encode(), info=_INFO)
    return kdf.derive(credential.encode("utf-8"))


def seal(value: str, *, credential: str, salt: str) -> str:
    """``value`` encrypted for whoever holds ``credential`` (a fresh nonce each time)."""
    nonce = os.urandom(_NONCE_BYTES)
    box = AESGCM(_key(credential, salt)).encrypt(nonce, value.encode("utf-8"), None)
    return _PREFIX + base64.urlsafe_b64encode(nonce + box).decode("ascii")


def unseal(sealed: object, *, credential: str, salt: str) -> str | None:
    """The sealed value, or None when ``credential``/``salt`` are not the sealing ones (or the
    text is not something ``seal`` made)."""
    if not isinstance(sealed, str) or not sealed.startswith(_PREFIX):
        return None
    try:
        raw = base64.urlsafe_b64decode(sealed.removeprefix(_PREFIX).encode("ascii"))
        nonce, box = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        return AESGCM(_key(credential, salt)).decrypt(nonce, box, None).decode("utf-8")
    except (InvalidTag, ValueError, binascii.Error):
        return None

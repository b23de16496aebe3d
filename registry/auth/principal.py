"""The authenticated caller, as the rest of the code sees it (no ORM object leaks out)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class AuthenticatedPrincipal:
    id: uuid.UUID
    name: str
    kind: str
    role: str
    token_id: uuid.UUID | None = None
    token_expires_at: datetime | None = None
    # Actions the token is limited to (None: whatever policy allows the principal).
    scopes: frozenset[str] | None = None
    # The verified CI identity for tokens minted from a CI OIDC token.
    ci_identity: Mapping[str, Any] | None = None

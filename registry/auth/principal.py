"""The authenticated caller, as the rest of the code sees it (no ORM object leaks out)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AuthenticatedPrincipal:
    id: uuid.UUID
    name: str
    kind: str
    role: str
    token_id: uuid.UUID | None = None
    token_expires_at: datetime | None = None

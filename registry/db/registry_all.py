"""Import every domain's models so that ``Base.metadata`` is complete (Alembic, tests)."""

from registry.auth import models as auth_models
from registry.catalog import models as catalog_models
from registry.db.base import Base
from registry.idempotency import models as idempotency_models
from registry.storage import models as storage_models

metadata = Base.metadata

__all__ = ["auth_models", "catalog_models", "idempotency_models", "metadata", "storage_models"]

"""Import every domain's models so that ``Base.metadata`` is complete (Alembic, tests)."""

from registry.access import models as access_models
from registry.audit import models as audit_models  # noqa: F401
from registry.auth import models as auth_models
from registry.catalog import models as catalog_models
from registry.console import models as console_models
from registry.db.base import Base
from registry.deployments import models as deployment_models
from registry.events import models as event_models
from registry.idempotency import models as idempotency_models
from registry.jobs import models as job_models
from registry.mlflow_import import models as mlflow_models
from registry.mlflow_mirror import models as mirror_models
from registry.oidc import models as oidc_models
from registry.principals import models as principal_models
from registry.promotions import models as promotion_models
from registry.uploads import blob_index
from registry.uploads import models as upload_models

metadata = Base.metadata

__all__ = [
    "access_models",
    "auth_models",
    "blob_index",
    "catalog_models",
    "console_models",
    "deployment_models",
    "event_models",
    "idempotency_models",
    "job_models",
    "metadata",
    "mirror_models",
    "mlflow_models",
    "oidc_models",
    "principal_models",
    "promotion_models",
    "upload_models",
]

"""Schema version checks and upgrades (Alembic), used by ``db upgrade|check`` and start-up."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from registry.errors import RegistryError

# The Alembic tree ships inside the package (a wheel install migrates like a checkout does).
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


class SchemaOutOfDate(RegistryError):
    code = "schema_out_of_date"
    status_code = 503


def alembic_config(url: str | None = None) -> Config:
    """The tree's configuration, built here: no ``alembic.ini`` is needed at run time (the one
    beside the package is for ``alembic revision`` while developing)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        cfg.attributes["url"] = url
    return cfg


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def check_schema(engine: Engine) -> None:
    """Raise ``schema_out_of_date`` unless the database is at the code's head revision."""
    current, heads = current_revisions(engine), head_revisions()
    if current != heads:
        raise SchemaOutOfDate(
            "the database schema is not at the version this code needs; "
            "run `adapter-registry db upgrade` (or set REGISTRY_DATABASE__AUTO_MIGRATE=true)",
            context={"current": sorted(current), "required": sorted(heads)},
        )


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)

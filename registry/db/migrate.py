"""Schema version checks and upgrades (Alembic), used by ``db upgrade|check`` and start-up."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from registry.errors import RegistryError

ROOT = Path(__file__).resolve().parents[2]


class SchemaOutOfDate(RegistryError):
    code = "schema_out_of_date"
    status_code = 503


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
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

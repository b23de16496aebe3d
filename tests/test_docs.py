"""The README's configuration table is the settings model, row for row (it cannot drift)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from registry.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for group, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        for name, f in model.model_fields.items():
            default = f.get_default(call_default_factory=True)
            shown = default.as_posix() if isinstance(default, Path) else default
            assert f.description, f"{group}.{name} has no description"
            rows.append(
                f"| `REGISTRY_{group.upper()}__{name.upper()}` | `{shown}` | {f.description} |"
            )
    return "\n".join(rows) + "\n"


def test_readme_configuration_table_is_the_settings_model() -> None:
    assert settings_table() in README.read_text(), (
        "README.md's configuration table differs from registry/settings.py; replace it with "
        "tests.test_docs.settings_table()"
    )

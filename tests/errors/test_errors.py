"""The error families (``registry/errors/``): one public home, stable codes, sane statuses."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections import Counter

import pytest

import registry.errors as errors
from registry.errors import RegistryError


def _family_classes() -> list[type[RegistryError]]:
    """Every error class defined in the package's family modules."""
    found: list[type[RegistryError]] = []
    for info in pkgutil.iter_modules(errors.__path__):
        module = importlib.import_module(f"registry.errors.{info.name}")
        found += [
            obj
            for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, RegistryError) and obj.__module__ == module.__name__
        ]
    return found


def test_every_family_class_is_public_from_the_package() -> None:
    """``from registry.errors import X`` works for every class a family module defines."""
    missing = [c.__name__ for c in _family_classes() if getattr(errors, c.__name__, None) is not c]
    assert not missing, f"not exported by registry/errors/__init__.py: {missing}"
    assert set(errors.__all__) >= {c.__name__ for c in _family_classes()}


def test_codes_are_unique_across_families() -> None:
    """A code names one error: two classes with one code would make clients guess."""
    codes = Counter(c.code for c in _family_classes() if "code" in vars(c))
    assert not [code for code, n in codes.items() if n > 1]


@pytest.mark.parametrize("cls", _family_classes(), ids=lambda c: c.__name__)
def test_code_is_snake_case_and_status_is_an_http_error(cls: type[RegistryError]) -> None:
    assert cls.code.replace("_", "").isalnum()
    assert cls.code == cls.code.lower()
    assert 400 <= cls.status_code <= 599


#: The families whose every class says when it is raised (CONTRIBUTING.md, "Add an error
#: code"); the others are to follow.
_DOCUMENTED_FAMILIES = ("registry.errors.access", "registry.errors.catalog")


@pytest.mark.parametrize(
    "cls",
    [c for c in _family_classes() if c.__module__ in _DOCUMENTED_FAMILIES],
    ids=lambda c: c.__name__,
)
def test_error_class_says_when_it_is_raised(cls: type[RegistryError]) -> None:
    """A docstring of its own (not inherited from its family), a sentence long at least."""
    doc = vars(cls).get("__doc__") or ""
    assert len(doc.split()) >= 5, f"{cls.__name__} has no docstring saying when it is raised"


def test_body_carries_code_detail_and_a_copy_of_the_context() -> None:
    context = {"field": "name"}
    error = errors.InvalidName("bad name", context=context)
    context["field"] = "changed"
    assert error.to_body() == {
        "error": "invalid_name",
        "detail": "bad name",
        "context": {"field": "name"},
    }

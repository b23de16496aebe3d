"""Names and references: the only strings clients choose that we parse.

Names are data, never paths: the storage layer keys everything by digest. Still, names are
held to strict patterns (after the HTTP layer has fully decoded them) so that nothing like
``../x``, ``%2e%2e%2f``, NUL or look-alike Unicode can be registered and shown to others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.errors import InvalidName, InvalidReference

# The patterns are ECMA-262 as well as Python regexes, so the OpenAPI document states them
# verbatim (``registry.api.params``): what the document says is what the server checks. Dots
# never repeat and never end a name (``(?!\.)`` / ``(?<!\.)``).
# Lower-case DNS-ish labels: stable in URLs, shells and serving names.
SIMPLE_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]|\.(?!\.)){0,62}(?<!\.)$"
# Hub-style ids keep their case: "meta-llama/Llama-3.1-8B".
_BASE_PART = r"[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.)){0,99}"
BASE_NAME_PATTERN = rf"^{_BASE_PART}(?:/{_BASE_PART})?(?<!\.)$"
REVISION_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.)){0,127}(?<!\.)$"
TAG_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]|\.(?!\.)){0,63}(?<!\.)$"
SUITE_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_/:-]|\.(?!\.)){0,127}(?<!\.)$"
# Principals: lower-case only, so "Bob", "bob " and look-alikes cannot become a second "bob".
PRINCIPAL_PATTERN = r"^[a-z0-9](?:[a-z0-9_@-]|\.(?!\.)){0,127}(?<!\.)$"
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
# A version in a path or reference: vN / N (N from 1, at most 9 digits), latest, sha256:<hex>.
VERSION_NUMBER_PATTERN = r"v?[1-9][0-9]{0,8}"
SELECTOR_PATTERN = rf"^(?:{VERSION_NUMBER_PATTERN}|latest|sha256:[0-9a-f]{{64}})$"

# White space exactly as ``str.strip()`` sees it (``str.isspace``), for patterns of free text.
BLANK_CLASS = r"[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# Not only white space: a reason that ``strip()`` empties is refused; and no NUL, which the
# strict JSON body parser refuses anywhere (api/json_body.py).
NOT_BLANK_PATTERN = r"^[^\u0000]*[^\u0000" + BLANK_CLASS.removeprefix("[") + r"[^\u0000]*$"
# A CI login (GitHub / GitLab user names): printable ASCII, 1..128, blanks around it dropped.
CI_IDENTITY_PATTERN = (
    rf"^{BLANK_CLASS}*[\x21-\x7e](?:[\x20-\x7e]{{0,126}}[\x21-\x7e])?{BLANK_CLASS}*$"
)

_SIMPLE_NAME = re.compile(SIMPLE_NAME_PATTERN)
_BASE_NAME = re.compile(BASE_NAME_PATTERN)
_REVISION = re.compile(REVISION_PATTERN)
_TAG = re.compile(TAG_PATTERN)
_SUITE = re.compile(SUITE_PATTERN)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PRINCIPAL = re.compile(PRINCIPAL_PATTERN)


def _inner(pattern: str) -> str:
    """A name pattern without its anchors, to embed in a reference pattern."""
    return pattern.removeprefix("^").removesuffix("$")


# ``NS/NAME`` with an optional ``@vN``, ``@latest`` or ``@sha256:<hex>``.
ADAPTER_REF_PATTERN = (
    rf"^{_inner(SIMPLE_NAME_PATTERN)}/{_inner(SIMPLE_NAME_PATTERN)}"
    r"(?:@(?:v[1-9][0-9]{0,8}|latest|sha256:[0-9a-f]{64}))?$"
)
# ``NAME@REVISION`` of a base model.
BASE_REF_PATTERN = rf"^{_inner(BASE_NAME_PATTERN)}@{_inner(REVISION_PATTERN)}$"
# A lineage parent: an adapter version, or (``trained_on``) a base model revision.
ADAPTER_OR_BASE_REF_PATTERN = f"^(?:{_inner(ADAPTER_REF_PATTERN)}|{_inner(BASE_REF_PATTERN)})$"
# A base filter: ``NAME`` (any revision) or ``NAME@REVISION``.
BASE_FILTER_PATTERN = rf"^{_inner(BASE_NAME_PATTERN)}(?:@{_inner(REVISION_PATTERN)})?$"


def _check(pattern: re.Pattern[str], value: str, kind: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value) or value.endswith("."):
        raise InvalidName(f"invalid {kind} name", context={"kind": kind, "value": value[:200]})
    return value


def namespace_name(value: str) -> str:
    return _check(_SIMPLE_NAME, value, "namespace")


def adapter_name(value: str) -> str:
    return _check(_SIMPLE_NAME, value, "adapter")


def principal_name(value: str) -> str:
    return _check(_PRINCIPAL, value, "principal")


def deployment_name(value: str) -> str:
    return _check(_SIMPLE_NAME, value, "deployment")


def publisher_name(value: str) -> str:
    return _check(_SIMPLE_NAME, value, "publisher")


def base_model_name(value: str) -> str:
    return _check(_BASE_NAME, value, "base model")


def revision_name(value: str) -> str:
    return _check(_REVISION, value, "revision")


def tag_name(value: str) -> str:
    return _check(_TAG, value, "tag")


def suite_name(value: str, kind: str = "suite") -> str:
    return _check(_SUITE, value, kind)


def dataset_name(value: str) -> str:
    return _check(_SUITE, value, "dataset")


def content_digest(value: str) -> str:
    """A ``sha256:<64 lower hex>`` content digest, as stored for versions and datasets."""
    if (
        not isinstance(value, str)
        or not value.startswith("sha256:")
        or not _HEX64.fullmatch(value[7:])
    ):
        raise InvalidReference(
            "digest must be sha256:<64 lowercase hex>", context={"value": str(value)[:200]}
        )
    return value


@dataclass(frozen=True, slots=True)
class BaseRef:
    name: str
    revision: str

    def __str__(self) -> str:
        return f"{self.name}@{self.revision}"


@dataclass(frozen=True, slots=True)
class AdapterRef:
    """``NS/NAME``, ``NS/NAME@vN``, ``NS/NAME@latest`` or ``NS/NAME@sha256:<hex>``."""

    namespace: str
    name: str
    version: int | None = None
    digest: str | None = None

    def __str__(self) -> str:
        base = f"{self.namespace}/{self.name}"
        if self.version is not None:
            return f"{base}@v{self.version}"
        if self.digest is not None:
            return f"{base}@{self.digest}"
        return base


def parse_base_ref(value: str) -> BaseRef:
    name, sep, revision = value.rpartition("@")
    if not sep:
        raise InvalidReference(
            "base reference must be NAME@REVISION", context={"value": value[:200]}
        )
    return BaseRef(base_model_name(name), revision_name(revision))


def parse_adapter_ref(value: str, *, require_version: bool = False) -> AdapterRef:
    if not isinstance(value, str) or len(value) > 300:
        raise InvalidReference("adapter reference too long", context={})
    path, sep, selector = value.partition("@")
    ns, slash, name = path.partition("/")
    if not slash:
        raise InvalidReference(
            "adapter reference must be NS/NAME[@vN|@sha256:...]", context={"value": value[:200]}
        )
    namespace_name(ns)
    adapter_name(name)
    if not sep or selector == "latest":
        if require_version:
            raise InvalidReference("a version is required (NS/NAME@vN)", context={"value": value})
        return AdapterRef(ns, name)
    if re.fullmatch(r"v[1-9][0-9]{0,8}", selector):
        return AdapterRef(ns, name, version=int(selector[1:]))
    if selector.startswith("sha256:"):
        return AdapterRef(ns, name, digest=content_digest(selector))
    raise InvalidReference(
        "version selector must be vN, latest or sha256:<hex>", context={"value": value[:200]}
    )


def parse_version_selector(value: str) -> int:
    """Path parameter ``vN`` or ``N`` → N."""
    m = re.fullmatch(r"v?([1-9][0-9]{0,8})", value)
    if not m:
        raise InvalidReference("version must be vN", context={"value": value[:50]})
    return int(m.group(1))

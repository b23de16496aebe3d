"""Schemathesis hooks for the fuzz run (loaded through ``schemathesis.toml``).

Both rewrite only things a JSON Schema cannot state, and only in positive cases (schema-valid
requests, which must then be accepted):

* ``page_token`` is an opaque cursor the server made; a schema-valid string the server did not
  make is refused (``invalid_page_token``) by design. Positive cases ask for the first page.
* ``Idempotency-Key`` replays the first answer to the same key; the same key with another body
  is refused (``idempotency_key_reused``, 422) by design. Positive cases get a key of their own.

Negative cases keep whatever was generated: those must be refused, and are.
"""

from __future__ import annotations

import itertools
from typing import Any

import schemathesis

_keys = itertools.count()


def _positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    if not _positive(case):
        return case
    if case.query and "page_token" in case.query:
        case.query = {k: v for k, v in case.query.items() if k != "page_token"}
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers = {**case.headers, "Idempotency-Key": f"fuzz-{next(_keys)}"}
    return case

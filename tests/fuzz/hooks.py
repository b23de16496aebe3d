"""Schemathesis hooks for the fuzz run (loaded through ``schemathesis.toml``).

Both rewrite only things a JSON Schema cannot state, and only in positive cases (schema-valid
requests, which must then be accepted):

* ``page_token`` is an opaque cursor the server made; a schema-valid string the server did not
  make is refused (``invalid_page_token``) by design. Positive cases ask for the first page.
* ``Idempotency-Key`` replays the first answer to the same key; the same key with another body
  is refused (``idempotency_key_reused``, 422) by design. Positive cases get a key of their own.

Negative cases keep whatever was generated: those must be refused, and are.

One more rewrite, in every case: the run never disables, demotes or strips the memberships of
its own principal (``fuzz-admin``; the stateful phase finds its name through the principals
listing). Those operations work, and would lock the rest of the run out with 403s; they are sent
to a principal that does not exist instead (404), and tested by tests/principals.
"""

from __future__ import annotations

import itertools
from typing import Any

import schemathesis

_keys = itertools.count()
FUZZ_PRINCIPAL = "fuzz-admin"
_SELF_HARM = ("/disable", "/role", "/namespaces/remove")


def _positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    params = case.path_parameters or {}
    path = str(getattr(case.operation, "path", ""))
    own = params.get("name") == FUZZ_PRINCIPAL and path.startswith("/api/v1/principals/")
    if own and path.endswith(_SELF_HARM):
        case.path_parameters = {**params, "name": "fuzz-nobody"}
    if not _positive(case):
        return case
    if case.query and "page_token" in case.query:
        case.query = {k: v for k, v in case.query.items() if k != "page_token"}
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers = {**case.headers, "Idempotency-Key": f"fuzz-{next(_keys)}"}
    return case

"""HTTP ``Range`` requests on downloads (RFC 9110 §14): one byte range per request, which is
what resuming an interrupted download needs.

``bytes=A-B``, ``bytes=A-`` and ``bytes=-N`` (the last N bytes) are served as ``206`` with
``Content-Range``; a range outside the file or a malformed ``bytes=`` value is ``416
range_not_satisfiable`` (RFC 9110 lets a server reject an invalid range rather than ignore it,
and a client that asked for a range it cannot get must not mistake the whole file for it). A
range unit other than ``bytes`` and a request for several ranges are ignored (the whole file,
``200``), as RFC 9110 allows; so is a ``Range`` whose ``If-Range`` names another entity tag.
"""

from __future__ import annotations

import re

from registry.errors import RangeNotSatisfiable

_SPEC = re.compile(r"^\s*(\d{0,19})\s*-\s*(\d{0,19})\s*$")


def requested_range(
    header: str | None, size: int, *, etag: str, if_range: str | None = None
) -> tuple[int, int] | None:
    """``[start, stop)`` to serve, or None for the whole file. Raises RangeNotSatisfiable."""
    if header is None or (if_range is not None and if_range.strip() != etag):
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    found = _SPEC.fullmatch(spec)
    refused = RangeNotSatisfiable(
        "the requested range is malformed or outside the file",
        context={"range": header[:100], "size": size},
    )
    if found is None or (not found.group(1) and not found.group(2)):
        raise refused
    first, last = found.group(1), found.group(2)
    if not first:  # bytes=-N: the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            raise refused
        return max(size - count, 0), size
    start = int(first)
    stop = size if not last else min(int(last) + 1, size)
    if start >= size or (last and int(last) < start):
        raise refused
    return start, stop

"""psycopg connection parameters for a connection of our own (LISTEN, the controller's lock),
from the same SQLAlchemy URL the pool uses.

Built by the dialect itself (``create_connect_args``), so every URL form SQLAlchemy accepts
reaches libpq the same way for both: in particular the multi-host form
``postgresql+psycopg://user@/db?host=h1:5432&host=h2:5432&target_session_attrs=read-write``
(or ``?host=h1,h2&port=5432,5432&...``), which a URL rendered back to text would hand libpq as
one unparseable host.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine


def psycopg_params(engine: Engine, *, connect_timeout_s: int | None = None) -> dict[str, Any]:
    """Keyword arguments for ``psycopg.connect`` reaching the database ``engine`` reaches."""
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    params: dict[str, Any] = {k: v for k, v in cparams.items() if k != "context"}
    if cargs and cargs[0]:
        params["conninfo"] = cargs[0]
    if connect_timeout_s is not None:
        params.setdefault("connect_timeout", connect_timeout_s)
    return params

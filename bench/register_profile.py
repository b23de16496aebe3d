"""Cost of one registration (``POST /api/v1/adapters/{ns}/{name}/versions`` after an upload):
SQL statements per register and server CPU per register, less noisy than a rate.

* **statements**: the app in this process (FastAPI's TestClient, the real lifespan and
  database), a SQLAlchemy ``before_cursor_execute`` listener on its engine counts what one
  register POST sends (transaction control included: ``BEGIN``/``COMMIT`` of psycopg are not
  cursor executes, SQLite's ``BEGIN IMMEDIATE`` is);
* **CPU**: ``adapter-registry serve --workers 1`` in a subprocess; its user + system CPU time
  (``/proc/<pid>/stat``) across ``n`` register POSTs (uploads staged before), per register.

    python -m bench.register_profile [--quick] [--dialects sqlite,postgresql] [--show]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import (
    api_client,
    dialects_of,
    migrate_and_bootstrap,
    print_table,
    registry_env,
    running,
    scratch_database,
    setup_catalog,
    start_registry,
    write_json,
)
from bench.registration import AdapterFiles, register, stage_upload

NAME = "register_profile"


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_statements(url: str, tmp: Path, n: int, show: bool) -> float:
    """Statements per register POST, in-process."""
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from registry.app import create_app
    from registry.settings import Settings

    token = migrate_and_bootstrap(url)
    artifacts = tmp / "inproc-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    saved = dict(os.environ)
    os.environ.update(registry_env(url, artifacts))
    os.environ.update(
        REGISTRY_CONTROLLER__ENABLED="false",
        REGISTRY_JOBS__ENABLED="false",
        REGISTRY_AUDIT__SIGNING_KEY_PATH=str(tmp / "audit.key"),
    )
    try:
        settings = Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    files = AdapterFiles()
    seen: list[str] = []
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        base = setup_catalog(client)
        engine = client.app.state.sessions.engine  # type: ignore[attr-defined]

        def listen(_conn: Any, _cur: Any, statement: str, *_args: Any) -> None:
            seen.append(statement)

        staged = [stage_upload(client, files, f"s{i}") for i in range(n + 1)]
        register(client, "prof", base, staged[0])  # the adapter row exists from here on
        event.listen(engine, "before_cursor_execute", listen)
        try:
            for upload in staged[1:]:
                register(client, "prof", base, upload)
        finally:
            event.remove(engine, "before_cursor_execute", listen)
    if show:
        for statement in seen[: len(seen) // n]:
            print("  " + " ".join(statement.split())[:160])
    return len(seen) / n


def cpu_per_register(url: str, tmp: Path, n: int) -> float:
    """Server CPU ms per register POST (serve --workers 1 subprocess)."""
    token = migrate_and_bootstrap(url)
    files = AdapterFiles()
    server = start_registry(url, tmp, "prof", REGISTRY_CONTROLLER__ENABLED="false")
    with running(server) as srv, api_client(srv, token) as client:
        base = setup_catalog(client)
        for w in range(10):  # warm-up
            register(client, "cpu", base, stage_upload(client, files, f"w{w}"))
        staged = [stage_upload(client, files, f"c{i}") for i in range(n)]
        before = _cpu_s(srv.pid)
        for upload in staged:
            register(client, "cpu", base, upload)
        after = _cpu_s(srv.pid)
    return (after - before) * 1000 / n


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument("--show", action="store_true", help="print one register's statements")
    args = parser.parse_args(argv)
    n = 20 if args.quick else 100
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-regprof-") as tmp_s:
        tmp = Path(tmp_s)
        for dialect in dialects_of(args):
            with scratch_database(dialect, tmp, f"stmt_{dialect}") as url:
                statements = count_statements(url, tmp / "s", n, args.show)
            with scratch_database(dialect, tmp, f"cpu_{dialect}") as url:
                cpu_ms = cpu_per_register(url, tmp / "c", n)
            rows.append([dialect, statements, cpu_ms])
    print_table(
        f"One registration ({n} register POSTs)",
        ["db", "statements/register", "server CPU ms/register"],
        rows,
    )
    payload = {
        "registers": n,
        "rows": [dict(zip(("db", "stmts", "cpu_ms"), r, strict=True)) for r in rows],
    }
    write_json(NAME, payload)
    return {"name": NAME, "checks": []}


if __name__ == "__main__":
    main()

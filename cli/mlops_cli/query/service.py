"""Which engine answers ``mlops query`` for a target, built from the stack's outputs.

A deployed stack (``--stack``) answers through Athena in its workgroup; the running local stack
through DuckDB over the same objects, with the table definitions read from its Glue catalog.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from mlops.adapters.aws import client
from mlops.errors import ConfigError
from mlops_cli.emulator.target import Target, mlops_home
from mlops_cli.query.result import QueryResult

CACHE_FOLDER = "query-cache"


def cache_folder() -> Path:
    """Where the local engine keeps its copies of the stack's objects (``MLOPS_HOME``)."""
    return mlops_home() / CACHE_FOLDER


def run_query(
    target: Target,
    sql: str,
    *,
    deployed: bool,
    since: date | None = None,
    until: date | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> QueryResult:
    if not sql.strip():
        raise ConfigError("no SQL given")
    database = target.output("CaptureDatabaseName")
    if deployed:
        if since or until:
            raise ConfigError(
                "--since/--until bound what the local engine copies; on Athena, filter on dt "
                "in the SQL (partition projection then reads only those days)"
            )
        from mlops_cli.query.athena import AthenaQueryEngine

        return AthenaQueryEngine(
            client("athena"),
            workgroup=target.output("QueryWorkGroupName"),
            database=database,
            progress=progress,
        ).run(sql)
    from mlops_cli.query.duckdb_engine import LocalQueryEngine, require_duckdb

    require_duckdb()
    engine = LocalQueryEngine(
        glue=client("glue"),
        s3=client("s3"),
        database=database,
        cache=cache_folder(),
        today=lambda: datetime.now(UTC).date(),
        progress=progress,
    )
    return engine.run(sql, since=since, until=until)

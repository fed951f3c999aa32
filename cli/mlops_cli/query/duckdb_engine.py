"""SQL over the local stack's captures and feedback, in DuckDB, with Athena's table definitions.

The tables come from the stack's Glue catalog (which the local stack creates from the template,
as CloudFormation does on AWS); each becomes a DuckDB view over local copies of its objects
(``object_cache``) with the declared column names and types, partition keys last, as Athena
shows them. The views live in a schema named like the Glue database, which is also first on
the search path: ``captures`` and ``<database>.captures`` both resolve, as on Athena.

Where the dialects differ (Trino on Athena, DuckDB here), the SQL that runs unchanged on both is
documented in docs/query.md; ``json_extract_scalar`` (Trino's) is defined here as a macro over
DuckDB's ``json_extract_string`` so queries over the captured ``inputs`` run on both.
"""

from __future__ import annotations

import decimal
import re
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.errors import ConfigError, StorageError
from mlops_cli.query.columnar import columnar_files
from mlops_cli.query.object_cache import Synced, sync_table
from mlops_cli.query.result import (
    QueryError,
    QueryResult,
    QuerySyntaxError,
    UnknownTableError,
)
from mlops_cli.query.tables import TableSpec, table_spec

ENGINE = "duckdb"
# DuckDB's result types in Trino's spelling (what Athena reports), so both engines print alike.
_TRINO_TYPES = {
    "VARCHAR": "varchar",
    "BIGINT": "bigint",
    "HUGEINT": "bigint",  # DuckDB's sum(bigint); Trino's is bigint
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "TINYINT": "tinyint",
    "DOUBLE": "double",
    "FLOAT": "real",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "BLOB": "varbinary",
}
_MACROS = (
    # Trino's "the scalar at this JSON path, as varchar": NULL for an object or an array.
    "CREATE MACRO json_extract_scalar(j, p) AS CASE WHEN json_type(j, p) IN ('OBJECT', 'ARRAY') "
    "THEN NULL ELSE json_extract_string(j, p) END",
)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class LocalQueryEngine:
    """Runs SQL against the tables of one Glue database, reading their objects from S3."""

    def __init__(
        self,
        *,
        glue: Any,
        s3: Any,
        database: str,
        cache: Path,
        today: Callable[[], date],
        progress: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._glue, self._s3 = glue, s3
        self.database = database
        self.cache = cache
        self._today = today
        self._progress = progress

    def tables(self) -> list[TableSpec]:
        try:
            pages = self._glue.get_paginator("get_tables").paginate(DatabaseName=self.database)
            return [table_spec(t) for page in pages for t in page["TableList"]]
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot read Glue database {self.database}: {exc}") from exc

    def run(self, sql: str, *, since: date | None = None, until: date | None = None) -> QueryResult:
        import duckdb

        started = time.perf_counter()
        _one_reading_statement(sql)
        tables = self.tables()
        used = [t for t in tables if re.search(rf"\b{re.escape(t.name)}\b", sql, re.IGNORECASE)]
        for table in used:
            _check_injected(table, sql)
        synced = {
            t.name: sync_table(
                self._s3,
                t,
                self.cache / self.database,
                today=self._today(),
                since=since,
                until=until,
                progress=self._progress,
            )
            for t in used
        }
        synced_at = time.perf_counter()
        connection = duckdb.connect(":memory:")
        converted = 0
        readable: list[Path] = []  # the views' Parquet files: all the query may open
        try:
            connection.execute(f"CREATE SCHEMA {quote(self.database)}")
            for table in tables:
                reader = None
                if table.name in synced and synced[table.name].files:
                    parquet, count = columnar_files(
                        connection, table, synced[table.name], json_reader, self._progress
                    )
                    converted += count
                    readable.extend(parquet)
                    reader = parquet_reader(table, parquet)
                connection.execute(view_sql(self.database, table, reader))
            for macro in _MACROS:
                connection.execute(macro)
            connection.execute(f"SET search_path = {literal(self.database + ',main')}")
            _confine(connection, readable)
            read = time.perf_counter()
            try:
                cursor = connection.execute(sql)
                rows = cursor.fetchall()
                description = cursor.description or []
            except duckdb.ParserException as exc:
                raise QuerySyntaxError(f"SQL syntax error: {_first_line(exc)}") from exc
            except duckdb.CatalogException as exc:
                raise UnknownTableError(f"{_first_line(exc)} (tables: {_names(tables)})") from exc
            except duckdb.BinderException as exc:
                raise QuerySyntaxError(f"{_first_line(exc)}") from exc
            except duckdb.PermissionException as exc:
                raise QuerySyntaxError(
                    f"the local engine reads only the stack's tables: {_first_line(exc)}"
                ) from exc
            except duckdb.Error as exc:
                raise QueryError(_name_objects(str(exc), synced)) from exc
        finally:
            connection.close()
        notes = [
            f"{t.name} has no data yet (nothing under {t.location})"
            for t in used
            if not synced[t.name].files
        ]
        for t in used:
            for reason, count in synced[t.name].skipped.items():
                notes.append(f"{t.name}: {count:,} objects left out ({reason})")
        return QueryResult(
            engine=ENGINE,
            columns=[d[0] for d in description],
            types=[trino_type(str(d[1])) for d in description],
            rows=[[plain(v) for v in row] for row in rows],
            stats={
                "seconds": round(time.perf_counter() - started, 3),
                "sync_seconds": round(synced_at - started, 3),
                "convert_seconds": round(read - synced_at, 3),
                "query_seconds": round(time.perf_counter() - read, 3),
                "objects": sum(s.objects for s in synced.values()),
                "objects_fetched": sum(s.fetched for s in synced.values()),
                "bytes_fetched": sum(s.fetched_bytes for s in synced.values()),
                "partitions_converted": converted,
                "bytes_in_scope": sum(p.stat().st_size for s in synced.values() for p in s.files),
            },
            notes=notes,
        )


def _one_reading_statement(sql: str) -> None:
    """One SELECT (or EXPLAIN), as ``mlops query`` is for reading: no COPY ... TO, ATTACH,
    INSTALL/LOAD, SET, PRAGMA or CREATE, and no second statement after the first."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QuerySyntaxError(f"SQL syntax error: {_first_line(exc)}") from exc
    if len(statements) != 1:
        raise QuerySyntaxError(
            f"one SQL statement per query, as on Athena: this has {len(statements)}"
        )
    kind = statements[0].type
    if kind not in (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN):
        raise QuerySyntaxError(
            f"mlops query runs SELECT (or EXPLAIN) only; a {kind.name} statement is refused"
        )


def _confine(connection: Any, readable: list[Path]) -> None:
    """Lock the connection to the tables: the SQL may open the views' Parquet files and
    nothing else (no other local file, no URL, no extension), and cannot unlock it."""
    paths = ", ".join(literal(str(p)) for p in readable)
    connection.execute(f"SET allowed_paths = [{paths}]")
    connection.execute("SET enable_external_access = false")
    connection.execute("SET autoinstall_known_extensions = false")
    connection.execute("SET autoload_known_extensions = false")
    connection.execute("SET lock_configuration = true")


def view_sql(database: str, table: TableSpec, reader: str | None) -> str:
    """The view that shows ``table`` as Athena does: declared columns, then partition keys,
    over ``reader`` (``parquet_reader`` or ``json_reader``); no rows when there is no data."""
    name = f"{quote(database)}.{quote(table.name)}"
    names = [c.name for c in table.columns] + [k.name for k in table.partition_keys]
    if reader is None:  # Athena answers no rows over an empty table: so does the view
        typed = ", ".join(
            f"CAST(NULL AS {c.duckdb_type}) AS {quote(c.name)}"
            for c in table.columns + table.partition_keys
        )
        return f"CREATE VIEW {name} AS SELECT {typed} WHERE false"
    return f"CREATE VIEW {name} AS SELECT {', '.join(quote(n) for n in names)} FROM {reader}"


def json_reader(table: TableSpec, files: list[Path], *, partitions: bool = False) -> str:
    """DuckDB's read of the objects as the table's SerDe reads them: JSON Lines (gzip by the
    .gz suffix, as Athena decides), the declared columns with their types, other keys ignored;
    with ``partitions``, the keys' values from the Hive-style folders, as strings."""
    columns = ", ".join(f"{literal(c.name)}: {literal(c.duckdb_type)}" for c in table.columns)
    paths = ", ".join(literal(str(p)) for p in files)
    return (
        f"read_json([{paths}], format = 'newline_delimited', compression = 'auto_detect', "
        f"columns = {{{columns}}}{_hive(table) if partitions else ''})"
    )


def parquet_reader(table: TableSpec, files: list[Path]) -> str:
    paths = ", ".join(literal(str(p)) for p in files)
    return f"read_parquet([{paths}]{_hive(table)})"


def _hive(table: TableSpec) -> str:
    keys = ", ".join(f"{literal(k.name)}: {literal(k.duckdb_type)}" for k in table.partition_keys)
    return f", hive_partitioning = true, hive_types = {{{keys}}}" if keys else ""


# Comments and string literals: "-- model = 'x'" or 'model = x' give Athena no value.
_NOT_CODE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", re.DOTALL)


def _check_injected(table: TableSpec, sql: str) -> None:
    """Athena enumerates no values for an injected projection key: a query must name them
    (``model = '...'``) or Athena refuses it. Refused here too, so a query that passes locally
    passes on AWS."""
    code = _NOT_CODE.sub(lambda m: "''" if m.group().startswith("'") else " ", sql)
    for key in table.injected_keys:
        if not re.search(rf"\b{re.escape(key)}\b\s*(=|\bin\b)", code, re.IGNORECASE):
            raise QuerySyntaxError(
                f"{table.name}.{key} is an injected partition key: Athena needs the query to "
                f"give it with = or IN (e.g. WHERE {key} = '...'), so it is required here too"
            )


def trino_type(duckdb_type: str) -> str:
    if duckdb_type.startswith("DECIMAL"):
        return duckdb_type.lower()
    return _TRINO_TYPES.get(duckdb_type, duckdb_type.lower())


def plain(value: Any) -> Any:
    """A DuckDB value as JSON-ready Python: decimals exact as strings, times as ISO text."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, uuid.UUID | bytes):
        return value.hex() if isinstance(value, bytes) else str(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _names(tables: list[TableSpec]) -> str:
    return ", ".join(t.name for t in tables) or "none"


def _name_objects(message: str, synced: dict[str, Synced]) -> str:
    """DuckDB names the local copy; the user knows the S3 object."""
    for s in synced.values():
        for path, uri in s.local_keys.items():
            message = message.replace(str(path), uri)
    return _first_line(Exception(message)) if message else "the query failed"


def require_duckdb() -> None:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        raise ConfigError(
            "the local query engine needs DuckDB: pip install 'serverless-mlops[local]'"
        ) from None

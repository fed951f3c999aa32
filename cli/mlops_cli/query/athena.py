"""SQL over a deployed stack's captures and feedback, in Athena: the boto3 side of ``mlops query``.

The query runs in the stack's workgroup (output ``QueryWorkGroupName``), whose enforced settings
hold the result location, encryption and the bytes-scanned cutoff; the database is the stack's
Glue database (output ``CaptureDatabaseName``). Athena answers every value as a string with the
column's type beside it: values are turned back into numbers and booleans here, so a result
prints (and ``--json`` reads) the same as from the local engine.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.errors import StorageError
from mlops_cli.query.result import (
    QueryError,
    QueryResult,
    QuerySyntaxError,
    ScanLimitError,
    UnknownTableError,
)

ENGINE = "athena"
_INTEGERS = frozenset({"tinyint", "smallint", "integer", "bigint"})
_FLOATS = frozenset({"double", "real", "float"})
# Athena's error types for "the table or column does not exist" (its ErrorType codes and the
# names in its StateChangeReason); user errors otherwise read as SQL errors.
_UNKNOWN = ("TABLE_NOT_FOUND", "COLUMN_NOT_FOUND", "SCHEMA_NOT_FOUND", "does not exist")
_SCAN_LIMIT = ("bytes scanned limit", "BytesScannedCutoffPerQuery", "data usage limit")
USER_ERROR = 2  # AthenaError.ErrorCategory: 1 system, 2 user, 3 other


class AthenaQueryEngine:
    def __init__(
        self,
        athena: Any,
        *,
        workgroup: str,
        database: str,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        progress: Callable[[str], None] = lambda _: None,
        timeout_s: float = 1800.0,
    ) -> None:
        self._athena = athena
        self.workgroup, self.database = workgroup, database
        self._sleep, self._clock, self._progress = sleep, clock, progress
        self.timeout_s = timeout_s

    def run(self, sql: str) -> QueryResult:
        started = self._clock()
        try:
            execution_id = self._athena.start_query_execution(
                QueryString=sql,
                WorkGroup=self.workgroup,
                QueryExecutionContext={"Database": self.database},
            )["QueryExecutionId"]
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", str(exc))
            if exc.response.get("Error", {}).get("Code") == "InvalidRequestException":
                raise QuerySyntaxError(f"Athena refused the query: {message}") from exc
            raise StorageError(
                f"cannot start the query in workgroup {self.workgroup}: {message}"
            ) from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot reach Athena: {exc}") from exc
        try:
            execution = self._wait(execution_id, started)
        except KeyboardInterrupt:
            self._stop(execution_id)
            raise
        columns, types, rows = self._results(execution_id)
        statistics = execution.get("Statistics", {})
        return QueryResult(
            engine=ENGINE,
            columns=columns,
            types=types,
            rows=rows,
            stats={
                "seconds": round(self._clock() - started, 3),
                "query_execution_id": execution_id,
                "bytes_scanned": statistics.get("DataScannedInBytes"),
                "engine_ms": statistics.get("EngineExecutionTimeInMillis"),
                "output": execution.get("ResultConfiguration", {}).get("OutputLocation"),
            },
        )

    def _wait(self, execution_id: str, started: float) -> dict[str, Any]:
        delay = 0.25
        while True:
            execution = self._call("get_query_execution", QueryExecutionId=execution_id)[
                "QueryExecution"
            ]
            status = execution.get("Status", {})
            state = status.get("State")
            if state == "SUCCEEDED":
                return dict(execution)
            if state in ("FAILED", "CANCELLED"):
                raise self._failure(execution_id, state, status)
            elapsed = self._clock() - started
            scanned = execution.get("Statistics", {}).get("DataScannedInBytes") or 0
            doing = state.lower() if state else "waiting"
            self._progress(f"{doing}: {elapsed:.1f} s, {scanned / 1e6:,.1f} MB scanned")
            if elapsed > self.timeout_s:
                self._stop(execution_id)
                raise QueryError(
                    f"query {execution_id} still running after {self.timeout_s:.0f} s: stopped"
                )
            self._sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def _failure(self, execution_id: str, state: str, status: dict[str, Any]) -> Exception:
        reason = (
            status.get("StateChangeReason")
            or status.get("AthenaError", {}).get("ErrorMessage")
            or ""
        )
        category = status.get("AthenaError", {}).get("ErrorCategory")
        where = f"(query {execution_id})"
        if any(marker.lower() in reason.lower() for marker in _SCAN_LIMIT):
            return ScanLimitError(
                f"Athena stopped the query at the workgroup's bytes-scanned limit "
                f"({self._cutoff()}): filter on dt (and model) so partition projection "
                f"reads fewer partitions {where}: {reason}"
            )
        if state == "CANCELLED":
            return QueryError(f"the query was cancelled {where}: {reason or 'no reason given'}")
        if any(marker in reason for marker in _UNKNOWN):
            return UnknownTableError(f"{reason} {where}")
        if category == USER_ERROR:
            return QuerySyntaxError(f"{reason} {where}")
        return QueryError(f"Athena failed the query {where}: {reason or 'no reason given'}")

    def _cutoff(self) -> str:
        try:
            config = self._athena.get_work_group(WorkGroup=self.workgroup)["WorkGroup"]
            cutoff = config.get("Configuration", {}).get("BytesScannedCutoffPerQuery")
        except (ClientError, BotoCoreError):
            cutoff = None
        return (
            f"{cutoff:,} bytes, template parameter QueryBytesScannedCutoff"
            if cutoff
            else "QueryBytesScannedCutoff"
        )

    def _results(self, execution_id: str) -> tuple[list[str], list[str], list[list[Any]]]:
        columns: list[str] = []
        types: list[str] = []
        rows: list[list[Any]] = []
        first = True
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            page = self._call("get_query_results", **kwargs)
            result = page.get("ResultSet", {})
            if first:
                info = result.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [c["Name"] for c in info]
                types = [c.get("Type", "varchar").lower() for c in info]
            raw = [
                [cell.get("VarCharValue") for cell in r.get("Data", [])]
                for r in result.get("Rows", [])
            ]
            if first and raw and raw[0] == columns:
                raw = raw[1:]  # a SELECT's first row is its header
            rows.extend(
                [typed(value, t) for value, t in zip(row, types, strict=False)] for row in raw
            )
            first = False
            token = page.get("NextToken")
            if not token:
                return columns, types, rows

    def _stop(self, execution_id: str) -> None:
        # If this fails the query ends on its own; the bytes-scanned cutoff still bounds it.
        with contextlib.suppress(ClientError, BotoCoreError):
            self._athena.stop_query_execution(QueryExecutionId=execution_id)

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._athena, method)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"Athena {method} failed: {exc}") from exc


def typed(value: str | None, sql_type: str) -> Any:
    """One of Athena's string values in its column's type (NULL is an absent value)."""
    if value is None:
        return None
    base = sql_type.split("(", 1)[0]
    try:
        if base in _INTEGERS:
            return int(value)
        if base in _FLOATS:
            return float(value)  # "NaN", "Infinity" included
    except ValueError:
        return value
    if base == "boolean":
        return value == "true"
    return value

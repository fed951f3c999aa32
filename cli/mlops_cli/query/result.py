"""What a query answers, whichever engine ran it, and the errors it can end in.

Both engines hand back the same shape: column names, SQL types in Trino's spelling, and rows
of plain Python values (int, float, str, bool, None; decimals as exact strings), so ``--json``
and the table print the same for a local run and an Athena run.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

from mlops.errors import InvalidInputError, MlopsError


class QueryError(MlopsError):
    """The engine could not answer (it failed, was cancelled, or timed out)."""

    code = "query_failed"


class QuerySyntaxError(InvalidInputError):
    code = "query_syntax"


class UnknownTableError(InvalidInputError):
    """The SQL names a table or column the catalog does not have."""

    code = "unknown_table"


class ScanLimitError(QueryError):
    """Athena cancelled the query at the workgroup's bytes-scanned cutoff."""

    code = "scan_limit"


@dataclass
class QueryResult:
    engine: str  # "athena" | "duckdb"
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    stats: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the user should know (no data yet...)

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "columns": self.columns,
            "types": self.types,
            "rows": [[json_value(v) for v in row] for row in self.rows],
            "stats": self.stats,
            "notes": self.notes,
        }

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(["" if v is None else display(v) for v in row])
        return out.getvalue()


def json_value(value: Any) -> Any:
    """JSON has no NaN or infinities (a line holding one is invalid): they travel as the
    strings Athena prints for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return value


def display(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(json_value(value))
    if isinstance(value, list | dict):  # arrays, maps, structs: as JSON text
        return json.dumps(json_value(value), allow_nan=False)
    return str(value)

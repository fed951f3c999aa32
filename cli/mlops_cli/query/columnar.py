"""A Parquet copy of each cached partition, made with the table's declared types.

Measured (benchmarks/query.py, a day of 1M captures): DuckDB parses the gzip JSON Lines of every
object at every query (about 10 s a query on two busy cores), while the same rows in Parquet
answer the same queries in about a second. So the local engine converts each partition once,
through the very ``read_json`` view it would otherwise query (declared columns and types, the
table's SerDe semantics), and queries the Parquet; a partition is converted again only when
the set of its objects changes (a new delivery in the hour, a rewritten or expired object).
This is a cache of the laptop's copy, nothing in S3 changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_cli.query.object_cache import DERIVED, Synced
from mlops_cli.query.result import QueryError
from mlops_cli.query.tables import TableSpec

PARQUET = f"{DERIVED}parquet"
SOURCES = f"{DERIVED}sources.json"  # the objects (name, size, mtime) the Parquet was made of


def columnar_files(
    connection: Any,
    table: TableSpec,
    synced: Synced,
    json_reader: Callable[[TableSpec, list[Path]], str],
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[list[Path], int]:
    """The Parquet file of every partition in scope, converting the stale ones; and how many
    were converted. ``json_reader`` is the engine's read_json over a list of files."""
    import duckdb

    folders: dict[Path, list[Path]] = {}
    for path in synced.files:
        folders.setdefault(path.parent, []).append(path)
    stale = [f for f, files in folders.items() if _sources(files) != _recorded(f)]
    if stale:
        progress(f"{table.name}: converting {len(stale):,} partitions to Parquet")
    for folder in stale:
        files = folders[folder]
        target = folder / PARQUET
        partial = folder / f"{DERIVED}parquet.part"
        columns = ", ".join('"' + c.name.replace('"', '""') + '"' for c in table.columns)
        try:
            connection.execute(
                f"COPY (SELECT {columns} FROM {json_reader(table, files)}) "
                f"TO '{_escape(partial)}' (FORMAT parquet, COMPRESSION zstd)"
            )
        except duckdb.Error as exc:
            partial.unlink(missing_ok=True)
            message = str(exc)
            for path, uri in synced.local_keys.items():
                message = message.replace(str(path), uri)
            raise QueryError(
                f"cannot read table {table.name}: {message.strip().splitlines()[0]}"
            ) from exc
        partial.replace(target)
        (folder / SOURCES).write_text(json.dumps(_sources(files)))
    return sorted(folder / PARQUET for folder in folders), len(stale)


def _sources(files: list[Path]) -> list[list[Any]]:
    return sorted([f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files)


def _recorded(folder: Path) -> list[list[Any]] | None:
    if not (folder / PARQUET).exists():
        return None
    try:
        recorded = json.loads((folder / SOURCES).read_text())
    except (OSError, ValueError):
        return None
    return recorded if isinstance(recorded, list) else None


def _escape(path: Path) -> str:
    return str(path).replace("'", "''")

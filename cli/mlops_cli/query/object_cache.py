"""A table's objects, copied out of S3 (the local stack's moto) into a folder DuckDB reads.

DuckDB reads ``s3://`` only through its httpfs extension, which downloads at first use (not
possible offline) and has no wheel of DuckDB's version on PyPI; so the engine reads local copies.
The copy is a cache: each object is fetched once and kept under its partition's Hive-style
folder with its ETag in a manifest, so the next query fetches only new or rewritten objects,
and a file whose object is gone (expired by the bucket's lifecycle) is deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.errors import StorageError
from mlops_cli.query.tables import TableSpec, parse_day

MANIFEST = ".manifest.json"
# Files a partition's folder holds beside its objects' copies, derived from them (columnar.py).
DERIVED = "columnar."
_FETCHERS = 8  # S3 GETs in flight: a round trip each, so threads overlap them


@dataclass
class Synced:
    """What a table holds locally after a sync: the files in scope, and what it cost."""

    files: list[Path]
    objects: int  # in scope
    fetched: int  # of them, downloaded this time
    fetched_bytes: int
    skipped: dict[str, int]  # why objects were left out: reason → count
    local_keys: dict[Path, str]  # file → its s3:// URI, for error messages


def sync_table(
    s3: Any,
    table: TableSpec,
    cache: Path,
    *,
    today: date,
    since: date | None = None,
    until: date | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> Synced:
    """Bring the table's objects in scope (projection admits them; ``since``..``until`` on the
    date partition key) into ``cache/<table>/``; return the files DuckDB should read."""
    root = cache / table.name
    root.mkdir(parents=True, exist_ok=True)
    manifest_path = root / MANIFEST
    try:
        manifest: dict[str, str] = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    listed = _list(s3, table)
    skipped: dict[str, int] = {}
    wanted: list[tuple[str, str, Path]] = []
    known: set[Path] = set()  # where every listed object goes, in this window or not
    for key, etag in listed.items():
        partition = table.partition_of(key)
        if partition is None:
            skipped[_OUTSIDE_LAYOUT] = skipped.get(_OUTSIDE_LAYOUT, 0) + 1
            continue
        if not table.admits(partition, today):
            skipped[_OUTSIDE_PROJECTION] = skipped.get(_OUTSIDE_PROJECTION, 0) + 1
            continue
        name = key.rsplit("/", 1)[-1]
        if not _plain_name(name):
            skipped[_ODD_NAME] = skipped.get(_ODD_NAME, 0) + 1
            continue
        folder = root.joinpath(*(f"{k.name}={partition[k.name]}" for k in table.partition_keys))
        path = folder / name
        known.add(path)
        if _in_window(table, partition, since, until):
            wanted.append((key, etag, path))
    stale = [
        (key, etag, path)
        for key, etag, path in wanted
        if manifest.get(key) != etag or not path.exists()
    ]
    if stale:
        progress(f"{table.name}: fetching {len(stale):,} of {len(wanted):,} objects")
    fetched_bytes = 0
    with ThreadPoolExecutor(_FETCHERS) as pool:
        for size in pool.map(lambda item: _fetch(s3, table.bucket, item[0], item[2]), stale):
            fetched_bytes += size
    for key, etag, _ in stale:
        manifest[key] = etag
    for key in set(manifest) - set(listed):  # gone from S3 (expired, deleted): gone here too
        del manifest[key]
    _remove_unknown(root, known)
    manifest_path.write_text(json.dumps(manifest))
    return Synced(
        files=sorted(path for _, _, path in wanted),
        objects=len(wanted),
        fetched=len(stale),
        fetched_bytes=fetched_bytes,
        skipped=skipped,
        local_keys={path: f"s3://{table.bucket}/{key}" for key, _, path in wanted},
    )


_OUTSIDE_LAYOUT = "outside the table's layout, as Athena does"
_OUTSIDE_PROJECTION = "outside partition projection, as Athena does"
# Locally only: Athena would read such an object.
_ODD_NAME = "a name the local copy cannot hold: ., .., or one of its own files; Athena reads it"


def _plain_name(name: str) -> bool:
    """Whether an object's name can be its copy's file name: not a path step, nor a name the
    cache's own files use (the derived Parquet, the manifest, a download in progress)."""
    return (
        name not in ("", ".", "..")
        and not name.startswith(DERIVED)
        and name != MANIFEST
        and not name.endswith(".part")
    )


def _list(s3: Any, table: TableSpec) -> dict[str, str]:
    keys: dict[str, str] = {}
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=table.bucket, Prefix=table.prefix
        )
        for page in pages:
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith("/"):
                    keys[obj["Key"]] = str(obj.get("ETag", ""))
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot list {table.location} (table {table.name}): {exc}") from exc
    return keys


def _fetch(s3: Any, bucket: str, key: str, path: Path) -> int:
    """One GET into ``path`` (objects are a delivery's worth: no multipart transfer needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with partial.open("wb") as out:
            for chunk in body.iter_chunks(1 << 20):
                out.write(chunk)
    except (ClientError, BotoCoreError) as exc:
        partial.unlink(missing_ok=True)
        raise StorageError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
    partial.replace(path)  # never a half-written file under the real name
    return path.stat().st_size


def _in_window(
    table: TableSpec, partition: dict[str, str], since: date | None, until: date | None
) -> bool:
    key = table.date_key
    if key is None or (since is None and until is None):
        return True
    projection = table.projections[key]
    day = parse_day(partition[key], projection.date_format or "%Y-%m-%d")
    if day is None:
        return False
    return (since is None or day >= since) and (until is None or day <= until)


def _remove_unknown(root: Path, known: set[Path]) -> None:
    """Delete cached files whose object is gone from S3 (expired, deleted), then folders left
    with nothing but what was derived from such files (``columnar``'s Parquet)."""
    for path in root.rglob("*"):
        derived = path.name.startswith(DERIVED) or path.name == MANIFEST
        if path.is_file() and not derived and path not in known:
            path.unlink()
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        children = list(folder.iterdir())
        if all(c.is_file() and c.name.startswith(DERIVED) for c in children):
            for child in children:
                child.unlink()
            folder.rmdir()

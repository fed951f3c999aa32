"""``mlops batch``: upload a CSV under the stack's batch prefix and follow its job to the summary.

The upload is the trigger (the S3 notification the template declares, as for any upload), so the
command works the same against the local stack and a deployed one. The job id is derived from the
key and the object's version (or ETag) exactly as the function derives it, so the command knows
where ``summary.json`` will appear; progress is the count of part objects written so far.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.adapters.aws import client
from mlops.domain import batch_job
from mlops.domain.layout import batch_output_prefix
from mlops.errors import ConfigError, StorageError
from mlops_cli.emulator.target import Target

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Started:
    job_id: str
    bucket: str
    key: str

    @property
    def summary_key(self) -> str:
        return f"{batch_output_prefix(self.job_id)}summary.json"


@dataclass(frozen=True)
class Progress:
    """What the job has written so far; ``summary`` once it is done."""

    engine: str | None
    parts: int
    summary: dict[str, Any] | None = None


def start(
    target: Target, data: Path, version: str | None = None, id_column: str | None = None
) -> Started:
    bucket = target.output("TrainingDataBucketName")
    key = target.output("BatchPrefix") + data.name
    metadata = {}
    if version:
        metadata[batch_job.METADATA_VERSION] = version
    if id_column:
        metadata[batch_job.METADATA_ID_COLUMN] = id_column
    try:
        with data.open("rb") as body:
            put = client("s3").put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata)
    except OSError as exc:
        raise ConfigError(f"cannot read {data}: {exc.strerror}") from exc
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot upload to s3://{bucket}/{key}: {exc}") from exc
    revision = put.get("VersionId") or put["ETag"].strip('"')
    return Started(batch_job.job_id_for(key, revision), bucket, key)


def follow(
    started: Started,
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Progress]:
    """Progress whenever it changes, the last one with the summary; ``StorageError`` if no
    summary came within ``timeout`` seconds."""
    s3 = client("s3")
    deadline = clock() + timeout
    prefix = batch_output_prefix(started.job_id)
    last: Progress | None = None
    while True:
        summary = _json(s3, started.bucket, started.summary_key)
        marker = _json(s3, started.bucket, f"{prefix}job.json") if summary is None else None
        engine = (summary or marker or {}).get("engine")
        parts = _count(s3, started.bucket, f"{prefix}parts/part-")
        now = Progress(engine, parts, summary)
        if now != last:
            yield now
            last = now
        if summary is not None:
            return
        if clock() >= deadline:
            raise StorageError(
                f"no summary for job {started.job_id} after {timeout:g} s: it may still run "
                f"(s3://{started.bucket}/{started.summary_key})"
            )
        sleep(POLL_SECONDS)


def _json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise StorageError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
    doc = json.loads(body)
    return doc if isinstance(doc, dict) else None


def _count(s3: Any, bucket: str, prefix: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(1 for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".csv"))


def print_summary(summary: dict[str, Any]) -> None:
    """The summary as a two-column table, then the problems (rejected files)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from mlops_cli.registry_view import _width

    console = Console(highlight=False, emoji=False, width=_width())
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("value", overflow="fold")
    source = summary.get("input") or {}
    reasons = ", ".join(f"{k} {v:,}" for k, v in (summary.get("rejected_by_reason") or {}).items())
    for what, value in (
        ("job", summary.get("job_id")),
        ("status", summary.get("status")),
        ("engine", summary.get("engine")),
        (
            "input",
            f"s3://{source.get('bucket')}/{source.get('key')} ({source.get('size', 0):,} bytes)",
        ),
        ("model version", summary.get("model_version")),
        ("rows", f"{summary.get('rows', 0):,}"),
        ("scored", f"{summary.get('scored', 0):,}"),
        ("rejected", f"{summary.get('rejected', 0):,}" + (f" ({reasons})" if reasons else "")),
        ("predictions", summary.get("predictions")),
        ("rejected rows", summary.get("rejected_rows") or "-"),
        ("seconds", f"{summary.get('seconds', 0):.2f}"),
        ("error", summary.get("error") or "-"),
    ):
        table.add_row(what, str(value))
    console.print(table)
    for problem in summary.get("problems") or []:
        console.print(f"  - {problem.get('field')}: {problem.get('problem')}")

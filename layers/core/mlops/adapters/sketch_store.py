"""Read the drift sketches of a window, hour by hour, through hourly roll-ups.

The prediction logger writes one sketch per batch:
``sketches/model=<m>/version=<v>/dt=YYYY-MM-DD/hour=HH/<batch-id>.json``. Under heavy traffic
that is thousands of objects an hour, and reading them one GET at a time would make drift cost
grow with traffic again. So each hour is read through its roll-up,
``sketches/model=<m>/version=<v>/rollup/dt=YYYY-MM-DD/hour=HH.json``: the merged sketch and the
batch keys it holds. An evaluation lists each hour (one LIST), reads its roll-up (one GET),
reads only batches the roll-up lacks (late deliveries: the logger retries for up to 6 hours),
and writes the roll-up back when it grew. Cost: O(hours in the window), not O(batches).

Merging is exact (``domain.sketch``), so a roll-up equals the merge of its batches. Corrupt or
incompatible objects (another baseline's bins) are skipped and reported, never fatal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.domain.sketch import Sketch, SketchError, merge_all
from mlops.errors import StorageError

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
ROLLUP_SCHEMA = 1


@dataclass
class SketchWindow:
    """The merged sketch of a window (None when no traffic) and how it was read."""

    sketch: Sketch | None
    hours: int
    batches: int = 0  # batch objects covered (through roll-ups or read now)
    objects_read: int = 0  # GETs this evaluation made
    rollups_written: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)  # key + reason

    def as_dict(self) -> dict[str, Any]:
        return {
            "hours": self.hours,
            "batches": self.batches,
            "objects_read": self.objects_read,
            "rollups_written": self.rollups_written,
            "skipped": self.skipped[:50],
            "skipped_count": len(self.skipped),
        }


def hours_of(since: datetime, until: datetime) -> list[datetime]:
    """The whole UTC hours that start in ``[since, until)``, oldest first."""
    start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if start < since:
        start += timedelta(hours=1)
    out = []
    while start < until:
        out.append(start)
        start += timedelta(hours=1)
    return out


class SketchStore:
    def __init__(self, bucket: str, s3: Any) -> None:
        self.bucket = bucket
        self._s3 = s3

    def window(
        self, model: str, version: str, since: datetime, until: datetime, baseline: str
    ) -> SketchWindow:
        """Every sketch of ``model`` v``version`` whose hour partition starts in
        ``[since, until)``, merged; ``baseline`` is the fingerprint the sketches must carry."""
        hours = hours_of(since, until)
        result = SketchWindow(sketch=None, hours=len(hours))
        parts: list[Sketch] = []
        for hour in hours:
            merged = self._hour(model, version, hour, baseline, result)
            if merged is not None:
                parts.append(merged)
        result.sketch = merge_all(parts) if parts else None
        return result

    def _hour(
        self, model: str, version: str, hour: datetime, baseline: str, result: SketchWindow
    ) -> Sketch | None:
        base = f"sketches/model={model}/version={version}/"
        partition = f"dt={hour:%Y-%m-%d}/hour={hour:%H}"
        rollup_key = f"{base}rollup/{partition}.json"
        batch_keys = sorted(self._keys(f"{base}{partition}/"))
        rollup = self._read_rollup(rollup_key, baseline, result)
        included = set(rollup["batches"]) if rollup else set()
        sketches = [rollup["sketch"]] if rollup and rollup["sketch"] is not None else []
        fresh = [key for key in batch_keys if key not in included]
        for key in fresh:  # a skipped object is recorded too: not read again next time
            sketch = self._read_sketch(key, baseline, result)
            if sketch is not None:
                sketches.append(sketch)
        merged = merge_all(sketches) if sketches else None
        result.batches += len(included) + len(fresh)
        if fresh:
            doc = {
                "schema": ROLLUP_SCHEMA,
                "baseline": baseline,
                "batches": sorted(included | set(fresh)),
                "sketch": None if merged is None else merged.to_dict(),
            }
            self._put(rollup_key, json.dumps(doc, separators=(",", ":")).encode())
            result.rollups_written += 1
        return merged

    def _read_rollup(self, key: str, baseline: str, result: SketchWindow) -> dict[str, Any] | None:
        body = self._get(key, result)
        if body is None:
            return None
        try:
            doc = json.loads(body)
            if doc.get("schema") != ROLLUP_SCHEMA or doc.get("baseline") != baseline:
                raise ValueError("another schema or baseline")
            sketch = None if doc["sketch"] is None else Sketch.from_dict(doc["sketch"])
            return {"batches": [str(k) for k in doc["batches"]], "sketch": sketch}
        except (ValueError, KeyError, TypeError, SketchError) as exc:
            # Rebuilt from the batches, which are the source of truth.
            result.skipped.append({"key": key, "reason": f"roll-up unreadable, rebuilt: {exc}"})
            return None

    def _read_sketch(self, key: str, baseline: str, result: SketchWindow) -> Sketch | None:
        body = self._get(key, result)
        if body is None:
            return None
        try:
            sketch = Sketch.from_dict(json.loads(body))
        except (ValueError, SketchError) as exc:
            result.skipped.append({"key": key, "reason": f"not a sketch: {exc}"})
            return None
        if sketch.baseline != baseline:
            result.skipped.append({"key": key, "reason": "binned on another baseline"})
            return None
        return sketch

    def _keys(self, prefix: str) -> Iterator[str]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            try:
                page = self._s3.list_objects_v2(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise StorageError(f"cannot list s3://{self.bucket}/{prefix}: {exc}") from exc
            for item in page.get("Contents", []):
                if str(item["Key"]).endswith(".json"):
                    yield str(item["Key"])
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def _get(self, key: str, result: SketchWindow) -> bytes | None:
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
            body = bytes(response["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return None
            raise StorageError(f"cannot read s3://{self.bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read s3://{self.bucket}/{key}: {exc}") from exc
        result.objects_read += 1
        return body

    def _put(self, key: str, body: bytes) -> None:
        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot write s3://{self.bucket}/{key}: {exc}") from exc

"""What the retrainer reads from S3: training-data objects and labeled production traffic.

Training data is read at an exact version: ``head`` pins the object (version id on a versioned
bucket, else its ETag), and ``read`` fetches that version or fails with ``ConflictError`` if
the key was overwritten in between, so the bytes validated, hashed and trained on are the ones
the event named. Sizes are checked before the download: a file over the limit costs a HEAD,
not a GET.

Labeled traffic is read by hour partition (DESIGN §3), listing one day prefix at a time, so
the cost follows the window, not the bucket:

    captures/model=<m>/version=<v>/dt=YYYY-MM-DD/hour=HH/<batch-id>.jsonl.gz
    feedback/dt=YYYY-MM-DD/hour=HH/<batch-id>.jsonl.gz

An object that cannot be read as gzip JSON Lines of objects is skipped whole and counted:
the logger writes every object in one ``PutObject``, so a damaged one holds no row we trust,
and one bad object must not stop a retrain.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.domain.capture import is_live
from mlops.domain.config import ModelConfig
from mlops.domain.labeled_traffic import MAX_REPORTED, LabeledTraffic, join
from mlops.domain.layout import BATCH_CAPTURE_NAME, FEEDBACK, capture_prefix
from mlops.errors import ConflictError, DataValidationError, NotFoundError, Problem, StorageError

PAGE_SIZE = 1000  # list_objects_v2's maximum
# A capture or feedback object holds one subscription delivery (at most about 1 MB of log
# events); anything far larger, compressed or not, is not one the logger wrote.
MAX_TRAFFIC_OBJECT_BYTES = 64 * 1024 * 1024
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
_PRECONDITION = frozenset({"412", "PreconditionFailed"})
# A capture row as the logger writes it (``capture_rows``: the prediction id first, compact JSON).
_LEADING_ID = '{"prediction_id":"'
_ID_AT = len(_LEADING_ID)
# Batch scoring's capture objects (named ``batch-…``) are skipped by name: in no verdict, and
# a batch of millions in an hour must not make every label of that hour cost millions of rows.
_PARTITION_OBJECT = re.compile(
    rf"(dt=\d{{4}}-\d{{2}}-\d{{2}}/hour=\d{{2}})/(?!{BATCH_CAPTURE_NAME})[^/]+\.jsonl\.gz"
)


@dataclass(frozen=True)
class DataObject:
    """One stored version of an object: what was validated is what gets read."""

    bucket: str
    key: str
    version_id: str | None
    etag: str  # without the quotes S3 puts around it
    size: int
    last_modified: str  # ISO 8601, UTC
    # The object's user metadata (a HEAD has it; a listing does not: empty there).
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass
class _ReadStats:
    objects_read: int = 0
    corrupt_objects: int = 0
    problems: list[Problem] = field(default_factory=list)

    def corrupt(self, key: str, reason: str) -> None:
        self.corrupt_objects += 1
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(Problem(key, reason))


class TrainingDataStore:
    def __init__(
        self,
        bucket: str,
        s3: Any,
        *,
        page_size: int = PAGE_SIZE,
        max_traffic_object_bytes: int = MAX_TRAFFIC_OBJECT_BYTES,
    ) -> None:
        self.bucket = bucket
        self._s3 = s3
        self._page_size = page_size
        self._max_traffic_object_bytes = max_traffic_object_bytes

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # --- training-data objects -----------------------------------------------------------

    def head(self, key: str, version_id: str | None = None, etag: str | None = None) -> DataObject:
        """The object's current (or the given) version; ``NotFoundError`` when absent. With
        ``etag`` (and no version id: an unversioned bucket) the object must still have those
        bytes: one overwritten since the event named it is ``NotFoundError`` too, so the
        trigger's idempotency key never covers other bytes than its own."""
        where = self.uri(key) + (f" (version {version_id})" if version_id else "")
        extra: dict[str, Any] = {"VersionId": version_id} if version_id else {}
        if etag and not version_id:
            extra["IfMatch"] = f'"{_unquote(etag)}"'
        try:
            response = self._s3.head_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError as exc:
            # 405: the version is a delete marker, which has no content to train on.
            if _code(exc) in _NOT_FOUND | {"405", "MethodNotAllowed"}:
                raise NotFoundError(f"{where} does not exist") from exc
            if _code(exc) in _PRECONDITION:
                raise NotFoundError(f"{where} was overwritten since this upload") from exc
            raise StorageError(f"cannot read {where}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {where}: {exc}") from exc
        return DataObject(
            bucket=self.bucket,
            key=key,
            version_id=response.get("VersionId") or None,
            etag=_unquote(response["ETag"]),
            size=int(response["ContentLength"]),
            last_modified=_iso(response["LastModified"]),
            metadata=dict(response.get("Metadata") or {}),
        )

    def read(self, obj: DataObject, max_bytes: int) -> bytes:
        """The bytes of exactly ``obj``, at most ``max_bytes`` of them.

        Raises ``DataValidationError`` (``size``) without downloading when the object is over
        the limit, ``ConflictError`` when the key was overwritten since ``obj`` was taken (no
        version id: the read is conditional on the ETag), ``NotFoundError`` when it is gone.
        """
        if obj.size > max_bytes:
            raise _too_large(f"{obj.uri} is {obj.size} bytes, over the limit of {max_bytes}")
        pin = {"VersionId": obj.version_id} if obj.version_id else {"IfMatch": f'"{obj.etag}"'}
        try:
            response = self._s3.get_object(Bucket=obj.bucket, Key=obj.key, **pin)
        except ClientError as exc:
            code = _code(exc)
            if code in _PRECONDITION:
                raise ConflictError(
                    f"{obj.uri} changed since it was checked (expected ETag {obj.etag})"
                ) from exc
            if code in _NOT_FOUND:
                raise NotFoundError(f"{obj.uri} no longer exists") from exc
            raise StorageError(f"cannot read {obj.uri}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {obj.uri}: {exc}") from exc
        body = response["Body"]
        try:
            length = int(response.get("ContentLength") or 0)
            if length > max_bytes:
                raise _too_large(f"{obj.uri} is {length} bytes, over the limit of {max_bytes}")
            data = bytes(body.read(max_bytes + 1))
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {obj.uri}: {exc}") from exc
        finally:
            body.close()
        if len(data) > max_bytes:
            raise _too_large(f"{obj.uri} is over the limit of {max_bytes} bytes")
        return data

    def sha256(self, obj: DataObject, chunk: int = 8 * 1024 * 1024) -> str:
        """The sha256 of exactly ``obj``'s bytes, streamed (memory: one chunk, whatever the
        size); the same errors as ``read``."""
        pin = {"VersionId": obj.version_id} if obj.version_id else {"IfMatch": f'"{obj.etag}"'}
        digest = hashlib.sha256()
        try:
            response = self._s3.get_object(Bucket=obj.bucket, Key=obj.key, **pin)
            body = response["Body"]
            try:
                for part in iter(lambda: body.read(chunk), b""):
                    digest.update(part)
            finally:
                body.close()
        except ClientError as exc:
            code = _code(exc)
            if code in _PRECONDITION:
                raise ConflictError(f"{obj.uri} changed since it was checked") from exc
            if code in _NOT_FOUND:
                raise NotFoundError(f"{obj.uri} no longer exists") from exc
            raise StorageError(f"cannot read {obj.uri}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {obj.uri}: {exc}") from exc
        return digest.hexdigest()

    def recent(self, prefix: str, limit: int, exclude_key: str | None = None) -> list[DataObject]:
        """The ``limit`` most recently modified objects under ``prefix``, newest first.

        Folder placeholders (keys ending in ``/``) and empty objects are skipped. S3 lists
        modification times to the second; ties go to the greater key. Memory is O(limit).
        """
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        candidates = (
            (item["LastModified"], item["Key"], item)
            for page in self._pages(Prefix=prefix)
            for item in page.get("Contents", ())
            if not item["Key"].endswith("/") and item["Size"] > 0 and item["Key"] != exclude_key
        )
        newest = heapq.nlargest(limit, candidates, key=lambda c: (c[0], c[1]))
        return [
            DataObject(
                bucket=self.bucket,
                key=key,
                version_id=None,
                etag=_unquote(item["ETag"]),
                size=int(item["Size"]),
                last_modified=_iso(modified),
            )
            for modified, key, item in newest
        ]

    # --- labeled traffic -------------------------------------------------------------------

    def labeled_traffic(
        self, model: str, since: datetime, until: datetime, config: ModelConfig
    ) -> LabeledTraffic:
        """Captures of ``model`` (every version) joined with feedback, over the hour
        partitions that overlap ``[since, until]`` (timezone-aware datetimes).

        Only those partitions are read; objects are read one at a time and only labeled
        captures are kept. Raises ``StorageError`` if S3 fails (the retrain is retried);
        corrupt objects are skipped and counted in the result.
        """
        stats = _ReadStats()
        feedback, captures = self._window_rows(model, since, until, None, stats)
        traffic = join(captures, feedback, config)
        return replace(
            traffic,
            objects_read=stats.objects_read,
            corrupt_objects=stats.corrupt_objects,
            problems=(*stats.problems, *traffic.problems)[:MAX_REPORTED],
        )

    def traffic(
        self,
        model: str,
        since: datetime,
        until: datetime,
        *,
        version: str | None = None,
        labeled_only: bool = False,
        fields: frozenset[str] | None = None,
        sample: int | None = None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        """Capture rows (of ``version``, or every version) and feedback rows of ``model`` in
        the hour partitions overlapping ``[since, until]``, with read counts: what live
        quality joins. With ``labeled_only`` only captures that have a label are kept, as
        they are read: memory follows the labels, not the traffic; with ``fields`` only those keys
        of each capture row are kept (its inputs are most of its size); with ``sample`` every
        labeled capture is kept but at most that many unlabeled ones, a uniform reservoir
        sample (seeded: the same objects give the same sample; ``captures_seen`` counts all).
        Corrupt objects are skipped and counted."""
        stats = _ReadStats()
        feedback, rows = self._window_rows(model, since, until, version, stats)
        labeled = {row.get("prediction_id") for row in feedback}
        captures: list[dict[str, Any]] = []
        reservoir: list[dict[str, Any]] = []
        unlabeled = seen = 0
        rng = random.Random(0)
        for row in rows:
            seen += 1
            is_labeled = row.get("prediction_id") in labeled
            if labeled_only and not is_labeled:
                continue
            kept = row if fields is None else {k: row[k] for k in fields if k in row}
            if sample is None or is_labeled:
                captures.append(kept)
                continue
            unlabeled += 1  # Algorithm R: each unlabeled row kept with equal chance
            if len(reservoir) < sample:
                reservoir.append(kept)
            elif (slot := rng.randrange(unlabeled)) < sample:
                reservoir[slot] = kept
        captures.extend(reservoir)
        counts = {
            "captures_seen": seen,
            "captures_kept": len(captures),
            "objects_read": stats.objects_read,
            "corrupt_objects": stats.corrupt_objects,
            "problems": [p.as_dict() for p in stats.problems[:MAX_REPORTED]],
        }
        return captures, feedback, counts

    def hour_keys(self, base: str, hour: str) -> list[str]:
        """The batch objects' keys in one hour partition (a listing, nothing read)."""
        return sorted(
            item["Key"]
            for page in self._pages(Prefix=f"{base}{hour}/")
            for item in page.get("Contents", ())
            if _PARTITION_OBJECT.fullmatch(item["Key"][len(base) :])
        )

    def rows_of(
        self, keys: list[str], ids: frozenset[str] | set[str] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The rows of the named batch objects (corrupt ones skipped and counted); with
        ``ids``, only the rows of those prediction ids (the others are never parsed)."""
        stats = _ReadStats()
        rows = []
        for key in keys:
            rows.extend(self._traffic_rows(key, self._max_traffic_object_bytes, stats, ids))
        counts = {
            "objects_read": stats.objects_read,
            "corrupt_objects": stats.corrupt_objects,
            "problems": [p.as_dict() for p in stats.problems],
        }
        return rows, counts

    def _window_rows(
        self,
        model: str,
        since: datetime,
        until: datetime,
        version: str | None,
        stats: _ReadStats,
    ) -> tuple[list[dict[str, Any]], Iterator[dict[str, Any]]]:
        """The read both views share: ``model``'s feedback rows in the hour partitions that
        overlap ``[since, until]``, read now, and its live capture rows (of ``version``, or
        every version) there, read one object at a time as the iterator is consumed. Evaluation
        captures are left out: they are in no verdict, and a holdout is never trained on."""
        hours = _hour_partitions(since, until)
        days = sorted({hour.split("/")[0] for hour in hours})
        feedback = [
            row
            for key, size in self._partition_objects(FEEDBACK, days, hours)
            for row in self._traffic_rows(key, size, stats)
            if row.get("model") == model
        ]
        prefixes = (
            [capture_prefix(model, version)]
            if version is not None
            else self._version_prefixes(model)
        )
        captures = (
            row
            for prefix in prefixes
            for key, size in self._partition_objects(prefix, days, hours)
            for row in self._traffic_rows(key, size, stats)
            if is_live(row)
        )
        return feedback, captures

    def version_prefixes(self, model: str) -> list[str]:
        return self._version_prefixes(model)

    def _version_prefixes(self, model: str) -> list[str]:
        """``captures/model=<m>/version=<v>/`` for every version that has captures."""
        return sorted(
            common["Prefix"]
            for page in self._pages(Prefix=capture_prefix(model), Delimiter="/")
            for common in page.get("CommonPrefixes", ())
            if common["Prefix"].endswith("/") and "/version=" in common["Prefix"]
        )

    def _partition_objects(
        self, base: str, days: list[str], hours: frozenset[str]
    ) -> list[tuple[str, int]]:
        """``(key, size)`` of the batch objects under ``base`` in ``hours``, in key order."""
        found = []
        for day in days:
            for page in self._pages(Prefix=f"{base}{day}/"):
                for item in page.get("Contents", ()):
                    match = _PARTITION_OBJECT.fullmatch(item["Key"][len(base) :])
                    if match and match.group(1) in hours:
                        found.append((item["Key"], int(item["Size"])))
        return sorted(found)

    def _traffic_rows(
        self,
        key: str,
        size: int,
        stats: _ReadStats,
        ids: frozenset[str] | set[str] | None = None,
    ) -> list[dict[str, Any]]:
        """The rows of one gzip JSON Lines object; none (counted) if any part is unreadable.
        With ``ids``, a line whose leading prediction id (the logger writes it first) is not
        among them is skipped unparsed: finding 10 % labeled rows costs a tenth of parsing."""
        limit = self._max_traffic_object_bytes
        if size > limit:
            stats.corrupt(key, f"{size} bytes, over the limit of {limit}")
            return []
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                data = bytes(body.read(limit + 1))
            finally:
                body.close()
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:  # expired or deleted since it was listed
                return []
            raise StorageError(f"cannot read {self.uri(key)}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {self.uri(key)}: {exc}") from exc
        stats.objects_read += 1
        try:
            text = _gunzip(data, limit).decode()
        except (ValueError, zlib.error) as exc:  # UnicodeDecodeError is a ValueError
            stats.corrupt(key, f"not gzip UTF-8 text: {exc}")
            return []
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            if (
                ids is not None
                and line.startswith(_LEADING_ID)
                and line[_ID_AT : _ID_AT + 36] not in ids
            ):
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                stats.corrupt(key, f"line {number} is not JSON: {exc}")
                return []
            if not isinstance(row, dict):
                stats.corrupt(key, f"line {number} is not a JSON object")
                return []
            rows.append(row)
        return rows

    def _pages(self, **params: Any) -> Iterator[dict[str, Any]]:
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            yield from paginator.paginate(
                Bucket=self.bucket, PaginationConfig={"PageSize": self._page_size}, **params
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot list {self.uri(params['Prefix'])}: {exc}") from exc


def _hour_partitions(since: datetime, until: datetime) -> frozenset[str]:
    """``dt=YYYY-MM-DD/hour=HH`` of every UTC hour that overlaps ``[since, until]``."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    if since > until:
        raise ValueError(f"since ({since.isoformat()}) is after until ({until.isoformat()})")
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    parts = set()
    while hour <= until:
        parts.add(f"dt={hour:%Y-%m-%d}/hour={hour:%H}")
        hour += timedelta(hours=1)
    return frozenset(parts)


def _gunzip(data: bytes, limit: int) -> bytes:
    """Every gzip member of ``data``; ``ValueError`` if truncated or over ``limit`` bytes."""
    out = bytearray()
    while data:
        member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        out += member.decompress(data, limit + 1 - len(out))
        if len(out) > limit or member.unconsumed_tail:
            raise ValueError(f"decompresses to over {limit} bytes")
        if not member.eof:
            raise ValueError("truncated gzip stream")
        data = member.unused_data
    return bytes(out)


def _too_large(message: str) -> DataValidationError:
    return DataValidationError(message, [Problem("size", message)])


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _unquote(etag: str) -> str:
    return etag.strip('"')


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()

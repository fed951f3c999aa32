"""Batch scoring: an uploaded CSV becomes predictions, a rejected-rows report and a summary.

Three entry points, one per event the function receives (``functions/batch_scoring``):

``start``
    An upload under the batch prefix. The job's model version is the object's
    ``x-amz-meta-mlops-version`` or the production alias's. A file up to ``lambda_max_bytes``
    is scored here, streamed a chunk at a time (bounded memory: the chunk, never the file, and
    no prediction is kept once written); a larger one starts the Step Functions state machine
    (a Distributed Map over the CSV) after its header is checked. A file that cannot be scored
    (not UTF-8, not CSV, no header, a feature missing, no such version) gets a ``rejected``
    summary, never a retry.
``score_batch``
    One Distributed Map batch (``{"Items": [...], "BatchInput": {"job": ...}}``): its rows are
    scored as one chunk, written as a part named by its first row (a retried batch overwrites
    its part) with the part's small summary; returns that summary.
``summarize``
    The state machine's last step: the parts' small summaries (one GET per part, never the
    predictions) add up to ``summary.json``.

Storage failures raise (``StorageError``): Lambda retries the S3-triggered invocation, and the
state machine retries a batch; every key is deterministic, so a retry overwrites.
"""

from __future__ import annotations

import csv
import functools
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from itertools import islice
from typing import Any

from mlops.adapters.aws import client
from mlops.adapters.batch_store import BatchStore, ObjectInfo
from mlops.adapters.model_store import ModelStore
from mlops.adapters.registry import Registry
from mlops.adapters.state_machine import StateMachine
from mlops.domain import batch_job as jobs
from mlops.domain.batch_capture import batch_capture_key, capture_jsonl
from mlops.domain.batch_job import BatchJob, PartSummary, Totals
from mlops.domain.batch_rows import RowPlan, ValidChunk, chunk_from_cells, chunk_from_items
from mlops.domain.ids import uuid7s
from mlops.domain.names import PRODUCTION
from mlops.domain.triggers import parse_triggers
from mlops.domain.versions import parse_version
from mlops.errors import (
    DataValidationError,
    InvalidEventError,
    InvalidInputError,
    MlopsError,
    ModelUnavailableError,
    NotFoundError,
    Problem,
)
from mlops.metric_names import Metric
from mlops.observability import MetricUnit, logger, metrics
from mlops.services.model_loading import LoadedModel, load_version
from mlops.settings import BatchSettings, batch_settings

HEAD_BYTES = 64 * 1024  # read to check a large file's header before starting the Map
READERS = 16  # parallel GETs of part summaries
_BINARY = (b"\x00", b"\x1f\x8b", b"PK\x03\x04", b"%PDF", b"\x89PNG", b"PAR1")


class BatchScoringService:
    def __init__(
        self,
        store: BatchStore,
        models: ModelStore,
        registry: Registry,
        machine: StateMachine,
        settings: BatchSettings,
        *,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        prediction_ids: Callable[[int, int], list[str]] = uuid7s,
    ) -> None:
        self._store = store
        self._models = models
        self._registry = registry
        self._machine = machine
        self._settings = settings
        self._clock_ms = clock_ms
        self._ids = prediction_ids
        self._loaded: dict[str, LoadedModel] = {}  # versions are immutable

    # ------------------------------------------------------------------ S3 upload: a job

    def start(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every uploaded object of an S3 notification: a job each (its summary, or where
        its execution runs)."""
        results = []
        for trigger in parse_triggers(event):
            assert trigger.bucket is not None
            assert trigger.key is not None
            if not trigger.key.startswith(self._settings.batch_prefix):
                logger.warning("not under the batch prefix: skipped", key=trigger.key)
                continue
            results.append(self._start_one(trigger.bucket, trigger.key, trigger.version_id))
        return results

    def _start_one(self, bucket: str, key: str, version_id: str | None) -> dict[str, Any]:
        started = self._clock_ms()
        try:
            info = self._store.head(bucket, key)
        except NotFoundError:  # deleted since the upload: nothing to score, nothing to retry
            logger.warning("batch upload gone before it was read", bucket=bucket, key=key)
            return {"key": key, "status": "missing"}
        version_id = version_id or info.version_id
        job = BatchJob(
            job_id=jobs.job_id_for(key, version_id or info.etag),
            bucket=bucket,
            key=key,
            etag=info.etag,
            version_id=version_id,
            size=info.size,
            model=self._settings.model_name,
            model_version="?",  # until resolved: a rejected job's summary may keep it
            engine=jobs.LAMBDA
            if info.size <= self._settings.lambda_max_bytes
            else jobs.STEP_FUNCTIONS,
            started_ms=started,
            id_column=info.metadata.get(jobs.METADATA_ID_COLUMN) or None,
        )
        try:
            job = replace(job, model_version=self._version(info))
            loaded = self._model(job.model_version)
        except (InvalidInputError, ModelUnavailableError) as exc:
            return self._reject(job, exc.message, exc.details)
        logger.info(
            "batch job started",
            job_id=job.job_id,
            key=key,
            size=info.size,
            engine=job.engine,
            model_version=job.model_version,
        )
        # One ranged GET: a file that is not CSV text, or lacks a feature, is answered at once
        # (and the Distributed Map never starts on it).
        try:
            if not job.size:  # S3 refuses a range of an empty object
                raise DataValidationError("the file is empty: expected a header row")
            head = self._store.head_bytes(job.bucket, job.key, HEAD_BYTES, job.version_id)
            header = _header(head, complete=len(head) >= job.size)
            RowPlan.from_header(header, loaded.manifest.signature, job.id_column)
        except DataValidationError as exc:
            return self._reject(job, exc.message, exc.details)
        if job.engine == jobs.STEP_FUNCTIONS:
            return self._start_map(job)
        return self._score_file(job, loaded)

    def _version(self, info: ObjectInfo) -> str:
        named = info.metadata.get(jobs.METADATA_VERSION, "").strip()
        if named:
            return parse_version(named)  # InvalidInputError for anything but a version
        version = self._registry.get_alias(self._settings.model_name, PRODUCTION)
        if version is None:
            raise ModelUnavailableError(
                f"no production version of {self._settings.model_name} to score with "
                f"(name one in the object's x-amz-meta-{jobs.METADATA_VERSION})"
            )
        return version

    def _model(self, version: str) -> LoadedModel:
        if version not in self._loaded:
            self._loaded[version] = load_version(
                self._models,
                self._registry,
                self._settings.model_name,
                version,
                threads=self._settings.onnx_threads,
            )
        return self._loaded[version]

    def _start_map(self, job: BatchJob) -> dict[str, Any]:
        """Hand the file (its header checked) to the Distributed Map."""
        self._store.put_json(job.bucket, job.marker_key, job.as_dict() | {"status": "running"})
        execution = self._machine.start(job.job_id, {"job": job.as_dict()})
        logger.info(
            "batch job handed to the state machine",
            job_id=job.job_id,
            execution=execution or "already started",
        )
        return {"job_id": job.job_id, "engine": job.engine, "execution": execution}

    def _score_file(self, job: BatchJob, loaded: LoadedModel) -> dict[str, Any]:
        """Stream the file a chunk at a time; each chunk is scored and written, then let go."""
        self._store.put_json(job.bucket, job.marker_key, job.as_dict() | {"status": "running"})
        totals = Totals()
        timings = {"read_validate": 0.0, "score": 0.0, "write": 0.0}
        lines = self._store.lines(job.bucket, job.key, job.version_id)
        try:
            reader = csv.reader(lines, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                raise DataValidationError("the file is empty: expected a header row") from None
            plan = RowPlan.from_header(header, loaded.manifest.signature, job.id_column)
            first = 1
            # Chunk k is scored and written on a worker while chunk k+1 is parsed: onnxruntime
            # releases the GIL, so parsing and scoring overlap. At most two chunks in memory.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-part") as worker:
                pending: Future[PartSummary] | None = None
                try:
                    for block in _blocks(reader, self._settings.chunk_rows, timings):
                        began = time.perf_counter()
                        chunk = chunk_from_cells(block, first, plan)
                        timings["read_validate"] += time.perf_counter() - began
                        if pending is not None:
                            totals.add(pending.result())
                        pending = worker.submit(self._write_part, job, loaded, chunk, timings)
                        first += len(block)
                finally:  # a bad row later in the file keeps the parts already written
                    if pending is not None:
                        totals.add(pending.result())
        except (csv.Error, UnicodeDecodeError, DataValidationError) as exc:
            message, details = _unreadable(exc, totals.rows)
            return self._finish(job, totals, jobs.REJECTED, timings, message, details=details)
        return self._finish(job, totals, jobs.SUCCEEDED, timings)

    # ------------------------------------------------------------------ Map batch

    def score_batch(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """One Distributed Map batch: ``Items`` are ``{"index": i, "row": {header: value}}``
        (the template's ItemSelector), ``BatchInput`` is ``{"job": ...}``."""
        batch_input = event.get("BatchInput")
        job = BatchJob.from_dict(
            batch_input.get("job") if isinstance(batch_input, Mapping) else None
        )
        items = event.get("Items")
        if not isinstance(items, list) or not items:
            raise InvalidEventError("a Map batch needs Items", [Problem("Items", "empty")])
        rows, values = [], []
        for i, item in enumerate(items):
            index = item.get("index") if isinstance(item, Mapping) else None
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise InvalidEventError(
                    "a Map item must be {index, row} (the template's ItemSelector)",
                    [Problem(f"Items[{i}].index", "expected a non-negative integer")],
                )
            rows.append(index + 1)
            values.append(item.get("row"))
        loaded = self._model(job.model_version)
        plan = RowPlan(
            signature=loaded.manifest.signature,
            header=(),
            positions=(),
            id_column=job.id_column,
        )
        chunk = chunk_from_items(values, rows, plan)
        timings = {"read_validate": 0.0, "score": 0.0, "write": 0.0}
        part = self._write_part(job, loaded, chunk, timings)
        self._store.put_json(
            job.bucket, job.part_key(part.first_row, suffix=".json"), part.as_dict()
        )
        return part.as_dict()

    # ------------------------------------------------------------------ summary

    def summarize(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The state machine's last step: ``{"job": ..., "map": <Map output>?, "error": ...?}``;
        ``summary.json`` from the parts' small summaries."""
        if not isinstance(payload, Mapping):
            raise InvalidEventError("summarize takes an object", [Problem("summarize", "")])
        job = BatchJob.from_dict(payload.get("job"))
        keys = [
            k
            for k in self._store.keys(job.bucket, job.parts_prefix)
            if k.rsplit("/", 1)[-1].startswith("part-") and k.endswith(".json")
        ]
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            docs = list(pool.map(lambda k: self._store.get_json(job.bucket, k), keys))
        totals = jobs.totals_of(PartSummary.from_dict(d) for d in docs)
        counts = self._map_counts(payload.get("map")) or {}
        failed = counts.get("failed", 0)
        error = payload.get("error")
        message: str | None = None
        if isinstance(error, Mapping):
            status = jobs.FAILED if not totals.parts else jobs.PARTIAL
            message = f"{error.get('Error', 'error')}: {error.get('Cause', '')}"[:2000]
        elif failed:
            status = jobs.PARTIAL
            message = (
                f"{failed:,} of {counts.get('total', 0):,} rows were in Map batches that "
                "failed after their retries: they were not scored"
            )
        else:
            status = jobs.SUCCEEDED
        seconds = sum(float(d.get("seconds") or 0.0) for d in docs)
        return self._finish(job, totals, status, {"batches": seconds}, message, failed=failed)

    def _map_counts(self, map_output: Any) -> dict[str, int] | None:
        """The Map Run's item counts (DescribeMapRun), or None when they cannot be had."""
        arn = map_output.get("MapRunArn") if isinstance(map_output, Mapping) else None
        if not isinstance(arn, str):
            return None
        try:
            return self._machine.map_run_counts(arn)
        except MlopsError as exc:
            logger.warning("map run counts unavailable", map_run=arn, error=str(exc))
            return None

    # ------------------------------------------------------------------ shared

    def _write_part(
        self, job: BatchJob, loaded: LoadedModel, chunk: ValidChunk, timings: dict[str, float]
    ) -> PartSummary:
        began = time.perf_counter()
        first = int(chunk.rows[0])
        part = PartSummary(first_row=first, rows=chunk.size, scored=chunk.scored)
        part.rejected = chunk.rejected
        if chunk.scored:
            scored_at = time.perf_counter()
            scores = loaded.model.score(chunk.columns)
            timings["score"] += time.perf_counter() - scored_at
            ids = self._ids(job.started_ms, chunk.scored) if self._settings.capture else None
            text = jobs.predictions_csv(chunk, scores, job.model_version, job.id_column, ids)
            part.part_key = job.part_key(first)
            self._store.put_text(job.bucket, part.part_key, text)
            if ids is not None:
                lines = capture_jsonl(
                    job, loaded.manifest.signature.names, chunk.columns, scores, ids
                )
                self._store.put_text_gz(
                    self._settings.capture_bucket, batch_capture_key(job, first), lines
                )
        if chunk.rejections:
            part.problems = jobs.problem_counts(chunk.rejections)
            ids_of = (
                {int(r): i for r, i in zip(chunk.rows.tolist(), chunk.ids, strict=True)}
                if job.id_column
                else None
            )
            part.rejected_key = job.part_key(first, "rejected")
            self._store.put_text(
                job.bucket, part.rejected_key, jobs.rejections_csv(chunk.rejections, ids_of)
            )
        part.seconds = round(time.perf_counter() - began, 4)
        timings["write"] += part.seconds
        return part

    def _reject(self, job: BatchJob, message: str, details: list[Problem]) -> dict[str, Any]:
        logger.warning("batch file rejected", job_id=job.job_id, key=job.key, error=message)
        return self._finish(job, Totals(), jobs.REJECTED, {}, message, details=details)

    def _finish(
        self,
        job: BatchJob,
        totals: Totals,
        status: str,
        timings: Mapping[str, float],
        error: str | None = None,
        *,
        details: list[Problem] | None = None,
        failed: int = 0,
    ) -> dict[str, Any]:
        summary = jobs.summary_document(
            job,
            totals,
            status=status,
            finished_ms=self._clock_ms(),
            error=error,
            problems=details,
            timings=timings,
            failed_batches=failed,
        )
        self._store.put_json(job.bucket, job.summary_key, summary)
        metrics.add_metric(
            name=Metric.BATCH_ROWS_SCORED, unit=MetricUnit.Count, value=totals.scored
        )
        metrics.add_metric(
            name=Metric.BATCH_ROWS_REJECTED, unit=MetricUnit.Count, value=totals.rejected
        )
        if status in (jobs.REJECTED, jobs.FAILED, jobs.PARTIAL):
            metrics.add_metric(name=Metric.BATCH_JOBS_FAILED, unit=MetricUnit.Count, value=1)
        logger.info(
            "batch job summarised",
            job_id=job.job_id,
            status=status,
            rows=totals.rows,
            scored=totals.scored,
            rejected=totals.rejected,
            error=error,
        )
        return {
            "job_id": job.job_id,
            "engine": job.engine,
            "status": status,
            "summary": f"s3://{job.bucket}/{job.summary_key}",
        }


def _blocks(
    reader: Iterator[list[str]], size: int, timings: dict[str, float]
) -> Iterator[list[list[str]]]:
    while True:
        began = time.perf_counter()
        block = list(islice(reader, size))
        timings["read_validate"] += time.perf_counter() - began
        if not block:
            return
        yield block


def _header(head: bytes, *, complete: bool) -> list[str]:
    """The header row of a file's first bytes; ``DataValidationError`` when the file is not
    UTF-8 CSV text."""
    if any(head.startswith(magic) for magic in _BINARY) or b"\x00" in head:
        raise DataValidationError("not a CSV file: binary content (gzip, ZIP, Parquet or other)")
    if not complete:  # a multi-byte character may be cut at the end of the range
        head = head[: head.rfind(b"\n") + 1] or head
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"not UTF-8 text ({exc.reason}): save the file as UTF-8") from exc
    if "\n" not in text and not complete:
        raise DataValidationError(f"no header line in the first {HEAD_BYTES:,} bytes")
    try:
        header = next(csv.reader(text.splitlines()[:1], strict=True), None)
    except csv.Error as exc:
        raise DataValidationError(f"line 1: not a CSV header ({exc})") from exc
    if not header:
        raise DataValidationError("the file is empty: expected a header row")
    return header


def _unreadable(exc: Exception, rows: int) -> tuple[str, list[Problem]]:
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"not UTF-8 text ({exc.reason}) after {rows:,} rows: save the file as UTF-8",
            [],
        )
    if isinstance(exc, MlopsError):
        return exc.message, exc.details
    return f"not a CSV file after {rows:,} rows: {exc}", []


@functools.cache
def batch_service() -> BatchScoringService:
    """Composition root of the batch function, built once per container."""
    settings = batch_settings()
    s3 = client("s3")
    return BatchScoringService(
        BatchStore(s3),
        ModelStore(settings.model_bucket, s3),
        Registry(settings.registry_table, client("dynamodb")),
        StateMachine(settings.state_machine_arn, client("stepfunctions")),
        settings,
    )

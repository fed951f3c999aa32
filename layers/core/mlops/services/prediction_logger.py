"""Store the inference function's capture and feedback lines in S3, one batch at a time.

A batch is one CloudWatch Logs subscription delivery. Its lines are grouped by partition and
each partition becomes ONE object, never one per record (DESIGN §3):

    captures/model=<m>/version=<v>/dt=YYYY-MM-DD/hour=HH/<batch-id>.jsonl.gz
    feedback/dt=YYYY-MM-DD/hour=HH/<batch-id>.jsonl.gz
    sketches/model=<m>/version=<v>/dt=YYYY-MM-DD/hour=HH/<batch-id>.json
    quarantine/dt=YYYY-MM-DD/hour=HH/<batch-id>.jsonl.gz

The hour is the record's ``ts`` in UTC (a quarantined line's log event timestamp). The batch id
is the sha256 of the sorted CloudWatch log event ids of the lines in that object, and the rows
are written in event-id order with deterministic gzip: an object is a pure function of the
lines it holds.

Why a retry is safe: Lambda retries a failed asynchronous invocation with the same event, and
CloudWatch Logs may deliver a batch again. Either way the same lines give the same keys and the
same bytes, and an overwrite replaces an object instead of adding to it; so an attempt that
wrote half of its objects and failed (an S3 error raises ``StorageError``, which Lambda
retries, then hands to the on-failure destination) is completed by the next attempt, and a
batch stored twice is stored once. Nothing is ever appended, and no object is conditional on
another attempt's.

A redelivery may also re-batch events already stored (5 + 5 events instead of 10): the new
objects have new keys. Each sketch therefore lists the digests of the log events it counts
(``domain.event_set``), and the sketch store counts each event once per hour when it rolls
sketches up. Captures and feedback are stored as delivered; their readers count by id.

Evaluation traffic (``"source": "evaluation"``: a holdout a person sent through ``/predict``)
is stored with the captures, for audit, but left out of the sketches and their serving digests,
so neither drift nor the rollout judge counts it; ``EvaluationPredictions`` says how many rows
were left out. A sketch counts the events of its live lines only.

Sketches are bounded whatever clients send: each keeps at most ``[drift]
max_unseen_categories`` unseen categories by name per feature (the stack's model config, read
once per container; the default when it cannot be used, with a warning).

Each sketch also carries what quality estimation needs (``domain.estimate_sketch``): for a
classifier, rows per (predicted class, calibrated confidence bin); for a regressor with a loss
model, the sums of its estimated errors, the loss model (``loss_model.onnx``, its sha256 named
by the baseline) scored here with onnxruntime on the batch's rows. A loss model that is
missing, altered or does not load is logged once per container and its rows are counted as
unscored (``EstimateUnscoredRows``): the estimate is skipped, the captures and the rest of the
sketch are not.

Keys are built from validated values only: a record's model must be the one this stack serves
(``MODEL_NAME``) and its version a canonical version number; anything else is quarantined.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops.adapters.aws import client
from mlops.adapters.capture_store import CaptureStore
from mlops.adapters.model_store import ModelStore
from mlops.domain import capture, event_set
from mlops.domain.capture import MalformedRecordError
from mlops.domain.estimate import LOSS_MODEL
from mlops.domain.layout import FEEDBACK, capture_prefix, sketch_prefix, version_prefix
from mlops.domain.loss_scoring import LossModel
from mlops.domain.sketch import DEFAULT_MAX_UNSEEN, SketchPlan, build_sketch
from mlops.domain.versions import parse_version
from mlops.errors import ConfigError, InvalidInputError, NotFoundError, Problem
from mlops.metric_names import Metric
from mlops.observability import MetricUnit, logger, metrics
from mlops.services.stack_config import stack_config
from mlops.settings import _required

BATCH_ID_HEX = 32
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LoggerSettings:
    capture_bucket: str
    model_bucket: str
    model_name: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LoggerSettings:
        return cls(
            capture_bucket=_required(env, "CAPTURE_BUCKET"),
            model_bucket=_required(env, "MODEL_BUCKET"),
            model_name=_required(env, "MODEL_NAME"),
        )


@dataclass(frozen=True)
class LogEvent:
    """One event of a subscription batch: CloudWatch's id, timestamp (ms) and message."""

    id: str
    timestamp: int
    message: str


@dataclass(frozen=True)
class BatchSummary:
    events: int
    captured_predictions: int
    evaluation_predictions: int  # of the captured: stored, not sketched
    feedback_labels: int
    malformed_records: int
    missing_baselines: int
    objects_written: int
    estimate_unscored_rows: int = 0  # live rows no estimate could use (see the module doc)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Partition:
    """The lines of one batch that go to one object, in event-id order."""

    event_ids: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, event_id: str, rows: list[dict[str, Any]]) -> None:
        self.event_ids.append(event_id)
        self.rows.extend(rows)

    @property
    def batch_id(self) -> str:
        return batch_id(self.event_ids)


def batch_id(event_ids: Iterable[str]) -> str:
    """The object name of a group of log events: the same events, the same name."""
    joined = "\n".join(sorted(event_ids))
    return hashlib.sha256(joined.encode()).hexdigest()[:BATCH_ID_HEX]


def hour_partition(timestamp_ms: int) -> str:
    """``dt=YYYY-MM-DD/hour=HH`` of a millisecond timestamp, in UTC."""
    moment = _EPOCH + timedelta(milliseconds=timestamp_ms)
    return f"dt={moment.year:04d}-{moment.month:02d}-{moment.day:02d}/hour={moment.hour:02d}"


class PredictionLoggerService:
    def __init__(self, captures: CaptureStore, models: ModelStore, *, model_name: str) -> None:
        self._captures = captures
        self._models = models
        self._model_name = model_name
        # Versions are immutable, so a baseline read once is good for the container's life.
        # A missing one is not remembered: it is looked for again at the next batch.
        self._plans: dict[tuple[str, str], SketchPlan] = {}
        self._max_unseen: int | None = None  # the config's K, once read
        # DLE's loss model per version (None: unusable, said once); read with the baseline.
        self._loss_models: dict[tuple[str, str], LossModel | None] = {}

    def store_batch(self, events: Iterable[LogEvent]) -> BatchSummary:
        """Write the batch's objects; raises ``StorageError`` (to be retried) if S3 fails."""
        unique: dict[str, LogEvent] = {}
        for event in events:
            unique.setdefault(event.id, event)  # an id twice in one batch is one line
        captures: dict[tuple[str, str, str], _Partition] = {}
        live: dict[tuple[str, str, str], _Partition] = {}  # what the sketches count
        evaluation = 0
        feedback: dict[str, _Partition] = {}
        quarantine: dict[str, _Partition] = {}
        for event_id in sorted(unique):
            event = unique[event_id]
            try:
                record, hour = self._parse(event.message)
            except MalformedRecordError as exc:
                row = _quarantine_row(event, exc)
                quarantine.setdefault(hour_partition(event.timestamp), _Partition()).add(
                    event_id, [row]
                )
                continue
            if record["type"] == "capture":
                where = (record["model"], record["version"], hour)
                rows = capture.capture_rows(record)
                captures.setdefault(where, _Partition()).add(event_id, rows)
                if not capture.is_live(record):  # evaluation (or batch): stored, not sketched
                    evaluation += len(rows)
                else:
                    live.setdefault(where, _Partition()).add(event_id, rows)
            else:
                feedback.setdefault(hour, _Partition()).add(event_id, capture.feedback_rows(record))

        written = 0
        for (model, version, hour), part in sorted(captures.items()):
            prefix = f"{capture_prefix(model, version)}{hour}"
            self._captures.put_jsonl_gz(f"{prefix}/{part.batch_id}.jsonl.gz", part.rows)
            written += 1
        for hour, part in sorted(feedback.items()):
            self._captures.put_jsonl_gz(f"{FEEDBACK}{hour}/{part.batch_id}.jsonl.gz", part.rows)
            written += 1
        for hour, part in sorted(quarantine.items()):
            self._captures.put_jsonl_gz(f"quarantine/{hour}/{part.batch_id}.jsonl.gz", part.rows)
            written += 1
        # Sketches after the rows they describe: a sketch never counts rows not yet stored.
        missing = 0
        unscored = 0
        for (model, version, hour), part in sorted(live.items()):
            plan = self._plan(model, version)
            if plan is None:
                missing += 1
                continue
            sketch = build_sketch(
                plan,
                part.rows,
                model=model,
                version=version,
                max_unseen=self._k(),
                losses=self._losses(model, version, plan, part.rows),
            )
            unscored += sketch.estimate.unscored if sketch.estimate is not None else 0
            key = f"{sketch_prefix(model, version)}{hour}/{part.batch_id}.json"
            counted = event_set.encode(event_set.digests(part.event_ids))
            self._captures.put_json(key, sketch.to_dict() | {"events": counted})
            written += 1

        summary = BatchSummary(
            events=len(unique),
            captured_predictions=sum(len(p.rows) for p in captures.values()),
            evaluation_predictions=evaluation,
            feedback_labels=sum(len(p.rows) for p in feedback.values()),
            malformed_records=sum(len(p.rows) for p in quarantine.values()),
            missing_baselines=missing,
            objects_written=written,
            estimate_unscored_rows=unscored,
        )
        self._publish(summary)
        return summary

    def _parse(self, message: str) -> tuple[dict[str, Any], str]:
        """The record and its hour partition; ``MalformedRecordError`` for what cannot be
        stored under a key (an unparsable line, another model, a bad version or time)."""
        record = capture.parse_capture_line(message)
        if record["model"] != self._model_name:
            raise MalformedRecordError(
                f"a record of model {record['model']!r}",
                [Problem("model", f"this logger stores {self._model_name!r}")],
            )
        if record["type"] == "capture":
            try:
                parse_version(record["version"])  # a key part: canonical digits only
            except InvalidInputError as exc:
                raise MalformedRecordError(exc.message, exc.details) from exc
        try:
            hour = hour_partition(record["ts"])
        except OverflowError as exc:
            raise MalformedRecordError(
                "a timestamp beyond the calendar", [Problem("ts", f"{record['ts']} ms")]
            ) from exc
        return record, hour

    def _plan(self, model: str, version: str) -> SketchPlan | None:
        """The version's sketch plan, or None (logged) when it has no usable baseline."""
        cached = self._plans.get((model, version))
        if cached is not None:
            return cached
        key = version_prefix(model, version) + "baseline.json"
        try:
            plan = SketchPlan.from_baseline(json.loads(self._models.get_bytes(key)))
        except NotFoundError:
            logger.warning("no baseline: sketch not written", model=model, version=version)
            return None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning(
                "unusable baseline: sketch not written",
                model=model,
                version=version,
                error=f"{type(exc).__name__}: {exc}",
            )
            return None
        self._plans[(model, version)] = plan
        return plan

    def _losses(
        self, model: str, version: str, plan: SketchPlan, rows: list[dict[str, Any]]
    ) -> list[float | None] | None:
        """The loss model's estimated absolute error per row, or None (no usable model)."""
        if plan.loss_model is None:
            return None
        key = (model, version)
        if key not in self._loss_models:
            self._loss_models[key] = self._load_loss_model(model, version, plan)
        loss_model = self._loss_models[key]
        if loss_model is None:
            return None
        try:
            return loss_model.score(rows)
        except Exception as exc:  # onnxruntime's own errors: never fatal to the captures
            logger.warning(
                "loss model failed on a batch: its rows are unscored",
                model=model,
                version=version,
                error=f"{type(exc).__name__}: {str(exc)[:300]}",
            )
            return None

    def _load_loss_model(self, model: str, version: str, plan: SketchPlan) -> LossModel | None:
        assert plan.loss_model is not None
        key = version_prefix(model, version) + LOSS_MODEL
        try:
            body = self._models.get_bytes(key)
            if hashlib.sha256(body).hexdigest() != plan.loss_model.sha256:
                raise ValueError("its sha256 is not the one the baseline names")
            return LossModel(
                body,
                numeric=sorted(plan.numeric),
                categorical=sorted(plan.categorical),
                prediction_input=plan.loss_model.prediction_input,
            )
        except NotFoundError:
            reason = "not found"
        except Exception as exc:  # a damaged file: onnxruntime's own errors too
            reason = f"{type(exc).__name__}: {str(exc)[:300]}"
        logger.warning(
            "loss model unusable: estimated quality skipped for this version",
            model=model,
            version=version,
            key=key,
            reason=reason,
        )
        return None

    def _k(self) -> int:
        """``[drift] max_unseen_categories`` of the stack's model config. An unusable config
        does not stop captures: the default applies, and is looked for again next batch."""
        if self._max_unseen is None:
            try:
                config = stack_config(self._models, self._model_name)
            except ConfigError as exc:
                logger.warning(
                    "model config unusable: sketches keep the default unseen categories",
                    error=exc.message,
                    max_unseen_categories=DEFAULT_MAX_UNSEEN,
                )
                return DEFAULT_MAX_UNSEEN
            self._max_unseen = config.drift.max_unseen_categories
        return self._max_unseen

    def _publish(self, summary: BatchSummary) -> None:
        for name, value in (
            ("CapturedPredictions", summary.captured_predictions),
            (Metric.EVALUATION_PREDICTIONS, summary.evaluation_predictions),
            ("FeedbackLabels", summary.feedback_labels),
            ("MalformedRecords", summary.malformed_records),
            ("MissingBaselines", summary.missing_baselines),
            ("CaptureObjectsWritten", summary.objects_written),
            (Metric.ESTIMATE_UNSCORED_ROWS, summary.estimate_unscored_rows),
        ):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        logger.info(
            "batch stored",
            events=summary.events,
            captured_predictions=summary.captured_predictions,
            evaluation_predictions=summary.evaluation_predictions,
            feedback_labels=summary.feedback_labels,
            malformed_records=summary.malformed_records,
            missing_baselines=summary.missing_baselines,
            objects_written=summary.objects_written,
            estimate_unscored_rows=summary.estimate_unscored_rows,
        )


def _quarantine_row(event: LogEvent, exc: MalformedRecordError) -> dict[str, Any]:
    return {
        "id": event.id,
        "timestamp": event.timestamp,
        "error": exc.message,
        "problems": [p.as_dict() for p in exc.details],
        "message": event.message,
    }


@functools.cache
def logger_service() -> PredictionLoggerService:
    """Composition root of the prediction logger, built once per container."""
    settings = LoggerSettings.from_env(os.environ)
    s3 = client("s3")
    return PredictionLoggerService(
        CaptureStore(settings.capture_bucket, s3),
        ModelStore(settings.model_bucket, s3),
        model_name=settings.model_name,
    )

"""The retrainer's use case: from a trigger to a staged challenger, or a rejection report.

Every outcome is written for a person in ``reports/retrain/``. Bad data, a missing object or
a bad config are *answers* (returned, recorded, alarmed on through a metric), not failures:
retrying them would only repeat them. Storage errors propagate, so Lambda retries.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from mlops import __version__
from mlops.adapters.aws import client
from mlops.adapters.label_store import LabelStore
from mlops.adapters.model_store import ModelStore
from mlops.adapters.training_data import DataObject, TrainingDataStore
from mlops.adapters.training_jobs import TrainingJobs
from mlops.domain import strict_json
from mlops.domain.candidate import LabeledRows
from mlops.domain.config import ModelConfig
from mlops.domain.dataset import Dataset, inspect_csv
from mlops.domain.kept_data import TRAINED_VERSION, trained_version
from mlops.domain.keys import bounded_key, dataset_key
from mlops.domain.layout import CAPTURES, FEEDBACK, RETRAIN_REPORTS
from mlops.domain.training_jobs import engine_for
from mlops.domain.triggers import Trigger
from mlops.errors import (
    ConfigError,
    DataValidationError,
    MlopsError,
    ModelCodeError,
    NotFoundError,
)
from mlops.metric_names import Metric
from mlops.observability import MetricUnit, logger, metrics
from mlops.services.candidates import CandidateBuilder, DataSource
from mlops.services.labels import LabelFolder
from mlops.services.stack_config import stack_config
from mlops.services.training_jobs import JobPlacement, TrainingJobLauncher
from mlops.settings import retrainer_settings
from mlops.training_job import source_package


class RejectionError(MlopsError):
    """A trigger that cannot produce a candidate; ``report`` says why, for a person."""

    code = "retrain_rejected"

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class RetrainOutcome:
    status: str  # "staged" | "training" (a SageMaker job) | "rejected" | "skipped"
    trigger: dict[str, Any]
    reasons: tuple[str, ...] = ()
    candidate: dict[str, Any] | None = None
    report_uri: str | None = None
    training_job: dict[str, Any] | None = None  # status "training": the job that trains it

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "trigger": self.trigger}
        if self.reasons:
            out["reasons"] = list(self.reasons)
        if self.candidate:
            out["candidate"] = self.candidate
        if self.training_job:
            out["training_job"] = self.training_job
        if self.report_uri:
            out["report_uri"] = self.report_uri
        return out


class RetrainService:
    def __init__(
        self,
        *,
        model: str,
        store: ModelStore,
        training_data: TrainingDataStore,
        training_prefix: str,
        traffic: TrainingDataStore,
        builder: CandidateBuilder,
        labels: LabelFolder | None = None,
        jobs: TrainingJobLauncher | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._model = model
        self._store = store
        self._data = training_data
        self._prefix = training_prefix
        self._traffic = traffic
        self._builder = builder
        self._labels = labels
        self._jobs = jobs
        self._clock = clock

    def retrain(self, trigger: Trigger) -> RetrainOutcome:
        started = time.perf_counter()
        try:
            config = self.config()
            new_object = self._new_object(trigger)
            if engine_for(config.training, new_object.size) == "sagemaker":
                if version := self._kept_version(config, trigger, new_object):
                    return self._skipped(trigger, new_object, version)
                return self._start_job(config, trigger, new_object)
            new_data, body, data_report_uri = self._validated(
                config, new_object, trigger, role="new"
            )
        except RejectionError as exc:
            return self._rejected(trigger, exc)
        policy = config.retraining
        one_object = policy.training_set == "new_object" and not policy.include_feedback
        if (trigger.kind == "s3_upload" or one_object) and (
            version := trained_version(new_object.metadata, new_data.sha256)
        ):
            # Nothing new: the very data v<version> learned from, and nothing added to it
            # (a request with feedback or a window trains on more than this file).
            return self._skipped(trigger, new_object, version)
        self.archive(new_object, new_data, body)
        sources = [_source(new_object, new_data, "new", data_report_uri)]
        extras: list[Dataset] = []
        notes: list[str] = []
        if config.retraining.training_set == "window":
            self._window(
                config, trigger, new_object=new_object, sources=sources, extras=extras, notes=notes
            )
        reference = self._labeled_traffic(config, sources, extras, notes)
        extra = Dataset.concat(extras) if extras else None
        try:
            staged = self._builder.build(
                config,
                new_data,
                sources,
                extra=extra,
                reference=reference,
                trigger=trigger.as_dict() | ({"notes": notes} if notes else {}),
                timings={"read_validate_s": time.perf_counter() - started},
            )
        except ModelCodeError as exc:  # the user's pipeline: retrying would only repeat it
            return self._rejected(trigger, _reject("model_code", exc.message))
        metrics.add_metric(name=Metric.CANDIDATES_STAGED, unit=MetricUnit.Count, value=1)
        metrics.add_metric(
            name=Metric.TRAINING_ROWS, unit=MetricUnit.Count, value=staged.train_rows
        )
        logger.info("candidate staged", **staged.as_dict(), trigger=trigger.as_dict())
        return RetrainOutcome("staged", trigger.as_dict(), tuple(notes), staged.as_dict())

    def _kept_version(self, config: ModelConfig, trigger: Trigger, obj: DataObject) -> str | None:
        """The version ``obj`` was kept from (``kept_data``), when it alone is the training
        set: as the function's path skips it, without reading it into memory (a digest)."""
        policy = config.retraining
        one_object = policy.training_set == "new_object" and not policy.include_feedback
        if TRAINED_VERSION not in obj.metadata or not (trigger.kind == "s3_upload" or one_object):
            return None
        return trained_version(obj.metadata, self._data.sha256(obj))

    def _start_job(self, config: ModelConfig, trigger: Trigger, obj: DataObject) -> RetrainOutcome:
        """Too large for this function (or ``engine = "sagemaker"``): a SageMaker training job
        validates, trains and stages; its completion event reaches the gate."""
        if self._jobs is None:
            raise _reject(
                "training_job",
                f"{obj.uri} ({obj.size} bytes) is for a SageMaker training job (training.engine "
                f"= {config.training.engine!r}, max_lambda_bytes = "
                f"{config.training.max_lambda_bytes}), and this stack has none configured "
                "(TRAINING_JOB_ROLE_ARN, TRAINING_JOB_PREFIX)",
            )
        if obj.size > config.training.max_job_bytes:
            # The job would refuse it too, after an instance, its volume and the download
            # were paid for: refused here, for nothing.
            raise _reject(
                "training_job",
                f"{obj.uri} is {obj.size} bytes, over training.max_job_bytes "
                f"({config.training.max_job_bytes}): no training job started",
            )
        notes = [
            f"{obj.uri} is {obj.size} bytes: trained by a SageMaker training job "
            f"(training.engine = {config.training.engine!r}, max_lambda_bytes = "
            f"{config.training.max_lambda_bytes})"
        ]
        policy = config.retraining
        if policy.training_set == "window" or policy.include_feedback:
            notes.append(
                "a training job trains on the upload alone: retraining.training_set = window "
                "and include_feedback apply to retrains in the function"
            )
        reference = self._labeled_traffic(config, [], [], notes)
        try:
            job = self._jobs.start(config, obj, trigger, reference)
        except ConfigError as exc:
            raise _reject("training_job", exc.message) from exc
        logger.info("retrain handed to a training job", **job, trigger=trigger.as_dict())
        return RetrainOutcome("training", trigger.as_dict(), tuple(notes), training_job=job)

    def resolve(self, trigger: Trigger) -> Trigger:
        """A retrain request whose training set is one object (``new_object``, no feedback)
        names that object version, so it shares the upload's idempotency key: the same data is
        trained once, whether its upload or a drift request (the newest object) asks, even
        while the first run is still training. Anything else is returned as it came."""
        if trigger.kind != "retrain_request":
            return trigger
        try:
            config = self.config()
            policy = config.retraining
            if policy.training_set != "new_object" or policy.include_feedback:
                return trigger
            obj = self._new_object(trigger)
            if obj.version_id is None:  # a listing has no version ids: name the one it saw
                obj = self._data.head(obj.key, etag=obj.etag)
        except (RejectionError, NotFoundError):
            return trigger  # retrain() reports it
        if TRAINED_VERSION in obj.metadata:
            # Data a version was trained from (kept_data): the request keeps its own key, so
            # it gets its own answer (a skip, reported under its request id), not the upload's.
            return trigger
        return replace(
            trigger,
            bucket=obj.bucket,
            key=obj.key,
            version_id=obj.version_id,
            etag=obj.etag,
            data_only=True,
        )

    def config(self) -> ModelConfig:
        """The stack's model config (``services.stack_config``); a bad one is a rejection."""
        try:
            return stack_config(self._store, self._model)
        except ConfigError as exc:
            raise _reject("config", str(exc)) from exc

    def archive(self, obj: DataObject, data: Dataset, body: bytes) -> str:
        """Accepted data is kept immutable under its sha256, for lineage (rejected is not)."""
        key = dataset_key(data.sha256, PurePosixPath(obj.key).name)
        # Same name, same content: an overwrite by a retry is harmless.
        self._store.put_bytes(key, body)
        return self._store.uri(key)

    def _new_object(self, trigger: Trigger) -> DataObject:
        if trigger.model is not None and trigger.model != self._model:
            raise _reject(
                "trigger", f"the request is for model {trigger.model!r}; this stack serves "
                f"{self._model!r}"
            )  # fmt: skip
        if trigger.key is None:  # a request without data: the newest upload
            newest = self._data.recent(self._prefix, 1)
            if not newest:
                raise _reject("trigger", f"no training data under {self._data.uri(self._prefix)}")
            try:  # a listing has neither version ids nor metadata (kept_data's marker)
                return self._data.head(newest[0].key, etag=newest[0].etag)
            except NotFoundError as exc:
                raise _reject("trigger", f"{exc.message} (replaced while listed?)") from exc
        if trigger.bucket != self._data.bucket or not trigger.key.startswith(self._prefix):
            raise _reject(
                "trigger",
                f"s3://{trigger.bucket}/{trigger.key} is not under the training prefix "
                f"{self._data.uri(self._prefix)}",
            )
        try:
            return self._data.head(trigger.key, trigger.version_id, trigger.etag)
        except NotFoundError as exc:
            raise _reject("trigger", f"{exc.message} (deleted after it was uploaded?)") from exc

    def _validated(
        self, config: ModelConfig, obj: DataObject, trigger: Trigger, *, role: str
    ) -> tuple[Dataset, bytes, str]:
        """Read and check ``obj``; the data report goes to ``reports/retrain/`` either way."""
        try:
            body = self._data.read(obj, config.validation.max_bytes)
        except DataValidationError as exc:  # over the size limit: never downloaded
            too_large = {"passed": False, "summary": exc.message, "problems": _problems(exc)}
            raise RejectionError(
                exc.message, self._data_report(obj, too_large, trigger, role)
            ) from exc
        except NotFoundError as exc:
            raise _reject("trigger", f"{exc.message} (deleted after it was uploaded?)") from exc
        dataset, report = inspect_csv(body, config)
        doc = self._data_report(obj, report.as_dict(), trigger, role)
        if dataset is None:
            raise RejectionError(report.summary, doc)
        return dataset, body, doc["uri"]

    def _data_report(
        self, obj: DataObject, report: dict[str, Any], trigger: Trigger, role: str
    ) -> dict[str, Any]:
        now = self._clock()
        status = "accepted" if report.get("passed") else "rejected"
        key = bounded_key(  # the name for a person, a digest of the URI and version for uniqueness
            f"{RETRAIN_REPORTS}{now:%Y%m%dT%H%M%SZ}-data-{status}-",
            PurePosixPath(obj.key).name,
            f"-{_digest(f'{obj.uri}#{obj.version_id or obj.etag}')}.json",
        )
        doc = {
            "kind": "training_data",
            "at": now.isoformat(timespec="seconds"),
            "model": self._model,
            "status": status,
            "role": role,
            "trigger": trigger.as_dict(),
            "object": {
                "uri": obj.uri,
                "version_id": obj.version_id,
                "etag": obj.etag,
                "bytes": obj.size,
                "last_modified": obj.last_modified,
            },
            "report": report,
        }
        self._store.put_bytes(key, strict_json.dumps(doc).encode())
        return doc | {"uri": self._store.uri(key)}

    def _window(
        self,
        config: ModelConfig,
        trigger: Trigger,
        *,
        new_object: DataObject,
        sources: list[DataSource],
        extras: list[Dataset],
        notes: list[str],
    ) -> None:
        others = self._data.recent(
            self._prefix, config.retraining.window_objects - 1, exclude_key=new_object.key
        )
        for obj in others:
            try:
                data, _, report_uri = self._validated(config, obj, trigger, role="window")
            except RejectionError as exc:
                notes.append(_short(f"window: skipped {obj.uri}: {exc.message}"))
                continue
            extras.append(data)
            sources.append(_source(obj, data, "window", report_uri))

    def _labeled_traffic(
        self,
        config: ModelConfig,
        sources: list[DataSource],
        extras: list[Dataset],
        notes: list[str],
    ) -> LabeledRows:
        """Recent labeled traffic: its newest ``promotion.reference_rows`` rows (from the last
        ``reference_days``) are the gate's reference set, never trained on; with
        ``include_feedback`` the rest of the last ``feedback_days`` is training data."""
        policy = config.promotion
        until = self._clock()
        days = max(policy.reference_days, config.retraining.feedback_days)
        if not config.retraining.include_feedback:
            days = policy.reference_days
        since = until - timedelta(days=days)
        traffic = (
            self._labels.labeled_traffic(config, since, until)
            if self._labels is not None
            else self._traffic.labeled_traffic(config.name, since, until, config)
        )
        data = traffic.dataset  # sorted by capture time
        cut = max(0, data.rows - policy.reference_rows)
        recent = data.take(np.arange(cut, data.rows))
        notes.append(
            f"labeled traffic {since:%Y-%m-%d} to {until:%Y-%m-%d}: {traffic.joined} rows "
            f"joined from {traffic.captured} captures and {traffic.labels} labels"
            + (
                f" ({traffic.corrupt_objects} corrupt objects skipped)"
                if traffic.corrupt_objects
                else ""
            )
            + f"; the newest {recent.rows} kept back as the gate's reference set"
        )
        logger.info("labeled traffic joined", counts=traffic.counts())
        reference = LabeledRows(
            recent.columns,
            recent.target,
            f"the newest labeled predictions of the last {policy.reference_days} days",
        )
        if config.retraining.include_feedback and cut:
            older = data.take(np.arange(cut))
            extras.append(older)
            sources.append(
                DataSource(
                    uri=self._traffic.uri(CAPTURES) + f" + {FEEDBACK} ({since:%Y-%m-%d}..)",
                    sha256=older.sha256,
                    rows=older.rows,
                    role="labeled_traffic",
                )
            )
        return reference

    def _skipped(self, trigger: Trigger, obj: DataObject, version: str) -> RetrainOutcome:
        """The file kept where v``version`` was trained from, alone: nothing new to learn (its
        upload, or a request for the upload alone; a new upload under any name trains, and so
        does a request that adds the window's files or labeled traffic)."""
        metrics.add_metric(name=Metric.RETRAIN_SKIPPED, unit=MetricUnit.Count, value=1)
        reason = (
            f"{obj.uri} is the data v{version} was trained from, kept under the training "
            "prefix for retraining: nothing new to train"
        )
        now = self._clock()
        tag = _digest(trigger.idempotency_key)
        key = f"{RETRAIN_REPORTS}{now:%Y%m%dT%H%M%SZ}-skipped-{tag}.json"
        report = {
            "kind": "retrain_skipped",
            "reason": reason,
            "version": version,
            "at": now.isoformat(timespec="seconds"),
            "trigger": trigger.as_dict(),
        }
        self._store.put_bytes(key, strict_json.dumps(report).encode())
        logger.info("retrain skipped", reason=reason, trigger=trigger.as_dict())
        return RetrainOutcome("skipped", trigger.as_dict(), (reason,), None, self._store.uri(key))

    def _rejected(self, trigger: Trigger, exc: RejectionError) -> RetrainOutcome:
        metrics.add_metric(name=Metric.TRAINING_DATA_REJECTED, unit=MetricUnit.Count, value=1)
        report = exc.report
        if "uri" not in report:  # not a data report: record the rejection itself
            now = self._clock()
            tag = _digest(trigger.idempotency_key)
            key = f"{RETRAIN_REPORTS}{now:%Y%m%dT%H%M%SZ}-rejected-{tag}.json"
            report = report | {
                "at": now.isoformat(timespec="seconds"),
                "trigger": trigger.as_dict(),
            }
            self._store.put_bytes(key, strict_json.dumps(report).encode())
            report["uri"] = self._store.uri(key)
        logger.warning(
            "retrain rejected", reason=exc.message, report=report["uri"], trigger=trigger.as_dict()
        )
        # The result is stored for idempotency (a DynamoDB item, 400 KB): a reason naming
        # 30,000 columns would not fit, and the answer would become a retry. The report has it all.
        reason = _short(exc.message)
        return RetrainOutcome("rejected", trigger.as_dict(), (reason,), None, report["uri"])


def _reject(where: str, message: str) -> RejectionError:
    return RejectionError(message, {"kind": "retrain_rejected", "stage": where, "reason": message})


def _short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _problems(exc: MlopsError) -> list[dict[str, str]]:
    return [p.as_dict() for p in exc.details]


def _source(obj: DataObject, data: Dataset, role: str, report_uri: str) -> DataSource:
    return DataSource(
        uri=obj.uri,
        sha256=data.sha256,
        rows=data.rows,
        role=role,
        version_id=obj.version_id,
        etag=obj.etag,
        report_uri=report_uri,
    )


def retrain_service() -> RetrainService:
    """Composition root of the retrainer, built once per container."""
    settings = retrainer_settings()
    s3 = client("s3")
    store = ModelStore(settings.model_bucket, s3)
    return RetrainService(
        model=settings.model_name,
        store=store,
        training_data=TrainingDataStore(settings.training_bucket, s3),
        training_prefix=settings.training_prefix,
        traffic=TrainingDataStore(settings.capture_bucket, s3),
        builder=CandidateBuilder(store, __version__, model_code=settings.model_code_dir),
        labels=LabelFolder(
            settings.model_name,
            TrainingDataStore(settings.capture_bucket, s3),
            LabelStore(settings.capture_bucket, s3),
        ),
        jobs=_training_jobs(store) if settings.training_job_role_arn else None,
    )


def _training_jobs(store: ModelStore) -> TrainingJobLauncher:
    settings = retrainer_settings()
    return TrainingJobLauncher(
        store=store,
        jobs=TrainingJobs(client("sagemaker")),
        placement=JobPlacement(
            prefix=settings.training_job_prefix,
            role_arn=settings.training_job_role_arn,
            instance_type=settings.training_instance_type,
            max_runtime_seconds=settings.training_max_runtime_seconds,
            region=settings.region,
            image_uri=settings.training_image_uri,
        ),
        code_version=__version__,
        package=lambda: source_package.build(settings.model_code_dir),
    )

"""A SageMaker training job's end, at the candidate gate: its "SageMaker Training Job State
Change" event, delivered by the template's rule.

Completed: the job's model.tar.gz (the staged candidate the entry point wrote) is read from
the one place this job's output can be, unpacked without trusting it (``domain.training_jobs.
unpack_candidate``), its lineage given the job (ARN, instance type, duration, cost estimate),
staged, and judged by the same gate as a candidate the retrainer function staged. Failed or
Stopped (MaxRuntimeInSeconds included): a rejected retrain, reported and alarmed like any.
A corrupt or hostile artifact is a rejected retrain too, never an error to retry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from mlops.adapters.aws import client
from mlops.adapters.model_store import ModelStore
from mlops.domain import strict_json
from mlops.domain.layout import RETRAIN_REPORTS, staging_prefix, training_jobs_prefix
from mlops.domain.training_jobs import (
    DEFAULT_LIMITS,
    JOB_SPEC,
    ArtifactLimits,
    JobEvent,
    is_job_name,
    unpack_candidate,
)
from mlops.errors import ConflictError, IntegrityError, MlopsError
from mlops.metric_names import Metric
from mlops.observability import MetricUnit, logger, metrics
from mlops.services.gate import CandidateGate
from mlops.settings import gate_settings


class JobCompletion:
    def __init__(
        self,
        *,
        model: str,
        store: ModelStore,
        gate: CandidateGate,
        job_prefix: str,
        limits: ArtifactLimits = DEFAULT_LIMITS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._model = model
        self._store = store
        self._gate = gate
        self._prefix = job_prefix
        self._limits = limits
        self._clock = clock

    def complete(self, job: JobEvent) -> dict[str, Any]:
        """What became of the job: ``ignored`` (not ours, not finished), ``rejected`` (failed,
        stopped, or its artifact refused; reported) or ``judged`` (the gate's decision)."""
        out: dict[str, Any] = {"job_name": job.name, "job_status": job.status}
        if not self._prefix or not is_job_name(job.name, self._prefix):
            logger.warning("training job event for another stack's job", job_name=job.name)
            return out | {"status": "ignored", "reason": f"not a job of {self._prefix!r}"}
        if not job.terminal:
            return out | {"status": "ignored", "reason": f"{job.status}: not finished"}
        if job.status != "Completed":
            timeout = "MaxRuntimeExceeded" in job.secondary_status or (
                "MaxRuntimeInSeconds" in job.failure_reason
            )
            reason = (
                f"training job {job.name} {job.status.lower()}"
                + (" (it ran past MaxRuntimeInSeconds)" if timeout else "")
                + (f": {job.failure_reason}" if job.failure_reason else "")
            )
            return out | self._rejected(job, reason)
        try:
            candidate_id, files = self._artifact(job)
        except IntegrityError as exc:
            return out | self._rejected(job, f"training job {job.name}: artifact refused: {exc}")
        digest = self._stage(candidate_id, files)
        result = self._gate.judge(self._model, candidate_id, candidate_sha256=digest)
        return out | {"status": "judged", "decision": result.as_dict()}

    def _artifact(self, job: JobEvent) -> tuple[str, dict[str, bytes]]:
        """The job's staged candidate, read only from where this job's output goes, with the
        job's lineage added to candidate.json."""
        key = f"{training_jobs_prefix(self._model)}{job.name}/output/model.tar.gz"
        if job.artifact_uri != self._store.uri(key):
            raise IntegrityError(f"artifact {job.artifact_uri!r} is not {self._store.uri(key)}")
        archive = self._store.get_bytes(key, max_bytes=self._limits.max_compressed)
        candidate_id, files = unpack_candidate(archive, self._model, self._limits)
        try:
            doc = json.loads(files["candidate.json"])
        except ValueError as exc:
            raise IntegrityError(f"candidate.json is not JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("model_name") != self._model:
            raise IntegrityError("candidate.json describes another model")
        if doc.get("candidate_id") != candidate_id:
            raise IntegrityError("candidate.json names another candidate than its folder")
        lineage = doc.get("lineage")
        doc["lineage"] = (dict(lineage) if isinstance(lineage, Mapping) else {}) | {
            "training_job": job.lineage()
        }
        files["candidate.json"] = json.dumps(doc, indent=2).encode()
        return candidate_id, files

    def _stage(self, candidate_id: str, files: Mapping[str, bytes]) -> str:
        """Write the candidate where the gate reads it; candidate.json last. A redelivered
        event finds the same bytes there (anything else is refused by the gate's digests)."""
        prefix = staging_prefix(self._model, candidate_id)
        for name in sorted(files, key=lambda n: n == "candidate.json"):
            try:
                self._store.put_bytes(prefix + name, files[name], immutable=True)
            except ConflictError:
                logger.info("staged file exists (a redelivered event)", key=prefix + name)
        return hashlib.sha256(files["candidate.json"]).hexdigest()

    def _trigger(self, job: JobEvent) -> dict[str, Any] | None:
        """What started the job (its job.json), so ``mlops retrain --wait`` finds the report;
        None when job.json is missing or unreadable (the report still says why)."""
        key = f"{training_jobs_prefix(self._model)}{job.name}/input/{JOB_SPEC}"
        try:
            trigger = self._store.get_json(key).get("trigger")
        except (MlopsError, AttributeError):
            return None
        return dict(trigger) if isinstance(trigger, Mapping) else None

    def _rejected(self, job: JobEvent, reason: str) -> dict[str, Any]:
        metrics.add_metric(name=Metric.TRAINING_JOBS_FAILED, unit=MetricUnit.Count, value=1)
        now = self._clock()
        key = f"{RETRAIN_REPORTS}{now:%Y%m%dT%H%M%SZ}-rejected-{job.name}.json"
        report = {
            "kind": "retrain_rejected",
            "stage": "training_job",
            "reason": reason,
            "at": now.isoformat(timespec="seconds"),
            "training_job": job.lineage() | {"failure_reason": job.failure_reason or None},
            "trigger": self._trigger(job),
        }
        self._store.put_bytes(key, strict_json.dumps(report).encode())
        logger.warning("retrain rejected", reason=reason, report=self._store.uri(key))
        return {"status": "rejected", "reasons": [reason[:500]], "report_uri": self._store.uri(key)}


def job_completion_service(gate: CandidateGate) -> JobCompletion:
    """Composition root of the gate's training-job path, built once per container."""
    settings = gate_settings()
    return JobCompletion(
        model=settings.model_name,
        store=ModelStore(settings.model_bucket, client("s3")),
        gate=gate,
        job_prefix=settings.training_job_prefix,
    )

"""The local stack's SageMaker: notices the training jobs a function created in moto, runs each
(``job_runner``), records its outcome in moto, and puts its "SageMaker Training Job State
Change" event on the default bus, where the template's rules (``sources.rules``) deliver it.

moto 5.2.5 marks a job Completed the moment it is created and runs nothing; moto's server runs
in this process, so its backend is reached directly to set what SageMaker would: InProgress
while the entry point runs, then Completed, Failed or Stopped with the failure reason, times
and the artifact. SageMaker also sends an InProgress event; only the final one is put here (the
template's rule takes only final states).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mlops.domain.training_jobs import EVENT_DETAIL_TYPE, EVENT_SOURCE
from mlops_cli.emulator.sagemaker.job_runner import JobRun, run_job
from mlops_cli.emulator.template import ACCOUNT, REGION

log = logging.getLogger(__name__)

POLL_SECONDS: Final = 1.0


class TrainingJobWatcher:
    def __init__(
        self,
        endpoint_url: str,
        workdir: Path,
        *,
        python: str = sys.executable,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        credentials: dict[str, Any] = {
            "region_name": REGION,
            "endpoint_url": endpoint_url,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "config": Config(retries={"max_attempts": 2, "mode": "standard"}),
        }
        self.s3: Any = boto3.client("s3", **credentials)
        self.sagemaker: Any = boto3.client("sagemaker", **credentials)
        self.events: Any = boto3.client("events", **credentials)
        self.workdir = workdir
        self.python = python
        self.poll_seconds = poll_seconds
        self.runs: dict[str, JobRun] = {}  # by job name, for tests and benchmarks
        self._seen: set[str] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sagemaker-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                names = self._new_jobs()
            except (ClientError, BotoCoreError) as exc:
                if not self._stopping.is_set():
                    log.warning("local SageMaker: cannot list training jobs: %s", exc)
                names = []
            for name in names:
                if self._stopping.is_set():
                    return
                try:
                    self.run(name)
                except Exception:  # one job's trouble is logged; the next job still runs
                    log.exception("local SageMaker: training job %s", name)
            self._stopping.wait(self.poll_seconds)

    def _new_jobs(self) -> list[str]:
        names = []
        for page in self.sagemaker.get_paginator("list_training_jobs").paginate():
            for summary in page.get("TrainingJobSummaries", []):
                name = str(summary["TrainingJobName"])
                if name not in self._seen:
                    self._seen.add(name)
                    names.append(name)
        return sorted(names)

    def run(self, name: str) -> JobRun:
        """Run the job, record its outcome in moto and put its state change event."""
        job = _backend_job(name)
        job.training_job_status, job.secondary_status = "InProgress", "Training"
        describe = self.sagemaker.describe_training_job(TrainingJobName=name)
        log.info("local SageMaker: running training job %s", name)
        started = datetime.now(UTC)
        try:
            run = run_job(self.s3, describe, self.workdir, python=self.python)
        except Exception as exc:  # ours, not the job's: still a final state and its event
            log.exception("local SageMaker: training job %s", name)
            reason = f"InternalServerError: the local runner failed: {exc!r}"
            run = JobRun("Failed", "Failed", reason, "", started, datetime.now(UTC), 0, None)
        self.runs[name] = run
        _record(job, run)
        detail = _detail(self.sagemaker.describe_training_job(TrainingJobName=name), job.tags)
        self.events.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": EVENT_DETAIL_TYPE,
                    "Detail": json.dumps(detail),
                    "Resources": [describe["TrainingJobArn"]],
                }
            ]
        )
        log.info("local SageMaker: training job %s %s", name, run.status)
        return run


def _backend_job(name: str) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[ACCOUNT][REGION].training_jobs[name]


def _record(job: Any, run: JobRun) -> None:
    """What SageMaker's DescribeTrainingJob would say after the run."""
    job.training_job_status = run.status
    job.secondary_status = run.secondary_status
    job.training_start_time = run.started
    job.training_end_time = run.ended
    job.last_modified_time = run.ended
    job.failure_reason = run.failure_reason or None
    job.model_artifacts = {"S3ModelArtifacts": run.artifact_uri} if run.artifact_uri else None
    job.billable_time_in_seconds = max(1, round((run.ended - run.started).total_seconds()))


def _detail(describe: Mapping[str, Any], tags: list[Mapping[str, str]]) -> dict[str, Any]:
    """The event's detail: DescribeTrainingJob's shape, times in epoch milliseconds, tags as
    a map (as SageMaker's events carry them)."""
    detail = {k: _epoch_ms(v) for k, v in describe.items() if k != "ResponseMetadata"}
    for name in ("FailureReason", "ModelArtifacts", "BillableTimeInSeconds"):
        if detail.get(name) is None:
            detail.pop(name, None)
    detail["Tags"] = {t["Key"]: t["Value"] for t in tags}
    return detail


def _epoch_ms(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, list):
        return [_epoch_ms(v) for v in value]
    if isinstance(value, dict):
        return {k: _epoch_ms(v) for k, v in value.items()}
    return value

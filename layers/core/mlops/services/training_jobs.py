"""The retrainer's other engine: a SageMaker training job for an upload too large for Lambda.

The retrainer decides (``domain.training_jobs.engine_for``), writes what the job needs under
``staging/<model>/jobs/<job>/input/`` (``job.json``: the config, the upload's identity, the
trigger; the gate's reference rows), uploads the source package on first use and starts the
job. The job's completion event reaches the candidate gate (``services.job_completion``).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from mlops.adapters.model_store import ModelStore
from mlops.adapters.training_data import DataObject
from mlops.adapters.training_jobs import JobRequest, TrainingJobs
from mlops.domain import candidate
from mlops.domain.config import ModelConfig
from mlops.domain.config_document import to_document
from mlops.domain.layout import training_jobs_prefix
from mlops.domain.training_jobs import JOB_SPEC, JOB_SPEC_VERSION, image_uri, job_name
from mlops.domain.triggers import Trigger
from mlops.errors import ConflictError
from mlops.metric_names import Metric
from mlops.observability import MetricUnit, logger, metrics
from mlops.training_job import source_package
from mlops.training_job.entry import REFERENCE_FILE

MIN_VOLUME_GB = 30  # the image, pip's wheels (~300 MB) and room to spare
MAX_VOLUME_GB = 16384


@dataclass(frozen=True)
class JobPlacement:
    """Where and how jobs run: from the template (parameters and the execution role)."""

    prefix: str
    role_arn: str
    instance_type: str
    max_runtime_seconds: int
    region: str
    image_uri: str = ""  # empty: AWS's scikit-learn image for the region


class TrainingJobLauncher:
    def __init__(
        self,
        *,
        store: ModelStore,
        jobs: TrainingJobs,
        placement: JobPlacement,
        code_version: str,
        package: Callable[[], source_package.SourcePackage] = source_package.build,
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._placement = placement
        self._code_version = code_version
        self._package = package
        self._source_uri: dict[str, str] = {}  # per model, uploaded once per container

    def start(
        self,
        config: ModelConfig,
        obj: DataObject,
        trigger: Trigger,
        reference: candidate.LabeledRows | None,
    ) -> dict[str, Any]:
        """Start (or find, for a retried trigger) the job training on ``obj``: its lineage.
        ``ConfigError`` when the stack cannot run one (no image for the region, a request
        SageMaker refuses); ``StorageError`` for what a retry can fix."""
        p = self._placement
        name = job_name(p.prefix, trigger.idempotency_key)
        image = image_uri(p.region, p.image_uri)
        jobs = training_jobs_prefix(config.name)
        inputs = f"{jobs}{name}/input/"
        spec = {
            "schema_version": JOB_SPEC_VERSION,
            "job_name": name,
            "config": to_document(config),
            "data": {
                "uri": obj.uri,
                "file": PurePosixPath(obj.key).name,
                "bytes": obj.size,
                "version_id": obj.version_id,
                "etag": obj.etag,
            },
            "trigger": trigger.as_dict(),
            "code_version": self._code_version,
        }
        self._store.put_bytes(inputs + JOB_SPEC, json.dumps(spec).encode())
        if reference is not None and reference.rows:
            self._store.put_bytes(inputs + REFERENCE_FILE, candidate.encode_rows(reference))
        request = JobRequest(
            name=name,
            image_uri=image,
            role_arn=p.role_arn,
            instance_type=p.instance_type,
            max_runtime_seconds=p.max_runtime_seconds,
            volume_gb=volume_gb(obj.size),
            source_uri=self._source(config.name),
            # The exact key as an S3 prefix: other keys it prefixes would be copied too; the
            # entry point reads only this file (job.json names it).
            training_uri=obj.uri,
            job_uri=self._store.uri(inputs),
            output_uri=self._store.uri(jobs),
            region=p.region,
            # Tag values allow only letters, digits, spaces and _.:/=+-@ (a key's "#" or "?"
            # would fail the request): the model's name does; job.json has the trigger.
            tags={"mlops:model": config.name},
        )
        try:
            arn = self._jobs.start(request)
        except ConflictError:  # a retried trigger: the first attempt started it
            arn = str(self._jobs.describe(name)["TrainingJobArn"])
            logger.info("training job already started", job_name=name)
        else:
            metrics.add_metric(name=Metric.TRAINING_JOBS_STARTED, unit=MetricUnit.Count, value=1)
            logger.info("training job started", job_name=name, instance_type=p.instance_type)
        return {
            "engine": "sagemaker",
            "job_name": name,
            "job_arn": arn,
            "instance_type": p.instance_type,
            "image_uri": image,
            "max_runtime_seconds": p.max_runtime_seconds,
            "input_uri": request.job_uri,
            "output_uri": f"{request.output_uri}{name}/output/model.tar.gz",
        }

    def _source(self, model: str) -> str:
        """The source package's URI, uploaded under its sha256 the first time it is needed."""
        if model not in self._source_uri:
            package = self._package()
            key = f"{training_jobs_prefix(model)}source/{package.sha256}.tar.gz"
            # The same digest, the same bytes: an earlier container may have uploaded them.
            with contextlib.suppress(ConflictError):
                self._store.put_bytes(key, package.body, immutable=True)
            self._source_uri[model] = self._store.uri(key)
        return self._source_uri[model]


def volume_gb(object_bytes: int) -> int:
    """The job's EBS volume: the upload, room for its parsed copy and the image's pip wheels."""
    needed = math.ceil(object_bytes * 3 / 1024**3) + MIN_VOLUME_GB
    return min(MAX_VOLUME_GB, needed)

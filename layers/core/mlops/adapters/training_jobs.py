"""SageMaker training jobs: start one (CreateTrainingJob) for a retrain too large for Lambda.

Script mode on AWS's prebuilt scikit-learn image: the image's training toolkit downloads
``sagemaker_submit_directory`` (our source package), installs its ``requirements.txt`` and runs
``sagemaker_program``; the upload is the ``training`` channel, ``job.json`` the ``job`` channel;
SageMaker tars ``/opt/ml/model`` to ``<output path>/<job>/output/model.tar.gz``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.domain.training_jobs import ENTRY_POINT, JOB_CHANNEL, TRAINING_CHANNEL
from mlops.errors import ConfigError, ConflictError, StorageError


@dataclass(frozen=True)
class JobRequest:
    name: str
    image_uri: str
    role_arn: str
    instance_type: str
    max_runtime_seconds: int
    volume_gb: int
    source_uri: str  # s3://.../source/<sha256>.tar.gz
    training_uri: str  # the upload (an S3 prefix: its exact key)
    job_uri: str  # s3://.../<job>/job.json
    output_uri: str  # s3://.../staging/<model>/jobs/
    region: str
    tags: Mapping[str, str]


class TrainingJobs:
    def __init__(self, sagemaker: Any) -> None:
        self._sm = sagemaker

    def start(self, request: JobRequest) -> str:
        """The job's ARN. ``ConflictError`` when a job of that name exists already (a retried
        trigger: the caller looks it up); ``ConfigError`` for a request SageMaker refuses
        (a retry would repeat it); ``StorageError`` for what a retry can fix."""
        try:
            response = self._sm.create_training_job(**_create_request(request))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", str(exc))
            if code == "ResourceInUse":
                raise ConflictError(f"training job {request.name} exists already") from exc
            if code in ("ValidationException", "AccessDeniedException", "ResourceLimitExceeded"):
                raise ConfigError(
                    f"SageMaker refused training job {request.name}: {code}: {message}"
                ) from exc
            raise StorageError(f"cannot start training job {request.name}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot start training job {request.name}: {exc}") from exc
        return str(response["TrainingJobArn"])

    def describe(self, name: str) -> dict[str, Any]:
        try:
            return dict(self._sm.describe_training_job(TrainingJobName=name))
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot describe training job {name}: {exc}") from exc


def _create_request(r: JobRequest) -> dict[str, Any]:
    # Script mode reads hyperparameters as JSON values (the SageMaker Python SDK's encoding).
    # The log level is a number: the training toolkit hands it to logging.basicConfig and
    # compares it with logging.INFO, so the string "20" would fail every job at start.
    hyperparameters: dict[str, Any] = {
        "sagemaker_program": ENTRY_POINT,
        "sagemaker_submit_directory": r.source_uri,
        "sagemaker_region": r.region,
        "sagemaker_container_log_level": logging.INFO,
    }
    return {
        "TrainingJobName": r.name,
        "HyperParameters": {k: json.dumps(v) for k, v in hyperparameters.items()},
        "AlgorithmSpecification": {"TrainingImage": r.image_uri, "TrainingInputMode": "File"},
        "RoleArn": r.role_arn,
        "InputDataConfig": [
            _channel(TRAINING_CHANNEL, r.training_uri),
            _channel(JOB_CHANNEL, r.job_uri),
        ],
        "OutputDataConfig": {"S3OutputPath": r.output_uri},
        "ResourceConfig": {
            "InstanceType": r.instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": r.volume_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": r.max_runtime_seconds},
        "EnableNetworkIsolation": False,  # the toolkit pip-installs requirements.txt
        # Debugger's system monitor would write <job>/profiler-output/: the job role may write
        # only <job>/output/.
        "ProfilerConfig": {"DisableProfiler": True},
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(r.tags.items())],
    }


def _channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": "File",
    }

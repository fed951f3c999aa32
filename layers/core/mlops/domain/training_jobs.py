"""Training beyond Lambda: where a retrain trains, what its SageMaker job is called and runs
on, what its completion event says, and how its artifact is unpacked without trusting it.

Pure: no boto3, no environment. The adapter (``adapters.training_jobs``) starts the job, the
services (``services.training_jobs``) decide and complete it.

The image: AWS's prebuilt scikit-learn training image, framework ``1.4-2``, Python 3.12 tag
(``docker/1.4-2-py312`` in aws/sagemaker-scikit-learn-container). The default ``1.4-2-cpu-py3``
tag runs Python 3.10, and our pins (numpy 2.4, scipy 1.17, scikit-learn 1.9) require Python
3.11 or newer; the job installs them from the source package's ``requirements.txt`` at start
(docs/training-at-scale.md has the evidence).
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from mlops.domain import candidate
from mlops.domain.config import TrainingConfig
from mlops.domain.layout import STAGING
from mlops.domain.triggers import is_candidate_id
from mlops.errors import ConfigError, IntegrityError, InvalidEventError

Engine = Literal["lambda", "sagemaker"]

IMAGE_REPOSITORY: Final = "sagemaker-scikit-learn"
IMAGE_TAG: Final = "1.4-2-py312-cpu-py3"
# The accounts of AWS's scikit-learn images per region (the SageMaker Python SDK's
# image_uri_config/sklearn.json); a region not listed needs the TrainingImageUri parameter.
IMAGE_ACCOUNTS: Final[Mapping[str, str]] = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "720646828776",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ca-central-1": "341280168497",
    "eu-central-1": "492215442770",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}

# On-demand SageMaker training prices, USD per instance-hour, us-east-1 (aws.amazon.com/
# sagemaker/pricing, 2026-12). An estimate for the lineage: other regions cost up to ~30 % more.
HOURLY_PRICE_USD: Final[Mapping[str, float]] = {
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.m5.4xlarge": 0.922,
    "ml.c5.xlarge": 0.204,
    "ml.c5.2xlarge": 0.408,
    "ml.c5.4xlarge": 0.816,
    "ml.r5.large": 0.151,
    "ml.r5.xlarge": 0.302,
    "ml.r5.2xlarge": 0.605,
}

ENTRY_POINT: Final = "entry.py"  # sagemaker_program: the source package's top-level script
TRAINING_CHANNEL: Final = "training"  # the upload
JOB_CHANNEL: Final = "job"  # job.json: the config and lineage the entry point needs
JOB_SPEC: Final = "job.json"
JOB_SPEC_VERSION: Final = 1
FAILURE_LIMIT: Final = 1024  # SageMaker keeps this much of /opt/ml/output/failure
TERMINAL: Final = frozenset({"Completed", "Failed", "Stopped"})
EVENT_SOURCE: Final = "aws.sagemaker"
EVENT_DETAIL_TYPE: Final = "SageMaker Training Job State Change"
# Job names: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}.
_JOB_NAME: Final = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
_PREFIX: Final = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,38}")


def engine_for(training: TrainingConfig, object_bytes: int) -> Engine:
    """``auto``: Lambda up to ``max_lambda_bytes`` inclusive, SageMaker one byte past it."""
    if training.engine == "auto":
        return "sagemaker" if object_bytes > training.max_lambda_bytes else "lambda"
    return training.engine


def image_uri(region: str, override: str = "") -> str:
    """The prebuilt image for ``region``, or ``override`` (the TrainingImageUri parameter)."""
    if override:
        return override
    account = IMAGE_ACCOUNTS.get(region)
    if account is None:
        raise ConfigError(
            f"no known SageMaker scikit-learn image in {region}: set the stack's "
            "TrainingImageUri parameter"
        )
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{IMAGE_REPOSITORY}:{IMAGE_TAG}"


def job_name(prefix: str, idempotency_key: str) -> str:
    """One trigger, one job name: a retried retrainer run finds its job instead of starting a
    second one (CreateTrainingJob refuses a name in use)."""
    if not _PREFIX.fullmatch(prefix):
        raise ConfigError(f"training job prefix {prefix!r}: 1 to 39 of a-z, A-Z, 0-9, -")
    return f"{prefix}-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]}"


def is_job_name(name: str, prefix: str) -> bool:
    return bool(_JOB_NAME.fullmatch(name)) and name.startswith(prefix + "-")


def cost_usd(instance_type: str, instance_count: int, billable_seconds: float) -> float | None:
    """On-demand list price of the billed seconds; None for an instance type not in the table."""
    price = HOURLY_PRICE_USD.get(instance_type)
    if price is None:
        return None
    return round(price * instance_count * billable_seconds / 3600, 4)


@dataclass(frozen=True)
class JobEvent:
    """The fields of a "SageMaker Training Job State Change" event the gate acts on."""

    name: str
    arn: str
    status: str  # InProgress | Completed | Failed | Stopping | Stopped
    secondary_status: str
    failure_reason: str
    artifact_uri: str
    instance_type: str
    instance_count: int
    started: datetime | None
    ended: datetime | None
    billable_seconds: float | None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def duration_s(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return max(0.0, (self.ended - self.started).total_seconds())

    def lineage(self) -> dict[str, Any]:
        """What a registered version records of the job that trained it."""
        seconds = self.billable_seconds if self.billable_seconds is not None else self.duration_s
        return {
            "engine": "sagemaker",
            "job_name": self.name,
            "job_arn": self.arn,
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "duration_s": self.duration_s,
            "billable_s": self.billable_seconds,
            "cost_usd_estimate": None
            if seconds is None
            else cost_usd(self.instance_type, self.instance_count, seconds),
            "status": self.status,
        }


def is_job_event(event: Any) -> bool:
    return (
        isinstance(event, Mapping)
        and event.get("source") == EVENT_SOURCE
        and event.get("detail-type") == EVENT_DETAIL_TYPE
    )


def parse_job_event(event: Mapping[str, Any]) -> JobEvent:
    """The event's detail (DescribeTrainingJob's shape, times in epoch milliseconds); a
    ``ValueError`` names what is missing or malformed."""
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise ValueError("detail: expected an object")
    name, arn, status = (
        detail.get(k) for k in ("TrainingJobName", "TrainingJobArn", "TrainingJobStatus")
    )
    for field, value in (
        ("TrainingJobName", name),
        ("TrainingJobArn", arn),
        ("TrainingJobStatus", status),
    ):
        if not isinstance(value, str) or not value:
            raise ValueError(f"detail.{field}: expected a non-empty string")
    resources = detail.get("ResourceConfig") or {}
    artifacts = detail.get("ModelArtifacts") or {}
    if not isinstance(resources, Mapping) or not isinstance(artifacts, Mapping):
        raise ValueError("detail.ResourceConfig / ModelArtifacts: expected objects")
    count = resources.get("InstanceCount", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError("detail.ResourceConfig.InstanceCount: expected a positive integer")
    billable = detail.get("BillableTimeInSeconds")
    if billable is not None and (isinstance(billable, bool) or not isinstance(billable, int)):
        raise ValueError("detail.BillableTimeInSeconds: expected an integer")
    return JobEvent(
        name=str(name),
        arn=str(arn),
        status=str(status),
        secondary_status=str(detail.get("SecondaryStatus") or ""),
        failure_reason=str(detail.get("FailureReason") or "")[:FAILURE_LIMIT],
        artifact_uri=str(artifacts.get("S3ModelArtifacts") or ""),
        instance_type=str(resources.get("InstanceType") or ""),
        instance_count=count,
        started=_time(detail.get("TrainingStartTime"), "TrainingStartTime"),
        ended=_time(detail.get("TrainingEndTime"), "TrainingEndTime"),
        billable_seconds=None if billable is None else float(billable),
    )


def job_record(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as the gate's idempotency record: one per job and status (a redelivered
    event is handled once); ``InvalidEventError`` names what is wrong."""
    try:
        job = parse_job_event(event)
    except ValueError as exc:
        raise InvalidEventError(f"SageMaker training job event: {exc}") from exc
    return {"job_name": job.name, "job_status": job.status, "detail": dict(event["detail"])}


def parse_job_record(record: Mapping[str, Any]) -> JobEvent:
    return parse_job_event({"detail": record["detail"]})


def _time(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"detail.{field}: expected epoch milliseconds")
    return datetime.fromtimestamp(value / 1000, UTC)


# ------------------------------------------------------------------ the artifact


@dataclass(frozen=True)
class ArtifactLimits:
    """Bounds on a job's model.tar.gz, checked while reading it: the compressed object, the
    whole unpacked content, and each member.

    The gate holds the archive and its unpacked files in memory at once, in a 1,024 MB function
    that then decodes parity inputs and loads the model: together they stay within half of it,
    so a gzip bomb is a rejected retrain, not a killed function retried into the failure queue.
    A 10M-row job's artifact is about 46 MB (docs/training-at-scale.md)."""

    max_compressed: int = 128 * 1024**2
    max_total: int = 256 * 1024**2
    max_member: int = 256 * 1024**2
    max_members: int = 16


DEFAULT_LIMITS: Final = ArtifactLimits()


def unpack_candidate(
    archive: bytes, model: str, limits: ArtifactLimits
) -> tuple[str, dict[str, bytes]]:
    """``(candidate id, files)`` of the staged candidate in a job's model.tar.gz: regular files
    at ``staging/<model>/<candidate id>/<name>`` for ``name`` in ``candidate.FILES`` (or
    ``OPTIONAL_FILES``), one
    candidate, nothing else (no links, no ``..``, no absolute paths, no other names, no member
    or total over ``limits``). ``IntegrityError`` names the first thing wrong."""
    if len(archive) > limits.max_compressed:
        raise IntegrityError(f"model.tar.gz is {len(archive)} bytes, over {limits.max_compressed}")
    root = f"{STAGING}{model}/"
    files: dict[str, bytes] = {}
    found: str | None = None
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for count, member in enumerate(_members(tar), start=1):
                if count > limits.max_members:
                    raise IntegrityError(f"model.tar.gz has more than {limits.max_members} members")
                path = member.name.removeprefix("./")
                if member.isdir() and _leads_to_candidate(path.rstrip("/") + "/", root, found):
                    continue
                cid, _, name = path.removeprefix(root).partition("/")
                if (
                    not member.isreg()
                    or not path.startswith(root)
                    or not is_candidate_id(cid)
                    or (found is not None and cid != found)
                    or name not in (*candidate.FILES, *candidate.OPTIONAL_FILES)
                    or name in files
                ):
                    raise IntegrityError(
                        f"model.tar.gz member {member.name!r} is not a file of one staged "
                        f"candidate under {root}"
                    )
                found = cid
                if member.size > limits.max_member or total + member.size > limits.max_total:
                    raise IntegrityError(
                        f"model.tar.gz member {member.name!r} ({member.size} bytes) is over "
                        "the artifact limits"
                    )
                handle = tar.extractfile(member)
                assert handle is not None  # a regular file
                body = handle.read(member.size + 1)
                if len(body) != member.size:
                    raise IntegrityError(f"model.tar.gz member {member.name!r} is truncated")
                total += member.size
                files[name] = body
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise IntegrityError(f"model.tar.gz is not a readable gzip tar: {exc}") from exc
    if found is None or "candidate.json" not in files:
        raise IntegrityError("model.tar.gz holds no staged candidate (no candidate.json)")
    return found, files


def _leads_to_candidate(folder: str, root: str, found: str | None) -> bool:
    """A folder on the way to the candidate's files: ``staging/``, ``staging/<model>/``, or
    ``staging/<model>/<candidate id>/`` (the one candidate)."""
    if root.startswith(folder):
        return True
    cid = folder.removeprefix(root).removesuffix("/")
    return folder.startswith(root) and is_candidate_id(cid) and found in (None, cid)


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """Members one at a time (``getmembers`` would read a whole hostile index first)."""
    while (member := tar.next()) is not None:
        yield member

"""Training jobs, pure parts and the adapter: where a retrain trains (on and one past the
limit), the image, the job name, the cost, the completion event, the artifact's hardening,
the source package, and CreateTrainingJob against moto and its failures."""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import subprocess
import sys
import tarfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from mlops.adapters.model_store import ModelStore
from mlops.adapters.training_data import TrainingDataStore
from mlops.adapters.training_jobs import JobRequest, TrainingJobs
from mlops.domain import candidate
from mlops.domain.config import TrainingConfig
from mlops.domain.config_document import load_config
from mlops.domain.training_jobs import (
    DEFAULT_LIMITS,
    ArtifactLimits,
    cost_usd,
    engine_for,
    image_uri,
    is_job_name,
    job_name,
    job_record,
    parse_job_event,
    unpack_candidate,
)
from mlops.domain.triggers import Trigger
from mlops.errors import ConfigError, ConflictError, IntegrityError, InvalidEventError, StorageError
from mlops.services.training_jobs import JobPlacement, TrainingJobLauncher, volume_gb
from mlops.training_job import source_package
from tests.conftest import ROOT, load_event

MODEL = "house-prices"
CID = "20261129T010000Z-0a1b2c3d"
LIMITS = ArtifactLimits(max_compressed=1 << 20, max_total=4096, max_member=2048, max_members=8)


# ------------------------------------------------------------------ the decision


@pytest.mark.parametrize(("size", "engine"), [(1000, "lambda"), (1001, "sagemaker"), (0, "lambda")])
def test_auto_trains_in_lambda_up_to_the_limit_and_in_a_job_one_byte_past(
    size: int, engine: str
) -> None:
    assert engine_for(TrainingConfig(max_lambda_bytes=1000), size) == engine


@pytest.mark.parametrize("forced", ["lambda", "sagemaker"])
def test_a_named_engine_is_used_whatever_the_size(forced: Any) -> None:
    training = TrainingConfig(engine=forced, max_lambda_bytes=1000)
    assert engine_for(training, 1) == forced
    assert engine_for(training, 10**12) == forced


def test_the_image_is_awss_python_312_scikit_learn_image_for_the_region() -> None:
    uri = image_uri("eu-west-1")
    assert uri == (
        "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-py312-cpu-py3"
    )
    assert image_uri("eu-west-1", "my/image:1") == "my/image:1"
    with pytest.raises(ConfigError, match="TrainingImageUri"):
        image_uri("xx-nowhere-1")


def test_a_job_name_is_valid_unique_per_trigger_and_the_same_for_a_retry() -> None:
    a = job_name("mlops-0a1b2c3d", "s3://b/k#v1")
    assert a == job_name("mlops-0a1b2c3d", "s3://b/k#v1")
    assert a != job_name("mlops-0a1b2c3d", "s3://b/k#v2")
    assert is_job_name(a, "mlops-0a1b2c3d")
    assert not is_job_name(a, "mlops-ffffffff")
    assert len(job_name("a" * 39, "k")) <= 63
    with pytest.raises(ConfigError):
        job_name("a" * 40, "k")
    with pytest.raises(ConfigError):
        job_name("bad_prefix", "k")


def test_cost_is_the_list_price_of_the_billed_seconds() -> None:
    assert cost_usd("ml.m5.xlarge", 1, 3600) == 0.23
    assert cost_usd("ml.m5.xlarge", 2, 1800) == 0.23
    assert cost_usd("ml.unknown.size", 1, 3600) is None


# ------------------------------------------------------------------ the event


def test_the_completion_event_gives_the_jobs_lineage() -> None:
    job = parse_job_event(load_event("sagemaker_training_job_completed.json"))
    assert job.status == "Completed"
    assert job.terminal
    assert job.duration_s == 507.0
    lineage = job.lineage()
    assert lineage["instance_type"] == "ml.m5.xlarge"
    assert lineage["billable_s"] == 507.0
    assert lineage["cost_usd_estimate"] == cost_usd("ml.m5.xlarge", 1, 507)
    assert lineage["job_arn"].endswith(":training-job/mlops-0a1b2c3d-5f0c9a4e2b7d1c3e8f6a")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"TrainingJobName": ""}, "TrainingJobName"),
        ({"TrainingJobStatus": None}, "TrainingJobStatus"),
        ({"TrainingStartTime": "yesterday"}, "TrainingStartTime"),
        ({"BillableTimeInSeconds": True}, "BillableTimeInSeconds"),
        ({"ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 0}}, "InstanceCount"),
    ],
)
def test_a_malformed_event_is_an_invalid_event_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    event = load_event("sagemaker_training_job_completed.json")
    event["detail"].update(change)
    with pytest.raises(InvalidEventError, match=field):
        job_record(event)


# ------------------------------------------------------------------ the artifact


def archive(members: list[tuple[str, Any]], *, gz: bool = True) -> bytes:
    """A tar of (name, body) files; body None: a symlink, a str: a hard link to it."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz" if gz else "w") as tar:
        for name, body in members:
            info = tarfile.TarInfo(name)
            if body is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            elif isinstance(body, str):
                info.type, info.linkname = tarfile.LNKTYPE, body
                tar.addfile(info)
            else:
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    return raw.getvalue()


def good(cid: str = CID) -> list[tuple[str, Any]]:
    return [(f"staging/{MODEL}/{cid}/{name}", name.encode()) for name in candidate.FILES]


def test_a_well_formed_artifact_gives_the_candidate_and_its_files() -> None:
    cid, files = unpack_candidate(archive(good()), MODEL, LIMITS)
    assert cid == CID
    assert files == {name: name.encode() for name in candidate.FILES}


def test_a_regressor_s_loss_model_is_one_of_the_candidate_s_files() -> None:
    loss = (f"staging/{MODEL}/{CID}/loss_model.onnx", b"loss")
    _, files = unpack_candidate(archive([*good(), loss]), MODEL, LIMITS)
    assert files["loss_model.onnx"] == b"loss"
    with pytest.raises(IntegrityError, match="not a file"):  # once, like every file
        unpack_candidate(archive([*good(), loss, loss]), MODEL, LIMITS)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([*good(), (f"staging/{MODEL}/{CID}/../../../etc/cron.d/x", b"x")], "not a file"),
        ([*good(), ("/etc/passwd", b"x")], "not a file"),
        ([*good(), (f"staging/{MODEL}/{CID}/extra.py", b"x")], "not a file"),
        ([*good()[:-1], (f"staging/{MODEL}/{CID}/candidate.json", None)], "not a file"),
        ([*good()[:-1], (f"staging/{MODEL}/{CID}/candidate.json", "/etc/passwd")], "not a file"),
        ([*good(), *good("20261129T010001Z-0a1b2c3d")], "not a file"),
        ([(f"staging/other-model/{CID}/candidate.json", b"{}")], "not a file"),
        ([(f"staging/{MODEL}/{CID}/model.onnx", b"x" * 2049)], "over the artifact limits"),
        ([(f"staging/{MODEL}/{CID}/{n}", b"x" * 2000) for n in candidate.FILES[:3]], "limits"),
        ([(f"staging/{MODEL}/{CID}/model.onnx", b"x")], "no staged candidate"),
    ],
)
def test_a_hostile_or_corrupt_artifact_is_refused_naming_why(
    members: list[tuple[str, Any]], message: str
) -> None:
    with pytest.raises(IntegrityError, match=message):
        unpack_candidate(archive(members), MODEL, LIMITS)


def test_a_member_exactly_at_the_limit_is_accepted() -> None:
    members = [(n, b) for n, b in good() if not n.endswith("model.onnx")]
    members.append((f"staging/{MODEL}/{CID}/model.onnx", b"x" * 2048))
    assert len(unpack_candidate(archive(members), MODEL, LIMITS)[1]["model.onnx"]) == 2048


def test_too_many_members_a_huge_archive_or_no_gzip_are_refused() -> None:
    with pytest.raises(IntegrityError, match="more than 4 members"):
        unpack_candidate(archive(good()), MODEL, replace(LIMITS, max_members=4))
    assert unpack_candidate(archive(good()), MODEL, replace(LIMITS, max_members=5))[0] == CID
    with pytest.raises(IntegrityError, match="over"):
        unpack_candidate(archive(good()), MODEL, replace(LIMITS, max_compressed=10))
    with pytest.raises(IntegrityError, match="not a readable gzip tar"):
        unpack_candidate(archive(good(), gz=False), MODEL, LIMITS)
    with pytest.raises(IntegrityError, match="not a readable gzip tar"):
        unpack_candidate(b"\x1f\x8b" + b"\0" * 40, MODEL, LIMITS)


# ------------------------------------------------------------------ the source package


def test_the_jobs_requirements_are_the_training_layers_pins() -> None:
    def pins(path: Path) -> set[str]:
        lines = path.read_text().splitlines()
        return {line.strip() for line in lines if line.strip() and not line.startswith("#")}

    assert pins(source_package.REQUIREMENTS) == pins(ROOT / "layers/training/requirements.txt")


def test_the_source_package_is_reproducible_and_holds_the_entry_point_and_code(
    tmp_path: Path,
) -> None:
    (tmp_path / "factory.py").write_text("def build(): ...\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "factory.cpython-311.pyc").write_bytes(b"\0")
    first, second = source_package.build(tmp_path), source_package.build(tmp_path)
    assert first.sha256 == second.sha256
    with tarfile.open(fileobj=io.BytesIO(first.body), mode="r:gz") as tar:
        names = set(tar.getnames())
    assert {"entry.py", "requirements.txt", "mlops/training_job/entry.py"} <= names
    assert "model_code/factory.py" in names
    assert not any("__pycache__" in n for n in names)
    assert source_package.build().sha256 != first.sha256  # without the model code


def test_the_entry_point_imports_nothing_the_training_image_lacks() -> None:
    # The image has boto3 and our requirements.txt, not Powertools or onnxruntime.
    code = (
        "import sys, mlops.training_job.entry; "
        "print(sorted(m for m in ('aws_lambda_powertools', 'onnxruntime', 'boto3') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ the adapter


def request(**changes: Any) -> JobRequest:
    base = JobRequest(
        name="mlops-0a1b2c3d-5f0c9a4e2b7d1c3e8f6a",
        image_uri=image_uri("us-east-1"),
        role_arn="arn:aws:iam::123456789012:role/training",
        instance_type="ml.m5.xlarge",
        max_runtime_seconds=7200,
        volume_gb=31,
        source_uri="s3://artifacts/staging/m/jobs/source/abc.tar.gz",
        training_uri="s3://training/training-data/big.csv",
        job_uri="s3://artifacts/staging/m/jobs/mlops-0a1b2c3d-5f0c9a4e2b7d1c3e8f6a/input/",
        output_uri="s3://artifacts/staging/m/jobs/",
        region="us-east-1",
        tags={"mlops:model": "m"},
    )
    return replace(base, **changes)


def test_a_job_is_created_in_script_mode_with_its_channels_output_and_limit() -> None:
    with mock_aws():
        sm = boto3.client("sagemaker", region_name="us-east-1")
        arn = TrainingJobs(sm).start(request())
        job = sm.describe_training_job(TrainingJobName=request().name)
    assert arn == job["TrainingJobArn"]
    hyper = {k: json.loads(v) for k, v in job["HyperParameters"].items()}
    assert hyper["sagemaker_program"] == "entry.py"
    assert hyper["sagemaker_submit_directory"] == request().source_uri
    # The training toolkit does logging.basicConfig(level=...) then level >= logging.INFO with
    # the decoded value: a number, or every job fails before our entry point runs.
    level = hyper["sagemaker_container_log_level"]
    logging.getLogger("probe").setLevel(level)
    assert level >= logging.INFO
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]
    }
    assert channels == {"training": request().training_uri, "job": request().job_uri}
    assert job["OutputDataConfig"]["S3OutputPath"] == request().output_uri
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 7200
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith(":1.4-2-py312-cpu-py3")


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("ResourceInUse", ConflictError),
        ("ValidationException", ConfigError),
        ("ResourceLimitExceeded", ConfigError),
        ("ThrottlingException", StorageError),
        ("InternalFailure", StorageError),
    ],
)
def test_sagemakers_refusals_become_our_errors(code: str, error: type[Exception]) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(sm) as stub:
        stub.add_client_error("create_training_job", service_error_code=code, service_message="no")
        with pytest.raises(error, match=request().name):
            TrainingJobs(sm).start(request())


def test_a_describe_failure_is_a_storage_error() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(sm) as stub:
        stub.add_client_error("describe_training_job", service_error_code="ValidationException")
        with pytest.raises(StorageError, match="cannot describe"):
            TrainingJobs(sm).describe("missing")


# ------------------------------------------------------------------ the launcher


def test_a_retried_trigger_finds_its_job_instead_of_starting_another() -> None:
    config = load_config()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        s3.create_bucket(Bucket="training")
        s3.put_object(Bucket="training", Key="training-data/big.csv", Body=b"x" * 10)
        obj = TrainingDataStore("training", s3).head("training-data/big.csv")
        sm = boto3.client("sagemaker", region_name="us-east-1")
        placement = JobPlacement(
            "mlops-0a1b2c3d", "arn:aws:iam::1:role/r", "ml.m5.xlarge", 600, "us-east-1"
        )
        launcher = TrainingJobLauncher(
            store=ModelStore("artifacts", s3),
            jobs=TrainingJobs(sm),
            placement=placement,
            code_version="t",
        )
        trigger = Trigger("s3_upload", bucket="training", key=obj.key, etag=obj.etag)
        name = job_name("mlops-0a1b2c3d", trigger.idempotency_key)
        arn = f"arn:aws:sagemaker:us-east-1:1:training-job/{name}"
        with Stubber(sm) as stub:
            stub.add_client_error("create_training_job", service_error_code="ResourceInUse")
            stub.add_response(
                "describe_training_job",
                {
                    "TrainingJobName": name,
                    "TrainingJobArn": arn,
                    "ModelArtifacts": {"S3ModelArtifacts": ""},
                    "TrainingJobStatus": "InProgress",
                    "SecondaryStatus": "Training",
                    "AlgorithmSpecification": {"TrainingInputMode": "File"},
                    "ResourceConfig": {
                        "InstanceType": "ml.m5.xlarge",
                        "InstanceCount": 1,
                        "VolumeSizeInGB": 30,
                    },
                    "StoppingCondition": {"MaxRuntimeInSeconds": 600},
                    "CreationTime": datetime(2026, 11, 29, tzinfo=UTC),
                },
                {"TrainingJobName": name},
            )
            job = launcher.start(config, obj, trigger, None)
        spec = json.loads(
            s3.get_object(
                Bucket="artifacts", Key=f"staging/house-prices/jobs/{name}/input/job.json"
            )["Body"].read()
        )
    assert job["job_arn"] == arn
    assert spec["data"] == {
        "uri": "s3://training/training-data/big.csv",
        "file": "big.csv",
        "bytes": 10,
        "version_id": None,
        "etag": obj.etag,
    }


@pytest.mark.parametrize(("size", "gb"), [(0, 30), (1024**3, 33), (10**15, 16384)])
def test_the_jobs_volume_holds_the_upload_with_room(size: int, gb: int) -> None:
    assert volume_gb(size) == gb


def test_the_jobs_tags_are_values_sagemaker_accepts_whatever_the_uploads_key() -> None:
    allowed = re.compile(r"[\w\s.:/=+\-@]*")  # SageMaker's tag value pattern
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("artifacts", "training"):
            s3.create_bucket(Bucket=bucket)
        key = "training-data/month #3?.csv"
        s3.put_object(Bucket="training", Key=key, Body=b"x")
        obj = TrainingDataStore("training", s3).head(key)
        sm = boto3.client("sagemaker", region_name="us-east-1")
        placement = JobPlacement(
            "mlops-0a1b2c3d", "arn:aws:iam::1:role/r", "ml.m5.xlarge", 600, "us-east-1"
        )
        launcher = TrainingJobLauncher(
            store=ModelStore("artifacts", s3),
            jobs=TrainingJobs(sm),
            placement=placement,
            code_version="t",
        )
        trigger = Trigger("s3_upload", bucket="training", key=key, etag=obj.etag)
        job = launcher.start(load_config(), obj, trigger, None)
        tags = sm.list_tags(ResourceArn=job["job_arn"])["Tags"]
    assert tags == [{"Key": "mlops:model", "Value": "house-prices"}]
    assert all(allowed.fullmatch(t["Key"]) and allowed.fullmatch(t["Value"]) for t in tags)


def claimed(size: int) -> bytes:
    """A gzip tar whose one member's header claims ``size`` bytes and holds a few: what a gzip
    bomb looks like before its content is read."""
    info = tarfile.TarInfo(f"staging/{MODEL}/{CID}/model.onnx")
    info.size = size
    return gzip.compress(info.tobuf() + b"\0" * 512)


def test_the_default_limits_refuse_a_bomb_one_byte_past_the_member_limit_before_reading_it() -> (
    None
):
    limit = DEFAULT_LIMITS.max_member
    with pytest.raises(IntegrityError, match="over the artifact limits"):
        unpack_candidate(claimed(limit + 1), MODEL, DEFAULT_LIMITS)
    # on the limit: past the size check, read, and found short
    with pytest.raises(IntegrityError, match=r"truncated|not a readable gzip tar"):
        unpack_candidate(claimed(limit), MODEL, DEFAULT_LIMITS)


_ANY_REQUEST = dict.fromkeys(
    (
        "TrainingJobName",
        "HyperParameters",
        "AlgorithmSpecification",
        "RoleArn",
        "InputDataConfig",
        "OutputDataConfig",
        "ResourceConfig",
        "StoppingCondition",
        "EnableNetworkIsolation",
        "Tags",
    ),
    ANY,
)


def test_the_job_is_created_with_debuggers_profiler_off() -> None:
    # The job role may write only <job>/output/: the profiler would write beside it.
    sm = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(sm) as stub:
        stub.add_response(
            "create_training_job",
            {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/x"},
            expected_params={"ProfilerConfig": {"DisableProfiler": True}, **_ANY_REQUEST},
        )
        TrainingJobs(sm).start(request())

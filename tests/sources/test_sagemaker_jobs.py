"""The local stack's training job runner: SageMaker's conventions for the entry point (channels,
hyperparameters, SM_* variables, the failure file), its time limit, and the artifact."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops.domain.training_jobs import job_record
from mlops_cli.emulator.sagemaker.job_runner import run_job
from mlops_cli.emulator.sagemaker.watcher import TrainingJobWatcher
from tests.sources.conftest import Aws

BUCKET = "jobs"


def package(entry: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        body = entry.encode()
        info = tarfile.TarInfo("entry.py")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return gzip.compress(raw.getvalue())


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key="data/train.csv", Body=b"a,b\n1,2\n")
        client.put_object(Bucket=BUCKET, Key="data/train.csv.bak", Body=b"old")
        yield client


def job(s3: Any, entry: str, max_runtime: int = 60) -> dict[str, Any]:
    s3.put_object(Bucket=BUCKET, Key="code/source.tar.gz", Body=package(entry))
    return {
        "TrainingJobName": "mlops-test-1",
        "HyperParameters": {
            "sagemaker_program": json.dumps("entry.py"),
            "sagemaker_submit_directory": json.dumps(f"s3://{BUCKET}/code/source.tar.gz"),
            "depth": json.dumps(3),
        },
        "InputDataConfig": [
            {
                "ChannelName": "training",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{BUCKET}/data/train.csv",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out/"},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
    }


def test_the_entry_point_gets_sagemakers_conventions_and_its_model_dir_is_uploaded(
    s3: Any, tmp_path: Path
) -> None:
    entry = """
import json, os, pathlib
channel = pathlib.Path(os.environ["SM_CHANNEL_TRAINING"])
config = pathlib.Path(os.environ["SM_INPUT_CONFIG_DIR"]) / "hyperparameters.json"
seen = {"files": sorted(p.name for p in channel.iterdir()),
        "depth": json.loads(json.loads(config.read_text())["depth"]),
        "hps": json.loads(os.environ["SM_HPS"])}
(pathlib.Path(os.environ["SM_MODEL_DIR"]) / "seen.json").write_text(json.dumps(seen))
"""
    run = run_job(s3, job(s3, entry), tmp_path)
    assert run.status == "Completed"
    assert run.artifact_uri == f"s3://{BUCKET}/out/mlops-test-1/output/model.tar.gz"
    assert run.peak_rss_bytes > 0
    body = s3.get_object(Bucket=BUCKET, Key="out/mlops-test-1/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        seen = json.load(tar.extractfile("seen.json"))  # type: ignore[arg-type]
    # S3Prefix semantics: every key the prefix matches, laid out relative to its folder
    assert seen == {"files": ["train.csv", "train.csv.bak"], "depth": 3, "hps": {"depth": 3}}


def test_a_failure_file_is_the_failure_reason(s3: Any, tmp_path: Path) -> None:
    entry = """
import os, pathlib, sys
pathlib.Path(os.environ["SM_OUTPUT_DIR"], "failure").write_text("training data rejected: no rows")
sys.exit(1)
"""
    run = run_job(s3, job(s3, entry), tmp_path)
    assert (run.status, run.exit_code) == ("Failed", 1)
    assert run.failure_reason == "AlgorithmError: training data rejected: no rows"
    assert run.artifact_uri == ""


def test_a_job_past_its_max_runtime_is_stopped(s3: Any, tmp_path: Path) -> None:
    run = run_job(s3, job(s3, "import time\ntime.sleep(60)\n", max_runtime=1), tmp_path)
    assert (run.status, run.secondary_status) == ("Stopped", "MaxRuntimeExceeded")
    assert "MaxRuntimeInSeconds" in run.failure_reason
    assert (run.ended - run.started).total_seconds() < 30


def test_a_missing_source_package_fails_the_job_before_it_runs(s3: Any, tmp_path: Path) -> None:
    spec = job(s3, "")
    spec["HyperParameters"]["sagemaker_submit_directory"] = json.dumps(f"s3://{BUCKET}/nope.tar.gz")
    run = run_job(s3, spec, tmp_path)
    assert run.status == "Failed"
    assert run.failure_reason.startswith("ClientError: cannot prepare the job's inputs")


def test_the_watcher_records_the_outcome_in_moto_and_puts_the_state_change_event(
    aws: Aws, tmp_path: Path
) -> None:
    # Given a job created in moto's server and a rule taking SageMaker's events to a queue
    aws.s3.create_bucket(Bucket=BUCKET)
    aws.s3.put_object(Bucket=BUCKET, Key="data/train.csv", Body=b"a,b\n1,2\n")
    spec = job(
        aws.s3,
        "import os, pathlib\npathlib.Path(os.environ['SM_MODEL_DIR'], 'm').write_text('1')\n",
    )
    sagemaker = boto3.client(
        "sagemaker",
        endpoint_url=aws.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    sagemaker.create_training_job(
        **{k: v for k, v in spec.items() if k != "StoppingCondition"},
        StoppingCondition=spec["StoppingCondition"],
        AlgorithmSpecification={"TrainingImage": "image", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/training",
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        Tags=[{"Key": "mlops:model", "Value": "house-prices"}],
    )
    queue = aws.sqs.create_queue(QueueName="sagemaker-events")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws.events.put_rule(Name="jobs", EventPattern=json.dumps({"source": ["aws.sagemaker"]}))
    aws.events.put_targets(Rule="jobs", Targets=[{"Id": "q", "Arn": arn}])
    # When the watcher runs it
    run = TrainingJobWatcher(aws.endpoint, tmp_path).run("mlops-test-1")
    # Then moto says what SageMaker would, and the event is the gate's to parse
    assert run.status == "Completed"
    described = sagemaker.describe_training_job(TrainingJobName="mlops-test-1")
    assert described["TrainingJobStatus"] == "Completed"
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == run.artifact_uri
    messages = aws.sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
    event = json.loads(messages[0]["Body"])
    assert event["detail-type"] == "SageMaker Training Job State Change"
    record = job_record(event)
    assert record["job_status"] == "Completed"
    assert record["detail"]["Tags"] == {"mlops:model": "house-prices"}
    assert isinstance(record["detail"]["TrainingEndTime"], int)


def test_a_channel_key_that_would_land_outside_the_channel_folder_is_not_copied(
    s3: Any, tmp_path: Path
) -> None:
    # Given keys under a folder prefix whose rest is absolute ("input//x") or climbs ("../x")
    outside = tmp_path / "outside.txt"
    spec = job(s3, "import sys\nsys.exit(0)\n")
    spec["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{BUCKET}/in/"
    s3.put_object(Bucket=BUCKET, Key="in/ok.csv", Body=b"a\n")
    s3.put_object(Bucket=BUCKET, Key=f"in/{outside}", Body=b"planted")
    s3.put_object(Bucket=BUCKET, Key="in/../escape.csv", Body=b"planted")
    # When the local stand-in copies the channel
    run = run_job(s3, spec, tmp_path / "job")
    # Then only the key inside it is copied, and nothing is written outside the job's folder
    assert run.status == "Completed"
    assert not outside.exists()
    assert sorted(p.name for p in tmp_path.rglob("*.csv")) == ["ok.csv"]

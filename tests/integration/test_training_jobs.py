"""Training beyond Lambda, through the real handlers against moto: the retrainer starts a
SageMaker training job for a large upload, the job's entry point runs as the training image
would run it (``mlops_cli.emulator.sagemaker.job_runner``), and its completion event reaches
the candidate gate, which registers the candidate with the job in its lineage, or reports a
failed, stopped or tampered job as a rejected retrain."""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops.domain.kept_data import kept_metadata
from mlops_cli.emulator.sagemaker.job_runner import JobRun, run_job
from mlops_cli.emulator.stack import LambdaContext
from tests.conftest import BUCKET, load_event
from tests.integration.retrain_pipeline import (
    FAST_CONFIG,
    MODEL,
    Pipeline,
    emitted,
    month,
    only,
    pipeline_in_moto,
)

PREFIX = "mlops-test"
ROLE = "arn:aws:iam::123456789012:role/mlops-TrainingJobRole"


def with_training(**keys: Any) -> str:
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
    return FAST_CONFIG.replace("[training]\n", "[training]\n" + lines, 1)


@pytest.fixture
def line(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    monkeypatch.setenv("TRAINING_JOB_PREFIX", PREFIX)
    monkeypatch.setenv("TRAINING_JOB_ROLE_ARN", ROLE)
    monkeypatch.setenv("TRAINING_INSTANCE_TYPE", "ml.m5.xlarge")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with pipeline_in_moto() as pipeline:
        yield pipeline


def job_event(run: JobRun, describe: dict[str, Any]) -> dict[str, Any]:
    """The state change event for ``run``: the real-shaped event with this job's fields."""
    event = copy.deepcopy(load_event("sagemaker_training_job_completed.json"))
    detail = event["detail"]
    detail.update(
        TrainingJobName=describe["TrainingJobName"],
        TrainingJobArn=describe["TrainingJobArn"],
        TrainingJobStatus=run.status,
        SecondaryStatus=run.secondary_status,
        ResourceConfig=describe["ResourceConfig"],
        TrainingStartTime=int(run.started.timestamp() * 1000),
        TrainingEndTime=int(run.ended.timestamp() * 1000),
        BillableTimeInSeconds=max(1, int((run.ended - run.started).total_seconds())),
    )
    if run.failure_reason:
        detail["FailureReason"] = run.failure_reason
    if run.artifact_uri:
        detail["ModelArtifacts"] = {"S3ModelArtifacts": run.artifact_uri}
    else:
        detail.pop("ModelArtifacts")
    event["resources"] = [describe["TrainingJobArn"]]
    return event


def train_on_sagemaker(
    line: Pipeline, body: bytes, tmp_path: Path
) -> tuple[dict[str, Any], JobRun, dict[str, Any]]:
    result = only(line.retrain(line.upload("big.csv", body)))
    assert result["status"] == "training", result
    describe = boto3.client("sagemaker").describe_training_job(
        TrainingJobName=result["training_job"]["job_name"]
    )
    run = run_job(boto3.client("s3"), describe, tmp_path)
    return result, run, job_event(run, describe)


def gate(line: Pipeline, event: dict[str, Any]) -> dict[str, Any]:
    response = line.gate.lambda_handler(event, LambdaContext("CandidateGateFunction"))
    return dict(response["training_job"])


def test_a_large_upload_trains_in_a_job_and_the_gate_registers_it_with_the_job(
    line: Pipeline, tmp_path: Path
) -> None:
    # Given a config whose Lambda limit the upload passes by one byte
    body = month(0)
    line.config(with_training(max_lambda_bytes=len(body) - 1))
    # When the retrainer sees it, the job runs, and its completion event reaches the gate
    result, run, event = train_on_sagemaker(line, body, tmp_path)
    outcome = gate(line, event)
    # Then the retrainer started a job instead of training, on the prebuilt image
    job = result["training_job"]
    assert job["job_name"].startswith(PREFIX + "-")
    assert job["image_uri"].endswith("/sagemaker-scikit-learn:1.4-2-py312-cpu-py3")
    assert run.status == "Completed", run.failure_reason
    # and the gate judged its candidate like any other: a registered version
    assert outcome["status"] == "judged"
    version = outcome["decision"]["version"]
    assert version == "1"
    assert line.versions() == ["1"]
    # whose lineage names the job, its instance, duration and cost
    record = line.registry.get_version(MODEL, version)
    assert record is not None
    lineage = record.lineage["training_job"]
    assert lineage["job_arn"] == job["job_arn"]
    assert lineage["instance_type"] == "ml.m5.xlarge"
    assert lineage["duration_s"] is not None
    assert lineage["cost_usd_estimate"] is not None
    manifest = line.store.get_json(f"models/{MODEL}/{version}/manifest.json")
    assert manifest["lineage"]["training_job"]["job_name"] == job["job_name"]
    assert manifest["lineage"]["data"][0]["uri"].endswith("/big.csv")
    # When the same event is delivered again, nothing is registered twice
    again = gate(line, event)
    assert again["decision"]["version"] == "1"
    assert line.versions() == ["1"]


def test_an_upload_at_the_lambda_limit_trains_in_the_function(line: Pipeline) -> None:
    body = month(0)
    line.config(with_training(max_lambda_bytes=len(body)))
    result = only(line.retrain(line.upload("big.csv", body)))
    assert result["status"] == "staged"
    assert boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def test_data_the_job_rejects_is_a_rejected_retrain_with_its_reason(
    line: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line.config(with_training(engine="sagemaker"))
    body = b"not,the,columns\n1,2,3\n" * 100
    _, run, event = train_on_sagemaker(line, body, tmp_path)
    assert run.status == "Failed"
    assert run.failure_reason.startswith("AlgorithmError: training data rejected")
    capsys.readouterr()
    outcome = gate(line, event)
    assert outcome["status"] == "rejected"
    assert "training data rejected" in outcome["reasons"][0]
    report = line.report(outcome["report_uri"])
    assert report["kind"] == "retrain_rejected"
    assert report["stage"] == "training_job"
    assert report["trigger"]["key"] == "training-data/big.csv"  # mlops retrain --wait finds it
    assert emitted(capsys).get("TrainingJobsFailed") == 1
    assert line.versions() == []


def test_a_job_stopped_at_its_max_runtime_is_a_rejected_retrain(line: Pipeline) -> None:
    event = copy.deepcopy(load_event("sagemaker_training_job_stopped.json"))
    event["detail"]["TrainingJobName"] = f"{PREFIX}-stopped"
    outcome = gate(line, event)
    assert outcome["status"] == "rejected"
    assert "MaxRuntimeInSeconds" in outcome["reasons"][0]
    assert line.report(outcome["report_uri"])["training_job"]["billable_s"] == 7200


def test_another_stacks_job_is_ignored(line: Pipeline) -> None:
    event = load_event("sagemaker_training_job_completed.json")  # named mlops-0a1b2c3d-...
    outcome = gate(line, event)
    assert outcome["status"] == "ignored"
    assert line.keys("reports/") == []


def retar(archive: bytes, change: Any) -> bytes:
    """The archive with ``change(name, body) -> body`` applied to each member."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as src,
        tarfile.open(fileobj=out, mode="w:gz") as dst,
    ):
        for member in src.getmembers():
            if not member.isreg():
                dst.addfile(member)
                continue
            body = change(member.name, src.extractfile(member).read())  # type: ignore[union-attr]
            member.size = len(body)
            dst.addfile(member, io.BytesIO(body))
    return out.getvalue()


def test_a_tampered_model_in_the_artifact_is_refused_not_registered(
    line: Pipeline, tmp_path: Path
) -> None:
    body = month(0)
    line.config(with_training(engine="sagemaker"))
    _, run, event = train_on_sagemaker(line, body, tmp_path)
    key = run.artifact_uri.removeprefix(f"s3://{BUCKET}/")
    archive = line.store.get_bytes(key)
    tampered = retar(archive, lambda n, b: b + b"\0" if n.endswith("model.onnx") else b)
    line.s3.put_object(Bucket=BUCKET, Key=key, Body=tampered)
    outcome = gate(line, event)
    assert outcome["status"] == "judged"
    assert outcome["decision"]["version"] is None
    assert "model.onnx" in outcome["decision"]["reasons"][0]
    assert line.versions() == []


def test_an_artifact_outside_the_jobs_output_is_refused(line: Pipeline) -> None:
    event = copy.deepcopy(load_event("sagemaker_training_job_completed.json"))
    name = f"{PREFIX}-elsewhere"
    event["detail"]["TrainingJobName"] = name
    event["detail"]["ModelArtifacts"]["S3ModelArtifacts"] = f"s3://{BUCKET}/models/x.tar.gz"
    outcome = gate(line, event)
    assert outcome["status"] == "rejected"
    assert "artifact refused" in outcome["reasons"][0]


def test_a_corrupt_artifact_is_a_rejected_retrain(line: Pipeline) -> None:
    event = copy.deepcopy(load_event("sagemaker_training_job_completed.json"))
    name = f"{PREFIX}-corrupt"
    key = f"staging/{MODEL}/jobs/{name}/output/model.tar.gz"
    event["detail"]["TrainingJobName"] = name
    event["detail"]["ModelArtifacts"]["S3ModelArtifacts"] = f"s3://{BUCKET}/{key}"
    line.s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(b"not a tar"))
    outcome = gate(line, event)
    assert outcome["status"] == "rejected"
    assert "not a readable gzip tar" in outcome["reasons"][0]


def test_without_a_training_job_role_a_large_upload_is_rejected_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRAINING_JOB_ROLE_ARN", raising=False)
    with pipeline_in_moto() as line:
        line.config(with_training(engine="sagemaker"))
        result = only(line.retrain(line.upload("big.csv", month(0))))
    assert result["status"] == "rejected"
    assert "TRAINING_JOB_ROLE_ARN" in result["reasons"][0]


def test_data_kept_from_a_version_is_skipped_without_a_job_and_a_copied_marker_is_not(
    line: Pipeline,
) -> None:
    line.config(with_training(engine="sagemaker"))
    body = month(0)
    kept = kept_metadata("1", hashlib.sha256(body).hexdigest())
    event = line.upload("kept.csv", body, metadata=kept)
    assert only(line.retrain(event))["status"] == "skipped"
    assert boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    # The same marker on other bytes (aws s3 cp keeps metadata) does not skip them
    other = line.upload("copied.csv", month(1), metadata=kept)
    assert only(line.retrain(other))["status"] == "training"


def test_an_upload_over_max_job_bytes_starts_no_job_and_is_rejected_one_byte_past(
    line: Pipeline,
) -> None:
    # Given an upload exactly at training.max_job_bytes: a job starts
    body = month(0)
    line.config(with_training(engine="sagemaker", max_job_bytes=len(body)))
    assert only(line.retrain(line.upload("big.csv", body)))["status"] == "training"
    # When the limit is one byte smaller, another upload of that size starts no job (no instance
    # is paid to download it and refuse it) and is a rejected retrain naming the limit
    line.config(with_training(engine="sagemaker", max_job_bytes=len(body) - 1))
    result = only(line.retrain(line.upload("other.csv", body)))
    assert result["status"] == "rejected"
    assert "over training.max_job_bytes" in result["reasons"][0]
    assert len(boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]) == 1

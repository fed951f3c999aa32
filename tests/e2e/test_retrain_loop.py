"""Retraining end to end on the local stack, as on AWS: a CSV uploaded under the training
prefix → S3 notification → RetrainerFunction (its own process) → OnSuccess destination →
CandidateGateFunction (its own process, the serving runtime) → registry → the inference
function serves the new version. And the operator's commands through the real entry point."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops.domain.synthetic import conditions_for_month, csv_bytes, generate
from tests.e2e.conftest import Running, mlops, start_local

pytestmark = pytest.mark.e2e


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(json.loads(response.read()))


def eventually(check: Any, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return result


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    cwd = tmp_path_factory.mktemp("retrain")
    running = start_local(cwd)
    yield running
    running.process.send_signal(signal.SIGINT)
    running.process.wait(timeout=30)


@pytest.fixture(scope="module")
def state(stack: Running) -> dict[str, Any]:
    return dict(json.loads((stack.cwd / ".mlops" / "local.json").read_text()))


def client(state: dict[str, Any], service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=state["endpoint"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def production(state: dict[str, Any]) -> str | None:
    table = state["outputs"]["RegistryTableName"]
    item = client(state, "dynamodb").get_item(
        TableName=table,
        Key={"pk": {"S": "model#house-prices"}, "sk": {"S": "alias#production"}},
        ConsistentRead=True,
    )
    return item.get("Item", {}).get("version", {}).get("S")


def upload(state: dict[str, Any], name: str, body: bytes) -> None:
    outputs = state["outputs"]
    client(state, "s3").put_object(
        Bucket=outputs["TrainingDataBucketName"],
        Key=outputs["TrainingDataPrefix"] + name,
        Body=body,
    )


def reports(state: dict[str, Any]) -> list[dict[str, Any]]:
    s3 = client(state, "s3")
    bucket = state["outputs"]["ArtifactsBucketName"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="reports/retrain/").get("Contents", [])
    return [json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listed]


def test_an_upload_whose_labels_disagree_is_held_and_every_user_keeps_v1(
    stack: Running, state: dict[str, Any]
) -> None:
    # Given v1 serving (trained from month 0 when the stack started)
    assert get(f"{stack.url}/health")["model_version"] == "1"
    # When month 0's houses are uploaded with every price tripled
    columns = generate(1500, conditions_for_month(0), seed=6)
    columns["price"] = columns["price"] * 3
    upload(state, "houses-tripled.csv", csv_bytes(columns))

    # Then the pipeline registers v2 but holds it: a shadow that answers no one
    def held() -> dict[str, Any] | None:
        return next(
            (
                r
                for r in reports(state)
                if r.get("kind") == "retrain_decision" and r.get("version") == "2"
            ),
            None,
        )

    decision = eventually(held)
    assert decision is not None, "\n".join(stack.lines[-40:])
    assert decision["status"] == "held", decision["reasons"]
    assert decision["decision"]["label_check"]["flagged"] is True
    assert any(r.startswith("rollout started: shadow") for r in decision["reasons"])
    assert decision["lineage"]["trigger"]["kind"] == "s3_upload"
    # And every answer still comes from v1
    assert production(state) == "1"
    for _ in range(5):
        assert get(f"{stack.url}/model")["model_version"] == "1"


def test_bad_data_is_rejected_and_production_keeps_serving(
    stack: Running, state: dict[str, Any]
) -> None:
    before = production(state)
    upload(state, "broken.csv", b"sqft;bedrooms;price\n1200;3;250000\n")

    def rejection() -> dict[str, Any] | None:
        return next(
            (
                r
                for r in reports(state)
                if r.get("kind") == "training_data" and r["object"]["uri"].endswith("broken.csv")
            ),
            None,
        )

    report = eventually(rejection)
    assert report is not None
    assert report["status"] == "rejected"
    assert "semicolon" in json.dumps(report["report"])
    assert production(state) == before
    assert get(f"{stack.url}/health")["status"] == "ok"


def test_the_operator_retrains_rolls_back_and_sees_it_all_in_status(
    stack: Running, state: dict[str, Any], tmp_path: Path
) -> None:
    assert production(state) == "1"
    data = tmp_path / "houses-month-09.csv"
    data.write_bytes(csv_bytes(generate(1500, conditions_for_month(9), seed=9)))
    # When the operator retrains from a file through the CLI and waits for the decision
    done = mlops(stack.cwd, "retrain", "--data", str(data), "--json", "--wait", "180", timeout=240)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    # Then nine months of market moves with no labels to show them: held until live labels
    # clear it, or an operator takes it on with a reason
    assert outcome["outcome"] == "held", outcome
    version = outcome["version"]
    plain = mlops(stack.cwd, "promote", version)
    assert plain.returncode == 1, plain.stdout  # refused: held
    forced = mlops(stack.cwd, "promote", version, "--force", "--reason", "e2e: reviewed by hand")
    assert forced.returncode == 0, forced.stderr
    assert eventually(lambda: get(f"{stack.url}/model")["model_version"] == version, 15)
    # When production is rolled back
    back = mlops(stack.cwd, "rollback", "--reason", "e2e: bad canary")
    assert back.returncode == 0, back.stderr
    assert "-> v1" in back.stdout
    # Then the inference function serves the previous model within its refresh interval
    assert eventually(lambda: get(f"{stack.url}/model")["model_version"] == "1", 15)
    # And status shows every version with its status, and the moves with who and why
    status = json.loads(mlops(stack.cwd, "status", "--json").stdout)
    statuses = {v["version"]: v["status"] for v in status["versions"]}
    assert statuses["1"] == "production"
    assert statuses[version] == "archived"
    assert status["history"][0]["kind"] == "rollback"
    assert status["history"][0]["reason"] == "e2e: bad canary"


def test_an_upload_past_the_lambda_limit_trains_in_a_sagemaker_job_and_reaches_the_gate(
    stack: Running, state: dict[str, Any]
) -> None:
    # Given the stack's config with the Lambda limit lowered below the upload's size
    s3 = client(state, "s3")
    bucket = state["outputs"]["ArtifactsBucketName"]
    key = "config/house-prices.toml"
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    lowered = original.replace(b"[training]\n", b"[training]\nmax_lambda_bytes = 1000\n", 1)
    assert lowered != original
    s3.put_object(Bucket=bucket, Key=key, Body=lowered)
    try:
        # When a month of houses is uploaded
        upload(state, "houses-big.csv", csv_bytes(generate(1500, conditions_for_month(1), seed=4)))

        # Then the retrainer starts a training job, the local SageMaker runs its entry point,
        # and the job's state change event reaches the gate, which registers a version
        def judged() -> dict[str, Any] | None:
            return next(
                (
                    r
                    for r in reports(state)
                    if r.get("kind") == "retrain_decision"
                    and "training_job" in r.get("lineage", {})
                ),
                None,
            )

        decision = eventually(judged, 180)
        assert decision is not None, "\n".join(stack.lines[-40:])
        assert decision["version"] is not None, decision["reasons"]
        job = decision["lineage"]["training_job"]
        assert job["job_arn"].startswith("arn:aws:sagemaker:us-east-1:")
        assert job["instance_type"] == "ml.m5.xlarge"
        assert decision["lineage"]["data"][0]["uri"].endswith("houses-big.csv")
        jobs = client(state, "sagemaker").list_training_jobs()["TrainingJobSummaries"]
        assert [j["TrainingJobName"] for j in jobs] == [job["job_name"]]
        assert jobs[0]["TrainingJobStatus"] == "Completed"
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=original)

"""A template's Step Functions state machine on the real local stack (tests/fixtures/stepfn/): an
upload starts it from a function (StartExecution through moto), its Distributed Map reads the
CSV from S3 in batches and invokes the scoring function in its own awslambdaric processes, and
DescribeExecution answers the real outcome."""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops.errors import ConfigError
from mlops_cli.emulator.stack import LocalStack
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e
TEMPLATE = ROOT / "tests" / "fixtures" / "stepfn" / "template.yaml"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    local = LocalStack(TEMPLATE, parameters={"RowsPerBatch": "250"})
    local.start()
    yield local
    local.stop()


def client(stack: LocalStack, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def finished(stack: LocalStack, key: str, timeout: float = 60) -> dict[str, Any]:
    """The execution started for ``key``, once it is no longer RUNNING."""
    sfn = client(stack, "stepfunctions")
    machine = stack.outputs["StateMachineArn"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for summary in sfn.list_executions(stateMachineArn=machine)["executions"]:
            described = sfn.describe_execution(executionArn=summary["executionArn"])
            if json.loads(described["input"])["key"] == key and described["status"] != "RUNNING":
                return dict(described)
        time.sleep(0.25)
    raise AssertionError(f"no finished execution for {key}")


def upload(stack: LocalStack, key: str, rows: list[tuple[str, str]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "x"])
    writer.writerows(rows)
    bucket = stack.resolver.refs["DataBucket"]
    client(stack, "s3").put_object(Bucket=bucket, Key=key, Body=out.getvalue().encode())


def test_an_upload_runs_the_distributed_map_and_scores_every_row(stack: LocalStack) -> None:
    # Given a 1,000-row CSV uploaded under batch/
    upload(stack, "batch/march.csv", [(str(i), f"{i / 10}") for i in range(1000)])

    # When the upload's function starts the machine and it finishes
    described = finished(stack, "batch/march.csv")

    # Then it SUCCEEDED with its real output: the ResultWriter's manifest
    assert described["status"] == "SUCCEEDED", described.get("cause")
    manifest_key = json.loads(described["output"])["map"]["manifest"]
    s3 = client(stack, "s3")
    bucket = stack.resolver.refs["DataBucket"]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    (succeeded,) = manifest["ResultFiles"]["SUCCEEDED"]
    records = json.loads(s3.get_object(Bucket=bucket, Key=succeeded["Key"])["Body"].read())
    assert sorted(json.loads(r["Output"])["rows"] for r in records) == [250] * 4
    # and every row has its prediction, written by the function in its batch
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="predictions/march.csv/")["Contents"]
    predictions = {}
    for obj in listed:
        text = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
        predictions.update(
            {row["id"]: float(row["prediction"]) for row in csv.DictReader(io.StringIO(text))}
        )
    assert len(predictions) == 1000
    assert predictions["999"] == pytest.approx(2 * 99.9 + 1)
    # and DescribeMapRun counts the items
    assert map_run_items(stack, described["executionArn"]) == (1000, 1000, 0)


def test_failed_batches_past_the_tolerance_fail_the_execution(stack: LocalStack) -> None:
    # Given 1,000 rows, 2 of 4 batches holding a row the function cannot score (50 % > 10 %)
    rows = [(str(i), "oops" if i in (3, 600) else "1") for i in range(1000)]
    upload(stack, "batch/bad.csv", rows)
    described = finished(stack, "batch/bad.csv")
    assert described["status"] == "FAILED"
    assert described["error"] == "States.ExceedToleratedFailureThreshold"
    assert "500 of 1000 items failed" in described["cause"]
    assert map_run_items(stack, described["executionArn"]) == (1000, 500, 500)


def map_run_items(stack: LocalStack, execution_arn: str) -> tuple[int, int, int]:
    """DescribeMapRun's (total, succeeded, failed) items for the execution's one Map Run."""
    sfn = client(stack, "stepfunctions")
    (run,) = sfn.list_map_runs(executionArn=execution_arn)["mapRuns"]
    described = sfn.describe_map_run(mapRunArn=run["mapRunArn"])
    assert described["status"] in ("SUCCEEDED", "FAILED")
    counts = described["itemCounts"]
    return counts["total"], counts["succeeded"], counts["failed"]


def test_a_definition_the_interpreter_cannot_run_is_refused_when_the_stack_starts(
    tmp_path: Path,
) -> None:
    # Given the fixture stack whose Map reads its items with an unsupported reader
    fixture = TEMPLATE.parent
    shutil.copytree(fixture, tmp_path / "stack")
    asl = tmp_path / "stack" / "statemachine.asl.json"
    asl.write_text(asl.read_text().replace('"InputType": "CSV"', '"InputType": "PARQUET"'))
    stack = LocalStack(tmp_path / "stack" / "template.yaml")
    # When it starts, then it refuses, naming the machine, the state and the field
    with pytest.raises(ConfigError) as refusal:
        stack.start()
    message = str(refusal.value)
    assert "ScoringMachine (AWS::Serverless::StateMachine)" in message
    assert "state 'ScoreRows'.ItemReader.ReaderConfig.InputType: 'PARQUET'" in message
    # and nothing is left running (the moto server is stopped)
    with pytest.raises(urllib.error.URLError, match="refused"):
        urllib.request.urlopen(stack.endpoint, timeout=2)

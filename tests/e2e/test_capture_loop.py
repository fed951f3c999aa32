"""Capture end to end on the real local stack: POST /predict and /feedback over HTTP → the
inference function's log lines → the CloudWatch Logs subscription → PredictionLoggerFunction
(its own process) → partitioned gzip JSON Lines and a drift sketch in S3."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from mlops_cli.emulator.runner import RunningStack, start_local
from mlops_cli.emulator.stack import free_port
from tests.conftest import ROOT, predict_instance
from tests.e2e.test_local_stack import call

pytestmark = pytest.mark.e2e
HOUSE = predict_instance()


@pytest.fixture(scope="module")
def running() -> Iterator[RunningStack]:
    stack = start_local(ROOT / "template.yaml", port=free_port(), quiet_functions=True)
    yield stack
    stack.stop()


def local_client(running: RunningStack, service: str) -> Any:
    """A boto3 client for the local stack's moto endpoint, as a user would point the CLI."""
    return boto3.client(
        service,
        endpoint_url=running.stack.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def objects(running: RunningStack, prefix: str) -> dict[str, bytes]:
    s3 = local_client(running, "s3")
    bucket = running.target.output("ArtifactsBucketName")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.25)
    return result


def rows(blobs: dict[str, bytes]) -> list[dict[str, Any]]:
    return [
        json.loads(line) for blob in blobs.values() for line in gzip.decompress(blob).splitlines()
    ]


def test_predictions_and_labels_land_in_s3_partitioned_with_a_sketch(
    running: RunningStack,
) -> None:
    # When a client predicts two houses and later sends the true price of one
    status, answer = call(f"{running.api.url}/predict", {"instances": [HOUSE, HOUSE]})
    assert status == 200
    status, accepted = call(
        f"{running.api.url}/feedback",
        {"prediction_id": answer["prediction_ids"][0], "actual": 401_000},
    )
    assert (status, accepted) == (202, {"accepted": 1})
    # Then the capture is one gzip JSONL object under its Hive-style partition, one row each
    captures = eventually(lambda: objects(running, "captures/"))
    (key,) = captures
    assert key.startswith("captures/model=house-prices/version=1/dt=")
    assert "/hour=" in key
    assert key.endswith(".jsonl.gz")
    stored = rows(captures)
    assert [r["prediction_id"] for r in stored] == answer["prediction_ids"]
    assert [r["prediction"] for r in stored] == answer["predictions"]
    assert stored[0]["inputs"] == HOUSE
    # And the label in its own partition, joinable by prediction id
    feedback = eventually(lambda: objects(running, "feedback/"))
    assert [(r["prediction_id"], r["actual"]) for r in rows(feedback)] == [
        (answer["prediction_ids"][0], 401_000)
    ]
    # And a drift sketch for the version, next to the data, counting both rows
    sketches = eventually(lambda: objects(running, "sketches/model=house-prices/version=1/"))
    (sketch,) = [json.loads(blob) for blob in sketches.values()]
    assert sketch["rows"] == 2
    assert not objects(running, "quarantine/")


def test_the_glue_tables_over_captures_and_feedback_exist(running: RunningStack) -> None:
    glue = local_client(running, "glue")
    database = running.target.output("CaptureDatabaseName")
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
    assert set(tables) == {"captures", "feedback"}
    template = tables["captures"]["Parameters"]["storage.location.template"]
    bucket = running.target.output("ArtifactsBucketName")
    expected = (
        f"s3://{bucket}/captures/model=${{model}}/version=${{version}}/dt=${{dt}}/hour=${{hour}}/"
    )
    assert template == expected


def test_a_1000_instance_request_is_split_into_records_and_nothing_is_lost(
    running: RunningStack,
) -> None:
    houses = [{**HOUSE, "sqft": 900 + i} for i in range(1000)]
    status, answer = call(
        f"{running.api.url}/predict", {"instances": houses, "request_id": "big-batch"}
    )
    assert status == 200

    def stored() -> list[dict[str, Any]]:
        return [r for r in rows(objects(running, "captures/")) if r["request_id"] == "big-batch"]

    big = eventually(lambda: len(stored()) == 1000 and stored())
    assert big, f"{len(stored())} of 1000 rows stored"
    assert sorted(r["prediction_id"] for r in big) == sorted(answer["prediction_ids"])
    assert sorted(r["inputs"]["sqft"] for r in big) == [h["sqft"] for h in houses]


def test_a_delivery_the_logger_cannot_store_is_retried_then_kept_for_replay(
    running: RunningStack,
) -> None:
    # Given a subscription delivery the logger cannot decode, sent as CloudWatch Logs does
    # (asynchronously), then when every retry fails
    assert running.stack.sources is not None
    bad = {"awslogs": {"data": "this is not base64 gzip"}}
    request_id = running.stack.sources.invoke_async("PredictionLoggerFunction", bad)
    # Then Lambda's destination record lands in the failure queue, with the event to replay
    sqs = local_client(running, "sqs")
    queue = running.target.output("PredictionLoggerFailuresUrl")
    messages = eventually(
        lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages"), 45
    )
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestPayload"] == bad

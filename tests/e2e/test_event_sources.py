"""Every event source a template declares, end to end: the real local stack (moto + resources +
each function in its own awslambdaric process) on a small fixture template
(tests/fixtures/stack/), its functions recording what they receive in a bucket."""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from mlops_cli.local.stack import LocalStack
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e
TEMPLATE = ROOT / "tests" / "fixtures" / "stack" / "template.yaml"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    local = LocalStack(TEMPLATE, schedule_seconds=1.0)
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


def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


def recorded(stack: LocalStack, kind: str) -> list[dict[str, Any]]:
    s3 = client(stack, "s3")
    bucket = stack.resolver.refs["RecordBucket"]
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{kind}/").get("Contents", [])
    ]
    return [json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys]


def test_an_upload_under_the_prefix_and_suffix_invokes_the_function_with_an_s3_event(
    stack: LocalStack,
) -> None:
    s3 = client(stack, "s3")
    bucket = stack.resolver.refs["UploadBucket"]
    s3.put_object(Bucket=bucket, Key="other/ignored.csv", Body=b"x")
    s3.put_object(Bucket=bucket, Key="incoming/ignored.txt", Body=b"x")
    s3.put_object(Bucket=bucket, Key="incoming/month 3.csv", Body=b"a,b\n1,2\n")
    events = eventually(lambda: recorded(stack, "s3"))
    assert len(events) == 1
    record = events[0]["Records"][0]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["bucket"]["name"] == bucket
    assert record["s3"]["object"]["key"] == "incoming/month+3.csv"  # form-encoded, as S3 sends
    time.sleep(1)
    assert len(recorded(stack, "s3")) == 1  # the filtered-out uploads never arrive


def test_a_schedule_fires_the_scheduled_event_at_the_accelerated_rate(stack: LocalStack) -> None:
    events = eventually(
        lambda: len(recorded(stack, "schedule")) >= 2 and recorded(stack, "schedule")
    )
    assert events
    assert events[0]["source"] == "aws.events"
    assert events[0]["detail-type"] == "Scheduled Event"
    assert events[0]["resources"][0].startswith("arn:aws:events:us-east-1:")


def test_an_eventbridge_event_matching_the_rule_is_delivered_and_others_are_not(
    stack: LocalStack,
) -> None:
    events = client(stack, "events")
    events.put_events(
        Entries=[
            {"Source": "test.app", "DetailType": "Retrain requested", "Detail": '{"why": "drift"}'},
            {"Source": "another.app", "DetailType": "Retrain requested", "Detail": "{}"},
        ]
    )
    delivered = eventually(lambda: recorded(stack, "eventbridge"))
    assert [e["detail"] for e in delivered] == [{"why": "drift"}]
    assert delivered[0]["detail-type"] == "Retrain requested"


def test_sqs_partial_batch_failures_are_redelivered_then_dead_lettered(stack: LocalStack) -> None:
    sqs = client(stack, "sqs")
    queue = stack.resolver.attrs[("WorkQueue", "QueueUrl")]
    dlq = stack.resolver.attrs[("WorkDlq", "QueueUrl")]
    for body in ("ok-1", "fail", "ok-2"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert eventually(lambda: len(recorded(stack, "worked")) == 2)
    # The failed message comes back after the visibility timeout, fails again, and after
    # maxReceiveCount (2) it is moved to the dead-letter queue; the others are never redone.
    dead = eventually(
        lambda: sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages"), 45
    )
    assert [m["Body"] for m in dead] == ["fail"]
    assert len(recorded(stack, "worked")) == 2


def test_matching_log_lines_reach_the_subscriber_as_an_awslogs_payload(stack: LocalStack) -> None:
    assert stack.runtime is not None
    assert stack.runtime.invoke("Emitter", {"value": 7}).ok
    payloads = eventually(lambda: recorded(stack, "logs"))
    decoded = json.loads(gzip.decompress(base64.b64decode(payloads[0]["awslogs"]["data"])))
    assert decoded["messageType"] == "DATA_MESSAGE"
    assert decoded["logGroup"] == stack.resolver.refs["EmitterLogs"]
    messages = [json.loads(e["message"]) for e in decoded["logEvents"]]
    assert messages == [{"type": "capture", "value": 7}]  # the other line does not match
    assert all(len(e["id"]) == 56 and e["id"].isdigit() for e in decoded["logEvents"])
    # Every line is also in the function's log group, as `aws logs filter-log-events` sees it
    logs = client(stack, "logs")
    found = eventually(
        lambda: logs.filter_log_events(logGroupName=stack.resolver.refs["EmitterLogs"])["events"]
    )
    assert any('"type": "other"' in e["message"] for e in found)


def test_a_failing_async_event_is_retried_then_sent_to_the_dead_letter_queue(
    stack: LocalStack,
) -> None:
    client(stack, "events").put_events(
        Entries=[{"Source": "test.fail", "DetailType": "Doomed", "Detail": '{"n": 1}'}]
    )
    sqs = client(stack, "sqs")
    dlq = stack.resolver.attrs[("AsyncDlq", "QueueUrl")]
    dead = eventually(
        lambda: sqs.receive_message(
            QueueUrl=dlq, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages"),
        45,
    )
    assert json.loads(dead[0]["Body"])["detail"] == {"n": 1}
    attributes = dead[0]["MessageAttributes"]
    assert "always fails" in attributes["ErrorMessage"]["StringValue"]
    assert attributes["RequestID"]["StringValue"]

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

from mlops_cli.emulator.stack import LocalStack
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


# ------------------------------------------------------------------ the retraining pipeline's shape


def failure_record(stack: LocalStack, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The record in PipelineFailures that ``wanted`` picks (fails the test if it never comes)."""
    sqs = client(stack, "sqs")
    queue = stack.resolver.attrs[("PipelineFailures", "QueueUrl")]
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", []):
            record: dict[str, Any] = json.loads(message["Body"])
            if wanted(record):
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                return record
    pytest.fail("no such record in PipelineFailures")


def test_an_upload_under_the_training_prefix_runs_the_trainer_then_the_gate_with_the_record(
    stack: LocalStack,
) -> None:
    # Given a named, versioned training bucket with the Trainer subscribed to training-data/
    s3 = client(stack, "s3")
    bucket = stack.resolver.refs["TrainingBucket"]
    assert bucket.startswith("fixture-training-")  # the template's BucketName, not ours
    # When a file is uploaded outside the prefix, then one under it
    s3.put_object(Bucket=bucket, Key="elsewhere/houses-month-01.csv", Body=b"a\n1\n")
    version = s3.put_object(
        Bucket=bucket, Key="training-data/houses-month-01.csv", Body=b"a,b\n1,2\n"
    )["VersionId"]

    def uploads() -> list[dict[str, Any]]:
        return [r for r in recorded(stack, "trainer") if "Records" in r["event"]]

    # Then the Trainer gets the S3 event of that upload, with its version id
    (trained,) = eventually(uploads)
    (s3_record,) = trained["event"]["Records"]
    assert s3_record["eventSource"] == "aws:s3"
    assert s3_record["s3"]["bucket"]["name"] == bucket
    assert s3_record["s3"]["object"]["key"] == "training-data/houses-month-01.csv"
    assert s3_record["s3"]["object"]["versionId"] == version
    # And its success reaches the Gate, asynchronously, as Lambda's destination record
    (record,) = eventually(
        lambda: [r for r in recorded(stack, "gate") if r["requestPayload"] == trained["event"]]
    )
    assert list(record) == [
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    ]
    assert record["version"] == "1.0"
    context = record["requestContext"]
    assert list(context) == ["requestId", "functionArn", "condition", "approximateInvokeCount"]
    assert context["functionArn"] == stack.resolver.attrs[("Trainer", "Arn")] + ":$LATEST"
    assert (context["condition"], context["approximateInvokeCount"]) == ("Success", 1)
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"]["verdict"] == "promote"
    assert record["responsePayload"]["staged"].startswith("trainer/")
    time.sleep(1)
    assert len(uploads()) == 1  # the upload outside the prefix never arrives


def put_requests(stack: LocalStack, *entries: tuple[str, dict[str, Any]]) -> None:
    """(bus logical id or "default", detail) as RetrainRequested events from mlops.drift."""
    response = client(stack, "events").put_events(
        Entries=[
            {
                "Source": "mlops.drift",
                "DetailType": "RetrainRequested",
                "Detail": json.dumps(detail),
                "EventBusName": "default" if bus == "default" else stack.resolver.refs[bus],
            }
            for bus, detail in entries
        ]
    )
    assert response["FailedEntryCount"] == 0


def test_a_retrain_request_for_the_model_on_the_custom_bus_runs_the_pipeline(
    stack: LocalStack,
) -> None:
    # When requests are put for another model, on the default bus, and for this model
    put_requests(
        stack,
        ("PipelineBus", {"model": "other", "request_id": "r-other"}),
        ("default", {"model": "houses", "request_id": "r-default"}),
        ("PipelineBus", {"model": "houses", "request_id": "r-1"}),
    )

    # Then only the matching one reaches the Trainer, as EventBridge's event, then the Gate
    def trainer_events() -> list[dict[str, Any]]:
        return [r["event"] for r in recorded(stack, "trainer") if "detail" in r["event"]]

    (event,) = eventually(trainer_events)
    assert event["detail"] == {"model": "houses", "request_id": "r-1"}
    assert (event["source"], event["detail-type"]) == ("mlops.drift", "RetrainRequested")
    gated = eventually(lambda: [r for r in recorded(stack, "gate") if r["requestPayload"] == event])
    assert gated[0]["requestContext"]["condition"] == "Success"
    time.sleep(1)
    assert len(trainer_events()) == 1


def request_id(event: Any) -> Any:
    return event.get("detail", {}).get("request_id") if isinstance(event, dict) else None


def test_a_failing_trainer_is_retried_then_its_record_goes_to_the_queue_not_the_gate(
    stack: LocalStack,
) -> None:
    put_requests(stack, ("PipelineBus", {"model": "houses", "request_id": "r-fail", "fail": True}))
    record = failure_record(stack, lambda r: request_id(r["requestPayload"]) == "r-fail")
    context = record["requestContext"]
    assert context["functionArn"] == stack.resolver.attrs[("Trainer", "Arn")] + ":$LATEST"
    assert (context["condition"], context["approximateInvokeCount"]) == ("RetriesExhausted", 2)
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert "training failed on purpose" in record["responsePayload"]["errorMessage"]
    gated = [r["requestPayload"] for r in recorded(stack, "gate")]
    assert "r-fail" not in [request_id(event) for event in gated]


def test_a_failing_gate_sends_its_own_record_to_the_queue(stack: LocalStack) -> None:
    put_requests(
        stack, ("PipelineBus", {"model": "houses", "request_id": "r-reject", "verdict": "reject"})
    )
    gate_arn = stack.resolver.attrs[("Gate", "Arn")] + ":$LATEST"
    record = failure_record(stack, lambda r: r["requestContext"]["functionArn"] == gate_arn)
    context = record["requestContext"]
    assert (context["condition"], context["approximateInvokeCount"]) == ("RetriesExhausted", 1)
    # What the Gate got, kept whole: the Trainer's destination record
    trainer_record = record["requestPayload"]
    assert trainer_record["requestContext"]["condition"] == "Success"
    assert request_id(trainer_record["requestPayload"]) == "r-reject"
    assert trainer_record["responsePayload"]["verdict"] == "reject"
    assert "candidate rejected on purpose" in record["responsePayload"]["errorMessage"]


def test_each_function_process_gets_exactly_its_template_environment(stack: LocalStack) -> None:
    # Given the Trainer ran (an upload or a request of the tests above, or this one)
    put_requests(stack, ("PipelineBus", {"model": "houses", "request_id": "r-env"}))
    trained = eventually(lambda: recorded(stack, "trainer"))
    environment = trained[0]["environment"]
    # Then its variables are the template's (Globals + its own), resolved to the local names
    assert {k: environment[k] for k in ("RECORD_BUCKET", "MODEL_NAME", "TRAINING_PREFIX")} == {
        "RECORD_BUCKET": stack.resolver.refs["RecordBucket"],
        "MODEL_NAME": "houses",
        "TRAINING_PREFIX": "training-data/",
    }
    assert environment["TRAINING_BUCKET"] == stack.resolver.refs["TrainingBucket"]
    assert environment["IDEMPOTENCY_TABLE"] == stack.resolver.refs["IdempotencyTable"]
    assert environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    # And nothing of another function's or of this process's
    assert "GATE_ONLY" not in environment
    assert "PYTEST_CURRENT_TEST" not in environment


def test_the_idempotency_table_has_its_key_schema_and_ttl(stack: LocalStack) -> None:
    dynamodb = client(stack, "dynamodb")
    table = stack.resolver.refs["IdempotencyTable"]
    description = dynamodb.describe_table(TableName=table)["Table"]
    assert description["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiration"}
